"""Triton's Prometheus text -> snapshots -> rates, with ensembles as pipelines."""

from __future__ import annotations

import pytest

from tritonkit.client import TritonClientError, parse_metrics
from tritonkit.client._metrics import zero_snapshot


def _text(success: int, *, ens: int | None = None, failures: int = 0, infer_us: int = 0) -> str:
    """Exposition text shaped like Triton 2.51's (an ensemble, its two steps and one model)."""
    ens = success if ens is None else ens
    lines = [
        "# HELP nv_inference_request_success Number of successful inference requests",
        "# TYPE nv_inference_request_success counter",
        f'nv_inference_request_success{{model="pipe",version="1"}} {ens}',
        f'nv_inference_request_success{{model="pipe_pre",version="1"}} {ens}',
        f'nv_inference_request_success{{model="pipe_cls",version="1"}} {ens}',
        f'nv_inference_request_success{{model="solo",version="1"}} {success}',
        "# TYPE nv_inference_request_failure counter",
        f'nv_inference_request_failure{{model="solo",reason="BACKEND",version="1"}} {failures}',
        'nv_inference_request_failure{model="solo",reason="REJECTED",version="1"} 0',
        "# TYPE nv_inference_count counter",
        f'nv_inference_count{{model="pipe",version="1"}} {2 * ens}',
        f'nv_inference_count{{model="pipe_pre",version="1"}} {2 * ens}',
        f'nv_inference_count{{model="pipe_cls",version="1"}} {2 * ens}',
        f'nv_inference_count{{model="solo",version="1"}} {4 * success}',
        "# TYPE nv_inference_exec_count counter",
        f'nv_inference_exec_count{{model="pipe",version="1"}} {ens}',
        f'nv_inference_exec_count{{model="solo",version="1"}} {success}',
        "# TYPE nv_inference_request_duration_us counter",
        f'nv_inference_request_duration_us{{model="solo",version="1"}} {1000 * success}',
        f'nv_inference_request_duration_us{{model="pipe",version="1"}} {3000 * ens}',
        "# TYPE nv_inference_queue_duration_us counter",
        f'nv_inference_queue_duration_us{{model="solo",version="1"}} {250 * success}',
        "# TYPE nv_inference_compute_infer_duration_us counter",
        f'nv_inference_compute_infer_duration_us{{model="solo",version="1"}} {infer_us}',
        "# TYPE nv_inference_pending_request_count gauge",
        'nv_inference_pending_request_count{model="solo",version="1"} 2',
        "# TYPE nv_inference_request_summary_us summary",
        'nv_inference_request_summary_us_count{model="solo",version="1"} 5',
        'nv_inference_request_summary_us_sum{model="solo",version="1"} 500',
        'nv_inference_request_summary_us{model="solo",version="1",quantile="0.5"} 90',
        'nv_inference_request_summary_us{model="solo",version="1",quantile="0.99"} 200',
        "# TYPE nv_cache_num_hits_per_model counter",
        'nv_cache_num_hits_per_model{model="solo",version="1"} 3',
        "# TYPE nv_cache_num_hits gauge",
        "nv_cache_num_hits 3",
        "# TYPE nv_cache_util gauge",
        "nv_cache_util 0.25",
        "# TYPE nv_cpu_utilization gauge",
        "nv_cpu_utilization 0.5",
        "# TYPE nv_cpu_memory_total_bytes gauge",
        "nv_cpu_memory_total_bytes 1000",
        "# TYPE nv_gpu_utilization gauge",
        'nv_gpu_utilization{gpu_uuid="GPU-1"} 0.75',
        "# TYPE nv_gpu_memory_used_bytes gauge",
        'nv_gpu_memory_used_bytes{gpu_uuid="GPU-1"} 42',
    ]
    return "\n".join(lines) + "\n"


ENSEMBLES = {"pipe": ("pipe_pre", "pipe_cls")}


def test_snapshot_reads_counters_gauges_summaries_and_cache() -> None:
    snapshot = parse_metrics(_text(10, failures=1), ENSEMBLES)
    solo = snapshot.model("solo")
    assert solo.request_success == 10 and solo.request_failure == {"BACKEND": 1, "REJECTED": 0}
    assert solo.requests == 11 and solo.inference_count == 40 and solo.execution_count == 10
    assert solo.pending_requests == 2 and solo.cache_hits == 3
    assert solo.summaries == {"request": {0.5: 90, 0.99: 200}}
    assert snapshot.cpu_utilization == 0.5 and snapshot.cpu_memory_total_bytes == 1000
    assert snapshot.cache is not None and snapshot.cache.hits == 3 and snapshot.cache.utilization == 0.25
    assert [(g.uuid, g.utilization, g.memory_used_bytes) for g in snapshot.gpus] == [("GPU-1", 0.75, 42)]
    with pytest.raises(KeyError):
        snapshot.model("nope")


def test_rates_between_snapshots() -> None:
    before = parse_metrics(_text(10, infer_us=0), ENSEMBLES, taken_at=100.0)
    after = parse_metrics(_text(30, failures=5, infer_us=4000), ENSEMBLES, taken_at=110.0)
    rates = after.rates_since(before)
    solo = rates.model("solo")
    assert rates.interval_s == 10
    assert (solo.successes, solo.failures, solo.failures_by_reason["BACKEND"]) == (20, 5, 5)
    assert solo.requests_per_s == 2.5 and solo.inferences_per_s == 8
    assert solo.avg_batch_size == 4
    assert solo.avg_request_ms == 1.0 and solo.avg_queue_ms == 0.25 and solo.avg_compute_infer_ms == 0.2
    assert solo.queue_share == 0.25 and solo.failure_rate == 0.2
    assert solo.avg_compute_output_ms == 0.0


def test_an_ensemble_is_a_pipeline_and_its_steps_are_not_counted_twice() -> None:
    before = parse_metrics(_text(0, ens=0), ENSEMBLES, taken_at=0.0)
    after = parse_metrics(_text(0, ens=7), ENSEMBLES, taken_at=7.0)
    rates = after - before
    (pipe,) = rates.pipelines
    assert pipe.kind == "pipeline" and pipe.successes == 7 and pipe.avg_request_ms == 3.0
    assert [(s.model, s.kind, s.successes) for s in pipe.steps] == [
        ("pipe_pre", "step", 7),
        ("pipe_cls", "step", 7),
    ]
    assert [m.model for m in rates.models] == ["solo"]
    assert rates.requests == 7 and rates.requests_per_s == 1.0
    assert rates.model("pipe_cls").kind == "step"


def test_without_ensembles_every_model_stands_alone() -> None:
    rates = parse_metrics(_text(3), taken_at=1.0) - parse_metrics(_text(1), taken_at=0.0)
    assert rates.pipelines == () and len(rates.models) == 4


def test_a_counter_that_went_down_counts_from_zero() -> None:
    before = parse_metrics(_text(50), taken_at=0.0)
    after = parse_metrics(_text(4), taken_at=1.0)  # the model was reloaded
    assert (after - before).model("solo").successes == 4


def test_nothing_happened_gives_no_averages() -> None:
    snapshot = parse_metrics(_text(5), taken_at=3.0)
    solo = (snapshot - snapshot).model("solo")
    assert solo.requests == 0 and solo.avg_request_ms is None and solo.failure_rate is None
    assert solo.avg_batch_size is None and solo.requests_per_s == 0


def test_totals_since_start_against_an_empty_snapshot() -> None:
    snapshot = parse_metrics(_text(5), ENSEMBLES, taken_at=3.0)
    totals = snapshot.rates_since(zero_snapshot(snapshot.taken_at))
    assert totals.model("solo").successes == 5 and totals.interval_s == 0 and totals.requests_per_s == 0


def test_an_earlier_snapshot_must_be_earlier() -> None:
    with pytest.raises(ValueError, match="taken after"):
        parse_metrics("", taken_at=0.0) - parse_metrics("", taken_at=5.0)


def test_text_that_is_not_prometheus_is_an_sdk_error() -> None:
    with pytest.raises(TritonClientError, match="not Prometheus metrics"):
        parse_metrics("this is { not metrics\n")
