"""One deadline per call, and the retry policy that lives inside it."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass


class Deadline:
    """A point in time (monotonic clock) that a whole call, retries included, must finish by."""

    def __init__(self, timeout_s: float) -> None:
        if timeout_s <= 0:
            raise ValueError(f"a timeout must be positive, got {timeout_s}")
        self.timeout_s = timeout_s
        self._end = time.monotonic() + timeout_s

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self._end - time.monotonic())

    def expired(self) -> bool:
        return self.remaining() <= 0.0


@dataclass(frozen=True)
class RetryPolicy:
    """Retries for connection failures only, with exponential backoff and full jitter.

    ``max_retries`` is the number of attempts after the first. A delay that would end after the
    call's deadline is not slept: the call fails with the last error instead.
    """

    max_retries: int = 2
    backoff_s: float = 0.1
    max_backoff_s: float = 2.0

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be 0 or more, got {self.max_retries}")
        if self.backoff_s < 0 or self.max_backoff_s < 0:
            raise ValueError("backoff times must not be negative")

    def delay(self, retry: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1-based): uniform in [0, capped exponential]."""
        ceiling = min(self.max_backoff_s, self.backoff_s * (2 ** (retry - 1)))
        return (rng or random).uniform(0.0, ceiling)


def as_retry_policy(retries: int | RetryPolicy) -> RetryPolicy:
    return retries if isinstance(retries, RetryPolicy) else RetryPolicy(max_retries=retries)
