"""Where the ``tritonserver`` binary that nvidia-pytriton ships lives, and a backend folder for it.

The wheel carries the server, its shared libraries, the Python backend and one backend stub per
Python version. Triton wants a backend directory holding ``python/libtriton_python.so``,
``triton_python_backend_utils.py`` and the stub built for the Python that runs the models, so we
assemble one per (pytriton version, Python version) in a cache folder, once.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ._errors import ServeExtraMissingError

_INSTALL_HINT = "install the [serve] extra: pip install 'tritonkit[serve]'"


@dataclass(frozen=True)
class TritonDistribution:
    """Paths of one installed tritonserver and what it needs to start."""

    binary: Path
    libs: Path
    backend_dir: Path
    version: str


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tritonkit"


def locate_distribution(cache_root: Path | None = None) -> TritonDistribution:
    """Find the pip-installed tritonserver and make sure its backend folder exists.

    Raises :class:`ServeExtraMissingError` (saying what to ``pip install``) when nvidia-pytriton,
    which the ``[serve]`` extra brings, is not importable or is incomplete.
    """
    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        raise ServeExtraMissingError(f"the embedded Triton server is not installed: {_INSTALL_HINT}")
    package_dir = Path(next(iter(spec.submodule_search_locations)))
    dist = package_dir / "tritonserver"
    binary = dist / "bin" / "tritonserver"
    libs = package_dir.parent / "nvidia_pytriton.libs"
    if not libs.is_dir():  # editable installs of pytriton keep the libraries inside the package
        libs = dist / "external_libs"
    python_tag = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = dist / "python_backend_stubs" / python_tag / "triton_python_backend_stub"
    backend_src = dist / "backends" / "python"
    for needed in (binary, libs, stub, backend_src / "libtriton_python.so"):
        if not needed.exists():
            raise ServeExtraMissingError(
                f"the embedded Triton server is incomplete: {needed} is missing "
                f"(Python {python_tag} may not be supported by this nvidia-pytriton); reinstall: "
                f"pip install --force-reinstall 'tritonkit[serve]'"
            )
    try:
        version = importlib.metadata.version("nvidia-pytriton")
    except importlib.metadata.PackageNotFoundError:
        # A pytriton package without its distribution metadata (copied in, or a broken install)
        raise ServeExtraMissingError(
            f"the embedded Triton server at {package_dir} has no nvidia-pytriton distribution "
            f"metadata; reinstall: pip install --force-reinstall 'tritonkit[serve]'"
        ) from None
    backend_dir = _ensure_backend_dir(
        (cache_root or _cache_root()) / f"backends-pytriton{version}-py{python_tag}", backend_src, stub
    )
    return TritonDistribution(binary=binary, libs=libs, backend_dir=backend_dir, version=version)


def _ensure_backend_dir(target: Path, backend_src: Path, stub: Path) -> Path:
    """Create ``target/python/`` with the backend and the stub, atomically, unless it exists."""
    if (target / "python" / "triton_python_backend_stub").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".backends-", dir=target.parent))
    try:
        python_dir = staging / "python"
        python_dir.mkdir()
        for name in ("libtriton_python.so", "triton_python_backend_utils.py"):
            shutil.copy2(backend_src / name, python_dir / name)
        shutil.copy2(stub, python_dir / "triton_python_backend_stub")
        try:
            os.rename(staging, target)
        except OSError:
            if not (target / "python" / "triton_python_backend_stub").exists():
                raise
            # another process won the race and made an identical folder
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
