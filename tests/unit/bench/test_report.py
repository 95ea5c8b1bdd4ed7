"""JSON, CSV and PNG from a result."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from tritonkit.bench import (
    BenchResult,
    LatencySummary,
    LevelResult,
    MachineLoad,
    ModelFigures,
    ProcessFigures,
    ReferenceLayout,
    ReferenceResult,
    ServerFigures,
    write_csv,
    write_json,
    write_plot,
)
from tritonkit.bench._local import machine_info


def level(concurrency: int, throughput: float) -> LevelResult:
    server = ServerFigures(
        models=(
            ModelFigures("m", "1", "pipeline", 100, 0, 0, 100, None, 9.0, 0.0, 0.1, 8.0, 0.5),
            ModelFigures("m_classifier", "1", "step", 100, 0, 40, 100, 2.5, 5.0, 1.0, 0.1, 3.5, 0.2),
        ),
        processes=(ProcessFigures("tritonserver", 1, 0.1, 0.5, 90.0, 60.0),),
        rss_mib=300.0,
        pss_mib=250.0,
    )
    return LevelResult(
        concurrency=concurrency,
        requests=100,
        successes=100,
        errors={},
        error_examples={},
        elapsed_s=1.0,
        throughput=throughput,
        latency=LatencySummary.of([0.01 * concurrency, 0.012 * concurrency]),
        client_cpu_s=0.02,
        client_cpu_ms_per_request=0.2,
        load=MachineLoad(0.5, 0.6, 1.9),
        server=server,
        throughput_vs_reference=throughput / 200,
        p50_vs_reference=1.1,
    )


def result() -> BenchResult:
    reference = ReferenceResult(
        onnx_path="model.onnx",
        preprocessing="imaging.py",
        best=ReferenceLayout(2, 1, 2),
        trials=(),
        throughput_runs=(190.0, 210.0),
        latency_runs=(6.0, 7.0),
        latency_p99_ms=8.0,
        latency_threads=2,
        latency_spinning=False,
        cpu_ms_per_item=9.4,
    )
    return BenchResult(
        model="m",
        url="grpc://127.0.0.1:8001",
        protocol="grpc",
        started="2025-01-01T00:00:00Z",
        machine=machine_info(),
        workload="photos",
        request_bytes=50_000.0,
        warmup_s=1.0,
        duration_s=1.0,
        requests_per_level=None,
        levels=(level(1, 90.0), level(16, 180.0)),
        reference=reference,
    )


def test_json_holds_everything_and_the_reference_means(tmp_path: Path) -> None:
    data = json.loads(write_json(result(), tmp_path / "out" / "bench.json").read_text())
    assert data["schema"] == "tritonkit.bench/1"
    assert [lv["concurrency"] for lv in data["levels"]] == [1, 16]
    assert data["levels"][1]["server"]["models"][1]["avg_batch_size"] == 2.5
    assert data["reference"]["throughput"] == 200.0 and data["reference"]["latency_ms"] == 6.5
    assert data["machine"]["cores"] >= 1
    assert data["levels"][0]["load"]["busy_cores"] == 1.9


def test_csv_has_one_flat_row_per_level(tmp_path: Path) -> None:
    with open(write_csv(result(), tmp_path / "bench.csv")) as handle:
        rows = list(csv.DictReader(handle))
    assert [row["concurrency"] for row in rows] == ["1", "16"]
    assert rows[1]["throughput"] == "180.0"
    assert rows[1]["m_classifier.avg_batch_size"] == "2.5"
    assert rows[1]["cpu_ms_per_request.tritonserver"] == "0.5"
    assert rows[0]["throughput_vs_reference"] == "0.45"


def test_the_plot_is_a_png(tmp_path: Path) -> None:
    path = write_plot(result(), tmp_path / "bench.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
