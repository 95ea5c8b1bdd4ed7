"""The reaper: a tiny process that ends a server whose owner died, and removes its shared memory.

Why a separate process. ``PR_SET_PDEATHSIG`` only sends tritonserver a SIGTERM when its parent
dies, and only when the *thread* that started it exits, so the library cannot use it by default.
A SIGTERM is not enough anyway: tritonserver gives up on a backend stub that hangs in
``finalize`` after ``--exit-timeout-secs`` and exits, and a stub stuck in native code (holding the
GIL) then lives on forever with its ``/dev/shm`` region. Nothing in the dead owner can help, so
the owner starts this reaper first, in its own session (a Ctrl-C, a closed terminal or a
``kill`` of the owner's process group does not reach it), with a pipe on its stdin:

* the owner writes ``server PID`` once tritonserver runs;
* the pipe reaches end-of-file when the owner closes it (a normal stop, after its own cleanup)
  or when the kernel closes it because the owner died — ``kill -9`` included;
* then the reaper finds what is left of that server — every process whose command line holds
  the server's unique shared-memory prefix (tritonserver and its stubs) or that is in
  tritonserver's process group (stubs, and whatever a model forked) — sends tritonserver
  SIGTERM, waits a bounded time, SIGKILLs the rest, removes ``/dev/shm/PREFIX*`` and exits.

After a normal stop there is nothing left and it exits at once. This file is run by path with
the standard library only (``python -I _reaper.py``), so the reaper starts in a few tens of
milliseconds and never imports tritonkit (or tritonclient).

:func:`remove_stale_shared_memory` covers what even the reaper cannot: everything killed at
once (an OOM kill, ``systemctl kill`` of the whole cgroup). The next start removes regions
whose owner is dead and that no live process refers to.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

SHM_DIR = "/dev/shm"
# tritonkit_<owner pid>_<8 hex>_: the owner's pid makes a stale region recognisable after a crash.
_PREFIX_PATTERN = re.compile(r"^(tritonkit_(\d+)_[0-9a-f]{8}_)")
# After tritonserver is gone, its stubs notice within ~3 s and exit, removing their regions.
_ORPHAN_GRACE_S = 3.0
_KILL_WAIT_S = 5.0


def new_shm_prefix() -> str:
    """A shared-memory prefix unique to one server, naming the process that owns it."""
    return f"tritonkit_{os.getpid()}_{uuid.uuid4().hex[:8]}_"


def stat_fields(pid: int) -> list[str] | None:
    """The fields of ``/proc/PID/stat`` after the command name (state, parent pid, process
    group, ...), or None if the process is gone."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            stat = handle.read()
    except OSError:
        return None
    # The command name (field 2) may contain spaces; everything after its closing ')' is plain.
    return stat[stat.rfind(")") + 2 :].split()


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, process group) of a process, or None if it is gone."""
    fields = stat_fields(pid)
    return None if fields is None else (fields[0], int(fields[2]))


def _alive(pid: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read()
    except OSError:
        return b""


def _pids() -> list[int]:
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


def server_processes(prefix: str, server_pid: int | None) -> set[int]:
    """Live processes of one server: those naming ``prefix`` on their command line (tritonserver,
    its stubs) and those in tritonserver's process group (including what a model forked)."""
    needle = prefix.encode()
    found = set()
    for pid in _pids():
        if pid == os.getpid():  # the reaper's own command line names the prefix
            continue
        stat = _stat(pid)
        if stat is None or stat[0] in ("Z", "X"):
            continue
        if (server_pid is not None and stat[1] == server_pid) or needle in _cmdline(pid):
            found.add(pid)
    return found


def remove_regions(prefix: str) -> list[str]:
    """Unlink ``/dev/shm/PREFIX*``; returns the names removed."""
    removed = []
    for path in glob.glob(os.path.join(SHM_DIR, glob.escape(prefix) + "*")):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
            removed.append(os.path.basename(path))
    return removed


def _wait_gone(pids: set[int], timeout_s: float) -> set[int]:
    deadline = time.monotonic() + timeout_s
    alive = {p for p in pids if _alive(p)}
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = {p for p in alive if _alive(p)}
    return alive


def reap(prefix: str, server_pid: int | None, grace_s: float) -> str:
    """End every process of the server named by ``prefix`` and remove its regions.

    SIGTERM to tritonserver and up to ``grace_s`` for it to exit (in-flight requests finish,
    models unload), a few seconds for its stubs to follow, then SIGKILL for whatever is left.
    Returns a one-line account, empty when there was nothing to do.
    """
    targets = server_processes(prefix, server_pid)
    if server_pid is None:  # the owner died before it could say: tritonserver names the prefix
        option = f"shm-region-prefix-name={prefix}".encode()
        server_pid = next((pid for pid in sorted(targets) if option in _cmdline(pid)), None)
    done = []
    if server_pid is not None and server_pid in targets:
        with contextlib.suppress(ProcessLookupError):
            os.kill(server_pid, signal.SIGTERM)
        if _wait_gone({server_pid}, grace_s):
            done.append(f"tritonserver (pid {server_pid}) ignored SIGTERM for {grace_s:.0f} s")
        else:
            done.append(f"stopped tritonserver (pid {server_pid})")
    rest = server_processes(prefix, server_pid)
    if rest:
        rest = _wait_gone(rest, _ORPHAN_GRACE_S)
    if rest:
        for pid in sorted(rest):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        if server_pid is not None:  # members that appeared since the scan
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(server_pid, signal.SIGKILL)
        _wait_gone(rest, _KILL_WAIT_S)
        done.append(f"killed {len(rest)} leftover process(es) {sorted(rest)}")
    removed = remove_regions(prefix)
    if removed:
        done.append(f"removed {len(removed)} shared-memory region(s)")
    return "; ".join(done)


def remove_stale_shared_memory() -> list[str]:
    """Remove tritonkit regions whose owner process is dead and that no live process names.

    Conservative on purpose: a region is kept while its owner's pid is alive (even if reused by
    another program) or while any process (a server, a stub, a reaper) still refers to it.
    """
    by_prefix: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for name in os.listdir(SHM_DIR):
            match = _PREFIX_PATTERN.match(name)
            if match:
                by_prefix[match.group(1)] = int(match.group(2))
    stale = []
    for prefix, owner in by_prefix.items():
        try:
            os.kill(owner, 0)
            continue
        except ProcessLookupError:
            stale.append(prefix)
        except PermissionError:
            continue
    if not stale:
        return []
    in_use = [_cmdline(pid) for pid in _pids() if pid != os.getpid() and _alive(pid)]
    removed = []
    for prefix in stale:
        if any(prefix.encode() in cmdline for cmdline in in_use):
            continue
        with contextlib.suppress(PermissionError):  # another user's regions are theirs to clean
            removed += remove_regions(prefix)
    return removed


class Reaper:
    """The owner's handle on its reaper process: start before the server, release after stop."""

    def __init__(self, prefix: str, grace_s: float, log_path: Path | None = None) -> None:
        self.prefix = prefix
        self.grace_s = grace_s
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self) -> None:
        """Start the reaper process; it waits on a pipe that only this process writes to."""
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-I", __file__, self.prefix, str(self.grace_s)],
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=log,
                cwd="/",
                start_new_session=True,  # out of reach of signals aimed at the owner's group
            )
        finally:
            if not isinstance(log, int):
                log.close()

    def watch(self, server_pid: int) -> None:
        """Tell the reaper which tritonserver to stop if this process dies."""
        if self._process is None or self._process.stdin is None:
            raise RuntimeError("the reaper was not started")
        try:
            self._process.stdin.write(f"server {server_pid}\n".encode())
            self._process.stdin.flush()
        except BrokenPipeError:
            # Someone killed the reaper: the server still serves, it just loses its safety net.
            logging.getLogger("tritonkit.server").warning(
                "the reaper (pid %d) is gone: a killed owner may leave server %d behind",
                self._process.pid,
                server_pid,
            )

    def release(self, timeout_s: float = 10.0) -> None:
        """After a stop: close the pipe; the reaper finds nothing left and exits."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main(argv: list[str]) -> int:
    """``_reaper.py PREFIX GRACE_S``: wait for end-of-file on stdin, then :func:`reap`."""
    prefix, grace_s = argv[0], float(argv[1])
    # Only end-of-file on the pipe ends the wait: signals meant for the owner are not for us.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    server_pid = None
    for line in sys.stdin.buffer:
        words = line.split()
        if len(words) == 2 and words[0] == b"server":
            server_pid = int(words[1])
    account = reap(prefix, server_pid, grace_s)
    if account:  # into tritonserver's log, where whoever looks for the server's end will look
        print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} tritonkit reaper ({prefix}*): {account}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
