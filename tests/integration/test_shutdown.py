"""Stopping the server ends everything it started, even a backend stub that hangs."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from testsupport import start_server
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
