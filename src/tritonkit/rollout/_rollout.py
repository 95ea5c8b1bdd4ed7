"""Make a given version of a tritonkit pipeline current on a server in EXPLICIT mode, safely.

The repository's ``config.pbtxt`` files are the source of truth (Triton re-reads a composing
model's config from disk whenever its ensemble loads, so load-time overrides do not stick), and
each change is written atomically, then loaded. The steps keep the old version answering until
the new one has proved itself:

1. pin the ensemble's steps to the versions it serves now (``model_version: -1`` would jump to
   the new version the moment it loads) and load the new version of every composing model
   *next to* the current one (``version_policy: specific`` with both);
2. run the check images of the build through the new version, step by step, and compare with
   the scores the build recorded in its ``tritonkit.json``;
3. pin the ensemble to the new version, then drop the old one from the composing models.

The pinned configs stay on disk, so a restarted server serves the same version; the next
``build-repo`` writes the usual "latest version" configs again.

Any failure restores the previous state and raises with the server's own reason: Triton's load
API says only "failed to poll from model repository"; the cause is in the server log, so the
log lines written during the attempt are attached when the log file is known.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tritonkit.client import TritonClient, TritonClientError
from tritonkit.repository import (
    CONFIG_FILENAME,
    MANIFEST_FILENAME,
    check_images,
    existing_versions,
    parse_config,
    render_config,
    repository_lock,
    write_atomic,
)

from ._errors import RolloutError, VerificationError

CHECK_ATOL = 1e-3
Progress = Callable[[str], None]


@dataclass(frozen=True)
class RolloutResult:
    name: str
    previous: int | None
    current: int
    models: tuple[str, ...]
    max_abs_diff: float | None


class _LogWindow:
    """The lines a server log gains between two points in time."""

    def __init__(self, log: Path | None) -> None:
        self._log = log
        self._start = log.stat().st_size if log and log.exists() else 0

    def text(self, limit: int = 20) -> str:
        if self._log is None or not self._log.exists():
            return ""
        with open(self._log, "rb") as handle:
            handle.seek(self._start)
            lines = handle.read().decode(errors="replace").splitlines()
        wanted = [line for line in lines if line[:1] in ("E", "W") and not _harmless(line)]
        return "\n".join(wanted[-limit:])


def _harmless(line: str) -> bool:
    # Printed on every ensemble load on machines without a GPU; says nothing about the failure.
    return "CUDA driver version is insufficient" in line


def _configs_on_disk(repository: Path, models: Sequence[str]) -> dict[str, bytes]:
    return {model: (repository / model / CONFIG_FILENAME).read_bytes() for model in models}


def _with_policy(original: bytes, versions: Sequence[int]) -> bytes:
    config = parse_config(original.decode())
    config.version_policy.Clear()
    config.version_policy.specific.versions.extend(sorted({int(v) for v in versions}))
    return render_config(config).encode()


def _pinned_ensemble(original: bytes, versions: Mapping[str, int], served: int) -> bytes:
    config = parse_config(_with_policy(original, [served]).decode())
    for step in config.ensemble_scheduling.step:
        step.model_version = versions[step.model_name]
    return render_config(config).encode()


def served_version(client: TritonClient, model: str) -> int | None:
    """The highest READY version of ``model`` on the server, or None."""
    ready = [
        int(m.version) for m in client.repository_index(ready_only=True) if m.name == model and m.version
    ]
    return max(ready, default=None)


def rollout(
    client: TritonClient,
    repository: Path,
    name: str,
    version: int,
    *,
    log: Path | None = None,
    progress: Progress | None = None,
) -> RolloutResult:
    """Make ``version`` of pipeline ``name`` current; see the module docstring for the steps."""
    say = progress or (lambda _text: None)
    repository = Path(repository)
    ensemble = client.model_config(name)
    if not ensemble.is_ensemble:
        raise RolloutError(
            f"{name} is not an ensemble; rollout handles tritonkit pipelines built by build-repo"
        )
    steps = [step.model_name for step in ensemble.ensemble_steps]
    for model in [*steps, name]:
        if version not in existing_versions(repository / model):
            raise RolloutError(
                f"{repository / model / str(version)} does not exist: build it first "
                f"(versions present: {existing_versions(repository / model) or 'none'})"
            )
    current = {model: served_version(client, model) for model in [*steps, name]}
    if any(v is None for v in current.values()):
        missing = ", ".join(m for m, v in current.items() if v is None)
        raise RolloutError(f"{missing} not loaded on the server: load the pipeline before rolling out")
    before = {m: int(v) for m, v in current.items() if v is not None}
    window = _LogWindow(log)

    with repository_lock(repository):
        originals = _configs_on_disk(repository, [*steps, name])

        def apply(changes: Mapping[str, bytes], load: Sequence[str]) -> None:
            for model, text in changes.items():
                write_atomic(repository / model / CONFIG_FILENAME, text)
            for model in load:
                client.load_model(model)

        try:
            say(f"loading version {version} of {', '.join(steps)} next to version {before[steps[0]]}")
            apply(
                {
                    name: _pinned_ensemble(originals[name], before, before[name]),
                    **{m: _with_policy(originals[m], [before[m], version]) for m in steps},
                },
                [*steps, name],
            )
            say(f"checking version {version} on the build's check images")
            diff = _verify(client, repository, name, steps, version)
            say(f"switching {name} to version {version}")
            apply({name: _pinned_ensemble(originals[name], dict.fromkeys(steps, version), version)}, [name])
            apply({m: _with_policy(originals[m], [version]) for m in steps}, steps)
        except (TritonClientError, VerificationError) as exc:
            reason = getattr(exc, "reason", None)
            try:
                apply(
                    {
                        name: _pinned_ensemble(originals[name], before, before[name]),
                        **{m: _with_policy(originals[m], [before[m]]) for m in steps},
                    },
                    [name, *steps],
                )
                restored = f"version {before[name]} still serves"
            except TritonClientError as again:
                restored = f"restoring the previous version failed too: {again}"
            server_log = window.text()
            details = f"\nserver log:\n{server_log}" if server_log else ""
            if reason and reason not in str(exc):
                details = f"\nserver's reason: {reason}{details}"
            error = VerificationError if isinstance(exc, VerificationError) else RolloutError
            raise error(f"rollout of {name} version {version} failed ({restored}): {exc}{details}") from exc
    return RolloutResult(name, before[name], version, (*steps, name), diff)


def _verify(
    client: TritonClient, repository: Path, name: str, steps: list[str], version: int
) -> float | None:
    """Send the check images through each step of ``version``; compare with the build's record."""
    manifest_path = repository / name / str(version) / MANIFEST_FILENAME
    try:
        checks = json.loads(manifest_path.read_text()).get("checks")
    except (OSError, ValueError) as exc:
        raise VerificationError(f"cannot read {manifest_path}: {exc}") from exc
    tensor: Any = np.array([[image] for image in check_images()], dtype=object)
    for model in steps:
        outputs = client.infer(model, tensor, version=version)
        if len(outputs) != 1:
            raise VerificationError(f"{model} version {version} gave {len(outputs)} outputs, expected one")
        tensor = next(iter(outputs.values()))
    scores = np.asarray(tensor, dtype=np.float64)
    if not np.all(np.isfinite(scores)):
        raise VerificationError(f"version {version} of {name} answered with NaN or infinite scores")
    if not checks:
        return None  # built before checks were recorded: finite answers are all we can require
    expected = np.asarray(checks["scores"], dtype=np.float64)
    if expected.shape != scores.shape:
        raise VerificationError(
            f"version {version} answered shape {scores.shape}, its build recorded {expected.shape}"
        )
    diff = float(np.max(np.abs(scores - expected)))
    if diff > CHECK_ATOL:
        raise VerificationError(
            f"version {version} of {name} differs from its build's recorded answers by {diff:.2e} "
            f"(> {CHECK_ATOL:.0e}): the served files do not compute what was built"
        )
    return diff


def rollback(
    client: TritonClient,
    repository: Path,
    name: str,
    *,
    log: Path | None = None,
    progress: Progress | None = None,
) -> RolloutResult:
    """Return ``name`` to the newest version older than the one it serves now."""
    current = served_version(client, name)
    if current is None:
        raise RolloutError(f"{name} is not loaded on the server")
    older = [v for v in existing_versions(Path(repository) / name) if v < current]
    if not older:
        raise RolloutError(f"{name} serves version {current} and the repository has no older version")
    return rollout(client, repository, name, older[-1], log=log, progress=progress)
