"""What a benchmark found, as plain frozen dataclasses (``dataclasses.asdict`` gives the JSON)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ._local import MachineInfo


@dataclass(frozen=True)
class LatencySummary:
    """Client-side latency of the successful requests, in milliseconds."""

    mean_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> LatencySummary | None:
        if not seconds:
            return None
        ms = np.asarray(seconds, dtype=np.float64) * 1000.0
        p50, p90, p99 = np.percentile(ms, [50, 90, 99])
        return cls(
            mean_ms=round(float(ms.mean()), 3),
            p50_ms=round(float(p50), 3),
            p90_ms=round(float(p90), 3),
            p99_ms=round(float(p99), 3),
            max_ms=round(float(ms.max()), 3),
        )


@dataclass(frozen=True)
class ModelFigures:
    """What the server says one model did in the window: requests, batching and where time went.

    ``role`` is ``pipeline`` for an ensemble, ``step`` for its composing models, ``model`` for
    a model on its own. Times are averages per successful request, in milliseconds.
    """

    model: str
    version: str
    role: str
    requests: float
    failures: float
    executions: float
    inferences: float
    avg_batch_size: float | None
    avg_request_ms: float | None
    avg_queue_ms: float | None
    avg_compute_input_ms: float | None
    avg_compute_infer_ms: float | None
    avg_compute_output_ms: float | None


@dataclass(frozen=True)
class ProcessFigures:
    """CPU and memory of the server's processes of one kind (the server, or one model's stubs)."""

    label: str
    processes: int
    cpu_cores: float
    cpu_ms_per_request: float | None
    rss_mib: float
    pss_mib: float | None


@dataclass(frozen=True)
class ServerFigures:
    """The server side of one level: metrics deltas and, for a local server, its processes.

    ``rss_mib``/``pss_mib`` are the peak totals over the server and all its backend stubs (RSS
    counts shared library pages once per process; PSS shares them out). ``note`` says what
    could not be measured.
    """

    models: tuple[ModelFigures, ...] = ()
    processes: tuple[ProcessFigures, ...] = ()
    rss_mib: float | None = None
    pss_mib: float | None = None
    note: str | None = None

    def model(self, name: str) -> ModelFigures:
        for figures in self.models:
            if figures.model == name:
                return figures
        raise KeyError(f"no server figures for model {name!r}")


@dataclass(frozen=True)
class MachineLoad:
    """How busy the machine was: load averages at start and end, and the whole machine's busy
    cores during the window (everything that ran, this benchmark included)."""

    loadavg_start: float | None
    loadavg_end: float | None
    busy_cores: float | None


@dataclass(frozen=True)
class LevelResult:
    """One concurrency level: ``concurrency`` requests in flight for ``elapsed_s`` seconds.

    ``throughput`` counts successful requests per second over the whole window (the drain of
    the last in-flight requests included); the ratios compare with the in-process reference.
    """

    concurrency: int
    requests: int
    successes: int
    errors: Mapping[str, int]
    error_examples: Mapping[str, str]
    elapsed_s: float
    throughput: float
    latency: LatencySummary | None
    client_cpu_s: float
    client_cpu_ms_per_request: float | None
    load: MachineLoad
    server: ServerFigures | None
    throughput_vs_reference: float | None = None
    p50_vs_reference: float | None = None

    @property
    def error_count(self) -> int:
        return int(sum(self.errors.values()))


@dataclass(frozen=True)
class ReferenceLayout:
    """How the in-process reference uses the cores: parallel streams (threads, each with its
    own onnxruntime session of ``intra_op_threads``) running batches of ``batch_size``."""

    streams: int
    intra_op_threads: int
    batch_size: int

    def __str__(self) -> str:
        return f"{self.streams} stream(s) x {self.intra_op_threads} thread(s), batch {self.batch_size}"


@dataclass(frozen=True)
class ReferenceTrial:
    layout: ReferenceLayout
    throughput: float


@dataclass(frozen=True)
class ReferenceResult:
    """The practical limit: the same preprocessing and the same ONNX model, in this process.

    ``throughput`` (images or requests per second, best layout) and ``latency_ms`` (one image
    alone, preprocessing included, best thread count) are means over ``throughput_runs`` and
    ``latency_runs``: the reference is measured before the served levels and again after them.
    """

    onnx_path: str
    preprocessing: str
    best: ReferenceLayout
    trials: tuple[ReferenceTrial, ...]
    throughput_runs: tuple[float, ...]
    latency_runs: tuple[float, ...]
    latency_p99_ms: float
    latency_threads: int
    latency_spinning: bool
    cpu_ms_per_item: float | None
    loadavg: tuple[float | None, ...] = ()

    @property
    def throughput(self) -> float:
        return float(np.mean(self.throughput_runs))

    @property
    def latency_ms(self) -> float:
        return float(np.mean(self.latency_runs))


@dataclass(frozen=True)
class BenchResult:
    """Everything one ``tritonkit bench`` run measured."""

    model: str
    url: str
    protocol: str
    started: str
    machine: MachineInfo
    workload: str
    request_bytes: float
    warmup_s: float
    duration_s: float | None
    requests_per_level: int | None
    levels: tuple[LevelResult, ...]
    reference: ReferenceResult | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def level(self, concurrency: int) -> LevelResult:
        for level in self.levels:
            if level.concurrency == concurrency:
                return level
        raise KeyError(f"no level with concurrency {concurrency}")
