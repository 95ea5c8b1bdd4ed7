"""System shared memory: same answers as the socket, regions reused, nothing left behind."""

from __future__ import annotations

import os

import numpy as np
import pytest

from tritonkit.client import TritonClient

pytestmark = pytest.mark.integration


def _server_regions(client: TritonClient) -> list[str]:
    raw = client._call(  # what the server has registered, straight from tritonclient
        "shm_status", lambda c, kw: c.get_system_shared_memory_status(**kw), client._settings.deadline(5)
    )
    if isinstance(raw, list):
        return [r["name"] for r in raw]
    return list(raw.regions)


def _local_regions(prefix: str) -> list[str]:
    return [name for name in os.listdir("/dev/shm") if name.startswith(prefix)]


def test_shared_memory_gives_the_same_answers_and_leaves_no_region(client: TritonClient) -> None:
    rng = np.random.default_rng(1)
    a = rng.random((20, 16), dtype=np.float32)  # 3 requests of at most 8
    b = rng.random((20, 16), dtype=np.float32)
    expected = client.infer("add_sub", {"INPUT0": a, "INPUT1": b})
    with client.shared_memory() as shm:
        prefix = shm.pool.prefix
        got = client.infer("add_sub", {"INPUT0": a, "INPUT1": b}, shared_memory=shm)
        names = shm.region_names
        assert len(names) == 4  # two inputs, two outputs
        assert sorted(_server_regions(client)) == sorted(names)
        assert len(_local_regions(prefix)) == 4
        again = client.infer("add_sub", {"INPUT0": b, "INPUT1": a}, shared_memory=shm)
        assert shm.region_names == names  # reused, not made anew
        bytes_out = client.infer("identity_bytes", [[b"text"]], shared_memory=shm)  # BYTES: by socket
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name])
    np.testing.assert_array_equal(again["OUTPUT0"], a + b)
    assert bytes_out["OUTPUT0"].tolist() == [[b"text"]]
    assert _server_regions(client) == []
    assert _local_regions(prefix) == []


def test_regions_grow_when_a_larger_tensor_comes(client: TritonClient) -> None:
    with client.shared_memory() as shm:
        small = client.infer("scores", np.ones((1, 4), np.float32), shared_memory=shm)
        first = shm.region_names
        large = client.infer("scores", np.ones((8, 4), np.float32), shared_memory=shm)
        assert set(shm.region_names).isdisjoint(first)
        assert sorted(_server_regions(client)) == sorted(shm.region_names)
        prefix = shm.pool.prefix
    assert small["SCORES"].shape == (1, 4) and large["SCORES"].shape == (8, 4)
    assert _server_regions(client) == [] and _local_regions(prefix) == []


def test_closing_the_client_removes_regions_left_open(triton_url_http: str) -> None:
    client = TritonClient(triton_url_http)
    shm = client.shared_memory()
    client.infer("scores", np.ones((2, 4), np.float32), shared_memory=shm)
    prefix = shm.pool.prefix
    assert _local_regions(prefix)
    client.close()
    assert _local_regions(prefix) == []
    with TritonClient(triton_url_http) as other:
        assert not [r for r in _server_regions(other) if r.startswith(prefix)]
