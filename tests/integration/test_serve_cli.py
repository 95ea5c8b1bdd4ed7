"""`tritonkit serve` as a user runs it: ready line, endpoints, clean stop on SIGTERM and Ctrl-C;
what the launched tritonserver binds (its command line and its listening sockets), and the admin
key taken from the environment or the command line."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import signal
import socket
import struct
import subprocess
import time
from pathlib import Path

import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from testsupport.processes import console_script, read_until_ready, running, serve_command
from tritonkit.repository import BuildResult
from tritonkit.server import free_port, read_state

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


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT])
def test_serve_reports_ready_and_stops_cleanly(built_repo: BuildResult, how: signal.Signals) -> None:
    http_port = free_port()
    with running(serve_command(built_repo.repository, http_port)) as process:
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
            serve_command(built_repo.repository, http_port=port),
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
    args = serve_command(built_repo.repository, grpc_port=grpc_port)
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


ECHO_MODEL = """
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        inputs = [pb_utils.get_input_tensor_by_name(r, "X").as_numpy() for r in requests]
        return [pb_utils.InferenceResponse([pb_utils.Tensor("Y", x)]) for x in inputs]
"""

ECHO_CONFIG = """name: "echo"
backend: "python"
input { name: "X" data_type: TYPE_FP32 dims: [1] }
output { name: "Y" data_type: TYPE_FP32 dims: [1] }
"""


@pytest.fixture
def echo_repo(tmp_path: Path) -> Path:
    """A one-model repository that starts in a couple of seconds (no TensorFlow, no ONNX)."""
    model = tmp_path / "model_repository" / "echo"
    (model / "1").mkdir(parents=True)
    (model / "1" / "model.py").write_text(ECHO_MODEL)
    (model / "config.pbtxt").write_text(ECHO_CONFIG)
    return model.parent


def _tritonserver_of(serve_pid: int) -> tuple[int, list[str]]:
    """The tritonserver that `serve` (``serve_pid``) launched, and its real command line."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            argv = [a.decode() for a in Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0") if a]
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == serve_pid and argv[0].endswith("/tritonserver"):
            return int(entry), argv
    pytest.fail(f"serve (pid {serve_pid}) has no tritonserver child")


def _address(hex_address: str) -> str:
    """An address of /proc/net/tcp{,6} (32-bit words in the kernel's byte order), with an
    IPv4-mapped IPv6 address (gRPC listens on ::ffff:127.0.0.1) as the IPv4 address it is."""
    words = [int(hex_address[i : i + 8], 16) for i in range(0, len(hex_address), 8)]
    address = ipaddress.ip_address(b"".join(struct.pack("=I", word) for word in words))
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def _listening(pid: int) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket that process ``pid`` listens on, IPv4 and IPv6."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    found = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and inode in inodes:  # 0A: TCP_LISTEN
                address, port = local.rsplit(":", 1)
                found.add((_address(address), int(port, 16)))
    return found


def _ports() -> dict[str, int]:
    return {"http": free_port(), "grpc": free_port(), "metrics": free_port()}


def _args(repo: Path, ports: dict[str, int], *extra: str) -> list[str]:
    args = [console_script(), "serve", "--repo", str(repo), *extra]
    for role, port in ports.items():
        args += [f"--{role}-port", str(port)]
    return args


@pytest.fixture
def env_without_key() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "TRITONKIT_ADMIN_KEY"}
    return {**env, "NO_COLOR": "1", "COLUMNS": "200"}


def test_serve_binds_http_grpc_and_metrics_to_loopback_by_default(
    echo_repo: Path, env_without_key: dict[str, str]
) -> None:
    ports = _ports()
    with running(_args(echo_repo, ports), env_without_key) as process:
        assert "Triton is ready" in read_until_ready(process)
        server_pid, argv = _tritonserver_of(process.pid)
        for role in ("http", "grpc", "metrics"):
            assert f"--{role}-address=127.0.0.1" in argv, argv
        assert _listening(server_pid) == {("127.0.0.1", port) for port in ports.values()}


def test_serve_binds_the_address_given_with_host(echo_repo: Path, env_without_key: dict[str, str]) -> None:
    # 127.0.0.2 is loopback too (all of 127/8 is, on Linux): a real non-default address that
    # exposes nothing beyond this machine.
    ports = _ports()
    with running(_args(echo_repo, ports, "--host", "127.0.0.2"), env_without_key) as process:
        output = read_until_ready(process)
        assert f"http://127.0.0.2:{ports['http']}" in output, output
        server_pid, argv = _tritonserver_of(process.pid)
        for role in ("http", "grpc", "metrics"):
            assert f"--{role}-address=127.0.0.2" in argv, argv
        assert _listening(server_pid) == {("127.0.0.2", port) for port in ports.values()}
        client = httpclient.InferenceServerClient(f"127.0.0.2:{ports['http']}")
        assert client.is_model_ready("echo")
        client.close()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", ports["http"]), timeout=5).close()


GRPC_ADMIN_HEADER = "triton-grpc-protocol-admin-key"  # Triton's name for a restricted gRPC header


@pytest.mark.parametrize("source", ["environment", "option"])
def test_serve_locks_the_model_repository_api_with_the_admin_key_it_is_given(
    echo_repo: Path, env_without_key: dict[str, str], source: str
) -> None:
    key = f"key-from-the-{source}"
    ports = _ports()
    if source == "environment":
        env, extra = {**env_without_key, "TRITONKIT_ADMIN_KEY": key}, []
    else:  # the option wins over a variable set in the environment
        env, extra = {**env_without_key, "TRITONKIT_ADMIN_KEY": "not-this-one"}, ["--admin-key", key]
    with running(_args(echo_repo, ports, *extra), env) as process:
        output = read_until_ready(process)
        assert "Triton is ready" in output, output
        assert "admin key" not in output  # only a generated key is printed
        state = read_state(echo_repo)
        assert state is not None and state.admin_key == key  # what rollout/rollback will send

        http = httpclient.InferenceServerClient(f"127.0.0.1:{ports['http']}")
        for headers in (None, {"admin-key": "not-this-one"}, {"admin-key": "wrong"}):
            with pytest.raises(InferenceServerException, match="restricted"):
                http.get_model_repository_index(headers=headers)
            with pytest.raises(InferenceServerException, match="restricted"):
                http.unload_model("echo", headers=headers)
        index = http.get_model_repository_index(headers={"admin-key": key})
        assert [model["name"] for model in index] == ["echo"]
        assert http.is_model_ready("echo")  # health and inference stay open
        http.close()

        with grpcclient.InferenceServerClient(f"127.0.0.1:{ports['grpc']}") as grpc:
            with pytest.raises(InferenceServerException, match="restricted"):
                grpc.get_model_repository_index(headers={GRPC_ADMIN_HEADER: "wrong"})
            index = grpc.get_model_repository_index(headers={GRPC_ADMIN_HEADER: key}, as_json=True)
            assert [model["name"] for model in index["models"]] == ["echo"]

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
