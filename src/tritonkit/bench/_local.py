"""The machine and, when the server runs here, its processes: CPU time and memory from /proc.

Used to say what a run cost beyond what the server reports: CPU milliseconds per request of the
server and of each backend stub, their resident memory, and how loaded the machine was.
Everything degrades to ``None`` off Linux or for a server on another host.
"""

from __future__ import annotations

import contextlib
import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path

from tritonkit.repository import available_cores
from tritonkit.soak import process_tree

_PROC = Path("/proc")
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1", "0.0.0.0"})
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class MachineInfo:
    """What the figures were measured on."""

    cores: int
    cpu_model: str
    memory_gib: float | None
    system: str
    python: str
    onnxruntime: str | None
    tritonkit: str


def machine_info() -> MachineInfo:
    import tritonkit

    cpu = platform.processor() or platform.machine()
    memory = None
    with contextlib.suppress(OSError, ValueError):
        for line in (_PROC / "cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in (_PROC / "meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = round(int(line.split()[1]) / 1024 / 1024, 1)
                break
    try:
        import onnxruntime

        ort_version: str | None = onnxruntime.__version__
    except ImportError:
        ort_version = None
    return MachineInfo(
        cores=available_cores(),
        cpu_model=cpu,
        memory_gib=memory,
        system=f"{platform.system()} {platform.release()}",
        python=sys.version.split()[0],
        onnxruntime=ort_version,
        tritonkit=tritonkit.__version__,
    )


def load_average() -> float | None:
    """The 1-minute load average (runnable processes, all users)."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def machine_busy_ticks() -> tuple[int, int] | None:
    """(busy, total) CPU ticks of the whole machine since boot, from /proc/stat."""
    try:
        fields = [int(v) for v in (_PROC / "stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])
    return total - idle, total


# -- the server's processes --------------------------------------------------------------
def find_server_pid(host: str, port: int, protocol: str) -> int | None:
    """The local ``tritonserver`` serving ``protocol`` on ``port``, if there is one."""
    if host not in _LOOPBACK:
        return None
    wanted = f"--{protocol}-port={port}"
    try:
        entries = list(_PROC.iterdir())
    except OSError:
        return None
    for entry in entries:
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"tritonserver") and wanted.encode() in argv:
            return int(entry.name)
    return None


def _label(pid: int, root: int) -> str:
    if pid == root:
        return "tritonserver"
    try:
        argv = (_PROC / str(pid) / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return "other"
    # a Python backend stub runs ".../triton_python_backend_stub <repo>/<model>/<version>/model.py ..."
    if len(argv) > 1 and argv[0].endswith(b"_stub"):
        parts = Path(argv[1].decode(errors="replace")).parts
        if len(parts) >= 3:
            return parts[-3]
    return Path(argv[0].decode(errors="replace")).name or "other"


@dataclass(frozen=True)
class ProcessSample:
    """One look at one process: what it is, its CPU seconds so far and its memory now (MiB)."""

    pid: int
    label: str
    cpu_s: float
    rss_mib: float
    pss_mib: float | None


def _sample(pid: int, root: int) -> ProcessSample | None:
    base = _PROC / str(pid)
    try:
        fields = (base / "stat").read_text().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
    except (OSError, ValueError, IndexError):
        return None
    rss = pss = None
    with contextlib.suppress(OSError, ValueError):
        for line in (base / "smaps_rollup").read_text().splitlines():
            key, _, value = line.partition(":")
            if key == "Rss":
                rss = int(value.split()[0]) / 1024
            elif key == "Pss":
                pss = int(value.split()[0]) / 1024
    if rss is None:
        with contextlib.suppress(OSError, ValueError):
            for line in (base / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) / 1024
    return ProcessSample(pid, _label(pid, root), cpu, rss or 0.0, pss)


def sample_server(root: int) -> list[ProcessSample]:
    """Every process of the server's tree, now."""
    return [s for s in (_sample(pid, root) for pid in process_tree(root)) if s is not None]
