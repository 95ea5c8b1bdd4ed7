"""SageMaker talks to port 8080 unless SAGEMAKER_BIND_TO_PORT says otherwise: both ways tritonkit
serves it — `tritonkit serve --sagemaker` and the image's entry point
(``deploy/triton/sagemaker-serve.sh``) — must hand tritonserver that port by default.

Checked on the command line each one builds for tritonserver, without binding 8080 (other
programs on the machine may hold it). tests/deploy/test_sagemaker.py serves real requests on
free ports.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tritonkit.cli import app
from tritonkit.server import EmbeddedServer

ENTRY_POINT = Path(__file__).resolve().parents[3] / "deploy" / "triton" / "sagemaker-serve.sh"
SAGEMAKER_VARIABLES = (
    "SAGEMAKER_BIND_TO_PORT",
    "SAGEMAKER_TRITON_DEFAULT_MODEL_NAME",
    "SAGEMAKER_MODEL_REPOSITORY",
)


@pytest.fixture
def one_model_repo(tmp_path: Path) -> Path:
    model = tmp_path / "model_repository" / "flowers"
    (model / "1").mkdir(parents=True)
    (model / "config.pbtxt").write_text('name: "flowers"\nbackend: "python"\n')
    return model.parent


@pytest.fixture
def launched(monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """What `serve` would launch: tritonserver's argv and environment, recorded at start()."""
    for name in (*SAGEMAKER_VARIABLES, "TRITONKIT_ADMIN_KEY"):
        monkeypatch.delenv(name, raising=False)
    record: dict[str, object] = {}

    def start(self: EmbeddedServer, timeout_s: float = 120.0) -> None:
        record["argv"] = self.command()
        record["env"] = self.environment()

    def wait(self: EmbeddedServer) -> int:
        raise KeyboardInterrupt  # as if the user pressed Ctrl-C once the server is up

    monkeypatch.setattr(EmbeddedServer, "start", start)
    monkeypatch.setattr(EmbeddedServer, "wait", wait)
    return record


def _serve(repo: Path, *args: str, env: dict[str, str] | None = None) -> str:
    result = CliRunner().invoke(
        app, ["serve", "--repo", str(repo), *args], env={"COLUMNS": "200", **(env or {})}
    )
    assert result.exit_code == 0, result.output
    return result.output


def test_serve_sagemaker_gives_tritonserver_port_8080_by_default(
    one_model_repo: Path, launched: dict[str, object]
) -> None:
    output = _serve(one_model_repo, "--sagemaker")
    argv = launched["argv"]
    assert isinstance(argv, list)
    assert "--allow-sagemaker=true" in argv
    assert [a for a in argv if a.startswith("--sagemaker-port=")] == ["--sagemaker-port=8080"]
    env = launched["env"]
    assert isinstance(env, dict) and env["SAGEMAKER_TRITON_DEFAULT_MODEL_NAME"] == "flowers"
    assert "SageMaker http://0.0.0.0:8080" in output
    assert "port 8080 on all interfaces" in output


def test_serve_sagemaker_moves_to_sagemaker_bind_to_port(
    one_model_repo: Path, launched: dict[str, object]
) -> None:
    _serve(one_model_repo, "--sagemaker", env={"SAGEMAKER_BIND_TO_PORT": "9123"})
    argv = launched["argv"]
    assert isinstance(argv, list) and "--sagemaker-port=9123" in argv


def test_serve_without_sagemaker_opens_no_sagemaker_port(
    one_model_repo: Path, launched: dict[str, object]
) -> None:
    _serve(one_model_repo)
    argv = launched["argv"]
    assert isinstance(argv, list)
    assert not [a for a in argv if a.startswith(("--allow-sagemaker", "--sagemaker-"))]


@pytest.fixture
def recording_tritonserver(tmp_path: Path) -> tuple[Path, Path]:
    """A stand-in for the container's tritonserver that writes down its arguments, one a line."""
    record = tmp_path / "argv.txt"
    fake = tmp_path / "tritonserver"
    fake.write_text(
        "#!/bin/sh\n"
        f'printf "%s\\n" "$@" > {record}\n'
        f'echo "PYTHONDONTWRITEBYTECODE=$PYTHONDONTWRITEBYTECODE" >> {record}\n'
    )
    fake.chmod(0o755)
    return fake, record


def _entry_point(fake: Path, *args: str, **variables: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in SAGEMAKER_VARIABLES}
    return subprocess.run(
        [str(ENTRY_POINT), *args],
        env={**env, "TRITONSERVER": str(fake), **variables},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_sagemaker_entry_point_serves_opt_ml_model_on_port_8080_by_default(
    recording_tritonserver: tuple[Path, Path],
) -> None:
    fake, record = recording_tritonserver
    result = _entry_point(fake, "serve", SAGEMAKER_TRITON_DEFAULT_MODEL_NAME="flowers")
    assert result.returncode == 0, result.stderr
    assert record.read_text().splitlines() == [
        "--model-repository=/opt/ml/model",
        "--allow-sagemaker=true",
        "--sagemaker-port=8080",
        "--allow-http=false",
        "--allow-grpc=false",
        "--allow-metrics=false",
        "--model-control-mode=none",
        "PYTHONDONTWRITEBYTECODE=1",
    ]


def test_sagemaker_entry_point_follows_sagemaker_variables_and_passes_extra_arguments(
    recording_tritonserver: tuple[Path, Path],
) -> None:
    fake, record = recording_tritonserver
    result = _entry_point(
        fake,
        "serve",
        "--log-verbose=1",
        SAGEMAKER_TRITON_DEFAULT_MODEL_NAME="flowers",
        SAGEMAKER_BIND_TO_PORT="9123",
        SAGEMAKER_MODEL_REPOSITORY="/models",
    )
    assert result.returncode == 0, result.stderr
    argv = record.read_text().splitlines()
    assert "--sagemaker-port=9123" in argv and "--model-repository=/models" in argv
    assert argv[-2] == "--log-verbose=1"
