"""``tritonkit demo``: the main job end to end on the embedded server."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._console import console, domain_errors


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
        from tritonkit.demo._run import run_demo

        report = run_demo(workdir, repo, console, epochs=epochs)
        if min(report.correct.values(), default=0) == 0:
            raise typer.Exit(1)
