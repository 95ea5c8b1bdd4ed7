"""Without the [serve] extra (nvidia-pytriton), the library raises ServeExtraMissingError and
`tritonkit serve` prints one red line naming the install command, exits 1, and shows no traceback.

The extra is hidden the way Python itself hides a package: ``sys.modules["pytriton"] = None``
makes ``importlib.util.find_spec`` (what the code asks) answer None and ``import pytriton`` fail.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import pytest

from testsupport.processes import console_script
from tritonkit.server import (
    EmbeddedServer,
    ServeExtraMissingError,
    ServerError,
    ServerOptions,
    locate_distribution,
)

INSTALL = "pip install 'tritonkit[serve]'"
RED = "\x1b[1;31m"

# `tritonkit serve` in a fresh interpreter where pytriton cannot be imported.
WITHOUT_PYTRITON = (
    "import sys; sys.modules['pytriton'] = None; sys.argv[0] = 'tritonkit'; "
    "from tritonkit.cli import main; main()"
)


@pytest.fixture
def without_pytriton(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pytriton", None)


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    (tmp_path / "model_repository").mkdir()
    return tmp_path / "model_repository"


def test_locating_the_server_without_the_extra_names_the_install_command(
    without_pytriton: None, tmp_path: Path
) -> None:
    with pytest.raises(ServeExtraMissingError, match=r"not installed: .*pip install 'tritonkit\[serve\]'"):
        locate_distribution(cache_root=tmp_path)
    assert not any(tmp_path.iterdir())  # nothing was prepared for a server that cannot run


def test_starting_a_server_without_the_extra_raises_before_touching_ports_or_files(
    without_pytriton: None, repository: Path
) -> None:
    import socket

    # Even with the HTTP port taken, the missing extra is the error the user needs to see first.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = EmbeddedServer(ServerOptions(repository=repository, http_port=taken.getsockname()[1]))
        with pytest.raises(ServeExtraMissingError, match=r"tritonkit\[serve\]") as raised:
            server.start(timeout_s=5)
    assert isinstance(raised.value, ServerError)  # one `except ServerError` covers it
    assert server.pid is None and server.log_path is None


def test_a_pytriton_without_its_server_binary_is_reported_as_incomplete(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    impostor = tmp_path / "site" / "pytriton"
    impostor.mkdir(parents=True)
    (impostor / "__init__.py").write_text("")
    monkeypatch.delitem(sys.modules, "pytriton", raising=False)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    importlib.invalidate_caches()
    with pytest.raises(ServeExtraMissingError, match=r"incomplete: .*tritonserver is missing") as raised:
        locate_distribution(cache_root=tmp_path / "cache")
    assert "pip install --force-reinstall 'tritonkit[serve]'" in str(raised.value)


def test_a_pytriton_without_distribution_metadata_is_reported_not_raised_raw(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    real_version = importlib.metadata.version

    def version(name: str) -> str:
        if name == "nvidia-pytriton":
            raise importlib.metadata.PackageNotFoundError(name)
        return real_version(name)

    monkeypatch.setattr(importlib.metadata, "version", version)
    with pytest.raises(ServeExtraMissingError, match=r"no nvidia-pytriton distribution metadata"):
        locate_distribution(cache_root=tmp_path)


def test_serve_without_the_extra_prints_one_red_line_and_exits_1(repository: Path) -> None:
    env = {**os.environ, "FORCE_COLOR": "1", "COLUMNS": "200"}
    env.pop("NO_COLOR", None)
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_PYTRITON, "serve", "--repo", str(repository)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"{RED}error:"), repr(line)
    assert INSTALL in line
    assert "Triton is ready" not in result.stdout


def test_the_console_script_is_what_the_red_line_test_runs() -> None:
    # WITHOUT_PYTRITON calls tritonkit.cli:main, which must be what `tritonkit` runs.
    script = Path(console_script()).read_text()
    assert "from tritonkit.cli import main" in script
