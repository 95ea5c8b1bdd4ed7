"""`tritonkit demo` end to end: train, build, serve, classify over HTTP and gRPC, metrics, stop."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from rich.console import Console

from tritonkit.cli._demo import DEMO_MODEL, run_demo

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.tensorflow]

# Few epochs keep the test short; the generated shapes are easy enough that they still suffice.
EPOCHS = 8


def _processes_using(path: Path) -> list[int]:
    """Processes whose command line names ``path``: the server and its Python backend stubs."""
    needle = str(path).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:  # ended meanwhile, or not ours to read
            continue
        if needle in cmdline:
            found.append(int(entry.name))
    return found


def _keras_top1(workdir: Path, answers: list[tuple[str, str, float]]) -> list[tuple[str, float]]:
    """The demo's Keras model, run in-process on the demo's images: (top label, score) per image."""
    import numpy as np

    from tritonkit.converters import load_source
    from tritonkit.demo import SHAPE_LABELS
    from tritonkit.demo._train import to_arrays, training_spec

    images = [(workdir / "images" / name).read_bytes() for name, _, _ in answers]
    outputs = load_source(workdir / "model" / "shapes.keras").predict(to_arrays(images, training_spec()))
    scores = np.asarray(next(iter(outputs.values())))
    return [(SHAPE_LABELS[int(row.argmax())], float(row.max())) for row in scores]


def _shared_memory() -> set[str]:
    # The embedded server names the Python backend's regions after the process that started it.
    return {p.name for p in Path("/dev/shm").glob(f"tritonkit_{os.getpid()}_*")}


def test_demo_trains_builds_serves_classifies_over_http_and_grpc_shows_metrics_and_stops(
    tmp_path: Path,
) -> None:
    pytest.importorskip("tensorflow")
    repository = (tmp_path / "model_repository").resolve()
    lines: list[str] = []
    while_serving: dict[str, object] = {}
    shm_before = _shared_memory()

    def log(text: str) -> None:
        lines.append(text)
        if text.strip().startswith("ready:"):  # the server is up: see what it runs
            while_serving["processes"] = _processes_using(repository)
            while_serving["shm"] = _shared_memory() - shm_before

    output = io.StringIO()
    console = Console(file=output, width=200, color_system=None)
    report = run_demo(tmp_path / "work", repository, console, epochs=EPOCHS, log=log)
    printed = output.getvalue()

    # 8 epochs reach ~92% on the 400 held-out shapes (seeded); chance is 25%
    assert report.accuracy >= 0.85, f"test accuracy {report.accuracy:.1%} after {EPOCHS} epochs"
    assert any(f"test accuracy {report.accuracy:.1%}" in line for line in lines)
    assert report.version == 1 and (repository / DEMO_MODEL / "1").is_dir()

    assert set(report.answers) == {"http", "grpc"}
    assert report.images == 8  # two of each of the four shapes
    for protocol in ("http", "grpc"):
        assert len(report.answers[protocol]) == report.images
        assert report.correct[protocol] >= report.images - 2, report.answers[protocol]
        assert f"{protocol.upper()}: {report.correct[protocol]}/{report.images} correct" in printed
    # Both protocols answer what the trained Keras model itself says about each image.
    expected = _keras_top1(tmp_path / "work", report.answers["http"])
    for protocol in ("http", "grpc"):
        assert [label for _, label, _ in report.answers[protocol]] == [label for label, _ in expected]
        assert [score for _, _, score in report.answers[protocol]] == pytest.approx(
            [score for _, score in expected], abs=1e-4
        )

    # the metrics step: the pipeline and both steps, counting the 8 images twice (HTTP + gRPC)
    assert "Triton metrics: the ensemble and its steps" in printed
    pipeline = next(line for line in printed.splitlines() if f"{DEMO_MODEL} v1 (pipeline)" in line)
    cells = [cell.strip() for cell in pipeline.split("│")]
    assert cells[2:4] == ["2", str(2 * report.images)], pipeline  # one request per protocol, 8 images each
    assert f"{DEMO_MODEL}_preprocess v1" in printed and f"{DEMO_MODEL}_classifier v1" in printed

    # it really served, and it stopped everything it started
    assert while_serving["processes"], "no server process was found while the demo was serving"
    assert _processes_using(repository) == []
    assert while_serving["shm"], "no shared-memory region was found while the demo was serving"
    assert _shared_memory() - shm_before == set()
    assert any(line.startswith("Done in") for line in lines)
