"""Running tritonkit's own console scripts as a user would, in tests."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path


def console_script(name: str = "tritonkit") -> str:
    """Path of one of tritonkit's console scripts in the running virtualenv."""
    return str(Path(sys.executable).parent / name)


def serve_command(repo: Path | str, http_port: int | None = None, grpc_port: int | None = None) -> list[str]:
    """``tritonkit serve --repo REPO`` on the given ports, free ones for the rest."""
    from tritonkit.server import free_port

    return [
        console_script(), "serve", "--repo", str(repo),
        "--http-port", str(http_port or free_port()),
        "--grpc-port", str(grpc_port or free_port()),
        "--metrics-port", str(free_port()),
    ]  # fmt: skip


@contextlib.contextmanager
def running(
    args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None
) -> Iterator[subprocess.Popen[str]]:
    """A command in its own session, output on a text pipe; stopped (SIGTERM, then the whole
    process group with SIGKILL) and its pipe closed on the way out."""
    process = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=cwd,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        if process.stdout is not None:
            process.stdout.close()


def read_until_ready(process: subprocess.Popen[str], timeout_s: float = 120) -> str:
    """What `tritonkit serve` prints up to its "Press Ctrl-C" line (or until it exits)."""
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "Ctrl-C" in line:
            break
    return "".join(lines)
