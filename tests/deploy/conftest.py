"""Fixtures for the deployment files' tests: where they are, and the system tools that check them.

The tools come from Debian packages that ``scripts/ci-system-deps.sh`` installs (prometheus for
``prometheus`` and ``promtool``, docker-compose) or that the machine image ships (kubectl with its
built-in kustomize). A missing tool fails the test with the command that installs it: a skipped
check would look like a passed one in CI.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


@pytest.fixture(scope="session")
def root() -> Path:
    """The checkout's top folder (docker-compose.yml lives there)."""
    return ROOT


@pytest.fixture(scope="session")
def deploy_dir() -> Path:
    """``deploy/``: Dockerfiles, Prometheus, Grafana and Kubernetes files."""
    return DEPLOY


@pytest.fixture(scope="session")
def system_tool() -> Callable[[str], str]:
    """``system_tool("promtool")``: the tool's path, or a failure that says how to install it."""

    def find(name: str) -> str:
        path = shutil.which(name)
        if path is None:
            pytest.fail(f"{name} is not installed: run scripts/ci-system-deps.sh as root (Debian packages)")
        return path

    return find
