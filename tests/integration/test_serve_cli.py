"""`tritonkit serve` as a user runs it: ready line, endpoints, clean stop on SIGTERM and Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import tritonclient.http as httpclient

from testsupport.processes import console_script, read_until_ready, running
from tritonkit.repository import BuildResult
from tritonkit.server import free_port

pytestmark = pytest.mark.integration


def _shm_files(pid: int) -> set[str]:
    """Shared-memory regions of the backend stubs of the server started by process ``pid``."""
    return {name for name in os.listdir("/dev/shm") if name.startswith(f"tritonkit_{pid}_")}


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _serve_args(repo: Path, http_port: int | None = None, grpc_port: int | None = None) -> list[str]:
    return [
        console_script(), "serve", "--repo", str(repo),
        "--http-port", str(http_port or free_port()),
        "--grpc-port", str(grpc_port or free_port()),
        "--metrics-port", str(free_port()),
    ]  # fmt: skip


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT])
def test_serve_reports_ready_and_stops_cleanly(built_repo: BuildResult, how: signal.Signals) -> None:
    http_port = free_port()
    with running(_serve_args(built_repo.repository, http_port)) as process:
        output = read_until_ready(process)
        assert "Triton is ready" in output, output
        assert f"http://127.0.0.1:{http_port}" in output
        client = httpclient.InferenceServerClient(f"127.0.0.1:{http_port}")
        assert client.is_model_ready("shapes")
        client.close()
        assert _shm_files(process.pid)  # the stubs' shared memory exists while serving

        process.send_signal(how)
        assert process.wait(timeout=60) == 0
        assert process.stdout is not None
        assert "Stopping Triton" in process.stdout.read()
        time.sleep(0.5)
        assert not _group_alive(process.pid), "tritonserver or a backend stub outlived serve"
        assert _shm_files(process.pid) == set()


def test_serve_refuses_a_taken_port_with_a_clear_error(built_repo: BuildResult) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            _serve_args(built_repo.repository, http_port=port),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert f"port {port} (http)" in result.stderr and "--http-port" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_refuses_a_missing_repository(tmp_path: Path) -> None:
    result = subprocess.run(
        [console_script(), "serve", "--repo", str(tmp_path / "nope"), "--http-port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "does not exist" in result.stderr and "build-repo" in result.stderr


def test_serve_speaks_grpc_over_tls_with_the_given_certificate(
    built_repo: BuildResult, tmp_path: Path
) -> None:
    import tritonclient.grpc as grpcclient

    from testsupport.tls import make_certificates

    certs = make_certificates(tmp_path)
    grpc_port = free_port()
    args = _serve_args(built_repo.repository, grpc_port=grpc_port)
    args += ["--grpc-tls-cert", str(certs.server_cert), "--grpc-tls-key", str(certs.server_key)]
    with running(args) as process:
        output = read_until_ready(process)
        assert f"grpcs://127.0.0.1:{grpc_port}" in output, output
        address = f"127.0.0.1:{grpc_port}"
        with grpcclient.InferenceServerClient(address, ssl=True, root_certificates=str(certs.ca)) as client:
            assert client.is_model_ready("shapes")
        with grpcclient.InferenceServerClient(
            address, ssl=True, root_certificates=str(certs.other_ca)
        ) as stranger:
            with pytest.raises(Exception, match=r"(?i)unavailable|handshake|certificate"):
                stranger.is_server_live(client_timeout=5)
        with grpcclient.InferenceServerClient(address) as plaintext:
            with pytest.raises(Exception):  # noqa: B017 - any failure: the server speaks TLS only
                plaintext.is_server_live(client_timeout=5)
