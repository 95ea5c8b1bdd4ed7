"""AsyncTritonClient: the same answers as the sync client, for both protocols."""

from __future__ import annotations

import asyncio
import io
import os
import time

import numpy as np
import pytest
from PIL import Image

from tritonkit.client import AsyncTritonClient, InferenceFailed, ModelNotFound, Timeout, TritonClient
from tritonkit.server import EmbeddedServer, free_port

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
