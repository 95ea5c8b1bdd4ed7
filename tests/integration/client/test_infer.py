"""Inference: names, dtypes, BYTES, batch dimension, split batches, failures and deadlines."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import pytest

from tritonkit.client import InferenceFailed, InvalidInput, Timeout, TritonClient
from tritonkit.server import EmbeddedServer

from .conftest import most_at_once, url_of

if TYPE_CHECKING:
    from conftest import TCPProxy

pytestmark = pytest.mark.integration


@pytest.fixture
def both(triton: EmbeddedServer) -> Iterator[tuple[TritonClient, TritonClient]]:
    with TritonClient(triton.http_url) as http, TritonClient(triton.grpc_url) as grpc:
        yield http, grpc


def test_inference_is_identical_over_both_protocols(both: tuple[TritonClient, TritonClient]) -> None:
    http, grpc = both
    rng = np.random.default_rng(0)
    inputs = {
        "INPUT0": rng.random((3, 16), dtype=np.float32),
        "INPUT1": rng.random((3, 16), dtype=np.float32),
    }
    by_http, by_grpc = http.infer("add_sub", inputs), grpc.infer("add_sub", inputs)
    assert by_http.keys() == by_grpc.keys() == {"OUTPUT0", "OUTPUT1"}
    for name in by_http:
        np.testing.assert_array_equal(by_http[name], by_grpc[name])
    np.testing.assert_array_equal(by_http["OUTPUT0"], inputs["INPUT0"] + inputs["INPUT1"])
    np.testing.assert_array_equal(by_http["OUTPUT1"], inputs["INPUT0"] - inputs["INPUT1"])


def test_one_input_model_takes_a_single_array(client: TritonClient) -> None:
    out = client.infer("scores", np.array([[0.1, 0.2, 0.3, 0.4]], dtype=np.float32))
    np.testing.assert_array_equal(out["SCORES"], np.array([[0.1, 0.2, 0.3, 0.4]], np.float32))


def test_missing_batch_dimension_is_added_and_removed_again(client: TritonClient) -> None:
    out = client.infer(
        "add_sub", {"INPUT0": np.arange(16, dtype=np.float32), "INPUT1": np.ones(16, np.float32)}
    )
    assert out["OUTPUT0"].shape == (16,)
    np.testing.assert_array_equal(out["OUTPUT0"], np.arange(16) + 1)


def test_lossless_values_are_cast_to_the_models_dtype(client: TritonClient) -> None:
    out = client.infer("add_sub", {"INPUT0": list(range(16)), "INPUT1": np.full(16, 0.5)})
    assert out["OUTPUT0"].dtype == np.float32
    np.testing.assert_array_equal(out["OUTPUT0"], np.arange(16) + 0.5)


def test_lossy_cast_is_refused_with_a_clear_message(client: TritonClient) -> None:
    with pytest.raises(InvalidInput, match=r"INPUT0.*takes FP32.*float64.*astype\(np.float32\)"):
        client.infer("add_sub", {"INPUT0": np.full(16, 0.1), "INPUT1": np.zeros(16, np.float32)})


def test_wrong_shape_and_names_are_refused_before_sending(client: TritonClient) -> None:
    with pytest.raises(InvalidInput, match=r"shape \[batch, 16\], got \[1, 15\]"):
        client.infer("add_sub", {"INPUT0": np.zeros(15), "INPUT1": np.zeros(15)})
    with pytest.raises(InvalidInput, match="has no input 'INPUT9'"):
        client.infer("add_sub", {"INPUT0": np.zeros(16), "INPUT1": np.zeros(16), "INPUT9": 1})
    with pytest.raises(InvalidInput, match="needs input 'INPUT1'"):
        client.infer("add_sub", {"INPUT0": np.zeros(16)})
    with pytest.raises(InvalidInput, match="pass a dict"):
        client.infer("add_sub", np.zeros(16))


def test_strings_and_bytes_become_bytes_tensors(client: TritonClient) -> None:
    out = client.infer("identity_bytes", [["héllo"], [b"\x00raw"]])
    assert out["OUTPUT0"].tolist() == [["héllo".encode()], [b"\x00raw"]]
    assert client.infer("identity_bytes", "solo")["OUTPUT0"].tolist() == [b"solo"]
    with pytest.raises(InvalidInput, match="takes BYTES"):
        client.infer("identity_bytes", np.ones((1, 1)))


def test_batch_larger_than_max_batch_size_is_split_and_reassembled_in_order(client: TritonClient) -> None:
    before = client.statistics("add_sub")[0].execution_count
    a = np.arange(30 * 16, dtype=np.float32).reshape(30, 16)
    out = client.infer("add_sub", {"INPUT0": a, "INPUT1": np.ones_like(a)})
    np.testing.assert_array_equal(out["OUTPUT0"], a + 1)
    np.testing.assert_array_equal(out["OUTPUT1"], a - 1)
    # 30 rows, max_batch_size 8: at least 4 executions on the server
    assert client.statistics("add_sub")[0].execution_count - before >= 4


def test_model_failure_raises_inference_failed_with_the_models_message(client: TritonClient) -> None:
    with pytest.raises(InferenceFailed, match="negative input is not allowed") as caught:
        client.infer("failing", np.array([-1.0], np.float32))
    assert caught.value.model == "failing"
    assert client.infer("failing", np.array([2.0], np.float32))["Y"].tolist() == [2.0]


def test_deadline_is_enforced_for_a_slow_model(client: TritonClient) -> None:
    started = time.monotonic()
    with pytest.raises(Timeout, match=r"did not finish within 0\.5 s"):
        client.infer("slow", np.array([1.5], np.float32), timeout_s=0.5)
    assert time.monotonic() - started < 1.0
    # the client stays usable after an abandoned call
    assert client.infer("slow", np.array([0.0], np.float32))["SLEPT"].tolist() == [0.0]


def test_one_client_is_safe_to_share_across_threads(client: TritonClient) -> None:
    def work(seed: int) -> bool:
        a = np.full((2, 16), seed, np.float32)
        out = client.infer("add_sub", {"INPUT0": a, "INPUT1": a})
        return bool(np.array_equal(out["OUTPUT0"], 2 * a)) and client.is_live()

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        assert all(pool.map(work, range(48)))


def test_outputs_can_be_chosen(client: TritonClient) -> None:
    out = client.infer("add_sub", {"INPUT0": np.ones(16), "INPUT1": np.ones(16)}, outputs=["OUTPUT1"])
    assert list(out) == ["OUTPUT1"]


def test_a_per_call_deadline_longer_than_the_clients_timeout_is_honoured(
    triton: EmbeddedServer, protocol: str
) -> None:
    url = triton.http_url if protocol == "http" else triton.grpc_url
    with TritonClient(url, timeout_s=1.0, retries=0) as short:
        started = time.monotonic()
        out = short.infer("slow", np.array([2.0], np.float32), timeout_s=6)
        assert out["SLEPT"].tolist() == [2.0]
        assert 2.0 <= time.monotonic() - started < 6
        # and the client's own, shorter deadline still holds for calls that do not override it
        with pytest.raises(Timeout, match=r"did not finish within 1 s"):
            short.infer("slow", np.array([2.0], np.float32))


@pytest.mark.parametrize("concurrency", [1, 3])
def test_split_batches_go_out_concurrently_but_never_more_than_concurrency_at_once(
    triton: EmbeddedServer, timed_model: str, protocol: str, concurrency: int
) -> None:
    # 12 rows for a max_batch_size of 2: six requests, for a model with four instances, so
    # the server would run four at once if the client sent them all
    x = np.arange(12, dtype=np.float32).reshape(12, 1)
    with TritonClient(url_of(triton, protocol), concurrency=concurrency) as client:
        out = client.infer(timed_model, x)
    np.testing.assert_array_equal(out["Y"], x)  # reassembled in order
    spans = out["SPAN"][::2]  # both rows of a request share its span
    assert len({tuple(span) for span in spans}) == 6
    assert most_at_once(spans) == concurrency


def test_a_request_over_the_size_limit_is_refused_before_any_byte_of_it_is_sent(
    wire_proxy: tuple[str, TCPProxy], protocol: str
) -> None:
    url, proxy = wire_proxy
    fits, too_big = b"size-limit-fits", b"size-limit-over" + b"x" * 1000
    # one request at a time: a check made request by request would have sent the first
    with TritonClient(url, max_request_bytes=1000, concurrency=1) as client:
        assert client.infer("identity_bytes", [[fits]])["OUTPUT0"].tolist() == [[fits]]
        assert fits in proxy.sent  # what the client sends, the proxy sees
        with pytest.raises(InvalidInput) as caught:
            client.infer("identity_bytes", [[too_big]])
        # a split batch: the first request fits, the second does not, and neither goes
        rows = [[b"size-limit-row-%d" % i] for i in range(8)] + [[too_big]]
        with pytest.raises(InvalidInput, match=r"request 2 of 2: rows 8 to 8"):
            client.infer("identity_bytes", rows)
        assert client.is_live()
    message = str(caught.value)
    assert "model 'identity_bytes' would send 1,019 bytes of tensor data (INPUT0 1,019 bytes)" in message
    assert "limit of 1,000 bytes" in message and "max_request_bytes=" in message
    assert caught.value.status is None  # found by the client: nothing was answered
    assert b"size-limit-over" not in proxy.sent
    assert b"size-limit-row-" not in proxy.sent
