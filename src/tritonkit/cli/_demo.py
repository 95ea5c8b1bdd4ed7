"""``tritonkit demo``: the main job end to end on the embedded server.

Train a small classifier -> build-repo -> serve -> classify over HTTP and gRPC -> metrics.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ._client_commands import rates_table
from ._console import console, domain_errors

DEMO_MODEL = "shapes"


@dataclass
class DemoReport:
    accuracy: float
    version: int
    answers: dict[str, list[tuple[str, str, float]]] = field(default_factory=dict)  # protocol -> rows
    correct: dict[str, int] = field(default_factory=dict)
    images: int = 0


def run_demo(
    workdir: Path,
    repository: Path,
    console: Console | None = None,
    *,
    epochs: int = 12,
    log: Callable[[str], None] | None = None,
) -> DemoReport:
    """Run the whole demo; returns what it measured so callers (and tests) can check it."""
    from tritonkit.client import TritonClient
    from tritonkit.demo import write_shape_images
    from tritonkit.demo._train import train_shape_classifier
    from tritonkit.repository import BuildOptions, build_repository
    from tritonkit.server import EmbeddedServer, ServerOptions, free_port

    out = console or Console()
    say = log or (lambda text: out.print(text, highlight=False))

    started = time.monotonic()
    say("[bold]1/5[/] Training a small shape classifier on generated images")
    trained = train_shape_classifier(workdir / "model", epochs=epochs)
    say(f"    test accuracy {trained.accuracy:.1%} on 400 unseen images -> {trained.path}")

    say(f"[bold]2/5[/] Building the Triton repository in {repository}")
    result = build_repository(
        trained.path,
        BuildOptions(name=DEMO_MODEL, repository=repository, labels=trained.labels_path, keep=3),
    )
    parity = result.parity.summary() if result.parity else "n/a"
    say(f"    {DEMO_MODEL} version {result.version}: {', '.join(result.models)}; parity {parity}")

    images = write_shape_images(workdir / "images")
    say("[bold]3/5[/] Starting the embedded Triton server")
    options = ServerOptions(
        repository=repository.resolve(),
        http_port=free_port(),
        grpc_port=free_port(),
        metrics_port=free_port(),
    )
    report = DemoReport(accuracy=trained.accuracy, version=result.version, images=len(images))
    with EmbeddedServer(options) as server:
        say(f"    ready: {server.http_url}  {server.grpc_url}  {server.metrics_url}")
        say("[bold]4/5[/] Classifying images over HTTP and gRPC (top 2 labels)")
        with TritonClient(server.http_url, metrics_url=server.metrics_url) as client:
            before = client.metrics()
        for url in (server.http_url, server.grpc_url):
            protocol = url.split(":", 1)[0]
            with TritonClient(url) as client:
                results = client.classify(DEMO_MODEL, [path for path, _ in images], top_k=2)
            rows = []
            for (path, truth), top in zip(images, results, strict=True):
                rows.append((path.name, truth, top[0].label or str(top[0].index), top[0].score, top))
            report.answers[protocol] = [(name, best, score) for name, _, best, score, _ in rows]
            report.correct[protocol] = sum(1 for _, truth, best, _, _ in rows if best == truth)
            table = Table(title=f"{protocol.upper()}: {report.correct[protocol]}/{len(rows)} correct")
            for column in ("image", "truth", "top 2 (label score)"):
                table.add_column(column)
            for name, truth, _, _, top in rows:
                table.add_row(name, truth, ", ".join(f"{r.label} {r.score:.3f}" for r in top))
            out.print(table)

        say("[bold]5/5[/] Server metrics over the classification requests")
        with TritonClient(server.http_url, metrics_url=server.metrics_url) as client:
            rates = client.metrics() - before
        out.print(rates_table(rates, "Triton metrics: the ensemble and its steps", per_second=False))
    elapsed = time.monotonic() - started
    say(f"Done in {elapsed:.0f} s. Serve it again with: tritonkit serve --repo {repository}")
    return report


def demo(
    workdir: Annotated[Path, typer.Option(help="Where the trained model and test images go.")] = Path(
        ".tritonkit/demo"
    ),
    repo: Annotated[Path, typer.Option("--repo", help="Model repository to build into.")] = Path(
        "model_repository"
    ),
    epochs: Annotated[int, typer.Option(help="Training epochs for the demo classifier.")] = 12,
) -> None:
    """Train a small classifier, build its repository, serve it, classify images, show metrics."""
    with domain_errors():
        report = run_demo(workdir, repo, console, epochs=epochs)
        if min(report.correct.values(), default=0) == 0:
            raise typer.Exit(1)
