"""Every payload of the hostile corpus, sent in a concurrent burst with good images, fails alone."""

from __future__ import annotations

import concurrent.futures
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from PIL import Image
from tritonclient.utils import InferenceServerException

from testsupport import make_onnx_classifier, start_server
from testsupport.corpus import Case, hostile_corpus
from tritonkit.repository import BuildOptions, build_repository
from tritonkit.server import EmbeddedServer, find_stubs

pytestmark = pytest.mark.integration

MAX_BYTES = 300_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    folder = tmp_path_factory.mktemp("hostile")
    model = make_onnx_classifier(folder / "tiny.onnx")
    options = BuildOptions(
        name="tiny",
        repository=folder / "repo",
        max_batch_size=8,
        max_queue_delay_us=20_000,  # so that the burst meets in shared dynamic batches
        max_image_bytes=MAX_BYTES,
    )
    build_repository(model, options)
    running = start_server(folder / "repo")
    yield running
    running.stop()


def _good() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (120, 90), (250, 20, 20)).save(buffer, format="JPEG")
    return buffer.getvalue()


def _send(url: str, data: bytes) -> np.ndarray | InferenceServerException:
    with grpcclient.InferenceServerClient(url) as client:
        tensor = grpcclient.InferInput("IMAGE", [1, 1], "BYTES")
        tensor.set_data_from_numpy(np.array([[data]], dtype=object))
        try:
            return client.infer("tiny", [tensor], client_timeout=60).as_numpy("SCORES")
        except InferenceServerException as exc:
            return exc


def _rss_kb(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


CORPUS = hostile_corpus(MAX_BYTES)


def test_the_corpus_is_big_enough() -> None:
    assert len([c for c in CORPUS if c.error]) >= 13 and len(CORPUS) >= 20


@pytest.mark.parametrize("case", CORPUS, ids=[c.name for c in CORPUS])
def test_each_payload_in_a_burst_gets_its_own_answer_and_batch_mates_succeed(
    server: EmbeddedServer, case: Case
) -> None:
    url = server.grpc_url.removeprefix("grpc://")
    good = _good()
    burst = [good, good, case.data, good, good]
    with concurrent.futures.ThreadPoolExecutor(len(burst)) as pool:
        results = list(pool.map(lambda data: _send(url, data), burst))

    for i, result in enumerate(results):
        if i == 2 and case.error is not None:
            assert isinstance(result, InferenceServerException), f"{case.name} was accepted"
            assert case.error in str(result).lower(), str(result)
        else:
            assert isinstance(result, np.ndarray), f"{case.name}: {result}"
            assert result.shape == (1, 4) and np.isclose(result.sum(), 1.0, atol=1e-4)
    with grpcclient.InferenceServerClient(url) as client:
        assert client.is_server_ready() and client.is_model_ready("tiny")


def test_bombs_do_not_grow_memory(server: EmbeddedServer) -> None:
    assert server.pid is not None
    pids = [server.pid] + [s.pid for s in find_stubs(server.pid) if not s.dead]
    url = server.grpc_url.removeprefix("grpc://")
    bombs = [c.data for c in CORPUS if c.error == "pixels"] * 10
    _send(url, _good())
    before = _rss_kb(pids)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda data: _send(url, data), bombs))
    assert all(isinstance(r, InferenceServerException) for r in results)
    grown_mb = (_rss_kb(pids) - before) / 1024
    assert grown_mb < 50, f"server + stubs grew by {grown_mb:.0f} MB on refused bombs"
