"""``tritonkit bench`` against a real embedded Triton: counts, batching, the reference, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tritonkit.bench import BenchOptions, run_bench
from tritonkit.cli import app
from tritonkit.client import TritonClient
from tritonkit.server import EmbeddedServer

from .conftest import MAX_BATCH

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_a_request_count_completes_exactly_with_no_errors_and_the_server_agrees(
    served: EmbeddedServer, photos: Path, protocol: str
) -> None:
    url = served.grpc_url if protocol == "grpc" else served.http_url
    result = run_bench(
        BenchOptions(
            model="tiny",
            url=url,
            metrics_url=served.metrics_url,
            concurrency=(1,),
            requests=25,
            warmup_s=0.2,
            images=(photos,),
        )
    )
    (level,) = result.levels
    assert (level.requests, level.successes, level.errors) == (25, 25, {})
    assert level.latency is not None
    assert 0 < level.latency.p50_ms <= level.latency.p99_ms <= level.latency.max_ms < 5000
    assert level.throughput == pytest.approx(25 / level.elapsed_s, rel=0.01)
    assert level.client_cpu_ms_per_request is not None and level.client_cpu_ms_per_request > 0

    server = level.server
    assert server is not None and server.note is None
    pipeline, *steps = server.models
    assert (pipeline.model, pipeline.role, pipeline.requests) == ("tiny", "pipeline", 25)
    assert {s.model for s in steps} == {"tiny_preprocess", "tiny_classifier"}
    for step in steps:  # one request at a time: every execution is a batch of one
        assert (step.requests, step.executions, step.avg_batch_size) == (25, 25, 1.0)
        assert step.avg_compute_infer_ms is not None and step.avg_compute_infer_ms > 0
    labels = {p.label for p in server.processes}
    assert {"tritonserver", "tiny_preprocess", "tiny_classifier"} <= labels
    assert server.rss_mib is not None and 50 < server.rss_mib < 2000
    assert result.protocol == protocol and "6 image files" in result.workload


def test_concurrent_requests_meet_in_full_batches_as_configured(served: EmbeddedServer, photos: Path) -> None:
    result = run_bench(
        BenchOptions(
            model="tiny",
            url=served.grpc_url,
            metrics_url=served.metrics_url,
            concurrency=(2 * MAX_BATCH,),
            requests=96,
            warmup_s=0.2,
            images=(photos,),
        )
    )
    (level,) = result.levels
    assert level.successes == 96
    assert level.server is not None
    for step in level.server.models[1:]:
        # full batches of MAX_BATCH, except perhaps in the last moments of the run
        assert step.avg_batch_size is not None and 0.9 * MAX_BATCH <= step.avg_batch_size <= MAX_BATCH


def test_batched_and_parallel_runs_answer_exactly_what_single_requests_get(
    served: EmbeddedServer, photos: Path
) -> None:
    images = sorted(photos.iterdir())
    with TritonClient(served.grpc_url, concurrency=len(images)) as client:
        alone = [client.infer("tiny", {"IMAGE": np.array([[p.read_bytes()]], dtype=object)}) for p in images]
        together = client.infer("tiny", {"IMAGE": np.array([[p.read_bytes()] for p in images], dtype=object)})
    np.testing.assert_allclose(
        together["SCORES"], np.concatenate([a["SCORES"] for a in alone]), rtol=1e-5, atol=1e-7
    )


def test_the_reference_is_measured_and_every_level_compared_with_it(
    served: EmbeddedServer, photos: Path, pipeline_repo: Path
) -> None:
    result = run_bench(
        BenchOptions(
            model="tiny",
            url=served.http_url,
            metrics_url=served.metrics_url,
            concurrency=(1, 4),
            duration_s=0.5,
            warmup_s=0.2,
            images=(photos,),
            reference=True,
            repository=pipeline_repo,
            reference_trial_s=0.05,
            reference_measure_s=0.2,
        )
    )
    reference = result.reference
    assert reference is not None
    assert reference.onnx_path.endswith("tiny_classifier/1/model.onnx")
    assert len(reference.throughput_runs) == 2 and reference.throughput > 0
    for level in result.levels:
        assert level.throughput_vs_reference == pytest.approx(
            level.throughput / reference.throughput, rel=0.01
        )
        assert level.latency is not None
        assert level.p50_vs_reference == pytest.approx(level.latency.p50_ms / reference.latency_ms, rel=0.01)


def test_the_cli_runs_levels_and_writes_json_csv_and_a_plot(
    served: EmbeddedServer, photos: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    outcome = CliRunner().invoke(
        app,
        [
            "bench",
            "--model",
            "tiny",
            "--url",
            served.grpc_url,
            "--metrics-url",
            served.metrics_url,
            "--concurrency",
            "1,2",
            "--requests",
            "12",
            "--warmup",
            "0",
            "--images",
            str(photos),
            "--json",
            str(out / "bench.json"),
            "--csv",
            str(out / "bench.csv"),
            "--plot",
            str(out / "bench.png"),
        ],
    )
    assert outcome.exit_code == 0, outcome.output
    assert "Where the time goes" in outcome.output
    data = json.loads((out / "bench.json").read_text())
    assert [(lv["concurrency"], lv["requests"]) for lv in data["levels"]] == [(1, 12), (2, 12)]
    assert len((out / "bench.csv").read_text().splitlines()) == 3
    assert (out / "bench.png").read_bytes()[:4] == b"\x89PNG"


def test_the_cli_fails_in_one_red_line_for_a_model_the_server_does_not_have(served: EmbeddedServer) -> None:
    outcome = CliRunner().invoke(
        app, ["bench", "--model", "nope", "--url", served.grpc_url, "--requests", "1", "--warmup", "0"]
    )
    assert outcome.exit_code == 1
    assert "error:" in outcome.output and "Traceback" not in outcome.output
