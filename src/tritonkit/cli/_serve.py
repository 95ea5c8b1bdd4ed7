"""``tritonkit serve``: run the embedded Triton on a repository until Ctrl-C or SIGTERM."""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from ._console import console, domain_errors


class _Stop(Exception):
    """Raised from the SIGTERM handler to leave the wait loop like Ctrl-C does."""


def serve(
    repo: Annotated[
        Path, typer.Option("--repo", envvar="TRITONKIT_REPO", help="Model repository to serve.")
    ] = Path("model_repository"),
    host: Annotated[
        str, typer.Option(help="Address to bind; 127.0.0.1 keeps the server private to this machine.")
    ] = "127.0.0.1",
    http_port: Annotated[int, typer.Option(envvar="TRITONKIT_HTTP_PORT")] = 8000,
    grpc_port: Annotated[int, typer.Option(envvar="TRITONKIT_GRPC_PORT")] = 8001,
    metrics_port: Annotated[int, typer.Option(envvar="TRITONKIT_METRICS_PORT")] = 8002,
    model_control_mode: Annotated[str, typer.Option(help="none | poll | explicit")] = "none",
    poll_secs: Annotated[int, typer.Option(help="Repository poll interval (poll mode).")] = 2,
    load_model: Annotated[
        list[str] | None, typer.Option(help="Models to load at start in explicit mode ('*' for all).")
    ] = None,
    log_verbose: Annotated[int, typer.Option(help="tritonserver verbose log level.")] = 0,
    log_file: Annotated[Path | None, typer.Option(help="Write tritonserver's log here.")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the server to be ready.")] = 120.0,
) -> None:
    """Serve a model repository on the embedded Triton until interrupted."""
    with domain_errors():
        from tritonkit.server import EmbeddedServer, ServerOptions

        try:
            options = ServerOptions(
                repository=repo.resolve(),
                host=host,
                http_port=http_port,
                grpc_port=grpc_port,
                metrics_port=metrics_port,
                model_control_mode=model_control_mode,
                poll_interval_s=poll_secs,
                load_models=tuple(load_model or ()),
                log_verbose=log_verbose,
                log_file=log_file,
            )
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
        server = EmbeddedServer(options)

        def on_sigterm(_signum: int, _frame: FrameType | None) -> None:
            raise _Stop

        previous = signal.signal(signal.SIGTERM, on_sigterm)
        try:
            with console.status("Starting Triton", spinner="dots"):
                server.start(timeout_s=timeout)
            console.print(f"[green]Triton is ready[/] serving {repo}", highlight=False)
            console.print(f"  HTTP     {server.http_url}", highlight=False)
            console.print(f"  gRPC     {server.grpc_url}", highlight=False)
            console.print(f"  metrics  {server.metrics_url}", highlight=False)
            console.print(f"  log      {server.log_path}", highlight=False)
            console.print("Press Ctrl-C to stop.")
            code = server.wait()
            console.print(f"[red]tritonserver exited with code {code}[/]; see {server.log_path}")
            raise typer.Exit(1)
        except (KeyboardInterrupt, _Stop):
            console.print("Stopping Triton")
        finally:
            server.stop()
            signal.signal(signal.SIGTERM, previous)
