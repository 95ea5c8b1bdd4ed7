"""Health checks and waiting for readiness, against a live server and a dead address."""

from __future__ import annotations

import time

import numpy as np
import pytest

from tritonkit.client import RetryPolicy, ServerUnavailable, Timeout, TritonClient
from tritonkit.server import EmbeddedServer, free_port

from .conftest import url_of

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


def test_stopped_server_gives_server_unavailable_after_bounded_retries_within_the_deadline(
    stoppable_triton: EmbeddedServer, protocol: str
) -> None:
    policy = RetryPolicy(max_retries=3, backoff_s=0.05, max_backoff_s=0.1)
    a = np.ones((2, 16), np.float32)
    with TritonClient(url_of(stoppable_triton, protocol), timeout_s=5, retries=policy) as client:
        # a working client first: its connection and cached model metadata outlive the server
        assert client.server_metadata().name == "triton"
        np.testing.assert_array_equal(client.infer("add_sub", {"INPUT0": a, "INPUT1": a})["OUTPUT0"], 2 * a)
        stoppable_triton.stop()
        calls = {
            "server_metadata": client.server_metadata,
            "infer": lambda: client.infer("add_sub", {"INPUT0": a, "INPUT1": a}),
        }
        for name, call in calls.items():
            started = time.monotonic()
            with pytest.raises(ServerUnavailable, match="gave up after 4 attempts") as caught:
                call()
            elapsed = time.monotonic() - started
            # four quick refusals and at most 0.3 s of backoff: far inside the 5 s deadline
            assert elapsed < 2.0, (name, elapsed)
            assert caught.value.protocol == protocol, name
        assert client.is_live() is False


def test_retries_stop_at_the_deadline_with_the_last_error() -> None:
    policy = RetryPolicy(max_retries=100, backoff_s=0.2, max_backoff_s=0.2)
    with TritonClient(f"http://127.0.0.1:{free_port()}", timeout_s=0.8, retries=policy) as dead:
        started = time.monotonic()
        with pytest.raises((ServerUnavailable, Timeout)):
            dead.server_metadata()
        assert time.monotonic() - started < 1.2
