"""New versions that change only the configuration: the files of the latest version, a new config.

``tritonkit tune`` publishes its winner this way, through the same stage-then-rename path as
``build-repo`` (see :mod:`._publish`), so a polling server never sees half of it and the previous
version stays on disk to roll back to.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._configs import ModelConfig, render_config
from ._errors import PublishError
from ._publish import (
    CONFIG_FILENAME,
    STAGE_PREFIX,
    StagedModel,
    existing_versions,
    next_version,
    publish_staged,
    repository_lock,
    stage_models,
)

MANIFEST = "tritonkit.json"  # the name build-repo gives every version's manifest
_SKIPPED = frozenset({"__pycache__"})


def _version_files(version_dir: Path) -> dict[str, Path | bytes]:
    files: dict[str, Path | bytes] = {}
    for path in sorted(version_dir.rglob("*")):
        relative = path.relative_to(version_dir)
        if path.is_file() and not _SKIPPED.intersection(relative.parts) and relative.as_posix() != MANIFEST:
            files[relative.as_posix()] = path
    return files


def publish_config_variant(
    repo: Path,
    configs: Mapping[str, ModelConfig],
    record: Mapping[str, Any],
    *,
    record_key: str = "tune",
) -> int:
    """Publish version N+1 of every model in ``configs``: the files of its latest version and the
    given config (which must keep the model's name). Returns N+1, shared by all the models.

    Each new version's ``tritonkit.json`` is the previous one with the new version number, the
    version it was derived from and ``record`` under ``record_key`` (e.g. tune's measurements).
    """
    repo = Path(repo)
    names = list(configs)
    for name, config in configs.items():
        if config.name != name:
            raise PublishError(f"the config for {name!r} names the model {config.name!r}")
        if not existing_versions(repo / name):
            raise PublishError(f"{repo / name} has no version to derive a new one from")
    with repository_lock(repo) as stage_root:
        version = next_version(repo, names)
        staged = []
        for name, config in configs.items():
            source = repo / name / str(existing_versions(repo / name)[-1])
            files = _version_files(source)
            files[MANIFEST] = _manifest(source, name, version, record_key, record)
            staged.append(StagedModel(name=name, config_text=render_config(config), version_files=files))
        with tempfile.TemporaryDirectory(prefix=STAGE_PREFIX, dir=stage_root) as stage_dir:
            staging = Path(stage_dir)
            stage_models(staging, staged, version)
            publish_staged(repo, staging, staged, version)
    return version


def _manifest(source: Path, name: str, version: int, key: str, record: Mapping[str, Any]) -> bytes:
    previous: dict[str, Any] = {}
    path = source / MANIFEST
    if path.is_file():
        try:
            previous = json.loads(path.read_text())
        except (OSError, ValueError):
            previous = {}
    manifest = {
        **previous,
        "model": name,
        "version": version,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "derived_from": {"version": int(source.name), "config_file": CONFIG_FILENAME},
        key: dict(record),
    }
    return (json.dumps(manifest, indent=2, default=str) + "\n").encode()
