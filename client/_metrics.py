"""Triton's Prometheus metrics as typed snapshots, and the rates between two of them.

Triton counts an ensemble and each of its composing models separately; a snapshot that knows the
ensembles (``TritonClient.metrics()`` finds them) reports each ensemble as a pipeline with its
steps inside, so the totals count every request once.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

from prometheus_client.parser import text_string_to_metric_families

from ._errors import ServerUnavailable, Timeout, TritonClientError

_MODEL_COUNTERS = {
    "nv_inference_request_success": "request_success",
    "nv_inference_count": "inference_count",
    "nv_inference_exec_count": "execution_count",
    "nv_inference_request_duration_us": "request_duration_us",
    "nv_inference_queue_duration_us": "queue_duration_us",
    "nv_inference_compute_input_duration_us": "compute_input_duration_us",
    "nv_inference_compute_infer_duration_us": "compute_infer_duration_us",
    "nv_inference_compute_output_duration_us": "compute_output_duration_us",
    "nv_inference_pending_request_count": "pending_requests",
    "nv_cache_num_hits_per_model": "cache_hits",
    "nv_cache_num_misses_per_model": "cache_misses",
    "nv_cache_hit_duration_per_model": "cache_hit_duration_us",
    "nv_cache_miss_duration_per_model": "cache_miss_duration_us",
}
_SUMMARIES = {
    "nv_inference_request_summary_us": "request",
    "nv_inference_queue_summary_us": "queue",
    "nv_inference_compute_input_summary_us": "compute_input",
    "nv_inference_compute_infer_summary_us": "compute_infer",
    "nv_inference_compute_output_summary_us": "compute_output",
}
_CACHE = {
    "nv_cache_num_entries": "entries",
    "nv_cache_num_lookups": "lookups",
    "nv_cache_num_hits": "hits",
    "nv_cache_num_misses": "misses",
    "nv_cache_num_evictions": "evictions",
    "nv_cache_util": "utilization",
}
_GPU = {
    "nv_gpu_utilization": "utilization",
    "nv_gpu_memory_total_bytes": "memory_total_bytes",
    "nv_gpu_memory_used_bytes": "memory_used_bytes",
    "nv_gpu_power_usage": "power_usage_watts",
}


@dataclass(frozen=True)
class ModelCounters:
    """Cumulative counters of one model version since it was loaded (durations in µs).

    ``summaries`` holds latency quantiles in µs by phase (``{"request": {0.5: ..., 0.99: ...}}``)
    when the server runs with ``--metrics-config=summary_latencies=true``; the cache fields are
    ``None`` unless the response cache is on.
    """

    model: str
    version: str
    request_success: float = 0.0
    request_failure: Mapping[str, float] = field(default_factory=dict)
    inference_count: float = 0.0
    execution_count: float = 0.0
    request_duration_us: float = 0.0
    queue_duration_us: float = 0.0
    compute_input_duration_us: float = 0.0
    compute_infer_duration_us: float = 0.0
    compute_output_duration_us: float = 0.0
    pending_requests: float = 0.0
    cache_hits: float | None = None
    cache_misses: float | None = None
    cache_hit_duration_us: float | None = None
    cache_miss_duration_us: float | None = None
    summaries: Mapping[str, Mapping[float, float]] = field(default_factory=dict)

    @property
    def request_failure_total(self) -> float:
        return float(sum(self.request_failure.values()))

    @property
    def requests(self) -> float:
        return self.request_success + self.request_failure_total


@dataclass(frozen=True)
class GpuMetrics:
    uuid: str
    utilization: float | None = None
    memory_total_bytes: float | None = None
    memory_used_bytes: float | None = None
    power_usage_watts: float | None = None


@dataclass(frozen=True)
class CacheMetrics:
    """Server-wide response cache counters."""

    entries: float | None = None
    lookups: float | None = None
    hits: float | None = None
    misses: float | None = None
    evictions: float | None = None
    utilization: float | None = None


@dataclass(frozen=True)
class MetricsSnapshot:
    """Everything one scrape of Triton's ``/metrics`` said, with the time it was taken.

    ``ensembles`` maps each ensemble to its composing models; it decides how rates are grouped.
    """

    taken_at: float
    timestamp: float
    models: tuple[ModelCounters, ...]
    cpu_utilization: float | None = None
    cpu_memory_total_bytes: float | None = None
    cpu_memory_used_bytes: float | None = None
    gpus: tuple[GpuMetrics, ...] = ()
    cache: CacheMetrics | None = None
    ensembles: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def model(self, name: str, version: str | int | None = None) -> ModelCounters:
        """The counters of one model version (the newest one that has counters if none is given)."""
        found = [m for m in self.models if m.model == name and (version is None or m.version == str(version))]
        if not found:
            raise KeyError(f"no metrics for model {name!r}" + (f" version {version}" if version else ""))
        return max(found, key=lambda m: _version_key(m.version))

    def rates_since(self, earlier: MetricsSnapshot) -> MetricsRates:
        """Rates and averages over the time between ``earlier`` and this snapshot."""
        return compute_rates(earlier, self)

    def __sub__(self, earlier: MetricsSnapshot) -> MetricsRates:
        return compute_rates(earlier, self)


@dataclass(frozen=True)
class ModelRates:
    """What one model (or ensemble pipeline, or pipeline step) did between two snapshots.

    Averages are per successful request, in milliseconds; ``None`` when there was nothing to
    average. ``kind`` is ``pipeline`` for an ensemble, ``step`` for its composing models.
    """

    model: str
    version: str
    kind: Literal["model", "pipeline", "step"]
    interval_s: float
    successes: float
    failures: float
    failures_by_reason: Mapping[str, float]
    inferences: float
    executions: float
    requests_per_s: float
    inferences_per_s: float
    avg_batch_size: float | None
    avg_request_ms: float | None
    avg_queue_ms: float | None
    avg_compute_input_ms: float | None
    avg_compute_infer_ms: float | None
    avg_compute_output_ms: float | None
    queue_share: float | None
    failure_rate: float | None
    pending_requests: float
    steps: tuple[ModelRates, ...] = ()

    @property
    def requests(self) -> float:
        return self.successes + self.failures


@dataclass(frozen=True)
class MetricsRates:
    """Rates between two snapshots: pipelines (ensembles, steps inside) and standalone models.

    A composing model appears only as a step of its pipeline, so ``requests_per_s`` and
    ``inferences_per_s`` count each client request once. A composing model that is also called
    directly has those calls in its step counts too.
    """

    interval_s: float
    pipelines: tuple[ModelRates, ...]
    models: tuple[ModelRates, ...]
    cpu_utilization: float | None
    cpu_memory_used_bytes: float | None

    @property
    def top_level(self) -> tuple[ModelRates, ...]:
        return self.pipelines + self.models

    @property
    def requests(self) -> float:
        return float(sum(r.requests for r in self.top_level))

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.interval_s if self.interval_s > 0 else 0.0

    @property
    def inferences_per_s(self) -> float:
        return float(sum(r.inferences_per_s for r in self.top_level))

    @property
    def failure_rate(self) -> float | None:
        total = self.requests
        return sum(r.failures for r in self.top_level) / total if total else None

    def model(self, name: str, version: str | None = None) -> ModelRates:
        """The rates of one model, pipeline or pipeline step."""
        for rates in self.top_level:
            for candidate in (rates, *rates.steps):
                if candidate.model == name and (version is None or candidate.version == str(version)):
                    return candidate
        raise KeyError(f"no rates for model {name!r}")


def _version_key(version: str) -> tuple[int, str]:
    return (int(version), "") if version.isdigit() else (-1, version)


def parse_metrics(
    text: str,
    ensembles: Mapping[str, Iterable[str]] | None = None,
    taken_at: float | None = None,
) -> MetricsSnapshot:
    """Parse Triton's Prometheus exposition text into a :class:`MetricsSnapshot`."""
    counters: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    failures: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    summaries: dict[tuple[str, str], dict[str, dict[float, float]]] = defaultdict(lambda: defaultdict(dict))
    server: dict[str, float] = {}
    cache: dict[str, float] = {}
    gpus: dict[str, dict[str, float]] = defaultdict(dict)
    try:
        families = list(text_string_to_metric_families(text))
    except ValueError as exc:
        raise TritonClientError(
            f"the metrics endpoint returned text that is not Prometheus metrics: {exc}"
        ) from exc
    for family in families:
        # prometheus_client names a counter family without "_total" and its samples with it
        name = family.name.removesuffix("_total")
        for sample in family.samples:
            labels = sample.labels
            if "model" in labels:
                key = (labels["model"], labels.get("version", ""))
                if name == "nv_inference_request_failure":
                    reason = labels.get("reason", "OTHER")
                    failures[key][reason] = failures[key].get(reason, 0.0) + sample.value
                elif name in _MODEL_COUNTERS and sample.name in (name, f"{name}_total"):
                    counters[key][_MODEL_COUNTERS[name]] = sample.value
                elif name in _SUMMARIES and "quantile" in labels:
                    summaries[key][_SUMMARIES[name]][float(labels["quantile"])] = sample.value
                elif name in _MODEL_COUNTERS or name in _SUMMARIES:
                    continue
            elif name in _CACHE:
                cache[_CACHE[name]] = sample.value
            elif name in _GPU and "gpu_uuid" in labels:
                gpus[labels["gpu_uuid"]][_GPU[name]] = sample.value
            elif not labels:
                server[name] = sample.value
    keys = sorted(set(counters) | set(failures), key=lambda k: (k[0], _version_key(k[1])))
    models = tuple(
        ModelCounters(
            model=model,
            version=version,
            request_failure=dict(sorted(failures.get((model, version), {}).items())),
            summaries={
                phase: dict(sorted(q.items())) for phase, q in summaries.get((model, version), {}).items()
            },
            **counters.get((model, version), {}),
        )
        for model, version in keys
    )
    return MetricsSnapshot(
        taken_at=time.monotonic() if taken_at is None else taken_at,
        timestamp=time.time(),
        models=models,
        cpu_utilization=server.get("nv_cpu_utilization"),
        cpu_memory_total_bytes=server.get("nv_cpu_memory_total_bytes"),
        cpu_memory_used_bytes=server.get("nv_cpu_memory_used_bytes"),
        gpus=tuple(GpuMetrics(uuid=uuid, **values) for uuid, values in sorted(gpus.items())),
        cache=CacheMetrics(**cache) if cache else None,
        ensembles={name: tuple(steps) for name, steps in (ensembles or {}).items()},
    )


def scrape(
    metrics_url: str,
    *,
    timeout_s: float = 10.0,
    ensembles: Mapping[str, Iterable[str]] | None = None,
) -> MetricsSnapshot:
    """Fetch and parse Triton's metrics, e.g. ``scrape("http://127.0.0.1:8002/metrics")``.

    Pass ``ensembles`` (ensemble name -> composing model names) to have rates grouped as
    pipelines; ``TritonClient.metrics()`` fills it in from the server.
    """
    return parse_metrics(fetch_metrics_text(metrics_url, timeout_s), ensembles)


def fetch_metrics_text(metrics_url: str, timeout_s: float) -> str:
    """The raw exposition text, with failures mapped to the SDK's errors."""
    if "://" not in metrics_url:
        metrics_url = f"http://{metrics_url}"
    if not metrics_url.startswith(("http://", "https://")):
        raise ValueError(f"a metrics URL is http:// or https://, got {metrics_url!r}")
    try:
        with urllib.request.urlopen(metrics_url, timeout=timeout_s) as response:
            data: bytes = response.read()
            return data.decode("utf-8")
    except urllib.error.HTTPError as exc:
        raise TritonClientError(
            f"the metrics endpoint {metrics_url} answered {exc.code} {exc.reason}", status=str(exc.code)
        ) from exc
    except TimeoutError as exc:
        raise Timeout(f"the metrics endpoint {metrics_url} did not answer within {timeout_s:g} s") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError):
            raise Timeout(
                f"the metrics endpoint {metrics_url} did not answer within {timeout_s:g} s"
            ) from exc
        raise ServerUnavailable(f"cannot reach the metrics endpoint {metrics_url}: {reason}") from exc


# -- rates -----------------------------------------------------------------------------------
def _delta(later: float, earlier: float) -> float:
    # a counter that went down was reset (model reloaded, server restarted): count from zero
    return later - earlier if later >= earlier else later


def _model_rates(
    later: ModelCounters,
    earlier: ModelCounters | None,
    interval_s: float,
    kind: Literal["model", "pipeline", "step"],
) -> ModelRates:
    before = earlier or ModelCounters(model=later.model, version=later.version)
    successes = _delta(later.request_success, before.request_success)
    reasons = sorted(set(later.request_failure) | set(before.request_failure))
    by_reason = {
        r: _delta(later.request_failure.get(r, 0.0), before.request_failure.get(r, 0.0)) for r in reasons
    }
    failures = float(sum(by_reason.values()))
    inferences = _delta(later.inference_count, before.inference_count)
    executions = _delta(later.execution_count, before.execution_count)
    durations = {
        phase: _delta(getattr(later, f"{phase}_duration_us"), getattr(before, f"{phase}_duration_us"))
        for phase in ("request", "queue", "compute_input", "compute_infer", "compute_output")
    }

    def per_request_ms(phase: str) -> float | None:
        return durations[phase] / successes / 1000.0 if successes else None

    requests = successes + failures
    return ModelRates(
        model=later.model,
        version=later.version,
        kind=kind,
        interval_s=interval_s,
        successes=successes,
        failures=failures,
        failures_by_reason=by_reason,
        inferences=inferences,
        executions=executions,
        requests_per_s=requests / interval_s if interval_s > 0 else 0.0,
        inferences_per_s=inferences / interval_s if interval_s > 0 else 0.0,
        avg_batch_size=inferences / executions if executions else None,
        avg_request_ms=per_request_ms("request"),
        avg_queue_ms=per_request_ms("queue"),
        avg_compute_input_ms=per_request_ms("compute_input"),
        avg_compute_infer_ms=per_request_ms("compute_infer"),
        avg_compute_output_ms=per_request_ms("compute_output"),
        queue_share=durations["queue"] / durations["request"] if durations["request"] else None,
        failure_rate=failures / requests if requests else None,
        pending_requests=later.pending_requests,
    )


def compute_rates(earlier: MetricsSnapshot, later: MetricsSnapshot) -> MetricsRates:
    """Rates between two snapshots of the same server; ensembles from the later one group them."""
    interval = later.taken_at - earlier.taken_at
    if interval < 0:
        raise ValueError("the earlier snapshot was taken after the later one")
    before = {(m.model, m.version): m for m in earlier.models}
    ensembles = dict(later.ensembles or earlier.ensembles)
    composing = {step for steps in ensembles.values() for step in steps}
    pipelines: list[ModelRates] = []
    models: list[ModelRates] = []
    for counters in later.models:
        if counters.model in composing:
            continue
        key = (counters.model, counters.version)
        if counters.model in ensembles:
            steps = tuple(
                _model_rates(step, before.get((step.model, step.version)), interval, "step")
                for name in ensembles[counters.model]
                for step in later.models
                if step.model == name
            )
            rates = _model_rates(counters, before.get(key), interval, "pipeline")
            pipelines.append(_with_steps(rates, steps))
        else:
            models.append(_model_rates(counters, before.get(key), interval, "model"))
    return MetricsRates(
        interval_s=interval,
        pipelines=tuple(pipelines),
        models=tuple(models),
        cpu_utilization=later.cpu_utilization,
        cpu_memory_used_bytes=later.cpu_memory_used_bytes,
    )


def _with_steps(rates: ModelRates, steps: tuple[ModelRates, ...]) -> ModelRates:
    return replace(rates, steps=steps)


def zero_snapshot(taken_at: float = 0.0) -> MetricsSnapshot:
    """A snapshot of nothing, to compute totals since start-up with ``snapshot.rates_since(...)``."""
    return MetricsSnapshot(taken_at=taken_at, timestamp=0.0, models=())
