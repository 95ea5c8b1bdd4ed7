"""Publishes that go wrong, into a repository a real Triton polls: the old version keeps serving.

Each test provokes one fault while clients send requests: a staged file that cannot be written,
a publishing process killed mid-way, a staged model that does not load, a model that fails its
parity gate. Each time the server must keep answering from version 1 with no failed request,
never list a version 2, and not reload anything: Triton retries a version it cannot load on
every poll and reloads the ensemble each time, so a broken version must never reach it.
"""

from __future__ import annotations

import errno
import io
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import tritonclient.http as httpclient
from PIL import Image

from testsupport import make_onnx_classifier, start_server
from tritonkit.converters import ParityError
from tritonkit.repository import BuildOptions, PublishError, build_repository, existing_versions
from tritonkit.repository import _build as build_module
from tritonkit.repository import _publish as publish_module
from tritonkit.server import EmbeddedServer

pytestmark = pytest.mark.integration

MODELS = ("tiny", "tiny_classifier", "tiny_preprocess")
POLL_INTERVAL_S = 1
WATCH_POLLS = 5  # long enough that a retried version would have been reloaded several times
# Triton's model life cycle, one line per load attempt, load or unload.
LIFECYCLE = re.compile(r'"(loading: \S+|successfully (?:un)?loaded [^"]+|failed to load [^"]+)"')


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (48, 48), (30, 160, 90)).save(buffer, format="PNG")
    return buffer.getvalue()


def _snapshot(root: Path) -> dict[str, bytes | None]:
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))
    }


@dataclass
class Traffic:
    """Clients sending the same image to the ensemble in a loop until stopped."""

    server: EmbeddedServer
    image: bytes
    answers: list[tuple[str, tuple[float, ...]]] = field(default_factory=list)  # (version, scores)
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def _loop(self) -> None:
        client = httpclient.InferenceServerClient(self.server.http_url.removeprefix("http://"))
        try:
            while not self._stop.is_set():
                tensor = httpclient.InferInput("IMAGE", [1, 1], "BYTES")
                tensor.set_data_from_numpy(np.array([[self.image]], dtype=object))
                try:
                    result = client.infer("tiny", [tensor])
                    scores = tuple(np.round(result.as_numpy("SCORES")[0], 5).tolist())
                    self.answers.append((result.get_response()["model_version"], scores))
                except Exception as exc:  # any failure at all is what the test counts
                    self.failures.append(str(exc))
                time.sleep(0.02)
        finally:
            client.close()

    def __enter__(self) -> Traffic:
        self._threads = [threading.Thread(target=self._loop) for _ in range(2)]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()


@dataclass(frozen=True)
class Polled:
    repo: Path
    source: Path  # the ONNX model version 1 was built from
    server: EmbeddedServer
    first_answer: tuple[float, ...]


def _polled(tmp: Path) -> Polled:
    source = make_onnx_classifier(tmp / "v1.onnx", seed=1)
    repo = tmp / "repo"
    build_repository(source, BuildOptions(name="tiny", repository=repo))
    server = start_server(repo, model_control_mode="poll", poll_interval_s=POLL_INTERVAL_S)
    with Traffic(server, _png()) as probe:
        while not probe.answers and not probe.failures:
            time.sleep(0.05)
    assert probe.failures == [], probe.failures[:3]
    return Polled(repo, source, server, probe.answers[0][1])


@pytest.fixture(scope="module")
def polled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Polled]:
    """Version 1 of a tiny pipeline on a polling server, shared by the tests that must leave it so."""
    running = _polled(tmp_path_factory.mktemp("polled"))
    yield running
    running.server.stop()


def _assert_still_serving_version_1(polled: Polled, traffic: Traffic, log_offset: int) -> None:
    """Watch several polls: v1 answers every request, nothing is (re)loaded, no v2 is listed."""
    time.sleep(WATCH_POLLS * POLL_INTERVAL_S)
    answered = len(traffic.answers)
    assert answered > 20, f"only {answered} requests were answered"
    assert traffic.failures == [], traffic.failures[:5]
    assert set(traffic.answers) == {("1", polled.first_answer)}
    lifecycle = LIFECYCLE.findall(polled.server.log_text()[log_offset:])
    assert lifecycle == [], f"the server (re)loaded models after the failed publish: {lifecycle[:6]}"
    client = httpclient.InferenceServerClient(polled.server.http_url.removeprefix("http://"))
    try:
        index = {(m["name"], m.get("version"), m.get("state")) for m in client.get_model_repository_index()}
    finally:
        client.close()
    assert index == {(m, "1", "READY") for m in MODELS}
    assert all(existing_versions(polled.repo / m) == [1] for m in MODELS)


def _precondition(polled: Polled) -> dict[str, bytes | None]:
    assert all(existing_versions(polled.repo / m) == [1] for m in MODELS), "an earlier test published"
    return _snapshot(polled.repo)


def test_a_publish_whose_staged_write_fails_leaves_the_polling_server_serving_the_old_version(
    polled: Polled, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _precondition(polled)
    real_copy = publish_module.shutil.copyfile

    def disk_full_on_the_model(source: str, target: str) -> str:
        if Path(target).name != "model.onnx":
            return real_copy(source, target)
        data = Path(source).read_bytes()
        Path(target).write_bytes(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    second = make_onnx_classifier(tmp_path / "v2.onnx", seed=2)
    offset = len(polled.server.log_text())
    with Traffic(polled.server, _png()) as traffic:
        monkeypatch.setattr(publish_module.shutil, "copyfile", disk_full_on_the_model)
        with pytest.raises(PublishError, match="No space left on device"):
            build_repository(second, BuildOptions(name="tiny", repository=polled.repo))
        monkeypatch.undo()
        _assert_still_serving_version_1(polled, traffic, offset)
    assert _snapshot(polled.repo) == before


def test_a_staged_model_that_does_not_load_is_never_published_so_the_server_never_reloads(
    polled: Polled, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _precondition(polled)
    real_copy = publish_module.shutil.copyfile

    def copy_cut_short(source: str, target: str) -> str:
        # A copy that ends early without an error (a full disk on some file systems, a network
        # share dropping): the file that passed the parity gate is not the one being published.
        real_copy(source, target)
        if Path(target).name == "model.onnx":
            os.truncate(target, os.path.getsize(target) // 2)
        return target

    second = make_onnx_classifier(tmp_path / "v2.onnx", seed=2)
    offset = len(polled.server.log_text())
    with Traffic(polled.server, _png()) as traffic:
        monkeypatch.setattr(publish_module.shutil, "copyfile", copy_cut_short)
        with pytest.raises(PublishError, match=r"model\.onnx does not load in onnxruntime"):
            build_repository(second, BuildOptions(name="tiny", repository=polled.repo))
        monkeypatch.undo()
        _assert_still_serving_version_1(polled, traffic, offset)
    assert _snapshot(polled.repo) == before


def test_a_model_that_fails_its_parity_gate_is_never_published_or_served(
    polled: Polled, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _precondition(polled)
    miscompiled = make_onnx_classifier(tmp_path / "miscompiled.onnx", seed=9)
    real_export = build_module.export_onnx

    def export_a_different_model(model: object, output: Path, **kwargs: object) -> object:
        signature = real_export(model, output, **kwargs)  # type: ignore[arg-type]
        output.write_bytes(miscompiled.read_bytes())  # as if the exporter had got the weights wrong
        return signature

    offset = len(polled.server.log_text())
    with Traffic(polled.server, _png()) as traffic:
        monkeypatch.setattr(build_module, "export_onnx", export_a_different_model)
        with pytest.raises(ParityError, match="parity FAILED"):
            build_repository(polled.source, BuildOptions(name="tiny", repository=polled.repo))
        monkeypatch.undo()
        _assert_still_serving_version_1(polled, traffic, offset)
    assert _snapshot(polled.repo) == before


# Runs build_repository in a child that stops for good half-way through writing the staged
# model.onnx, after telling the parent (through the marker file) that it got there.
_HANG_WHILE_STAGING = """
import os, sys, time
from pathlib import Path
from tritonkit.repository import BuildOptions, build_repository
from tritonkit.repository import _publish

source, repo, marker = sys.argv[1:4]
real_copy = _publish.shutil.copyfile

def copy_then_hang(src, dst, *args, **kwargs):
    if Path(dst).name == "model.onnx":
        data = Path(src).read_bytes()
        Path(dst).write_bytes(data[: len(data) // 2])
        Path(marker).write_text(str(os.getpid()))
        time.sleep(600)
    return real_copy(src, dst, *args, **kwargs)

_publish.shutil.copyfile = copy_then_hang
build_repository(source, BuildOptions(name="tiny", repository=Path(repo)))
"""


def test_a_publish_killed_while_staging_leaves_the_old_version_serving_and_the_next_build_works(
    tmp_path: Path,
) -> None:
    polled = _polled(tmp_path)
    try:
        before = _snapshot(polled.repo)
        second = make_onnx_classifier(tmp_path / "v2.onnx", seed=2)
        marker = tmp_path / "staging-model-onnx"
        offset = len(polled.server.log_text())
        with Traffic(polled.server, _png()) as traffic:
            child = subprocess.Popen(
                [sys.executable, "-c", _HANG_WHILE_STAGING, str(second), str(polled.repo), str(marker)]
            )
            try:
                deadline = time.monotonic() + 120
                while not marker.exists() and child.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.05)
                assert marker.exists(), f"the publishing process never reached staging (exit {child.poll()})"
                os.kill(child.pid, signal.SIGKILL)  # no cleanup, no rollback: a crash
                assert child.wait(timeout=30) == -signal.SIGKILL
            finally:
                if child.poll() is None:
                    child.kill()
                    child.wait()
            _assert_still_serving_version_1(polled, traffic, offset)
        assert _snapshot(polled.repo) == before
        stage_root = publish_module.staging_root(polled.repo)
        assert list(stage_root.glob("stage-*")), "the killed publish should have left its staging folder"

        # The dead process's lock is gone with it; the next build publishes and cleans up after it.
        result = build_repository(second, BuildOptions(name="tiny", repository=polled.repo))
        assert result.version == 2
        assert not list(stage_root.glob("stage-*"))
        client = httpclient.InferenceServerClient(polled.server.http_url.removeprefix("http://"))
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not all(client.is_model_ready(m, "2") for m in MODELS):
                time.sleep(0.25)
            assert all(client.is_model_ready(m, "2") for m in MODELS)
        finally:
            client.close()
    finally:
        polled.server.stop()
