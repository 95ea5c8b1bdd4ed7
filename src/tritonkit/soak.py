"""Soak a served model: many concurrent clients for a while, counting errors and watching memory.

The question a soak answers is "does it stay healthy under sustained load": zero failed requests,
and resident memory of the server and its backend stubs flat between the start and the end of
the run (a leak shows as steady growth, not as the first warm-up allocations).
"""

from __future__ import annotations

import asyncio
import collections
import json
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from tritonkit.client import AsyncTritonClient, TritonClientError


@dataclass
class SoakReport:
    """What a soak run measured; ``memory_growth`` compares the first and last windows."""

    model: str
    url: str
    clients: int
    duration_s: float
    requests: int
    errors: dict[str, int]
    throughput_per_s: float
    rss_first_mb: float | None
    rss_last_mb: float | None
    window_s: float
    rss_samples: list[tuple[float, float]] = field(default_factory=list)

    @property
    def memory_growth(self) -> float | None:
        if not self.rss_first_mb or self.rss_last_mb is None:
            return None
        return self.rss_last_mb / self.rss_first_mb - 1.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "memory_growth": self.memory_growth}, indent=2)


def resident_mb(pids: Sequence[int]) -> float:
    """Summed resident memory (VmRSS) of ``pids`` in MiB; processes that are gone count 0."""
    total_kb = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
        except OSError:
            continue
    return total_kb / 1024


class _MemorySampler(threading.Thread):
    def __init__(self, pids: Callable[[], Sequence[int]], every_s: float) -> None:
        super().__init__(name="tritonkit-soak-memory", daemon=True)
        self._pids = pids
        self._every_s = every_s
        self._halt = threading.Event()
        self.samples: list[tuple[float, float]] = []

    def run(self) -> None:
        start = time.monotonic()
        while not self._halt.is_set():
            self.samples.append((time.monotonic() - start, resident_mb(self._pids())))
            self._halt.wait(self._every_s)

    def stop(self) -> None:
        self._halt.set()
        self.join()


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants (e.g. ``tritonkit serve`` -> tritonserver -> stubs)."""
    children: dict[int, list[int]] = collections.defaultdict(list)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat[stat.rfind(")") + 2 :].split()[1])
        children[parent].append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def _window_mean(samples: list[tuple[float, float]], start: float, end: float) -> float | None:
    values = [mb for t, mb in samples if start <= t <= end]
    return statistics.fmean(values) if values else None


async def _soak(
    url: str, model: str, payloads: Sequence[np.ndarray], clients: int, duration_s: float, timeout_s: float
) -> tuple[int, collections.Counter[str]]:
    errors: collections.Counter[str] = collections.Counter()
    done = 0
    stop_at = time.monotonic() + duration_s
    async with AsyncTritonClient(url, timeout_s=timeout_s, retries=0) as client:

        async def one_client(index: int) -> None:
            nonlocal done
            turn = index
            while time.monotonic() < stop_at:
                try:
                    await client.infer(model, payloads[turn % len(payloads)])
                    done += 1
                except TritonClientError as exc:
                    errors[type(exc).__name__] += 1
                turn += 1

        await asyncio.gather(*(one_client(i) for i in range(clients)))
    return done, errors


def run_soak(
    url: str,
    model: str,
    images: Sequence[bytes],
    *,
    clients: int = 64,
    duration_s: float = 60.0,
    window_s: float = 10.0,
    pids: Callable[[], Sequence[int]] | None = None,
    timeout_s: float = 60.0,
    warmup_s: float = 0.0,
) -> SoakReport:
    """Send ``images`` (one per request, round robin) from ``clients`` concurrent clients.

    ``warmup_s`` of the same load runs first, unmeasured, so first-touch allocations (arenas,
    caches) are not mistaken for growth.
    """
    if clients < 1 or duration_s <= 0:
        raise ValueError("a soak needs at least one client and a positive duration")
    payloads = [np.array([[image]], dtype=object) for image in images]
    if warmup_s > 0:
        asyncio.run(_soak(url, model, payloads, clients, warmup_s, timeout_s))
    sampler = _MemorySampler(pids, every_s=0.5) if pids else None
    if sampler:
        sampler.start()
    started = time.monotonic()
    try:
        done, errors = asyncio.run(_soak(url, model, payloads, clients, duration_s, timeout_s))
    finally:
        if sampler:
            sampler.stop()
    elapsed = time.monotonic() - started
    samples = sampler.samples if sampler else []
    return SoakReport(
        model=model,
        url=url,
        clients=clients,
        duration_s=elapsed,
        requests=done,
        errors=dict(errors),
        throughput_per_s=done / elapsed,
        rss_first_mb=_window_mean(samples, 0.0, window_s),
        rss_last_mb=_window_mean(samples, elapsed - window_s, elapsed),
        window_s=window_s,
        rss_samples=samples,
    )


__all__ = ["SoakReport", "process_tree", "resident_mb", "run_soak"]
