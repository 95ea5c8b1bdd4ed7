"""``serve.json``: where a running ``tritonkit serve`` can be reached, for the commands that
steer it (rollout, rollback). Lives in the repository's staging folder, readable by its owner only,
because it holds the admin key."""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class ServeState:
    pid: int
    repository: str
    http_url: str
    grpc_url: str
    metrics_url: str
    log: str | None
    admin_key: str | None
    model_control_mode: str


def state_path(repository: Path) -> Path:
    repository = Path(repository).resolve()
    return repository.parent / f".{repository.name}.tritonkit" / "serve.json"


def write_state(state: ServeState) -> Path:
    path = state_path(Path(state.repository))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(asdict(state), handle, indent=2)
    os.replace(path.with_suffix(".tmp"), path)
    return path


def read_state(repository: Path) -> ServeState | None:
    """The state of the server running on ``repository``, or None if none is (or it died)."""
    path = state_path(repository)
    try:
        state = ServeState(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None
    try:
        os.kill(state.pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return state


def remove_state(repository: Path, pid: int) -> None:
    current = read_state(repository)
    if current is None or current.pid == pid:
        with contextlib.suppress(FileNotFoundError):
            state_path(repository).unlink()
