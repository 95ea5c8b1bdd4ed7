"""A backend stub killed with SIGKILL is noticed and its model reloaded; serving resumes by itself."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tritonclient.http as httpclient
from PIL import Image
from tritonclient.utils import InferenceServerException
from typer.testing import CliRunner

from testsupport import make_onnx_classifier, start_server
from tritonkit.cli import app
from tritonkit.repository import BuildOptions, build_repository
from tritonkit.server import EmbeddedServer, find_stubs

pytestmark = pytest.mark.integration

ADMIN_KEY = "test-admin-key"


@pytest.fixture(scope="module")
def tiny_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("healing")
    model = make_onnx_classifier(folder / "tiny.onnx")
    build_repository(model, BuildOptions(name="tiny", repository=folder / "repo"))
    return folder / "repo"


@contextlib.contextmanager
def _http(server: EmbeddedServer) -> Iterator[httpclient.InferenceServerClient]:
    client = httpclient.InferenceServerClient(server.http_url.removeprefix("http://"))
    try:
        yield client
    finally:
        client.close()


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 40, 10)).save(buffer, format="PNG")
    return buffer.getvalue()


def _infer(client: httpclient.InferenceServerClient) -> np.ndarray | InferenceServerException:
    tensor = httpclient.InferInput("IMAGE", [1, 1], "BYTES")
    tensor.set_data_from_numpy(np.array([[_png()]], dtype=object))
    try:
        return client.infer("tiny", [tensor]).as_numpy("SCORES")
    except InferenceServerException as exc:
        return exc


def _kill_stub(server: EmbeddedServer, model: str) -> tuple[int, str]:
    assert server.pid is not None
    (stub,) = [s for s in find_stubs(server.pid) if s.model == model and not s.dead]
    os.kill(stub.pid, signal.SIGKILL)
    return stub.pid, stub.shm_region


def _wait_for_answer(client: httpclient.InferenceServerClient, seconds: float) -> np.ndarray | Exception:
    deadline = time.monotonic() + seconds
    result = _infer(client)
    while isinstance(result, Exception) and time.monotonic() < deadline:
        time.sleep(0.2)
        result = _infer(client)
    return result


@pytest.fixture
def explicit_server(tiny_repo: Path) -> Iterator[EmbeddedServer]:
    server = start_server(tiny_repo, model_control_mode="explicit", load_models=("*",), admin_key=ADMIN_KEY)
    yield server
    server.stop()


def test_killed_classifier_stub_is_reloaded_and_serving_resumes(explicit_server: EmbeddedServer) -> None:
    with _http(explicit_server) as client:
        expected = _infer(client)
        assert isinstance(expected, np.ndarray)

        pid, region = _kill_stub(explicit_server, "tiny_classifier")
        result = _wait_for_answer(client, seconds=20)

        assert isinstance(result, np.ndarray), result
        np.testing.assert_allclose(result, expected, rtol=1e-6)
        (event,) = explicit_server.heal_events
        assert (event.model, event.pid, event.action) == ("tiny_classifier", pid, "reloaded")
        assert not os.path.exists(f"/dev/shm/{region}")  # the dead stub's shared memory is cleaned up


def test_the_model_repository_api_is_locked_by_the_admin_key(explicit_server: EmbeddedServer) -> None:
    with _http(explicit_server) as client:
        with pytest.raises(InferenceServerException, match="restricted"):
            client.unload_model("tiny")
        with pytest.raises(InferenceServerException, match="restricted"):
            client.get_model_repository_index()
        assert client.get_model_repository_index(headers={"admin-key": ADMIN_KEY})
        assert client.is_model_ready("tiny")  # inference and health stay open


def test_poll_mode_heals_by_touching_the_config(tiny_repo: Path) -> None:
    server = start_server(tiny_repo, model_control_mode="poll", poll_interval_s=1)
    try:
        with _http(server) as client:
            assert isinstance(_infer(client), np.ndarray)
            _kill_stub(server, "tiny_preprocess")
            result = _wait_for_answer(client, seconds=30)
            assert isinstance(result, np.ndarray), result
            assert [e.model for e in server.heal_events] == ["tiny_preprocess"]
    finally:
        server.stop()


def test_healing_can_be_turned_off(tiny_repo: Path) -> None:
    server = start_server(tiny_repo, model_control_mode="explicit", load_models=("*",), heal=False)
    try:
        with _http(server) as client:
            _kill_stub(server, "tiny_classifier")
            time.sleep(2)
            result = _infer(client)
            assert isinstance(result, InferenceServerException) and "not healthy" in str(result)
            assert server.heal_events == []
            # Triton still calls the model READY; `tritonkit health` tells the truth.
            assert client.is_model_ready("tiny")
            health = CliRunner().invoke(
                app, ["health", "--url", server.http_url, "--model", "tiny", "--json"]
            )
            assert health.exit_code == 1
            report = json.loads(health.output)
            assert report["model_ready"] is True and report["model_answers"] is False
            assert "not healthy" in report["problem"]
    finally:
        server.stop()
