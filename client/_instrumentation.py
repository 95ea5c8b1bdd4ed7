"""Client-side metrics for applications that embed the SDK and expose their own /metrics."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram

_DEFAULT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class ClientMetrics:
    """Request latency and errors of every SDK call, as ``prometheus_client`` metrics.

    ``<namespace>_request_duration_seconds`` is a histogram by protocol, operation and model;
    ``<namespace>_errors_total`` counts failed calls by the same labels plus the error class.
    Pass one instance to each client (``TritonClient(..., metrics=ClientMetrics())``); create it
    once per registry, as ``prometheus_client`` refuses duplicate metric names.
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        namespace: str = "tritonkit_client",
        buckets: Sequence[float] = _DEFAULT_BUCKETS,
    ) -> None:
        self.registry = registry if registry is not None else REGISTRY
        labels = ("protocol", "operation", "model")
        self.request_duration = Histogram(
            f"{namespace}_request_duration_seconds",
            "Duration of tritonkit client calls, retries included.",
            labels,
            registry=self.registry,
            buckets=tuple(buckets),
        )
        self.errors = Counter(
            f"{namespace}_errors",
            "Failed tritonkit client calls by error class.",
            (*labels, "error"),
            registry=self.registry,
        )

    def observe(
        self, protocol: str, operation: str, model: str | None, seconds: float, error: BaseException | None
    ) -> None:
        """Record one finished call."""
        model_label = model or ""
        self.request_duration.labels(protocol, operation, model_label).observe(seconds)
        if error is not None:
            self.errors.labels(protocol, operation, model_label, type(error).__name__).inc()
