"""`tritonkit build-repo` as a user types it: a summary on success, one red sentence on failure."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from testsupport import make_onnx_classifier
from tritonkit.cli import app
from tritonkit.demo import write_shape_images
from tritonkit.repository import existing_versions, parse_config

runner = CliRunner()


@pytest.fixture
def onnx_model(tmp_path: Path) -> Path:
    return make_onnx_classifier(tmp_path / "tiny.onnx")


def test_build_repo_prints_a_summary_with_versions_paths_and_parity(tmp_path: Path, onnx_model: Path) -> None:
    labels = tmp_path / "labels.txt"
    labels.write_text("a\nb\nc\nd\n")
    samples = tmp_path / "samples"
    write_shape_images(samples, per_class=1)
    repo = tmp_path / "repo"
    result = runner.invoke(
        app,
        [
            "build-repo",
            str(onnx_model),
            "--name",
            "tiny",
            "--repo",
            str(repo),
            "--labels",
            str(labels),
            "--samples",
            str(samples),
            "--preferred-batch-sizes",
            "4,8",
            "--max-queue-delay-us",
            "100",
            "--instances",
            "2",
            "--max-image-pixels",
            "1000000",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "tiny version 1" in result.output
    assert "parity passed on 8 samples" in result.output
    assert "image float32 [batch, 32, 32, 3]" in result.output  # shapes survive rich markup
    assert "tritonkit serve --repo" in result.output
    classifier = parse_config((repo / "tiny_classifier" / "config.pbtxt").read_text())
    assert list(classifier.dynamic_batching.preferred_batch_size) == [4, 8]
    assert classifier.instance_group[0].count == 2
    preprocess = parse_config((repo / "tiny_preprocess" / "config.pbtxt").read_text())
    assert preprocess.parameters["max_pixels"].string_value == "1000000"
    import json

    manifest = json.loads((repo / "tiny" / "1" / "tritonkit.json").read_text())
    assert manifest["parity"]["samples"] == 4 + 4  # four shape images + four synthetic ones


def test_gpu_device_puts_only_the_classifier_on_gpu_instances(tmp_path: Path, onnx_model: Path) -> None:
    repo = tmp_path / "repo"
    result = runner.invoke(
        app,
        [
            "build-repo",
            str(onnx_model),
            "-n",
            "tiny",
            "--repo",
            str(repo),
            "--target",
            "triton",
            "--device",
            "gpu",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "KIND_GPU" in (repo / "tiny_classifier" / "config.pbtxt").read_text()
    assert "KIND_CPU" in (repo / "tiny_preprocess" / "config.pbtxt").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.onnx", "--name", "m"], "no such file"),
        (["{model}", "--name", "../m"], "path separator"),
        (["{model}", "--name", "m", "--labels", "nolabels.txt"], "does not exist"),
        (["{model}", "--name", "m", "--scaling", "weird"], "--scaling"),
        (["{model}", "--name", "m", "--max-batch-size", "0"], "--max-batch-size"),
        (["{model}", "--name", "m", "--samples", "nope.jpg"], "not found"),
    ],
)
def test_bad_input_is_one_red_line_exit_1_and_nothing_written(
    tmp_path: Path, onnx_model: Path, args: list[str], message: str
) -> None:
    repo = tmp_path / "repo"
    argv = ["build-repo", *[a.format(model=onnx_model) for a in args], "--repo", str(repo)]
    result = runner.invoke(app, argv)
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert not repo.exists() or not any(repo.iterdir())


def test_rebuilding_through_the_cli_adds_version_2(tmp_path: Path, onnx_model: Path) -> None:
    repo = tmp_path / "repo"
    for expected in (1, 2):
        result = runner.invoke(app, ["build-repo", str(onnx_model), "-n", "tiny", "--repo", str(repo)])
        assert result.exit_code == 0, result.output
        assert f"tiny version {expected}" in result.output
    assert existing_versions(repo / "tiny") == [1, 2]


def test_build_repo_console_script_is_the_same_command(tmp_path: Path, onnx_model: Path) -> None:
    script = Path(sys.executable).parent / "build-repo"
    repo = tmp_path / "repo"
    result = subprocess.run(
        [str(script), str(onnx_model), "--name", "tiny", "--repo", str(repo), "--target", "triton"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert existing_versions(repo / "tiny_classifier") == [1]


def _nudge_bias(path: Path, offset: float) -> None:
    """Move the first class's logit by ``offset``: an ONNX model a hair away from its source."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    (bias,) = [t for t in model.graph.initializer if t.name == "b"]
    values = numpy_helper.to_array(bias).copy()
    values[0] += offset
    bias.CopyFrom(numpy_helper.from_array(values.astype(np.float32), "b"))
    onnx.save(model, str(path))


def test_parity_atol_decides_whether_a_slightly_different_onnx_model_is_published(
    tmp_path: Path, onnx_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tritonkit.repository import _build as build_module

    real_export = build_module.export_onnx

    def export_slightly_off(model: object, output: Path, **kwargs: object) -> object:
        signature = real_export(model, output, **kwargs)  # type: ignore[arg-type]
        _nudge_bias(output, 1e-4)  # scores move by up to ~2.5e-5, as float32 reordering might
        return signature

    monkeypatch.setattr(build_module, "export_onnx", export_slightly_off)
    repo = tmp_path / "repo"
    argv = ["build-repo", str(onnx_model), "-n", "tiny", "--repo", str(repo)]

    tight = runner.invoke(app, [*argv, "--parity-atol", "1e-6"])
    assert tight.exit_code == 1, tight.output
    assert "parity FAILED" in tight.output and "> atol 1e-06" in tight.output
    assert not repo.exists() or not any(repo.iterdir())

    default = runner.invoke(app, argv)  # 1e-3
    assert default.exit_code == 0, default.output
    assert "parity passed" in default.output and "<= atol 1e-03" in default.output

    loose = runner.invoke(app, [*argv, "--parity-atol", "1e-4"])
    assert loose.exit_code == 0, loose.output
    assert existing_versions(repo / "tiny_classifier") == [1, 2]


def test_instance_help_gives_the_one_instance_defaults() -> None:
    import typer.main

    command = typer.main.get_command(app).commands["build-repo"]  # type: ignore[attr-defined]
    helps = {param.name: param.help for param in command.params}
    assert helps["instances"].startswith("Classifier instances (default: 1,")
    assert helps["preprocess_instances"].startswith("Preprocessor instances (default: 1,")
    assert "sized to cores" not in helps["instances"] and "half" not in helps["preprocess_instances"]
