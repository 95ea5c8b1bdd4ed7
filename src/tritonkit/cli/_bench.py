"""``tritonkit bench`` and ``tritonkit tune``: thin commands over :mod:`tritonkit.bench`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ._console import console, domain_errors

if TYPE_CHECKING:
    from tritonkit.bench import (
        BenchEvent,
        BenchResult,
        CandidateResult,
        LevelResult,
        ReferenceResult,
        TuneResult,
    )


def _ints(text: str, option: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.replace(",", " ").split())
    except ValueError:
        raise typer.BadParameter(
            f"expected whole numbers such as 1,4,16, got {text!r}", param_hint=option
        ) from None
    if not values:
        raise typer.BadParameter("give at least one value", param_hint=option)
    return values


def _ms(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _levels_table(levels: list[LevelResult], title: str) -> Table:
    table = Table(title=title)
    for column in ("concurrency", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors", "client CPU"):
        table.add_column(column, justify="right")
    with_reference = any(level.throughput_vs_reference is not None for level in levels)
    if with_reference:
        table.add_column("req/s vs ref", justify="right")
        table.add_column("p50 vs ref", justify="right")
    for level in levels:
        latency = level.latency
        errors = ", ".join(f"{k} {v}" for k, v in level.errors.items()) or "0"
        row = [
            str(level.concurrency),
            f"{level.throughput:.1f}",
            _ms(latency.p50_ms if latency else None),
            _ms(latency.p90_ms if latency else None),
            _ms(latency.p99_ms if latency else None),
            _ms(latency.max_ms if latency else None),
            f"[red]{errors}[/]" if level.error_count else errors,
            f"{_ms(level.client_cpu_ms_per_request, 2)} ms/req",
        ]
        if with_reference:
            row += [_ratio(level.throughput_vs_reference), _ratio(level.p50_vs_reference)]
        table.add_row(*row)
    return table


def _server_table(levels: list[LevelResult]) -> Table | None:
    rows = [(level, model) for level in levels if level.server for model in level.server.models]
    if not rows:
        return None
    table = Table(title="Where the time goes (server, per request)")
    for column in ("concurrency", "model", "batch", "queue ms", "input ms", "infer ms", "output ms"):
        table.add_column(column, justify="right" if column != "model" else "left")
    for level, model in rows:
        table.add_row(
            str(level.concurrency),
            model.model + (" (ensemble)" if model.role == "pipeline" else ""),
            _ms(model.avg_batch_size, 2),
            _ms(model.avg_queue_ms, 2),
            _ms(model.avg_compute_input_ms, 2),
            _ms(model.avg_compute_infer_ms, 2),
            _ms(model.avg_compute_output_ms, 2),
        )
    return table


def _process_table(levels: list[LevelResult]) -> Table | None:
    rows = [(level, p) for level in levels if level.server for p in level.server.processes]
    if not rows:
        return None
    table = Table(title="Server processes (CPU per request, peak memory)")
    for column in ("concurrency", "process", "count", "CPU ms/req", "cores", "RSS MiB", "PSS MiB"):
        table.add_column(column, justify="right" if column != "process" else "left")
    for level, process in rows:
        table.add_row(
            str(level.concurrency),
            process.label,
            str(process.processes),
            _ms(process.cpu_ms_per_request, 2),
            f"{process.cpu_cores:.2f}",
            f"{process.rss_mib:.0f}",
            _ms(process.pss_mib, 0),
        )
    for level in levels:
        if level.server and level.server.rss_mib is not None:
            table.add_row(
                str(level.concurrency),
                "[bold]all[/]",
                "",
                "",
                "",
                f"{level.server.rss_mib:.0f}",
                _ms(level.server.pss_mib, 0),
            )
    return table


def _reference_text(reference: ReferenceResult) -> str:
    runs = " / ".join(f"{r:.1f}" for r in reference.throughput_runs)
    latencies = " / ".join(f"{r:.2f}" for r in reference.latency_runs)
    spin = ", spinning" if reference.latency_spinning else ""
    return (
        f"in-process reference: {reference.throughput:.1f}/s with {reference.best} (runs {runs}); "
        f"one image {reference.latency_ms:.2f} ms with {reference.latency_threads} thread(s){spin} "
        f"(runs {latencies})"
    )


class _LiveView:
    """The levels done so far and a line for the running one, redrawn as events arrive."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.levels: list[LevelResult] = []
        self.line = Text("starting")
        self.reference: str | None = None

    def __rich__(self) -> Group:
        parts: list[Table | Text] = []
        if self.reference:
            parts.append(Text(self.reference, style="dim"))
        if self.levels:
            parts.append(_levels_table(self.levels, f"{self.model}: finished levels"))
        parts.append(self.line)
        return Group(*parts)

    def update(self, event: BenchEvent) -> None:
        if event.reference is not None:
            self.reference = _reference_text(event.reference)
        if event.level is not None:
            self.levels.append(event.level)
        if event.live is not None:
            live = event.live
            self.line = Text.from_markup(
                f"[bold]concurrency {live.concurrency}[/] {live.phase} {live.elapsed_s:5.1f} s  "
                f"{live.completed} done  {live.throughput:7.1f} req/s  p50 {_ms(live.p50_ms)} ms  "
                f"p99 {_ms(live.p99_ms)} ms  "
                + (f"[red]{live.errors} errors[/]" if live.errors else "0 errors")
            )
        elif event.message:
            self.line = Text(event.message)


def _print_result(result: BenchResult) -> None:
    levels = list(result.levels)
    console.print(
        f"[bold]{result.model}[/] at {result.url}: {result.workload}; "
        f"{result.machine.cores} cores, {result.machine.cpu_model}",
        highlight=False,
    )
    if result.reference is not None:
        console.print(_reference_text(result.reference), highlight=False)
    console.print(_levels_table(levels, "Client side"))
    for table in (_server_table(levels), _process_table(levels)):
        if table is not None:
            console.print(table)
    loads = ", ".join(
        f"c={level.concurrency}: load {level.load.loadavg_start}->{level.load.loadavg_end}, "
        f"busy {level.load.busy_cores} cores"
        for level in levels
    )
    console.print(f"machine load: {loads}", highlight=False)
    notes = [*result.notes, *(level.server.note for level in levels if level.server and level.server.note)]
    for note in dict.fromkeys(notes):
        console.print(f"[yellow]note:[/] {note}", highlight=False)


UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        envvar="TRITONKIT_URL",
        help="Server URL (grpc://, http://, or host:port with --protocol); default grpc://127.0.0.1:8001.",
    ),
]
ImagesOption = Annotated[
    list[Path] | None,
    typer.Option("--images", help="Image files or folders (default: generated 640x480 photo-like JPEGs)."),
]
RepoOption = Annotated[
    Path,
    typer.Option("--repo", envvar="TRITONKIT_REPO", help="The model repository (for --reference and tune)."),
]


def bench(
    model: Annotated[str, typer.Option("--model", "-m", envvar="TRITONKIT_MODEL", help="Model to load.")],
    url: UrlOption = None,
    protocol: Annotated[
        str | None, typer.Option(help="grpc or http (default: the URL's, else grpc).")
    ] = None,
    metrics_url: Annotated[
        str | None, typer.Option(help="Triton's metrics endpoint (default: the URL's host, port 8002).")
    ] = None,
    concurrency: Annotated[str, typer.Option(help="Requests in flight, one level each: 1,4,16.")] = "1,4,16",
    duration: Annotated[float, typer.Option(help="Measured seconds per level.")] = 10.0,
    requests: Annotated[
        int | None, typer.Option(help="Measure exactly this many requests per level instead of --duration.")
    ] = None,
    images: ImagesOption = None,
    warmup: Annotated[float, typer.Option(help="Unmeasured seconds before each level.")] = 2.0,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the full result as JSON.")] = None,
    csv_out: Annotated[Path | None, typer.Option("--csv", help="Write one row per level as CSV.")] = None,
    plot: Annotated[
        Path | None, typer.Option(help="Write a PNG of throughput and p99 vs concurrency.")
    ] = None,
    reference: Annotated[
        bool,
        typer.Option(
            help="Also run the same preprocessing + ONNX model in process and compare (needs --repo)."
        ),
    ] = False,
    repo: RepoOption = Path("model_repository"),
    timeout: Annotated[float, typer.Option(help="Seconds allowed per request.")] = 60.0,
    server_pid: Annotated[
        int | None, typer.Option(help="tritonserver's pid (default: found by port on this machine).")
    ] = None,
) -> None:
    """Measure a served model: closed-loop throughput and latency per concurrency, server-side
    batching and time per phase, CPU and memory; optionally against the in-process limit.

    Exits 1 when any request failed.
    """
    with domain_errors():
        from tritonkit.bench import BenchOptions, run_bench, write_csv, write_json, write_plot
        from tritonkit.server import read_state

        if metrics_url is None and repo.is_dir():
            state = read_state(repo)
            if state is not None and url in (None, state.grpc_url, state.http_url):
                metrics_url = state.metrics_url
        options = BenchOptions(
            model=model,
            url=url,
            protocol=protocol,
            metrics_url=metrics_url,
            concurrency=_ints(concurrency, "--concurrency"),
            duration_s=duration,
            requests=requests,
            warmup_s=warmup,
            images=tuple(images or ()),
            reference=reference,
            repository=repo,
            timeout_s=timeout,
            server_pid=server_pid,
        )
        view = _LiveView(model)
        if console.is_terminal:
            with Live(view, console=console, refresh_per_second=4, transient=True):
                result = run_bench(options, view.update)
        else:
            result = run_bench(options, lambda event: console.print(event.message) if event.message else None)
        _print_result(result)
        for path, write in ((json_out, write_json), (csv_out, write_csv), (plot, write_plot)):
            if path is not None:
                write(result, path)
                console.print(f"wrote {path}", highlight=False)
        if any(level.error_count for level in result.levels):
            raise typer.Exit(1)


def _tune_table(result: TuneResult) -> Table:
    table = Table(title=f"tune: {result.model}")
    for column in (
        "classifier",
        "preprocess",
        "preferred",
        "delay us",
        "req/s",
        "p50 ms",
        "p99 ms",
        "batch",
        "runs",
    ):
        table.add_column(column, justify="right")
    table.add_column("")
    for candidate_result in sorted(result.results, key=lambda r: r.score, reverse=True):
        table.add_row(*_tune_row(candidate_result, result))
    return table


def _tune_row(item: CandidateResult, result: TuneResult) -> list[str]:
    c = item.candidate
    level = item.best_level
    last = item.runs[-1]
    shown = level or max(last, key=lambda lv: lv.throughput)
    batches = "/".join(_ms(v, 1) for v in shown.avg_batch_size.values()) or "-"
    marks = []
    if item is result.winner:
        marks.append("[green]winner[/]")
    if c == result.baseline:
        marks.append("current")
    if not item.feasible:
        marks.append("[yellow]over budget[/]" if not any(lv.errors for lv in last) else "[red]errors[/]")
    return [
        f"{c.classifier_instances} x {c.intra_op_threads}t",
        str(c.preprocess_instances),
        ",".join(map(str, c.preferred_batch_sizes)) or "-",
        str(c.max_queue_delay_us),
        f"{item.score:.1f}",
        _ms(shown.p50_ms),
        _ms(shown.p99_ms),
        batches,
        str(len(item.runs)),
        " ".join(marks),
    ]


def tune(
    model: Annotated[
        str, typer.Option("--model", "-m", envvar="TRITONKIT_MODEL", help="Pipeline (ensemble) to tune.")
    ],
    repo: RepoOption = Path("model_repository"),
    max_p99_ms: Annotated[
        float | None, typer.Option(help="Latency budget: candidates whose p99 exceeds it do not qualify.")
    ] = None,
    concurrency: Annotated[
        str, typer.Option(help="Levels measured per candidate; the best qualifying counts.")
    ] = "16",
    duration: Annotated[float, typer.Option(help="Measured seconds per level.")] = 5.0,
    warmup: Annotated[float, typer.Option(help="Unmeasured seconds before each level.")] = 2.0,
    images: ImagesOption = None,
    classifier_instances: Annotated[
        str | None, typer.Option(help="Classifier instance counts to try (1,2).")
    ] = None,
    intra_op_threads: Annotated[
        str | None, typer.Option(help="onnxruntime intra-op threads to try (1,2).")
    ] = None,
    preprocess_instances: Annotated[
        str | None, typer.Option(help="Preprocessor instance counts to try.")
    ] = None,
    preferred_batch_sizes: Annotated[
        str | None,
        typer.Option(help="Preferred batch sizes to try, ';'-separated sets, '-' for none: '-;2;4'."),
    ] = None,
    max_queue_delay_us: Annotated[str | None, typer.Option(help="Queue delays to try (0,1000,5000).")] = None,
    publish: Annotated[bool, typer.Option(help="Publish the winner as a new version.")] = True,
    confirm: Annotated[bool, typer.Option(help="Measure the two best again before choosing.")] = True,
    protocol: Annotated[str, typer.Option(help="grpc or http.")] = "grpc",
    budget: Annotated[
        float,
        typer.Option(help="Seconds the search may take; later candidates are skipped."),
    ] = 300.0,
) -> None:
    """Find a faster config for a pipeline: sweep instances, threads and batching on a private
    embedded Triton, and publish the best one within the latency budget as a new version."""
    with domain_errors():
        from tritonkit.bench import SearchSpace, TuneOptions
        from tritonkit.bench import tune as run_tune

        default = SearchSpace.for_cores()
        space = SearchSpace(
            classifier_instances=_ints(classifier_instances, "--classifier-instances")
            if classifier_instances
            else default.classifier_instances,
            intra_op_threads=_ints(intra_op_threads, "--intra-op-threads")
            if intra_op_threads
            else default.intra_op_threads,
            preprocess_instances=_ints(preprocess_instances, "--preprocess-instances")
            if preprocess_instances
            else default.preprocess_instances,
            preferred_batch_sizes=_preferred(preferred_batch_sizes)
            if preferred_batch_sizes
            else default.preferred_batch_sizes,
            max_queue_delay_us=_ints(max_queue_delay_us, "--max-queue-delay-us")
            if max_queue_delay_us
            else default.max_queue_delay_us,
        )
        options = TuneOptions(
            model=model,
            repository=repo,
            space=space,
            max_p99_ms=max_p99_ms,
            concurrency=_ints(concurrency, "--concurrency"),
            duration_s=duration,
            warmup_s=warmup,
            images=tuple(images or ()),
            publish=publish,
            confirm=confirm,
            protocol=protocol,
            budget_s=budget,
        )

        def say(text: str, measured: CandidateResult | None) -> None:
            if measured is None:
                console.print(f"[dim]{text}[/]", highlight=False)
            else:
                level = measured.runs[-1]
                best = max(level, key=lambda lv: lv.throughput)
                console.print(
                    f"  {measured.candidate}: {best.throughput:.1f} req/s, p99 {_ms(best.p99_ms)} ms"
                    + (f", [red]{best.errors} errors[/]" if best.errors else ""),
                    highlight=False,
                )

        result = run_tune(options, say)
        console.print(_tune_table(result))
        winner = result.winner
        console.print(f"winner: {winner.candidate} ({winner.score:.1f} req/s)", highlight=False)
        if result.published_version is not None:
            console.print(
                f"[green]published[/] version {result.published_version} of {model} and its models in {repo} "
                f"(measurements in its tritonkit.json)",
                highlight=False,
            )


def _preferred(text: str) -> tuple[tuple[int, ...], ...]:
    sets = []
    for part in text.split(";"):
        part = part.strip()
        sets.append(() if part in ("", "-", "none") else _ints(part, "--preferred-batch-sizes"))
    return tuple(sets)
