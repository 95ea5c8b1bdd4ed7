"""Self-healing for Python-backend models whose stub process died.

Triton 2.51 never restarts a dead stub (OOM kill, ``kill -9``, a segfault in a native library):
the model stays READY while every request to it fails with "Stub process ... is not healthy".
The watchdog looks at the server's child processes once a second; when a stub has died it
reloads that model — in EXPLICIT mode with a load request whose config override carries a new
``tritonkit_restart`` parameter (an identical config would be a no-op), in POLL mode by
touching the model's ``config.pbtxt`` so the next poll reloads it — and removes the dead stub's
shared-memory region.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import tritonclient.http as httpclient

from ._reaper import stat_fields

logger = logging.getLogger("tritonkit.server")

_STUB_BINARY = "triton_python_backend_stub"
RESTART_PARAMETER = "tritonkit_restart"


@dataclass(frozen=True)
class StubProcess:
    """One Python backend stub: which model instance it runs and the shared memory it owns."""

    pid: int
    model: str
    instance: str
    shm_region: str
    dead: bool


@dataclass(frozen=True)
class HealEvent:
    """What the watchdog did about one dead stub."""

    model: str
    instance: str
    pid: int
    action: str  # "reloaded", "touched", "failed: ..."
    seconds: float


def _read_stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, state) of a process, or None if it is gone."""
    fields = stat_fields(pid)
    return None if fields is None else (int(fields[1]), fields[0])


def find_stubs(server_pid: int) -> list[StubProcess]:
    """The backend stubs that are children of ``server_pid``, alive or not yet reaped."""
    stubs = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        stat = _read_stat(pid)
        if stat is None or stat[0] != server_pid:
            continue
        parent_state = stat[1]
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                argv = [a.decode(errors="replace") for a in handle.read().split(b"\0") if a]
        except OSError:
            continue
        dead = parent_state in ("Z", "X")
        if dead and not argv:
            # A zombie has no command line left; remember it by what we saw while it was alive.
            stubs.append(StubProcess(pid, "", "", "", True))
            continue
        if not argv or not argv[0].endswith(_STUB_BINARY) or len(argv) < 9:
            continue
        # argv: stub, <repo>/<model>/<version>/model.py, shm region, shm sizes..., instance name, ...
        model = Path(argv[1]).parent.parent.name
        stubs.append(StubProcess(pid, model, argv[8], argv[2], dead))
    return stubs


class StubWatchdog:
    """A background thread that reloads models whose stub died. Start after the server is ready."""

    def __init__(
        self,
        server_pid: int,
        http_url: str,
        repository: Path | None,  # needed in poll mode only
        mode: str,
        *,
        headers: dict[str, str] | None = None,
        interval_s: float = 1.0,
        on_event: Callable[[HealEvent], None] | None = None,
    ) -> None:
        self._server_pid = server_pid
        self._url = http_url.removeprefix("http://")
        self._repository = repository
        self._mode = mode
        self._headers = headers or {}
        self._interval_s = interval_s
        self._on_event = on_event
        self._known: dict[int, StubProcess] = {}
        self._handled: set[int] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.events: list[HealEvent] = []

    def start(self) -> None:
        self._remember(find_stubs(self._server_pid))
        self._thread = threading.Thread(target=self._run, name="tritonkit-stub-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _remember(self, stubs: list[StubProcess]) -> None:
        for stub in stubs:
            if not stub.dead:
                self._known[stub.pid] = stub

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                self.check_once()
            except Exception:  # the watchdog must outlive whatever one check runs into
                logger.exception("stub watchdog check failed")

    def check_once(self) -> list[HealEvent]:
        """Look for dead stubs now and heal their models; returns what was done.

        A stub that crashed stays a zombie (Triton does not reap it), while one that exited
        because its model was unloaded or reloaded is reaped and simply disappears: only the
        zombies are taken for crashes.
        """
        stubs = find_stubs(self._server_pid)
        self._remember(stubs)
        dead = [
            self._known[s.pid]
            for s in stubs
            if s.dead and s.pid in self._known and s.pid not in self._handled
        ]
        events = [
            self._heal(model, [s for s in dead if s.model == model])
            for model in sorted({s.model for s in dead})
        ]
        for stub in dead:
            self._handled.add(stub.pid)
        alive = {s.pid for s in stubs}
        for pid in [p for p in self._known if p not in alive]:  # reaped: forget it
            del self._known[pid]
        return events

    def _heal(self, model: str, victims: list[StubProcess]) -> HealEvent:
        started = time.monotonic()
        client = httpclient.InferenceServerClient(self._url, connection_timeout=10, network_timeout=120)
        try:
            if self._mode == "poll":
                if self._repository is None:
                    raise ValueError("poll mode heals by touching the repository's files; none was given")
                # Triton reloads only the versions whose folders changed: touch them all (and the
                # config) so the next poll restarts the model's stubs.
                model_dir = self._repository / model
                for version_dir in [p for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit()]:
                    os.utime(version_dir)
                os.utime(model_dir / "config.pbtxt")
                action = "marked for reload by the next poll"
            else:
                config_json = client.get_model_config(model, headers=self._headers)
                config_json.setdefault("parameters", {})[RESTART_PARAMETER] = {
                    "string_value": str(time.time())
                }
                client.load_model(model, headers=self._headers, config=json.dumps(config_json))
                action = "reloaded"
        except Exception as exc:
            action = f"failed: {exc}"
        finally:
            client.close()
        for stub in victims:
            with contextlib.suppress(OSError):
                os.unlink(f"/dev/shm/{stub.shm_region}")
        event = HealEvent(
            model, ", ".join(s.instance for s in victims), victims[0].pid, action, time.monotonic() - started
        )
        logger.warning(
            "backend stub of %s (%s, pid %d) died: %s in %.1f s",
            event.model,
            event.instance,
            event.pid,
            event.action,
            event.seconds,
        )
        self.events.append(event)
        if self._on_event:
            self._on_event(event)
        return event
