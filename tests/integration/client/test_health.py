"""Health checks and waiting for readiness, against a live server and a dead address."""

from __future__ import annotations

import time

import pytest

from tritonkit.client import RetryPolicy, ServerUnavailable, Timeout, TritonClient
from tritonkit.server import EmbeddedServer, free_port

pytestmark = pytest.mark.integration


def test_live_server_is_live_and_ready_with_its_models_ready(client: TritonClient) -> None:
    assert client.is_live()
    assert client.is_ready()
    assert client.is_model_ready("add_sub")
    assert client.is_model_ready("add_sub", version=1)
    assert not client.is_model_ready("add_sub", version=7)
    assert not client.is_model_ready("no_such_model")


@pytest.mark.parametrize("scheme", ["http", "grpc"])
def test_dead_server_is_false_not_an_exception(scheme: str) -> None:
    with TritonClient(f"{scheme}://127.0.0.1:{free_port()}", timeout_s=2) as dead:
        assert dead.is_live() is False
        assert dead.is_ready() is False
        assert dead.is_model_ready("add_sub") is False


def test_wait_until_ready_returns_once_the_model_is_ready(client: TritonClient) -> None:
    client.wait_until_ready("add_sub", timeout_s=5)


def test_wait_until_ready_says_the_model_step_timed_out(client: TritonClient) -> None:
    with pytest.raises(Timeout, match=r"was not model 'no_such_model' ready after 0\.5 s"):
        client.wait_until_ready("no_such_model", timeout_s=0.5)


def test_wait_until_ready_says_the_live_step_timed_out() -> None:
    with TritonClient(f"grpc://127.0.0.1:{free_port()}") as dead:
        started = time.monotonic()
        with pytest.raises(Timeout, match=r"was not live after 0\.6 s"):
            dead.wait_until_ready(timeout_s=0.6)
        assert time.monotonic() - started < 1.5


@pytest.mark.parametrize("scheme", ["http", "grpc"])
def test_stopped_server_gives_server_unavailable_after_bounded_retries_within_the_deadline(
    triton: EmbeddedServer, scheme: str
) -> None:
    # A port that had a server and has none now: what a stopped server looks like to a client.
    policy = RetryPolicy(max_retries=3, backoff_s=0.05, max_backoff_s=0.1)
    with TritonClient(f"{scheme}://127.0.0.1:{free_port()}", timeout_s=5, retries=policy) as dead:
        started = time.monotonic()
        with pytest.raises(ServerUnavailable, match="gave up after 4 attempts") as caught:
            dead.server_metadata()
        elapsed = time.monotonic() - started
    assert elapsed < 1.5
    assert caught.value.protocol == scheme


def test_retries_stop_at_the_deadline_with_the_last_error() -> None:
    policy = RetryPolicy(max_retries=100, backoff_s=0.2, max_backoff_s=0.2)
    with TritonClient(f"http://127.0.0.1:{free_port()}", timeout_s=0.8, retries=policy) as dead:
        started = time.monotonic()
        with pytest.raises((ServerUnavailable, Timeout)):
            dead.server_metadata()
        assert time.monotonic() - started < 1.2
