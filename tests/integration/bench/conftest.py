"""A tiny tritonkit pipeline (ONNX, no TensorFlow) built once, served once, for bench and tune."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from testsupport import make_onnx_classifier, start_server
from tritonkit.bench import write_photos
from tritonkit.repository import BuildOptions, build_repository
from tritonkit.server import EmbeddedServer

# The batcher waits up to 50 ms for 4 requests: at 8 in flight every batch should be full.
MAX_BATCH = 4
QUEUE_DELAY_US = 50_000


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_onnx_classifier(tmp_path_factory.mktemp("onnx") / "tiny.onnx", size=32)


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    write_photos(folder, 6, size=(320, 240))
    return folder


@pytest.fixture(scope="module")
def pipeline_repo(tmp_path_factory: pytest.TempPathFactory, onnx_model: Path) -> Path:
    """``tiny``: default build flags except a full-batch-or-50-ms batcher."""
    repo = tmp_path_factory.mktemp("bench") / "model_repository"
    options = BuildOptions(
        name="tiny",
        repository=repo,
        max_batch_size=MAX_BATCH,
        max_queue_delay_us=QUEUE_DELAY_US,
        preferred_batch_sizes=(MAX_BATCH,),
    )
    build_repository(onnx_model, options)
    return repo


@pytest.fixture(scope="module")
def served(pipeline_repo: Path) -> Iterator[EmbeddedServer]:
    server = start_server(pipeline_repo)
    yield server
    server.stop()
