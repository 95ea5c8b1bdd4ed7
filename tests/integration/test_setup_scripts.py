"""The set-up scripts behind `make test` and `make demo`, run for real by bash against stub tools.

PATH holds only stubs (and the few coreutils the scripts use), so nothing is installed, no sudo
is run and the project's own .venv is never touched: venv.sh runs from a copy in a temp folder.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
COREUTILS = ("cat", "chmod", "cp", "dirname", "grep", "head", "mkdir", "mktemp", "rm", "sh", "sort")


def _stub(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text(f'#!/bin/sh\necho "{name} $*" >> "$STUB_LOG"\n{body}\n')
    path.chmod(0o755)


def _bin_dir(tmp_path: Path, uid: int = 1000) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in COREUTILS:
        real = shutil.which(tool)
        assert real, f"{tool} is needed to run the scripts"
        (bin_dir / tool).symlink_to(real)
    (bin_dir / "id").write_text(f"#!/bin/sh\necho {uid}\n")
    (bin_dir / "id").chmod(0o755)
    return bin_dir


def _run(script: Path, bin_dir: Path, log: Path, **env: str) -> subprocess.CompletedProcess[str]:
    bash = shutil.which("bash")
    assert bash
    return subprocess.run(
        [bash, str(script)],
        env={"PATH": str(bin_dir), "STUB_LOG": str(log), "HOME": str(log.parent), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def _calls(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


# -- ci-system-deps.sh ------------------------------------------------------------------------


def test_system_deps_installs_what_is_missing_through_passwordless_sudo_for_a_normal_user(
    tmp_path: Path,
) -> None:
    bin_dir = _bin_dir(tmp_path)
    _stub(bin_dir, "sudo", "exit 0")  # sudo -n works: it only logs here
    _stub(bin_dir, "kubectl", "exit 0")
    log = tmp_path / "calls.log"
    result = _run(SCRIPTS / "ci-system-deps.sh", bin_dir, log)
    assert result.returncode == 0, result.stderr
    calls = _calls(log)
    assert "sudo -n true" in calls
    assert "sudo -n env DEBIAN_FRONTEND=noninteractive apt-get update -qq" in calls
    assert (
        "sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "
        "docker-compose prometheus"
    ) in calls
    assert not [c for c in calls if c.startswith(("apt-get", "env"))]  # nothing ran without sudo


@pytest.mark.parametrize("sudo", ["needs a password", "absent"])
def test_system_deps_without_root_or_sudo_fails_saying_exactly_what_to_install(
    tmp_path: Path, sudo: str
) -> None:
    bin_dir = _bin_dir(tmp_path)
    if sudo == "needs a password":
        _stub(bin_dir, "sudo", 'echo "sudo: a password is required" >&2; exit 1')
    _stub(bin_dir, "apt-get", "exit 0")
    _stub(bin_dir, "prometheus", "exit 0")  # promtool and docker-compose are missing
    log = tmp_path / "calls.log"
    result = _run(SCRIPTS / "ci-system-deps.sh", bin_dir, log)
    assert result.returncode == 1
    assert "missing Debian packages: docker-compose prometheus" in result.stderr
    assert (
        "sudo apt-get update && sudo apt-get install -y --no-install-recommends docker-compose prometheus"
    ) in result.stderr
    assert not [c for c in _calls(log) if c.startswith("apt-get")]


def test_system_deps_does_nothing_when_every_tool_is_there(tmp_path: Path) -> None:
    bin_dir = _bin_dir(tmp_path)
    for tool in ("prometheus", "promtool", "docker-compose", "kubectl"):
        _stub(bin_dir, tool, "exit 0")
    _stub(bin_dir, "sudo", "exit 0")
    log = tmp_path / "calls.log"
    result = _run(SCRIPTS / "ci-system-deps.sh", bin_dir, log)
    assert result.returncode == 0 and result.stderr == ""
    assert _calls(log) == []


# -- venv.sh ----------------------------------------------------------------------------------

# What `python -m venv .venv` leaves: a venv Python that says it is 3.11 and logs pip's work.
_VENV_PYTHON = """#!/bin/sh
echo "venv-python $*" >> "$STUB_LOG"
exit 0
"""


def _python(bin_dir: Path, name: str, version: str) -> None:
    is_311 = version.startswith("3.11.")
    _stub(
        bin_dir,
        name,
        f"""case "$1" in
  -c) exit {0 if is_311 else 1} ;;
  --version) echo "Python {version}" ;;
  -m) mkdir -p "$3/bin" && cp "$FAKE_VENV_PYTHON" "$3/bin/python" ;;
esac""",
    )


def _project(tmp_path: Path) -> tuple[Path, Path, dict[str, str]]:
    """A copy of venv.sh in an otherwise empty project, stub tools, and the environment for them."""
    project = tmp_path / "project"
    (project / "scripts").mkdir(parents=True)
    shutil.copy(SCRIPTS / "venv.sh", project / "scripts" / "venv.sh")
    bin_dir = _bin_dir(tmp_path)
    _stub(bin_dir, "ldconfig", 'echo "libpython3.11.so.1.0 (libc6,x86-64) => /usr/lib/libpython3.11.so.1.0"')
    venv_python = tmp_path / "venv-python"
    venv_python.write_text(_VENV_PYTHON)
    venv_python.chmod(0o755)
    return project, bin_dir, {"FAKE_VENV_PYTHON": str(venv_python)}


def test_venv_is_made_with_python3_11_in_preference_to_another_python3(tmp_path: Path) -> None:
    project, bin_dir, env = _project(tmp_path)
    _python(bin_dir, "python3.11", "3.11.9")
    _python(bin_dir, "python3", "3.12.1")
    log = tmp_path / "calls.log"
    result = _run(project / "scripts" / "venv.sh", bin_dir, log, **env)
    assert result.returncode == 0, result.stderr
    calls = _calls(log)
    assert "python3.11 -m venv .venv" in calls
    assert not [c for c in calls if c.startswith("python3 -m")]
    assert "venv-python -m pip install -q -e .[all] --config-settings editable_mode=strict" in calls


def test_venv_uses_python3_when_it_is_3_11(tmp_path: Path) -> None:
    project, bin_dir, env = _project(tmp_path)
    _python(bin_dir, "python3", "3.11.2")
    log = tmp_path / "calls.log"
    result = _run(project / "scripts" / "venv.sh", bin_dir, log, **env)
    assert result.returncode == 0, result.stderr
    assert "python3 -m venv .venv" in _calls(log)


def test_venv_refuses_with_a_clear_message_when_no_python_is_3_11(tmp_path: Path) -> None:
    project, bin_dir, env = _project(tmp_path)
    _python(bin_dir, "python3", "3.12.1")
    log = tmp_path / "calls.log"
    result = _run(project / "scripts" / "venv.sh", bin_dir, log, **env)
    assert result.returncode == 1
    assert ".venv needs Python 3.11" in result.stderr
    assert "python3.11 (not found)" in result.stderr and "python3 (Python 3.12.1)" in result.stderr
    assert "apt-get install python3.11 python3.11-venv" in result.stderr
    assert not (project / ".venv").exists()
    assert not [c for c in _calls(log) if " -m " in c]


def test_venv_keeps_an_old_venv_it_cannot_replace_with_a_3_11_one(tmp_path: Path) -> None:
    project, bin_dir, env = _project(tmp_path)
    _python(bin_dir, "python3", "3.12.1")
    old = project / ".venv" / "bin"
    old.mkdir(parents=True)
    (old / "python").write_text("#!/bin/sh\nexit 1\n")  # a 3.12 venv: fails the 3.11 check
    (old / "python").chmod(0o755)
    result = _run(project / "scripts" / "venv.sh", bin_dir, tmp_path / "calls.log", **env)
    assert result.returncode == 1 and ".venv needs Python 3.11" in result.stderr
    assert (old / "python").is_file()


def test_venv_refuses_a_python_given_in_python_that_is_not_3_11(tmp_path: Path) -> None:
    project, bin_dir, env = _project(tmp_path)
    _python(bin_dir, "python3.11", "3.11.9")
    _python(bin_dir, "python3.12", "3.12.1")
    result = _run(
        project / "scripts" / "venv.sh", bin_dir, tmp_path / "calls.log", PYTHON="python3.12", **env
    )
    assert result.returncode == 1
    assert "python3.12 (Python 3.12.1)" in result.stderr and "PYTHON=/path/to/python3.11" in result.stderr
    assert not (project / ".venv").exists()
