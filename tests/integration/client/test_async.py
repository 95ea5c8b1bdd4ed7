"""AsyncTritonClient: the same answers as the sync client, for both protocols."""

from __future__ import annotations

import asyncio
import io
import os
import time
from typing import TYPE_CHECKING

import numpy as np
import pytest
from PIL import Image

from tritonkit.client import (
    AsyncTritonClient,
    InferenceFailed,
    InvalidInput,
    ModelNotFound,
    RetryPolicy,
    ServerUnavailable,
    Timeout,
    TritonClient,
)
from tritonkit.server import EmbeddedServer, free_port

from .conftest import most_at_once

if TYPE_CHECKING:
    from conftest import TCPProxy

pytestmark = pytest.mark.integration


def _url(triton: EmbeddedServer, protocol: str) -> str:
    return triton.http_url if protocol == "http" else triton.grpc_url


def test_async_client_gives_what_the_sync_client_gives(triton: EmbeddedServer, protocol: str) -> None:
    a = np.arange(20 * 16, dtype=np.float32).reshape(20, 16)
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (0, 240, 0)).save(buffer, format="PNG")

    async def run() -> tuple:
        async with AsyncTritonClient(_url(triton, protocol), metrics_url=triton.metrics_url) as client:
            health = (await client.is_live(), await client.is_ready(), await client.is_model_ready("add_sub"))
            await client.wait_until_ready("add_sub", timeout_s=5)
            status = (
                await client.server_metadata(),
                await client.model_metadata("add_sub"),
                await client.model_config("tiny_classifier"),
                await client.repository_index(),
            )
            outputs = await client.infer("add_sub", {"INPUT0": a, "INPUT1": a})
            classes = await client.classify("tiny_classifier", [buffer.getvalue()], top_k=2)
            snapshot = await client.metrics()
            return health, status, outputs, classes, snapshot

    health, status, outputs, classes, snapshot = asyncio.run(run())
    assert health == (True, True, True)
    with TritonClient(_url(triton, protocol)) as sync:
        assert status == (
            sync.server_metadata(),
            sync.model_metadata("add_sub"),
            sync.model_config("tiny_classifier"),
            sync.repository_index(),
        )
    np.testing.assert_array_equal(outputs["OUTPUT0"], 2 * a)
    assert classes[0][0].label == "green"
    assert snapshot.ensembles["tiny_classifier"] == (
        "tiny_classifier_preprocess",
        "tiny_classifier_classifier",
    )


def test_async_errors_match_the_sync_ones(triton: EmbeddedServer, protocol: str) -> None:
    async def run() -> None:
        async with AsyncTritonClient(_url(triton, protocol)) as client:
            with pytest.raises(ModelNotFound):
                await client.model_metadata("no_such_model")
            with pytest.raises(InferenceFailed, match="negative input"):
                await client.infer("failing", np.array([-1.0], np.float32))
            started = time.monotonic()
            with pytest.raises(Timeout):
                await client.infer("slow", np.array([1.5], np.float32), timeout_s=0.4)
            assert time.monotonic() - started < 1.0

    asyncio.run(run())


def test_async_dead_server_is_not_live(protocol: str) -> None:
    async def run() -> bool:
        async with AsyncTritonClient(f"{protocol}://127.0.0.1:{free_port()}", timeout_s=2) as client:
            return await client.is_live()

    assert asyncio.run(run()) is False


def test_async_shared_memory_leaves_no_region(triton: EmbeddedServer, protocol: str) -> None:
    a = np.ones((10, 16), np.float32)

    async def run() -> tuple[np.ndarray, str]:
        async with AsyncTritonClient(_url(triton, protocol)) as client:
            async with client.shared_memory() as shm:
                out = await client.infer("add_sub", {"INPUT0": a, "INPUT1": a}, shared_memory=shm)
                return out["OUTPUT1"], shm.pool.prefix

    result, prefix = asyncio.run(run())
    np.testing.assert_array_equal(result, np.zeros_like(a))
    assert not [n for n in os.listdir("/dev/shm") if n.startswith(prefix)]


def test_async_per_call_deadline_longer_than_the_clients_timeout_is_honoured(
    triton: EmbeddedServer, protocol: str
) -> None:
    async def run() -> list[float]:
        async with AsyncTritonClient(_url(triton, protocol), timeout_s=1.0, retries=0) as client:
            out = await client.infer("slow", np.array([2.0], np.float32), timeout_s=6)
            with pytest.raises(Timeout, match=r"did not finish within 1 s"):
                await client.infer("slow", np.array([2.0], np.float32))
            return [float(x) for x in out["SLEPT"]]

    assert asyncio.run(run()) == [2.0]


def test_async_stopped_server_gives_server_unavailable_after_bounded_retries(
    stoppable_triton: EmbeddedServer, protocol: str
) -> None:
    policy = RetryPolicy(max_retries=3, backoff_s=0.05, max_backoff_s=0.1)

    async def run() -> tuple[float, ServerUnavailable]:
        async with AsyncTritonClient(_url(stoppable_triton, protocol), timeout_s=5, retries=policy) as client:
            assert (await client.server_metadata()).name == "triton"
            stoppable_triton.stop()
            started = time.monotonic()
            with pytest.raises(ServerUnavailable, match="gave up after 4 attempts") as caught:
                await client.server_metadata()
            elapsed = time.monotonic() - started
            assert await client.is_live() is False
            return elapsed, caught.value

    elapsed, error = asyncio.run(run())
    assert elapsed < 2.0  # far inside the 5 s deadline
    assert error.protocol == protocol


@pytest.mark.parametrize("concurrency", [1, 3])
def test_async_split_batches_go_out_concurrently_but_never_more_than_concurrency_at_once(
    triton: EmbeddedServer, timed_model: str, protocol: str, concurrency: int
) -> None:
    x = np.arange(12, dtype=np.float32).reshape(12, 1)  # six requests for four model instances

    async def run() -> dict[str, np.ndarray]:
        async with AsyncTritonClient(_url(triton, protocol), concurrency=concurrency) as client:
            return await client.infer(timed_model, x)

    out = asyncio.run(run())
    np.testing.assert_array_equal(out["Y"], x)
    spans = out["SPAN"][::2]
    assert len({tuple(span) for span in spans}) == 6
    assert most_at_once(spans) == concurrency


def test_async_request_over_the_size_limit_is_refused_before_any_of_it_is_sent(
    wire_proxy: tuple[str, TCPProxy],
) -> None:
    url, proxy = wire_proxy
    rows = [[b"async-limit-row-%d" % i] for i in range(8)] + [[b"async-limit-over" + b"x" * 1000]]

    async def run() -> None:
        async with AsyncTritonClient(url, max_request_bytes=1000, concurrency=1) as client:
            assert (await client.infer("identity_bytes", rows[:1]))["OUTPUT0"].tolist() == rows[:1]
            with pytest.raises(InvalidInput, match=r"request 2 of 2: rows 8 to 8.*max_request_bytes="):
                await client.infer("identity_bytes", rows)
            with pytest.raises(InvalidInput, match=r"would send 1,020 bytes .* limit of 1,000 bytes"):
                await client.classify("tiny_classifier", rows[-1][0])

    asyncio.run(run())
    assert b"async-limit-row-0" in proxy.sent  # the one request that fitted went out
    assert b"async-limit-row-1" not in proxy.sent and b"async-limit-over" not in proxy.sent
