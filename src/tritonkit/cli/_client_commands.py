"""``tritonkit health|status|classify|metrics``: thin commands over :mod:`tritonkit.client`."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from tritonclient.utils import triton_to_np_dtype

from ._console import console, domain_errors

if TYPE_CHECKING:
    from tritonkit.client import MetricsRates, MetricsSnapshot, ModelMetadata, ModelRates, TritonClient

UrlOption = Annotated[
    str,
    typer.Option(
        "--url", envvar="TRITONKIT_URL", help="Server URL: http://, https://, grpc:// or grpcs://host:port."
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
TimeoutOption = Annotated[
    float, typer.Option("--timeout", envvar="TRITONKIT_TIMEOUT", help="Seconds allowed for each call.")
]
HeaderOption = Annotated[
    list[str] | None,
    typer.Option(
        "--header", "-H", help="Extra request header 'Name: value' (repeatable), e.g. an admin key."
    ),
]
CaCertOption = Annotated[
    Path | None,
    typer.Option(
        "--ca-cert", envvar="TRITONKIT_CA_CERT", help="PEM file of CAs to trust for https:// or grpcs://."
    ),
]

_DEFAULT_URL = "http://127.0.0.1:8000"


def _client(
    url: str, timeout: float, headers: list[str] | None, ca_cert: Path | None, metrics_url: str | None = None
) -> TritonClient:
    from tritonkit.client import TLSConfig, TritonClient

    parsed: dict[str, str] = {}
    for header in headers or []:
        name, sep, value = header.partition(":")
        if not sep or not name.strip():
            raise typer.BadParameter(f"a header is 'Name: value', got {header!r}")
        parsed[name.strip()] = value.strip()
    try:
        return TritonClient(
            url,
            timeout_s=timeout,
            headers=parsed,
            ssl=TLSConfig(root_certificates=ca_cert) if ca_cert else None,
            metrics_url=metrics_url,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def _print_json(value: Any) -> None:
    def default(obj: Any) -> Any:
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            return dataclasses.asdict(obj)
        if isinstance(obj, Path):
            return str(obj)
        raise TypeError(f"cannot write {type(obj).__name__} as JSON")

    console.print_json(json.dumps(value, default=default))


def _probe_inputs(metadata: ModelMetadata) -> dict[str, Any]:
    """One small, valid request for a model: a tiny PNG for image-bytes inputs, zeros otherwise."""
    import io

    import numpy as np
    from PIL import Image

    inputs: dict[str, Any] = {}
    for tensor in metadata.inputs:
        shape = [1 if d < 0 else d for d in tensor.shape]
        if tensor.datatype == "BYTES":
            buffer = io.BytesIO()
            Image.new("RGB", (8, 8), (127, 127, 127)).save(buffer, format="PNG")
            inputs[tensor.name] = np.full(shape, buffer.getvalue(), dtype=object)
        else:
            inputs[tensor.name] = np.zeros(shape, dtype=triton_to_np_dtype(tensor.datatype))
    return inputs


def _probe(client: TritonClient, model: str) -> tuple[bool, str | None]:
    from tritonkit.client import TritonClientError

    try:
        client.infer(model, _probe_inputs(client.model_metadata(model)))
    except TritonClientError as exc:
        return False, str(exc).splitlines()[0]
    return True, None


def _mark(ok: bool | None) -> str:
    return "-" if ok is None else ("[green]yes[/]" if ok else "[red]no[/]")


def health(
    url: UrlOption = _DEFAULT_URL,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Also check this model.")] = None,
    wait: Annotated[float, typer.Option(help="Wait up to this many seconds for readiness first.")] = 0.0,
    probe: Annotated[
        bool,
        typer.Option(
            help="With --model, also send it one small request: Triton reports a model whose backend "
            "process died as READY, only a request shows it cannot answer."
        ),
    ] = True,
    json_output: JsonOption = False,
    timeout: TimeoutOption = 5.0,
    header: HeaderOption = None,
    ca_cert: CaCertOption = None,
) -> None:
    """Check that the server is live and ready (and the model, with --model); exit 1 if not."""
    with domain_errors(), _client(url, timeout, header, ca_cert) as client:
        from tritonkit.client import Timeout

        if wait > 0:
            try:
                client.wait_until_ready(model, timeout_s=wait)
            except Timeout:
                pass  # reported below, step by step
        live = client.is_live()
        ready = client.is_ready() if live else False
        model_ready = (client.is_model_ready(model) if live else False) if model else None
        answers, problem = (None, None)
        if model and probe and model_ready:
            answers, problem = _probe(client, model)
        healthy = live and ready and model_ready is not False and answers is not False
        if json_output:
            _print_json(
                {
                    "url": client.url,
                    "live": live,
                    "ready": ready,
                    "model": model,
                    "model_ready": model_ready,
                    "model_answers": answers,
                    "problem": problem,
                    "healthy": healthy,
                }
            )
        else:
            table = Table(title=f"Triton at {client.url}", show_header=False)
            table.add_column(style="bold")
            table.add_column()
            table.add_row("live", _mark(live))
            table.add_row("ready", _mark(ready))
            if model:
                table.add_row(f"model {model}", _mark(model_ready))
            if answers is not None:
                table.add_row(f"{model} answers", _mark(answers) + (f" {problem}" if problem else ""))
            console.print(table)
        if not healthy:
            raise typer.Exit(1)


def status(
    url: UrlOption = _DEFAULT_URL,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Show this model's details.")] = None,
    json_output: JsonOption = False,
    timeout: TimeoutOption = 10.0,
    header: HeaderOption = None,
    ca_cert: CaCertOption = None,
) -> None:
    """Show the server, its repository and (with --model) a model's tensors and statistics."""
    with domain_errors(), _client(url, timeout, header, ca_cert) as client:
        server = client.server_metadata()
        index = client.repository_index()
        details: dict[str, Any] = {}
        if model:
            details = {
                "metadata": client.model_metadata(model),
                "config": client.model_config(model),
                "statistics": client.statistics(model),
            }
        if json_output:
            payload: dict[str, Any] = {"url": client.url, "server": server, "models": index}
            if model:
                config = details["config"]
                payload["model"] = {**details, "config": config.raw}
            _print_json(payload)
            return
        console.print(f"[bold]{server.name} {server.version}[/] at {client.url}", highlight=False)
        table = Table(title="Model repository")
        for column in ("model", "version", "state", "reason"):
            table.add_column(column)
        for entry in index:
            state = entry.state or "-"
            colour = "green" if state == "READY" else "yellow"
            table.add_row(
                entry.name, entry.version or "-", f"[{colour}]{state}[/]", (entry.reason or "").strip()
            )
        console.print(table)
        if model:
            _print_model(details)


def _print_model(details: dict[str, Any]) -> None:
    metadata, config, stats = details["metadata"], details["config"], details["statistics"]
    kind = "ensemble" if config.is_ensemble else (config.backend or config.platform)
    table = Table(title=f"{metadata.name} ({kind}, max batch {config.max_batch_size})")
    for column in ("", "name", "datatype", "shape", "labels"):
        table.add_column(column)
    labels = {t.name: t.label_filename for t in config.outputs}
    for tensor in metadata.inputs:
        table.add_row("input", tensor.name, tensor.datatype, str(list(tensor.shape)), "")
    for tensor in metadata.outputs:
        table.add_row(
            "output", tensor.name, tensor.datatype, str(list(tensor.shape)), labels.get(tensor.name) or ""
        )
    for step in config.ensemble_steps:
        table.add_row("step", step.model_name, "", "", "")
    console.print(table)
    for stat in stats:
        console.print(
            f"version {stat.version}: {stat.success.count} requests, {stat.inference_count} inferences, "
            f"{stat.execution_count} executions, {stat.fail.count} failed; mean request "
            f"{stat.success.mean_ms:.2f} ms (queue {stat.queue.mean_ms:.2f} ms, "
            f"infer {stat.compute_infer.mean_ms:.2f} ms)",
            highlight=False,
        )


def classify(
    images: Annotated[list[Path], typer.Argument(help="Image files to classify.")],
    model: Annotated[str, typer.Option("--model", "-m", envvar="TRITONKIT_MODEL", help="Model to ask.")],
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1, help="Classes per image.")] = 5,
    url: UrlOption = _DEFAULT_URL,
    json_output: JsonOption = False,
    timeout: TimeoutOption = 30.0,
    header: HeaderOption = None,
    ca_cert: CaCertOption = None,
) -> None:
    """Classify images with a model that takes encoded images (a tritonkit ensemble)."""
    with domain_errors(), _client(url, timeout, header, ca_cert) as client:
        results = client.classify(model, images, top_k=top_k)
        if json_output:
            _print_json(
                [
                    {"image": str(path), "classes": [r._asdict() for r in classes]}
                    for path, classes in zip(images, results, strict=True)
                ]
            )
            return
        table = Table(title=f"{model}: top {top_k}")
        for column, justify in (
            ("image", "left"),
            ("rank", "right"),
            ("label", "left"),
            ("index", "right"),
            ("score", "right"),
        ):
            table.add_column(column, justify=justify)  # type: ignore[arg-type]
        for path, classes in zip(images, results, strict=True):
            for rank, result in enumerate(classes, start=1):
                table.add_row(
                    str(path) if rank == 1 else "",
                    str(rank),
                    result.label,
                    str(result.index),
                    f"{result.score:.4f}",
                )
            table.add_section()
        console.print(table)


def metrics(
    url: UrlOption = _DEFAULT_URL,
    metrics_url: Annotated[
        str | None,
        typer.Option(
            envvar="TRITONKIT_METRICS_URL", help="Metrics endpoint (default: port 8002 of --url's host)."
        ),
    ] = None,
    watch: Annotated[
        float | None, typer.Option(help="Scrape every SECONDS and show the rates between scrapes.")
    ] = None,
    count: Annotated[int | None, typer.Option(help="With --watch: stop after this many updates.")] = None,
    json_output: JsonOption = False,
    timeout: TimeoutOption = 10.0,
    header: HeaderOption = None,
    ca_cert: CaCertOption = None,
) -> None:
    """Show Triton's metrics: totals since load, or live rates with --watch SECONDS."""
    if watch is not None and watch <= 0:
        raise typer.BadParameter("--watch takes a positive number of seconds")
    with domain_errors(), _client(url, timeout, header, ca_cert, metrics_url) as client:
        if watch is None:
            _show_totals(client.metrics(), json_output)
            return
        try:
            _watch(client, watch, count, json_output)
        except KeyboardInterrupt:
            pass


def _show_totals(snapshot: MetricsSnapshot, json_output: bool) -> None:
    from tritonkit.client._metrics import zero_snapshot

    if json_output:
        _print_json(snapshot)
        return
    totals = snapshot.rates_since(zero_snapshot(snapshot.taken_at))
    console.print(rates_table(totals, "Since load (averages per request)", per_second=False))
    if snapshot.cpu_utilization is not None:
        used = (snapshot.cpu_memory_used_bytes or 0) / 2**30
        total = (snapshot.cpu_memory_total_bytes or 0) / 2**30
        console.print(
            f"CPU {snapshot.cpu_utilization:.0%}, memory {used:.1f} / {total:.1f} GiB", highlight=False
        )


def _updates(client: TritonClient, every_s: float, count: int | None) -> Iterator[MetricsRates]:
    previous = client.metrics()
    done = 0
    while count is None or done < count:
        time.sleep(every_s)
        current = client.metrics()
        yield current.rates_since(previous)
        previous = current
        done += 1


def _watch(client: TritonClient, every_s: float, count: int | None, json_output: bool) -> None:
    title = f"{client.metrics_url}, every {every_s:g} s"
    if json_output or not console.is_terminal:
        for rates in _updates(client, every_s, count):
            if json_output:
                console.print(json.dumps(dataclasses.asdict(rates)), soft_wrap=True, highlight=False)
            else:
                console.print(rates_table(rates, title))
        return
    from rich.live import Live

    with Live(
        Table(title=f"{title}: waiting for the first interval"), console=console, auto_refresh=False
    ) as live:
        for rates in _updates(client, every_s, count):
            live.update(rates_table(rates, title), refresh=True)


def rates_table(rates: MetricsRates, title: str, per_second: bool = True) -> Table:
    """Rates per pipeline (with its steps) and per standalone model, as a rich table."""
    table = Table(title=title)
    table.add_column("model")
    if per_second:
        table.add_column("req/s", justify="right")
        table.add_column("inf/s", justify="right")
    else:
        table.add_column("requests", justify="right")
        table.add_column("inferences", justify="right")
    for column in ("batch", "latency ms", "queue ms", "infer ms", "queue %", "failed %"):
        table.add_column(column, justify="right")

    def number(value: float | None, fmt: str = "{:.2f}") -> str:
        return "-" if value is None else fmt.format(value)

    def row(r: ModelRates, name: str, style: str | None = None) -> None:
        first = (
            (number(r.requests_per_s), number(r.inferences_per_s))
            if per_second
            else (f"{r.requests:.0f}", f"{r.inferences:.0f}")
        )
        table.add_row(
            name,
            *first,
            number(r.avg_batch_size, "{:.1f}"),
            number(r.avg_request_ms),
            number(r.avg_queue_ms),
            number(r.avg_compute_infer_ms),
            number(r.queue_share, "{:.0%}"),
            number(r.failure_rate, "{:.1%}"),
            style=style,
        )

    for pipeline in rates.pipelines:
        row(pipeline, f"{pipeline.model} v{pipeline.version} (pipeline)", "bold")
        for step in pipeline.steps:
            row(step, f"  └ {step.model} v{step.version}", "dim")
    for model in rates.models:
        row(model, f"{model.model} v{model.version}")
    if per_second:
        table.caption = f"total {rates.requests_per_s:.2f} req/s, {rates.inferences_per_s:.2f} inf/s" + (
            f", CPU {rates.cpu_utilization:.0%}" if rates.cpu_utilization is not None else ""
        )
    return table
