"""The closed loop, driven by a fake sender: bounds, concurrency, errors by kind."""

from __future__ import annotations

import asyncio

import pytest
from tritonclient.utils import InferenceServerException

from tritonkit.bench._engine import LiveStatus, closed_loop, error_kind
from tritonkit.bench._results import LatencySummary


class FakeSender:
    """Answers after ``delay_s``; fails the payloads in ``failing`` with ``error``."""

    def __init__(self, delay_s: float = 0.002, failing: frozenset[int] = frozenset(), error=None) -> None:
        self.delay_s = delay_s
        self.failing = failing
        self.error = error
        self.in_flight = 0
        self.most_in_flight = 0
        self.sent: list[int] = []

    async def send(self, payload: int) -> None:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        self.sent.append(payload)
        try:
            await asyncio.sleep(self.delay_s)
            if payload in self.failing:
                raise self.error
        finally:
            self.in_flight -= 1

    async def close(self) -> None:
        pass


def test_a_request_count_completes_exactly_that_many_with_the_concurrency_in_flight() -> None:
    sender = FakeSender()
    samples = asyncio.run(closed_loop(sender, payloads=5, concurrency=4, requests=37))
    assert samples.completed == 37 == len(samples.latencies_s)
    assert sender.most_in_flight == 4
    assert sorted(set(sender.sent)) == [0, 1, 2, 3, 4]  # round-robin over the payloads
    assert not samples.errors


def test_a_duration_stops_sending_and_waits_for_the_last_answers() -> None:
    sender = FakeSender(delay_s=0.01)
    samples = asyncio.run(closed_loop(sender, payloads=3, concurrency=2, duration_s=0.2))
    assert 0.2 <= samples.elapsed_s < 0.5
    assert sender.in_flight == 0
    assert 10 <= samples.completed <= 45


def test_errors_are_counted_by_kind_with_an_example_and_leave_latencies_to_successes() -> None:
    error = InferenceServerException("image 0: not an image", status="StatusCode.INVALID_ARGUMENT")
    sender = FakeSender(failing=frozenset({1}), error=error)
    samples = asyncio.run(closed_loop(sender, payloads=4, concurrency=2, requests=20))
    assert samples.errors == {"INVALID_ARGUMENT": 5}
    assert "not an image" in samples.examples["INVALID_ARGUMENT"]
    assert len(samples.latencies_s) == 15


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (InferenceServerException("x", status="StatusCode.UNAVAILABLE"), "UNAVAILABLE"),
        (InferenceServerException("x", status="400"), "HTTP 400"),
        (InferenceServerException("closed"), "InferenceServerException"),
        (TimeoutError(), "TIMEOUT"),
        (ConnectionResetError(), "ConnectionResetError"),
    ],
)
def test_error_kinds_are_short_and_stable(error: BaseException, kind: str) -> None:
    assert error_kind(error) == kind


def test_the_live_display_hears_from_the_loop_and_at_the_end() -> None:
    seen: list[LiveStatus] = []
    asyncio.run(
        closed_loop(FakeSender(delay_s=0.01), 2, 2, duration_s=0.15, on_tick=seen.append, tick_s=0.05)
    )
    assert len(seen) >= 2
    assert seen[-1].completed >= seen[0].completed
    assert seen[-1].throughput > 0


def test_exactly_one_bound_is_required() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        asyncio.run(closed_loop(FakeSender(), 1, 1))


def test_latency_summary_is_in_milliseconds_and_ordered() -> None:
    summary = LatencySummary.of([i / 1000 for i in range(1, 101)])
    assert summary is not None
    assert summary.p50_ms == pytest.approx(50.5)
    assert summary.p99_ms == pytest.approx(99.01)
    assert summary.mean_ms <= summary.p90_ms <= summary.p99_ms <= summary.max_ms == 100.0
    assert LatencySummary.of([]) is None
