"""The closed loop: ``concurrency`` requests always in flight, over tritonclient's asyncio clients.

Every request is built once per payload before the clock starts, so the loop only sends, waits
and records; the client shares the machine with the server and must stay cheap.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from tritonkit.client import Endpoint

from ._workload import Workload


class RequestSender(Protocol):
    """Sends the request of one payload and returns when the answer is in; raises on failure."""

    async def send(self, payload: int) -> None: ...

    async def close(self) -> None: ...


class _GrpcSender:
    def __init__(self, endpoint: Endpoint, model: str, workload: Workload, timeout_s: float) -> None:
        import tritonclient.grpc as grpcclient
        import tritonclient.grpc.aio as grpcaio

        self._client = grpcaio.InferenceServerClient(endpoint.address, ssl=endpoint.tls is not None)
        self._model = model
        self._timeout_s = timeout_s
        self._inputs = [
            [
                _filled(grpcclient.InferInput(t.name, list(t.array.shape), t.datatype), t.array)
                for t in payload
            ]
            for payload in workload.payloads
        ]
        self._outputs = [grpcclient.InferRequestedOutput(name) for name in workload.outputs]

    async def send(self, payload: int) -> None:
        await self._client.infer(
            self._model, self._inputs[payload], outputs=self._outputs, client_timeout=self._timeout_s
        )

    async def close(self) -> None:
        await self._client.close()


class _HttpSender:
    def __init__(
        self, endpoint: Endpoint, model: str, workload: Workload, timeout_s: float, concurrency: int
    ) -> None:
        import tritonclient.http as httpclient
        import tritonclient.http.aio as httpaio

        self._client = httpaio.InferenceServerClient(
            endpoint.address,
            conn_limit=max(concurrency, 1),
            conn_timeout=timeout_s,
            ssl=endpoint.tls is not None,
        )
        self._model = model
        self._inputs = [
            [
                _filled(httpclient.InferInput(t.name, list(t.array.shape), t.datatype), t.array, binary=True)
                for t in payload
            ]
            for payload in workload.payloads
        ]
        self._outputs = [httpclient.InferRequestedOutput(name, binary_data=True) for name in workload.outputs]

    async def send(self, payload: int) -> None:
        await self._client.infer(self._model, self._inputs[payload], outputs=self._outputs)

    async def close(self) -> None:
        await self._client.close()


def _filled(infer_input: Any, array: Any, binary: bool | None = None) -> Any:
    if binary is None:
        infer_input.set_data_from_numpy(array)
    else:
        infer_input.set_data_from_numpy(array, binary_data=binary)
    return infer_input


def open_sender(
    endpoint: Endpoint, model: str, workload: Workload, *, timeout_s: float, concurrency: int
) -> RequestSender:
    """A sender for ``endpoint``'s protocol with every payload's request prepared."""
    if endpoint.protocol == "grpc":
        return _GrpcSender(endpoint, model, workload, timeout_s)
    return _HttpSender(endpoint, model, workload, timeout_s, concurrency)


def error_kind(exc: BaseException) -> str:
    """A short, stable name for what went wrong: the gRPC code or HTTP status, else the type."""
    from tritonclient.utils import InferenceServerException

    if isinstance(exc, InferenceServerException):
        status = exc.status()
        if status:
            text = str(status).removeprefix("StatusCode.")
            return f"HTTP {text}" if text.isdigit() else text
        return "InferenceServerException"
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return "TIMEOUT"
    return type(exc).__name__


@dataclass(frozen=True)
class LiveStatus:
    """Where a running loop is, for a live display."""

    phase: str
    concurrency: int
    elapsed_s: float
    completed: int
    errors: int
    throughput: float
    p50_ms: float | None
    p99_ms: float | None


@dataclass
class LoopSamples:
    """What one closed loop recorded."""

    concurrency: int
    latencies_s: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)
    elapsed_s: float = 0.0

    @property
    def completed(self) -> int:
        return len(self.latencies_s) + sum(self.errors.values())


async def closed_loop(
    sender: RequestSender,
    payloads: int,
    concurrency: int,
    *,
    duration_s: float | None = None,
    requests: int | None = None,
    phase: str = "measure",
    on_tick: Callable[[LiveStatus], None] | None = None,
    tick_s: float = 0.25,
) -> LoopSamples:
    """Keep ``concurrency`` requests in flight until ``duration_s`` has passed or ``requests``
    have been sent, then wait for the last answers.

    With ``requests`` exactly that many requests complete (successes plus errors). Payloads are
    sent round-robin.
    """
    if (duration_s is None) == (requests is None):
        raise ValueError("give exactly one of duration_s and requests")
    samples = LoopSamples(concurrency)
    issued = 0
    started = time.perf_counter()
    stop_at = started + duration_s if duration_s is not None else float("inf")

    def more() -> bool:
        return issued < requests if requests is not None else time.perf_counter() < stop_at

    async def worker() -> None:
        nonlocal issued
        while more():
            payload = issued % payloads
            issued += 1  # one event loop thread: no lock needed between the check and this
            begin = time.perf_counter()
            try:
                await sender.send(payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                kind = error_kind(exc)
                samples.errors[kind] += 1
                samples.examples.setdefault(kind, str(exc)[:300])
            else:
                samples.latencies_s.append(time.perf_counter() - begin)

    async def ticker() -> None:
        while True:
            await asyncio.sleep(tick_s)
            if on_tick is not None:
                on_tick(live_status(samples, phase, time.perf_counter() - started))

    workers = [asyncio.ensure_future(worker()) for _ in range(concurrency)]
    tick = asyncio.ensure_future(ticker())
    try:
        await asyncio.gather(*workers)
    finally:
        tick.cancel()
        for task in workers:
            task.cancel()
        await asyncio.gather(tick, *workers, return_exceptions=True)
    samples.elapsed_s = time.perf_counter() - started
    if on_tick is not None:
        on_tick(live_status(samples, phase, samples.elapsed_s))
    return samples


def live_status(samples: LoopSamples, phase: str, elapsed_s: float) -> LiveStatus:
    import numpy as np

    recent = samples.latencies_s[-2000:]
    p50 = p99 = None
    if recent:
        p50, p99 = (float(v) * 1000 for v in np.percentile(recent, [50, 99]))
    return LiveStatus(
        phase=phase,
        concurrency=samples.concurrency,
        elapsed_s=elapsed_s,
        completed=samples.completed,
        errors=int(sum(samples.errors.values())),
        throughput=len(samples.latencies_s) / elapsed_s if elapsed_s > 0 else 0.0,
        p50_ms=p50,
        p99_ms=p99,
    )
