"""The ``tritonkit`` command line: thin commands over the libraries."""

from __future__ import annotations

import typer

from . import _bench, _build_repo, _client_commands, _demo, _publish, _rollout, _serve, _soak
from ._console import widen_when_piped

app = typer.Typer(
    name="tritonkit",
    help="From a trained image classifier to a served NVIDIA Triton model repository, and back.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.command("build-repo")(_build_repo.build_repo)
app.command("serve")(_serve.serve)
app.command("publish")(_publish.publish)
app.command("health")(_client_commands.health)
app.command("status")(_client_commands.status)
app.command("classify")(_client_commands.classify)
app.command("metrics")(_client_commands.metrics)
app.command("demo")(_demo.demo)
app.command("rollout")(_rollout.rollout_command)
app.command("rollback")(_rollout.rollback_command)
app.command("soak")(_soak.soak)
app.command("bench")(_bench.bench)
app.command("tune")(_bench.tune)


@app.command("version")
def version() -> None:
    """Print tritonkit's version."""
    import tritonkit

    typer.echo(tritonkit.__version__)


def main() -> None:
    """Entry point of the ``tritonkit`` console script."""
    widen_when_piped()
    app()


def build_repo_main() -> None:
    """Entry point of the ``build-repo`` console script (same as ``tritonkit build-repo``)."""
    widen_when_piped()
    typer.run(_build_repo.build_repo)


__all__ = ["app", "build_repo_main", "main"]
