"""A benchmark for machines (JSON, CSV) and for people (a PNG of throughput and p99 vs concurrency)."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path
from typing import Any

from ._errors import BenchError
from ._results import BenchResult, LevelResult

SCHEMA = "tritonkit.bench/1"


def result_dict(result: BenchResult) -> dict[str, Any]:
    """The result as JSON-ready data, with the reference's means spelled out."""
    data = dataclasses.asdict(result)
    data = {"schema": SCHEMA, **data}
    if result.reference is not None:
        data["reference"]["throughput"] = round(result.reference.throughput, 2)
        data["reference"]["latency_ms"] = round(result.reference.latency_ms, 3)
    return data


def write_json(result: BenchResult, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result_dict(result), indent=2) + "\n")
    return path


_PHASES = (
    "avg_batch_size",
    "avg_queue_ms",
    "avg_compute_input_ms",
    "avg_compute_infer_ms",
    "avg_compute_output_ms",
)


def level_row(result: BenchResult, level: LevelResult) -> dict[str, Any]:
    """One flat CSV row: client figures, server figures per model (``<model>.<figure>``), load."""
    latency = level.latency
    row: dict[str, Any] = {
        "model": result.model,
        "protocol": result.protocol,
        "concurrency": level.concurrency,
        "requests": level.requests,
        "errors": level.error_count,
        "elapsed_s": level.elapsed_s,
        "throughput": level.throughput,
        "p50_ms": latency.p50_ms if latency else None,
        "p90_ms": latency.p90_ms if latency else None,
        "p99_ms": latency.p99_ms if latency else None,
        "max_ms": latency.max_ms if latency else None,
        "client_cpu_ms_per_request": level.client_cpu_ms_per_request,
        "throughput_vs_reference": level.throughput_vs_reference,
        "p50_vs_reference": level.p50_vs_reference,
        "loadavg_start": level.load.loadavg_start,
        "busy_cores": level.load.busy_cores,
    }
    if level.server is not None:
        row["server_rss_mib"] = level.server.rss_mib
        row["server_pss_mib"] = level.server.pss_mib
        for model in level.server.models:
            for phase in _PHASES:
                row[f"{model.model}.{phase}"] = getattr(model, phase)
        for process in level.server.processes:
            row[f"cpu_ms_per_request.{process.label}"] = process.cpu_ms_per_request
    return row


def write_csv(result: BenchResult, path: Path) -> Path:
    rows = [level_row(result, level) for level in result.levels]
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_plot(result: BenchResult, path: Path) -> Path:
    """Throughput (with the reference, when measured) and p50/p99 latency against concurrency."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise BenchError("--plot needs matplotlib: pip install matplotlib") from exc

    levels = sorted(result.levels, key=lambda level: level.concurrency)
    x = [level.concurrency for level in levels]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    left.plot(x, [level.throughput for level in levels], marker="o", label=f"served ({result.protocol})")
    if result.reference is not None:
        left.axhline(result.reference.throughput, color="grey", linestyle="--", label="in-process reference")
        left.axhline(0.9 * result.reference.throughput, color="grey", linestyle=":", label="0.9 x reference")
    left.set(
        xscale="log", xlabel="concurrency (requests in flight)", ylabel="requests / s", title="Throughput"
    )
    left.set_xticks(x, [str(c) for c in x])
    left.set_ylim(bottom=0)
    left.legend()
    for name, pick in (("p50", "p50_ms"), ("p99", "p99_ms")):
        right.plot(
            x,
            [getattr(level.latency, pick) if level.latency else None for level in levels],
            marker="o",
            label=name,
        )
    if result.reference is not None:
        right.axhline(
            result.reference.latency_ms, color="grey", linestyle="--", label="in-process, one image"
        )
    right.set(xscale="log", xlabel="concurrency (requests in flight)", ylabel="ms", title="Latency")
    right.set_xticks(x, [str(c) for c in x])
    right.set_ylim(bottom=0)
    right.legend()
    figure.suptitle(
        f"{result.model} on {result.machine.cores} cores ({result.machine.cpu_model})", fontsize=10
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
