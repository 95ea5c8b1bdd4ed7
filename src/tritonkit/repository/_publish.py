"""Adding versions to a model repository without a polling server ever seeing half of one.

A build is staged next to the repository (same file system, outside the folder Triton scans),
then published model by model:

* a model that does not exist yet appears with one ``rename`` of its whole folder;
* a model that exists gets its new version folder with one ``rename``, then its labels and,
  last, its ``config.pbtxt`` with ``os.replace`` (a polling Triton reads the config to decide
  what to load, so it must never name a version that is not complete).

Before the first rename, every staged version is checked to load (see :mod:`._loadable`): a
version Triton cannot load would be retried, and its ensemble reloaded, on every poll.

Existing versions are never overwritten; pruning moves a version out of the repository with one
``rename`` before deleting it. Builds into one repository are serialised with a lock file; a
publish that was killed leaves at most its staging folder, which the next holder of the lock
removes.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import py_compile
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ._configs import CONFIG_FILENAME
from ._errors import PublishError
from ._loadable import check_loadable

STAGE_PREFIX = "stage-"  # staging folders are made only under the lock, so any found there is stale


@dataclass
class StagedModel:
    """One model's files for one new version, waiting in the staging folder."""

    name: str
    config_text: str
    version_files: dict[str, Path | bytes] = field(default_factory=dict)
    model_files: dict[str, bytes] = field(default_factory=dict)  # e.g. labels.txt, beside config


def existing_versions(model_dir: Path) -> list[int]:
    """Version numbers present in a model folder, ascending."""
    if not model_dir.is_dir():
        return []
    return sorted(int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit())


def next_version(repo: Path, names: Sequence[str]) -> int:
    """One more than the highest version any of ``names`` has, so a build's models share a number."""
    return 1 + max((v for name in names for v in existing_versions(repo / name)), default=0)


def staging_root(repo: Path) -> Path:
    """Where builds into ``repo`` are staged: beside it, so renames stay on one file system."""
    return repo.parent / f".{repo.name}.tritonkit"


@contextlib.contextmanager
def repository_lock(repo: Path) -> Iterator[Path]:
    """Hold the repository's build lock; yields the staging root."""
    root = staging_root(repo)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PublishError(f"cannot create the staging folder {root}: {exc.strerror}") from exc
    with open(root / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            _remove_stale_stages(root)
            yield root
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _remove_stale_stages(root: Path) -> None:
    # A publish killed mid-way (SIGKILL, power loss) never ran its cleanup; its lock died with it.
    for stale in root.glob(f"{STAGE_PREFIX}*"):
        shutil.rmtree(stale, ignore_errors=True)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` in one step (temporary file in the same folder, then rename)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _fill_version(version_dir: Path, files: dict[str, Path | bytes]) -> None:
    version_dir.mkdir(parents=True)
    for relative, content in files.items():
        target = version_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Path):
            shutil.copyfile(content, target)
        else:
            target.write_bytes(content)
        if target.suffix == ".py":
            # The stub would write __pycache__ at load, which a polling server takes for a change.
            py_compile.compile(str(target), doraise=True)


def stage_models(staging: Path, models: Sequence[StagedModel], version: int) -> None:
    """Write every model's new version (and model-level files) under ``staging``.

    Raises :class:`PublishError` when a file cannot be written (the repository is not touched).
    """
    try:
        for model in models:
            model_dir = staging / model.name
            _fill_version(model_dir / str(version), model.version_files)
            for name, data in model.model_files.items():
                (model_dir / name).write_bytes(data)
            (model_dir / CONFIG_FILENAME).write_text(model.config_text)
    except OSError as exc:
        raise PublishError(
            f"staging version {version} in {staging} failed, nothing was published: {exc}"
        ) from exc


def publish_staged(repo: Path, staging: Path, models: Sequence[StagedModel], version: int) -> None:
    """Move staged models into ``repo`` in order: one rename per model or version, config last.

    First every staged version must pass :func:`check_loadable`; a version that would not load
    is refused before anything moves. If any step fails, the steps already taken are undone in
    reverse order, so the repository ends as it began.
    """
    for model in models:
        check_loadable(staging / model.name, version)
    repo.mkdir(parents=True, exist_ok=True)
    for model in models:
        _refuse_links(repo, repo / model.name)
    undo: list[Callable[[], None]] = []
    try:
        for model in models:
            source = staging / model.name
            target = repo / model.name
            if not target.exists():
                os.rename(source, target)
                undo.append(functools.partial(os.rename, target, source))
                continue
            version_target = target / str(version)
            if version_target.exists():
                raise PublishError(
                    f"{version_target} appeared while building; nothing of this build was published"
                )
            os.rename(source / str(version), version_target)
            undo.append(functools.partial(os.rename, version_target, source / str(version)))
            for name in [*model.model_files, CONFIG_FILENAME]:  # config last
                path = target / name
                previous = path.read_bytes() if path.exists() else None
                if _replace_if_changed(path, (source / name).read_bytes()):
                    undo.append(
                        functools.partial(write_atomic, path, previous)
                        if previous is not None
                        else path.unlink
                    )
    except BaseException as exc:
        for step in reversed(undo):
            with contextlib.suppress(OSError):
                step()
        if isinstance(exc, OSError):
            raise PublishError(f"publishing into {repo} failed and was rolled back: {exc}") from exc
        raise


def _refuse_links(repo: Path, model_dir: Path) -> None:
    """Nothing is written outside the repository: a model folder (or a file in it) that is a
    symbolic link would send our writes wherever it points."""
    for path in (
        model_dir,
        *(model_dir.iterdir() if model_dir.is_dir() and not model_dir.is_symlink() else ()),
    ):
        if path.is_symlink():
            raise PublishError(
                f"{path} is a symbolic link (to {os.readlink(path)}); tritonkit writes only inside {repo}: "
                "replace the link with a real folder or file"
            )


def _replace_if_changed(path: Path, data: bytes) -> bool:
    # An untouched file keeps its mtime, so a polling server does not reload for nothing.
    if path.exists() and path.read_bytes() == data:
        return False
    write_atomic(path, data)
    return True


def prune_versions(repo: Path, name: str, keep: int, trash: Path) -> list[int]:
    """Remove all but the newest ``keep`` versions of ``name``; returns the removed numbers."""
    versions = existing_versions(repo / name)
    doomed = versions[:-keep] if keep > 0 else []
    for number in doomed:
        # Out of the repository in one step, so a poll never sees a half-deleted version.
        parked = trash / f"{name}-{number}"
        os.rename(repo / name / str(number), parked)
        shutil.rmtree(parked, ignore_errors=True)
    return doomed
