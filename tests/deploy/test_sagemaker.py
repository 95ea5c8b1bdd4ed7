"""SageMaker's container contract, served by the real Triton: GET /ping and POST /invocations.

Three ways in, one check: ``EmbeddedServer`` with ``sagemaker_port``, ``tritonkit serve --sagemaker``
as a user runs it, and the SageMaker image's entry point (``deploy/triton/sagemaker-serve.sh``)
run with the embedded ``tritonserver`` in place of the container's. Requests are KServe v2 bodies
as JSON and as SageMaker-Triton's binary+json.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import pytest
import tritonclient.http as httpclient

from testsupport.processes import console_script, read_until_ready, running, serve_command
from tritonkit.server import EmbeddedServer, ServerOptions, free_port, locate_distribution

MODELS = Path(__file__).parent / "models"
MODEL = "pipeline"
PAYLOAD = bytes([10, 200, 30, 90])


def _expected_scores() -> np.ndarray:
    """What tests/deploy/models/pipeline computes for PAYLOAD: softmax of the bytes / 255."""
    pixels = np.frombuffer(PAYLOAD, dtype=np.uint8).astype(np.float32) / 255.0
    exp = np.exp(pixels - pixels.max())
    return exp / exp.sum()


def _post(url: str, body: bytes, content_type: str) -> tuple[dict[str, str], bytes]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type}, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
        return dict(response.headers.items()), response.read()


def assert_speaks_sagemaker(base_url: str) -> None:
    """/ping answers 200; /invocations runs the default model on JSON and on binary+json bodies."""
    with urllib.request.urlopen(f"{base_url}/ping", timeout=10) as response:
        assert response.status == 200

    request = {
        "inputs": [
            {"name": "IMAGE", "shape": [1, 1], "datatype": "BYTES", "data": [PAYLOAD.decode("latin-1")]}
        ]
    }
    headers, body = _post(f"{base_url}/invocations", json.dumps(request).encode(), "application/json")
    assert headers["Content-Type"] == "application/json"
    answer = json.loads(body)
    assert answer["model_name"] == MODEL
    (scores,) = answer["outputs"]
    assert scores["name"] == "SCORES" and scores["shape"] == [1, 4]
    assert sum(scores["data"]) == pytest.approx(1.0, abs=1e-5)

    image = httpclient.InferInput("IMAGE", [1, 1], "BYTES")
    image.set_data_from_numpy(np.array([[PAYLOAD]], dtype=np.object_), binary_data=True)
    wanted = httpclient.InferRequestedOutput("SCORES", binary_data=True)
    body, header_length = httpclient.InferenceServerClient.generate_request_body([image], outputs=[wanted])
    headers, reply = _post(
        f"{base_url}/invocations",
        body,
        f"application/vnd.sagemaker-triton.binary+json;json-header-size={header_length}",
    )
    content_type = headers["Content-Type"]
    assert content_type.startswith("application/vnd.sagemaker-triton.binary+json;json-header-size=")
    result = httpclient.InferenceServerClient.parse_response_body(
        reply, header_length=int(content_type.rsplit("=", 1)[1])
    )
    np.testing.assert_allclose(result.as_numpy("SCORES")[0], _expected_scores(), rtol=1e-5)


@pytest.fixture()
def repository(tmp_path: Path) -> Path:
    copy = tmp_path / "model_repository"
    shutil.copytree(MODELS, copy)
    return copy


def _shm_files(prefix: str) -> list[str]:
    return glob.glob(f"/dev/shm/{prefix}*")


@pytest.mark.integration
def test_embedded_server_speaks_sagemaker_on_its_port(repository: Path, tmp_path: Path) -> None:
    options = ServerOptions(
        repository=repository,
        http_port=free_port(),
        grpc_port=free_port(),
        metrics_port=free_port(),
        log_file=tmp_path / "tritonserver.log",
        sagemaker_port=free_port("0.0.0.0"),
        sagemaker_default_model=MODEL,
    )
    server = EmbeddedServer(options)
    assert "--allow-sagemaker=true" in server.command()
    assert server.environment()["SAGEMAKER_TRITON_DEFAULT_MODEL_NAME"] == MODEL
    server.start(timeout_s=120)
    try:
        assert server.sagemaker_url == f"http://127.0.0.1:{options.sagemaker_port}"
        assert_speaks_sagemaker(server.sagemaker_url)
    finally:
        server.stop()


def test_sagemaker_default_model_needs_a_port(repository: Path) -> None:
    with pytest.raises(ValueError, match="sagemaker_port"):
        ServerOptions(repository=repository, sagemaker_default_model=MODEL)


def _wait_for_ping(url: str, process: subprocess.Popen[str], timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read() if process.stdout else ""
            pytest.fail(f"exited with {process.returncode}:\n{output}")
        try:
            with urllib.request.urlopen(f"{url}/ping", timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    pytest.fail(f"{url}/ping never answered")


@pytest.mark.integration
def test_serve_sagemaker_answers_ping_and_invocations_and_warns_about_the_binding(repository: Path) -> None:
    port = free_port("0.0.0.0")
    args = serve_command(repository)
    args += ["--sagemaker", "--sagemaker-port", str(port)]
    env = {**os.environ, "SAGEMAKER_TRITON_DEFAULT_MODEL_NAME": MODEL, "NO_COLOR": "1", "COLUMNS": "200"}
    with running(args, env) as process:
        output = read_until_ready(process)
        assert "Triton is ready" in output, output
        assert f"SageMaker http://0.0.0.0:{port}" in output and f"runs {MODEL}" in output
        assert "on all interfaces" in output
        assert_speaks_sagemaker(f"http://127.0.0.1:{port}")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0


def test_serve_sagemaker_refuses_to_guess_the_model_of_a_pipeline(repository: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "SAGEMAKER_TRITON_DEFAULT_MODEL_NAME"}
    result = subprocess.run(
        [console_script(), "serve", "--repo", str(repository), "--sagemaker"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**env, "NO_COLOR": "1", "COLUMNS": "200"},
    )
    assert result.returncode == 2
    assert "--sagemaker-model" in result.stdout + result.stderr


@pytest.mark.integration
def test_sagemaker_image_entry_point_serves_the_repository(repository: Path, deploy_dir: Path) -> None:
    """deploy/triton/sagemaker-serve.sh as `docker run IMAGE serve` runs it, on the embedded binary."""
    dist = locate_distribution()
    prefix = f"tritonkit_sm_{uuid.uuid4().hex[:8]}_"
    port = free_port("0.0.0.0")
    env = EmbeddedServer(ServerOptions(repository=repository)).environment()
    env.update(
        {
            "TRITONSERVER": str(dist.binary),
            "SAGEMAKER_MODEL_REPOSITORY": str(repository),
            "SAGEMAKER_BIND_TO_PORT": str(port),
            "SAGEMAKER_TRITON_DEFAULT_MODEL_NAME": MODEL,
        }
    )
    script = str(deploy_dir / "triton" / "sagemaker-serve.sh")
    # The container's tritonserver finds its backends itself; the pip-installed one is told where.
    extra = [
        f"--backend-directory={dist.backend_dir}",
        f"--backend-config=python,shm-region-prefix-name={prefix}",
    ]
    try:
        with running([script, "serve", *extra], env) as process:
            _wait_for_ping(f"http://127.0.0.1:{port}", process)
            assert_speaks_sagemaker(f"http://127.0.0.1:{port}")
    finally:
        for path in _shm_files(prefix):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    missing = {k: v for k, v in env.items() if k != "SAGEMAKER_TRITON_DEFAULT_MODEL_NAME"}
    result = subprocess.run([script, "serve"], env=missing, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "SAGEMAKER_TRITON_DEFAULT_MODEL_NAME" in result.stderr
