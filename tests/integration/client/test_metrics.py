"""Metrics: snapshots of the real server, exact rates after a known number of requests."""

from __future__ import annotations

import io
import time
from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image
from prometheus_client import CollectorRegistry

from tritonkit.client import ClientMetrics, MetricsSnapshot, ModelNotFound, TritonClient, scrape
from tritonkit.server import EmbeddedServer

pytestmark = pytest.mark.integration


def _settled(client: TritonClient, done: Callable[[MetricsSnapshot], bool]) -> MetricsSnapshot:
    """Triton updates counters as responses complete: wait (briefly) until they show a call."""
    deadline = time.monotonic() + 5
    while True:
        snapshot = client.metrics()
        if done(snapshot) or time.monotonic() > deadline:
            return snapshot
        time.sleep(0.05)


def test_rates_after_a_known_number_of_requests_match_it_exactly(client: TritonClient) -> None:
    before = client.metrics()
    start = before.model("add_sub").request_success
    batch = np.ones((3, 16), np.float32)
    for _ in range(10):
        client.infer("add_sub", {"INPUT0": batch, "INPUT1": batch})
    after = _settled(client, lambda s: s.model("add_sub").request_success >= start + 10)
    rates = after.rates_since(before).model("add_sub")
    assert rates.kind == "model"
    assert rates.successes == 10
    assert rates.failures == 0 and rates.failure_rate == 0
    assert rates.inferences == 30
    assert 1 <= rates.executions <= 10
    assert rates.avg_batch_size == pytest.approx(30 / rates.executions)
    assert rates.requests_per_s == pytest.approx(10 / (after.taken_at - before.taken_at))
    assert rates.avg_request_ms is not None and rates.avg_request_ms > 0
    assert rates.queue_share is not None and 0 <= rates.queue_share <= 1


def test_an_ensemble_is_one_pipeline_not_counted_again_with_its_steps(client: TritonClient) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 0, 0)).save(buffer, format="PNG")
    before = client.metrics()
    start = before.model("tiny_classifier").request_success
    for _ in range(5):
        client.classify("tiny_classifier", buffer.getvalue(), top_k=1)
    after = _settled(
        client,
        lambda s: (
            s.model("tiny_classifier").request_success >= start + 5
            and s.model("tiny_classifier_classifier").request_success
            >= before.model("tiny_classifier_classifier").request_success + 5
        ),
    )
    rates = after - before
    pipeline = rates.model("tiny_classifier")
    assert pipeline.kind == "pipeline" and pipeline.successes == 5
    assert [(s.model, s.kind, s.successes) for s in pipeline.steps] == [
        ("tiny_classifier_preprocess", "step", 5),
        ("tiny_classifier_classifier", "step", 5),
    ]
    standalone = {m.model for m in rates.models}
    assert "tiny_classifier_classifier" not in standalone and "tiny_classifier" not in standalone
    # The total counts each pipeline once and its steps not again (other tests' stragglers may
    # land in standalone models during the window, so compare against the parts, not a constant).
    assert rates.requests == sum(p.requests for p in rates.pipelines) + sum(m.requests for m in rates.models)


def test_failures_are_counted_by_reason(client: TritonClient) -> None:
    before = client.metrics()
    start = before.model("failing").request_failure_total
    for _ in range(2):
        with pytest.raises(Exception, match="negative"):
            client.infer("failing", np.array([-1.0], np.float32))
    client.infer("failing", np.array([1.0], np.float32))
    after = _settled(
        client,
        lambda s: (
            s.model("failing").request_failure_total >= start + 2
            and s.model("failing").request_success >= before.model("failing").request_success + 1
        ),
    )
    rates = after.rates_since(before).model("failing")
    assert rates.failures_by_reason["BACKEND"] == 2
    assert rates.failure_rate == pytest.approx(2 / 3)


def test_snapshot_has_server_gauges_summaries_and_cache_counters(
    client: TritonClient, triton: EmbeddedServer
) -> None:
    client.infer("cached", np.array([[1.0, 2.0]], np.float32))
    client.infer("cached", np.array([[1.0, 2.0]], np.float32))
    # the CPU gauges are polled too (every 2 s by default)
    snapshot = _settled(
        client, lambda s: (s.model("cached").cache_hits or 0) >= 1 and (s.cpu_memory_total_bytes or 0) > 0
    )
    cached = snapshot.model("cached")
    assert cached.cache_hits is not None and cached.cache_hits >= 1
    assert cached.cache_misses is not None and cached.cache_misses >= 1
    # the server-wide cache gauges are polled every few seconds: present, maybe not yet updated
    assert snapshot.cache is not None and snapshot.cache.utilization is not None
    assert snapshot.cpu_memory_total_bytes and snapshot.cpu_memory_total_bytes > 0
    assert snapshot.cpu_utilization is not None
    summaries = snapshot.model("add_sub").summaries
    assert "request" in summaries and 0.5 in summaries["request"]
    # scrape() alone gives the same counters, without knowing the ensembles
    plain = scrape(triton.metrics_url)
    assert plain.ensembles == {}
    assert plain.model("add_sub").inference_count == snapshot.model("add_sub").inference_count


def test_client_side_metrics_are_exported(triton: EmbeddedServer, protocol: str) -> None:
    registry = CollectorRegistry()
    instrumentation = ClientMetrics(registry=registry)
    url = triton.http_url if protocol == "http" else triton.grpc_url
    with TritonClient(url, metrics=instrumentation) as client:
        client.infer("scores", np.ones((1, 4), np.float32))
        with pytest.raises(ModelNotFound):
            client.model_metadata("no_such_model")
    labels = {"protocol": protocol, "operation": "infer", "model": "scores"}
    assert registry.get_sample_value("tritonkit_client_request_duration_seconds_count", labels) == 1
    errors = {
        "protocol": protocol,
        "operation": "model_metadata",
        "model": "no_such_model",
        "error": "ModelNotFound",
    }
    assert registry.get_sample_value("tritonkit_client_errors_total", errors) == 1
