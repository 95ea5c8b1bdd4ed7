"""`tritonkit rollout` / `rollback` against a server in EXPLICIT mode: checked switches, safe failures."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from testsupport import make_onnx_classifier
from testsupport.processes import console_script, serve_command
from tritonkit.client import TritonClient
from tritonkit.repository import BuildOptions, build_repository
from tritonkit.rollout import RolloutError, VerificationError, rollback, rollout, served_version
from tritonkit.server import read_state

pytestmark = pytest.mark.integration


def _image() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 40), (20, 200, 120)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """`tritonkit serve` (mode none: EXPLICIT underneath, admin key) on a repository with v1 and v2."""
    folder = tmp_path_factory.mktemp("rollout")
    repo = folder / "model_repository"
    for seed in (1, 2):
        build_repository(
            make_onnx_classifier(folder / f"m{seed}.onnx", seed=seed),
            BuildOptions(name="tiny", repository=repo),
        )
    process = subprocess.Popen(
        serve_command(repo),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while read_state(repo) is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert read_state(repo) is not None, "serve did not come up"
    yield repo
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)
    assert read_state(repo) is None  # serve.json is removed on exit


def _client(repo: Path) -> TritonClient:
    state = read_state(repo)
    assert state is not None and state.admin_key
    return TritonClient(state.http_url, headers={"admin-key": state.admin_key})


def _scores(client: TritonClient) -> np.ndarray:
    return client.infer("tiny", np.array([[_image()]], dtype=object))["SCORES"][0]


def test_serve_json_is_private_to_its_owner(served: Path) -> None:
    path = served.parent / ".model_repository.tritonkit" / "serve.json"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert json.loads(path.read_text())["admin_key"]


def test_rollback_then_rollout_switch_the_answers_and_check_them(served: Path) -> None:
    state = read_state(served)
    assert state is not None
    with _client(served) as client:
        assert served_version(client, "tiny") == 2
        v2 = _scores(client)
        result = rollback(client, served, "tiny", log=Path(state.log) if state.log else None)
        assert (result.previous, result.current) == (2, 1)
        assert result.max_abs_diff is not None and result.max_abs_diff < 1e-4
        v1 = _scores(client)
        assert not np.allclose(v1, v2)
        assert served_version(client, "tiny_classifier") == 1  # the other version is unloaded

        rollout(client, served, "tiny", 2)
        np.testing.assert_allclose(_scores(client), v2, rtol=1e-6)


def test_a_version_that_fails_to_load_is_never_served_and_the_reason_is_shown(served: Path) -> None:
    build_repository(
        make_onnx_classifier(served.parent / "m3.onnx", seed=3), BuildOptions(name="tiny", repository=served)
    )
    onnx_file = served / "tiny_classifier" / "3" / "model.onnx"
    onnx_file.write_bytes(onnx_file.read_bytes()[:100])  # truncated on disk after the build
    state = read_state(served)
    assert state is not None and state.log
    with _client(served) as client:
        before = _scores(client)
        with pytest.raises(RolloutError) as caught:
            rollout(client, served, "tiny", 3, log=Path(state.log))
        message = str(caught.value)
        assert "version 2 still serves" in message
        assert "protobuf parsing failed" in message.lower()  # the server's own reason, not just "failed"
        assert "server log:" in message
        assert served_version(client, "tiny") == 2
        np.testing.assert_allclose(_scores(client), before, rtol=1e-6)


def test_a_version_whose_answers_differ_from_its_build_is_refused(served: Path) -> None:
    result = build_repository(
        make_onnx_classifier(served.parent / "m4.onnx", seed=4), BuildOptions(name="tiny", repository=served)
    )
    swapped = make_onnx_classifier(served.parent / "other.onnx", seed=99)
    (served / "tiny_classifier" / str(result.version) / "model.onnx").write_bytes(swapped.read_bytes())
    with _client(served) as client:
        before = _scores(client)
        with pytest.raises(VerificationError, match="differs from its build's recorded answers"):
            rollout(client, served, "tiny", result.version)
        np.testing.assert_allclose(_scores(client), before, rtol=1e-6)


def test_rollout_cli_finds_the_running_server_by_its_repository(served: Path) -> None:
    tritonkit = console_script()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRITONKIT_")}
    done = subprocess.run(
        [tritonkit, "rollback", "tiny", "--repo", str(served)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "tiny now serves version 1 (was 2)" in done.stdout
    done = subprocess.run(
        [tritonkit, "rollout", "tiny", "--version", "2", "--repo", str(served)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "tiny now serves version 2 (was 1)" in done.stdout
    missing = subprocess.run(
        [tritonkit, "rollout", "tiny", "--version", "42", "--repo", str(served)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert (
        missing.returncode == 1 and "does not exist" in missing.stdout and "Traceback" not in missing.stdout
    )
