"""The bundled Triton serves a model repository from S3-compatible object storage.

A local S3 emulator (moto's server, on loopback) holds the pipeline of ``tests/deploy/models``;
the embedded ``tritonserver`` reads it through a custom endpoint, ``s3://127.0.0.1:PORT/bucket/prefix``,
with credentials from the standard AWS variables, as the Kubernetes s3 overlay runs stock Triton.

Object stores have no empty folders: a version folder must hold at least one object, or Triton
finds no version (tritonkit's builder writes ``tritonkit.json`` into every version folder).
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tritonkit.server import EmbeddedServer, ServerOptions, free_port

MODELS = Path(__file__).parent / "models"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server (moto[server], the [dev] extra) on a free loopback port, for this module only."""
    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=1).close()
                break
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail("moto_server did not start")
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


def _upload(endpoint: str, bucket: str, prefix: str, folder: Path) -> None:
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=CREDENTIALS["AWS_DEFAULT_REGION"],
    )
    s3.create_bucket(Bucket=bucket)
    for path in sorted(folder.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            s3.upload_file(str(path), bucket, f"{prefix}/{path.relative_to(folder).as_posix()}")


@pytest.mark.integration
def test_embedded_triton_serves_a_repository_from_a_custom_s3_endpoint(
    s3_endpoint: str, tmp_path: Path
) -> None:
    import tritonclient.http as httpclient

    _upload(s3_endpoint, "models", "production", MODELS)
    host_port = s3_endpoint.removeprefix("http://")
    empty = tmp_path / "empty"  # ServerOptions wants a local folder; the models come from S3
    empty.mkdir()
    options = ServerOptions(
        repository=empty,
        http_port=free_port(),
        grpc_port=free_port(),
        metrics_port=free_port(),
        log_file=tmp_path / "tritonserver.log",
        extra_args=(f"--model-repository=s3://{host_port}/models/production",),
        env=CREDENTIALS,
    )
    server = EmbeddedServer(options)
    server.start(timeout_s=120)
    try:
        client = httpclient.InferenceServerClient(server.http_url.removeprefix("http://"))
        assert client.is_model_ready("pipeline")
        image = httpclient.InferInput("IMAGE", [1, 1], "BYTES")
        image.set_data_from_numpy(np.array([[bytes([1, 2, 3, 4])]], dtype=np.object_))
        scores = client.infer("pipeline", [image]).as_numpy("SCORES")
        assert scores.shape == (1, 4) and float(scores.sum()) == pytest.approx(1.0, abs=1e-5)
        client.close()
    finally:
        server.stop()
