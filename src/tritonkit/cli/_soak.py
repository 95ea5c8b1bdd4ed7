"""``tritonkit soak``: sustained concurrent load with error counting and a memory watch."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ._console import console, domain_errors

_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


def _load_images(paths: list[Path]) -> list[bytes]:
    files: list[Path] = []
    for path in paths:
        files += (
            sorted(p for p in path.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES)
            if path.is_dir()
            else [path]
        )
    if not files:
        raise typer.BadParameter("no images found", param_hint="--images")
    return [f.read_bytes() for f in files]


def soak(
    model: Annotated[str, typer.Option("--model", "-m", help="The model (ensemble) to load.")],
    url: Annotated[str, typer.Option(envvar="TRITONKIT_URL", help="Server URL.")] = "grpc://127.0.0.1:8001",
    images: Annotated[
        list[Path] | None, typer.Option(help="Image files or folders (default: generated 640x480 JPEGs).")
    ] = None,
    clients: Annotated[int, typer.Option(help="Concurrent clients.")] = 64,
    duration: Annotated[float, typer.Option(help="Measured seconds.")] = 60.0,
    warmup: Annotated[float, typer.Option(help="Unmeasured seconds of the same load first.")] = 5.0,
    window: Annotated[float, typer.Option(help="Seconds at the start and end compared for memory.")] = 10.0,
    repo: Annotated[
        Path | None,
        typer.Option(help="Repository of a running `tritonkit serve`, whose processes are measured."),
    ] = None,
    pid: Annotated[
        int | None, typer.Option(help="Process whose tree is measured (e.g. tritonserver).")
    ] = None,
    max_growth: Annotated[float, typer.Option(help="Fail when memory grows more than this fraction.")] = 0.05,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the report as JSON here.")] = None,
) -> None:
    """Run many clients against a model for a while; fail on any error or on memory growth."""
    with domain_errors():
        from tritonkit.demo import make_shapes
        from tritonkit.server import read_state
        from tritonkit.soak import process_tree, run_soak

        payloads = _load_images(images) if images else make_shapes(16, seed=7, size=(640, 480))[0]
        root = pid
        if root is None and repo is not None:
            state = read_state(repo)
            if state is None:
                raise typer.BadParameter(f"no `tritonkit serve` is running on {repo}", param_hint="--repo")
            root = state.pid
        with console.status(f"{clients} clients on {model} for {warmup:.0f} + {duration:.0f} s"):
            report = run_soak(
                url,
                model,
                payloads,
                clients=clients,
                duration_s=duration,
                window_s=window,
                warmup_s=warmup,
                pids=(lambda: process_tree(root)) if root is not None else None,
            )
        table = Table(title=f"soak: {model} at {url}", show_header=False)
        table.add_column(style="bold")
        table.add_column()
        table.add_row("clients", str(report.clients))
        table.add_row("duration", f"{report.duration_s:.1f} s (+{warmup:.0f} s warm-up)")
        table.add_row("requests", f"{report.requests} ({report.throughput_per_s:.1f}/s)")
        table.add_row("errors", ", ".join(f"{k}: {v}" for k, v in report.errors.items()) or "none")
        if report.memory_growth is not None:
            table.add_row(
                "resident memory",
                f"{report.rss_first_mb:.0f} MiB (first {window:.0f} s) -> {report.rss_last_mb:.0f} MiB "
                f"(last {window:.0f} s): {report.memory_growth:+.1%}",
            )
        console.print(table)
        if json_out:
            json_out.write_text(report.to_json())
        grew = report.memory_growth is not None and report.memory_growth > max_growth
        if report.error_count or grew:
            raise typer.Exit(1)
