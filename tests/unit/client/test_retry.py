"""Retries: bounded, jittered, inside the deadline, and never for a request the server refused."""

from __future__ import annotations

import random
import time
from typing import Any

import pytest
from tritonclient.utils import InferenceServerException

from tritonkit.client import InvalidInput, RetryPolicy, ServerUnavailable, TritonClient
from tritonkit.client._retry import Deadline


def test_delays_are_jittered_below_a_capped_exponential() -> None:
    policy = RetryPolicy(max_retries=5, backoff_s=0.1, max_backoff_s=0.3)
    rng = random.Random(0)
    for retry, ceiling in [(1, 0.1), (2, 0.2), (3, 0.3), (6, 0.3)]:
        delays = [policy.delay(retry, rng) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8  # spread over the range, not fixed


def test_bad_policies_and_deadlines_are_refused() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_retries=-1)
    with pytest.raises(ValueError):
        Deadline(0)


class _Flaky:
    """Stands in for tritonclient's client: fails ``failures`` times, then answers."""

    def __init__(self, failures: int, error: Exception) -> None:
        self.calls = 0
        self.failures = failures
        self.error = error

    def get_server_metadata(self, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return {"name": "triton", "version": "2.51.0", "extensions": []}

    def close(self) -> None:
        pass


def _client_with(fake: _Flaky, protocol: str, **kwargs: Any) -> TritonClient:
    client = TritonClient(f"{protocol}://127.0.0.1:1", **kwargs)
    client._connection = lambda remaining_s: fake  # type: ignore[method-assign]
    return client


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_connection_failures_are_retried_until_an_answer(protocol: str) -> None:
    fake = _Flaky(2, ConnectionResetError(104, "reset"))
    with _client_with(fake, protocol, retries=RetryPolicy(max_retries=2, backoff_s=0.01)) as client:
        assert client.server_metadata().version == "2.51.0"
    assert fake.calls == 3


@pytest.mark.parametrize(
    ("protocol", "status"),
    [("http", "503"), ("http", "502"), ("http", "504"), ("grpc", "StatusCode.UNAVAILABLE")],
)
def test_unavailable_answers_are_retried(protocol: str, status: str) -> None:
    fake = _Flaky(1, InferenceServerException("server is busy", status=status))
    with _client_with(fake, protocol, retries=RetryPolicy(max_retries=1, backoff_s=0.01)) as client:
        client.server_metadata()
    assert fake.calls == 2


@pytest.mark.parametrize(("protocol", "status"), [("http", "400"), ("grpc", "StatusCode.INVALID_ARGUMENT")])
def test_a_refused_request_is_never_retried(protocol: str, status: str) -> None:
    fake = _Flaky(5, InferenceServerException("unexpected shape for input 'X'", status=status))
    with _client_with(fake, protocol, retries=5) as client, pytest.raises(InvalidInput):
        client.server_metadata()
    assert fake.calls == 1


def test_retries_give_up_after_the_limit_saying_how_many_attempts() -> None:
    fake = _Flaky(100, ConnectionRefusedError(111, "refused"))
    with _client_with(fake, "http", retries=RetryPolicy(max_retries=3, backoff_s=0.001)) as client:
        with pytest.raises(ServerUnavailable, match="gave up after 4 attempts"):
            client.server_metadata()
    assert fake.calls == 4


def test_no_retry_sleeps_past_the_deadline() -> None:
    fake = _Flaky(100, ConnectionRefusedError(111, "refused"))
    policy = RetryPolicy(max_retries=50, backoff_s=10, max_backoff_s=10)
    with _client_with(fake, "grpc", retries=policy, timeout_s=0.5) as client:
        started = time.monotonic()
        with pytest.raises(ServerUnavailable):
            client.server_metadata()
        assert time.monotonic() - started < 0.6


def test_http_socket_timeouts_cover_the_calls_deadline_in_a_few_steps() -> None:
    from tritonkit.client._client import http_socket_timeout

    assert http_socket_timeout(30, 12.5) == 30  # the client's own timeout for ordinary calls
    assert http_socket_timeout(30, 30) == 30
    assert http_socket_timeout(30, 30.5) == 60  # never shorter than what the call has left
    assert http_socket_timeout(2, 119.5) == 128
    # every deadline up to an hour is served by one of a handful of connections
    assert len({http_socket_timeout(30, t / 10) for t in range(1, 36_000)}) == 8
