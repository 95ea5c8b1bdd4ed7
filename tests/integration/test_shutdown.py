"""Stopping the server ends everything it started, even a backend stub that hangs, and so does
killing the process that started it (``kill -9`` of ``tritonkit serve`` or of a library user)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from testsupport import start_server
from testsupport.processes import read_until_ready, running, serve_command
from tritonkit.server import find_stubs

pytestmark = pytest.mark.integration

HANGING_MODEL = """
import time
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        outputs = [pb_utils.Tensor("Y", np.zeros((1,), np.float32))]
        return [pb_utils.InferenceResponse(outputs) for _ in requests]

    def finalize(self):
        time.sleep(3600)  # a stub that never finishes shutting down
"""

CONFIG = """name: "hangs"
backend: "python"
input { name: "X" data_type: TYPE_FP32 dims: [1] }
output { name: "Y" data_type: TYPE_FP32 dims: [1] }
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def test_stop_ends_a_hung_stub_within_a_bounded_time_and_leaves_no_shared_memory(tmp_path: Path) -> None:
    model = tmp_path / "repo" / "hangs"
    (model / "1").mkdir(parents=True)
    (model / "1" / "model.py").write_text(HANGING_MODEL)
    (model / "config.pbtxt").write_text(CONFIG)
    server = start_server(tmp_path / "repo", exit_timeout_s=2)
    assert server.pid is not None
    stubs = [s for s in find_stubs(server.pid) if not s.dead]
    assert len(stubs) == 1
    prefix = stubs[0].shm_region.rsplit("_", 1)[0]
    started = time.monotonic()
    server.stop(timeout_s=5)
    assert time.monotonic() - started < 15
    time.sleep(0.2)
    assert not _alive(stubs[0].pid), "the hung stub outlived stop()"
    assert not [name for name in os.listdir("/dev/shm") if name.startswith(prefix)]


# finalize() stuck in native code with the GIL held (ctypes.PyDLL keeps it across the call): the
# stub's own "parent died" check cannot end it, so it outlives tritonserver with its region.
NATIVE_HANG_MODEL = """
import ctypes
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        outputs = [pb_utils.Tensor("Y", np.zeros((1,), np.float32))]
        return [pb_utils.InferenceResponse(outputs) for _ in requests]

    def finalize(self):
        ctypes.PyDLL(None).sleep(3600)
"""

ECHO_MODEL = """
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        inputs = [pb_utils.get_input_tensor_by_name(r, "X").as_numpy() for r in requests]
        return [pb_utils.InferenceResponse([pb_utils.Tensor("Y", x)]) for x in inputs]
"""

# An owner that starts the server through the library (no PR_SET_PDEATHSIG there) and waits.
LIBRARY_OWNER = """
import sys, time
from pathlib import Path
from tritonkit.server import EmbeddedServer, ServerOptions, free_port

server = EmbeddedServer(ServerOptions(
    repository=Path(sys.argv[1]), http_port=free_port(), grpc_port=free_port(), metrics_port=free_port(),
))
server.start(timeout_s=120)
print(server.pid, flush=True)
time.sleep(3600)
"""

# Generous for two loaded cores; the design bound is exit timeout (10 s) + 5 s + a few seconds.
CLEANUP_BOUND_S = 40.0


def _repository(root: Path, source: str, name: str = "hangs") -> Path:
    model = root / name
    (model / "1").mkdir(parents=True)
    (model / "1" / "model.py").write_text(source)
    (model / "config.pbtxt").write_text(CONFIG.replace('"hangs"', f'"{name}"'))
    return root


def _cmdline(pid: int) -> list[str]:
    try:
        return [a.decode() for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if a]
    except OSError:
        return []


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def _shm_prefix(server_pid: int) -> str:
    (option,) = [a for a in _cmdline(server_pid) if "shm-region-prefix-name=" in a]
    return option.split("shm-region-prefix-name=", 1)[1]


def _regions(prefix: str) -> list[str]:
    return [name for name in os.listdir("/dev/shm") if name.startswith(prefix)]


def _wait_until_all_gone(pids: list[int], prefix: str, bound_s: float) -> float:
    """Seconds until none of ``pids`` is alive and no region of ``prefix`` is left; fails past the bound."""
    started = time.monotonic()
    while time.monotonic() - started < bound_s:
        if not any(_alive(p) for p in pids) and not _regions(prefix):
            return time.monotonic() - started
        time.sleep(0.2)
    left = {p: " ".join(_cmdline(p))[:120] for p in pids if _alive(p)}
    pytest.fail(f"after {bound_s:.0f} s: processes still alive {left}, regions left {_regions(prefix)}")


@pytest.mark.parametrize(
    "source", [ECHO_MODEL, NATIVE_HANG_MODEL], ids=["healthy-stub", "stub-hung-in-native-finalize"]
)
def test_kill_9_of_serve_leaves_no_server_no_stub_and_no_shared_memory(tmp_path: Path, source: str) -> None:
    repo = _repository(tmp_path / "repo", source)
    with running(serve_command(repo)) as serve:
        assert "Triton is ready" in read_until_ready(serve)
        children = _children(serve.pid)
        (server_pid,) = [p for p in children if _cmdline(p)[0].endswith("/tritonserver")]
        others = [p for p in children if p != server_pid]  # the reaper, which must not linger either
        stubs = [s.pid for s in find_stubs(server_pid) if not s.dead]
        prefix = _shm_prefix(server_pid)
        assert len(stubs) == 1 and _regions(prefix)

        serve.kill()
        serve.wait()
        took = _wait_until_all_gone([server_pid, *stubs, *others], prefix, CLEANUP_BOUND_S)
    print(f"everything gone {took:.1f} s after kill -9")


def test_kill_9_of_a_library_owner_takes_its_server_with_it(tmp_path: Path) -> None:
    repo = _repository(tmp_path / "repo", ECHO_MODEL, name="echo")
    with running([sys.executable, "-c", LIBRARY_OWNER, str(repo)]) as owner:
        assert owner.stdout is not None
        line = owner.stdout.readline()
        assert line.strip().isdigit(), line + owner.stdout.read()
        server_pid = int(line)
        stubs = [s.pid for s in find_stubs(server_pid) if not s.dead]
        prefix = _shm_prefix(server_pid)
        assert stubs and _regions(prefix)

        owner.kill()
        owner.wait()
        _wait_until_all_gone([server_pid, *stubs], prefix, CLEANUP_BOUND_S)


def test_start_removes_shared_memory_left_by_a_dead_owner_and_keeps_the_rest(tmp_path: Path) -> None:
    dead_owner = subprocess.Popen(["true"])
    dead_owner.wait()  # its pid names regions nobody will remove
    stale = Path(f"/dev/shm/tritonkit_{dead_owner.pid}_0badc0de_stub")
    owned = Path(f"/dev/shm/tritonkit_{os.getpid()}_0badc0de_stub")  # owner alive
    in_use_prefix = f"tritonkit_{dead_owner.pid}_1badc0de_"
    in_use = Path(f"/dev/shm/{in_use_prefix}stub")  # owner dead, a process still names it
    user = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", in_use_prefix])
    try:
        for region in (stale, owned, in_use):
            region.write_bytes(b"\0" * 16)
        server = start_server(_repository(tmp_path / "repo", ECHO_MODEL, name="echo"))
        server.stop()
        assert not stale.exists()
        assert owned.exists() and in_use.exists()
    finally:
        user.kill()
        user.wait()
        for region in (stale, owned, in_use):
            region.unlink(missing_ok=True)
