"""``tritonkit serve``: run the embedded Triton on a repository until Ctrl-C or SIGTERM."""

from __future__ import annotations

import os
import secrets
import signal
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from tritonkit.server import EmbeddedServer, ServeState, remove_state, write_state

from ._console import console, domain_errors


def _remember(server: EmbeddedServer, admin_key: str | None) -> None:
    """Leave serve.json beside a local repository so rollout/rollback find this server."""
    if not isinstance(server.options.repository, Path):
        return
    write_state(
        ServeState(
            pid=os.getpid(),
            repository=str(server.options.repository),
            http_url=server.http_url,
            grpc_url=server.grpc_url,
            metrics_url=server.metrics_url,
            log=str(server.log_path) if server.log_path else None,
            admin_key=admin_key,
            model_control_mode=server.options.model_control_mode,
        )
    )


class _Stop(Exception):
    """Raised from the SIGTERM handler to leave the wait loop like Ctrl-C does."""


def serve(
    repo: Annotated[
        str,
        typer.Option(
            "--repo",
            envvar="TRITONKIT_REPO",
            help="Model repository to serve: a folder, or s3://[host:port/]bucket/prefix.",
        ),
    ] = "model_repository",
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
    admin_key: Annotated[
        str | None,
        typer.Option(
            envvar="TRITONKIT_ADMIN_KEY",
            help="Key that unlocks the model-repository API (header admin-key); generated if unset.",
        ),
    ] = None,
    heal: Annotated[bool, typer.Option(help="Reload a model whose backend stub process died.")] = True,
    grpc_tls_cert: Annotated[
        Path | None, typer.Option(help="Serve gRPC over TLS with this certificate (PEM).")
    ] = None,
    grpc_tls_key: Annotated[Path | None, typer.Option(help="Private key of --grpc-tls-cert (PEM).")] = None,
    grpc_tls_client_ca: Annotated[
        Path | None, typer.Option(help="Require client certificates signed by this CA (mutual TLS).")
    ] = None,
    sagemaker: Annotated[
        bool,
        typer.Option(
            "--sagemaker",
            help="Also answer SageMaker's GET /ping and POST /invocations (bound on ALL interfaces).",
        ),
    ] = False,
    sagemaker_port: Annotated[
        int, typer.Option(envvar="SAGEMAKER_BIND_TO_PORT", help="SageMaker port (with --sagemaker).")
    ] = 8080,
    sagemaker_model: Annotated[
        str | None,
        typer.Option(
            envvar="SAGEMAKER_TRITON_DEFAULT_MODEL_NAME",
            help="Model that /invocations runs, e.g. the ensemble's name (with --sagemaker).",
        ),
    ] = None,
) -> None:
    """Serve a model repository on the embedded Triton until interrupted.

    Mode 'none' serves every model and never changes them; tritonkit runs Triton in EXPLICIT
    mode with all models loaded at start so that it can reload a model whose backend process
    crashed. In EXPLICIT mode (and so in 'none') the model-repository API is locked with an
    admin key: without it, anyone reaching the HTTP port could upload and run a model.py.
    """
    with domain_errors():
        from tritonkit.server import EmbeddedServer, GrpcTls, HealEvent, ServerOptions

        triton_mode = "explicit" if model_control_mode == "none" else model_control_mode
        models = ("*",) if model_control_mode == "none" else tuple(load_model or ())
        key = None
        if triton_mode == "explicit":
            key = admin_key or secrets.token_urlsafe(18)
        repository = _repository(repo)
        try:
            tls = None
            if grpc_tls_cert or grpc_tls_key:
                if not (grpc_tls_cert and grpc_tls_key):
                    raise ValueError("--grpc-tls-cert and --grpc-tls-key go together")
                tls = GrpcTls(grpc_tls_cert, grpc_tls_key, grpc_tls_client_ca)
            options = ServerOptions(
                repository=repository,
                host=host,
                http_port=http_port,
                grpc_port=grpc_port,
                metrics_port=metrics_port,
                model_control_mode=triton_mode,
                poll_interval_s=poll_secs,
                load_models=models,
                log_verbose=log_verbose,
                log_file=log_file,
                admin_key=key,
                grpc_tls=tls,
                heal=heal,
                die_with_parent=True,
                sagemaker_port=sagemaker_port if sagemaker else None,
                sagemaker_default_model=_sagemaker_model(repository, sagemaker_model) if sagemaker else None,
            )
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
        server = EmbeddedServer(options)

        def on_heal(event: HealEvent) -> None:
            console.print(
                f"[yellow]backend process of {event.model} ({event.instance}) died[/]: {event.action} "
                f"in {event.seconds:.1f} s",
                highlight=False,
            )

        server.on_heal = on_heal

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
            if options.sagemaker_port is not None:
                console.print(
                    f"  SageMaker http://0.0.0.0:{options.sagemaker_port} (/ping; /invocations runs "
                    f"{options.sagemaker_default_model})",
                    highlight=False,
                )
                console.print(
                    f"[yellow]warning:[/] Triton binds the SageMaker port {options.sagemaker_port} on all "
                    "interfaces, whatever --host says: keep it behind a firewall.",
                    highlight=False,
                )
            console.print(f"  log      {server.log_path}", highlight=False)
            if key and not admin_key:
                console.print(
                    f"  admin key (model-repository API, header 'admin-key'): {key}\n"
                    f"  export TRITONKIT_ADMIN_KEY={key} to use it with tritonkit's client",
                    highlight=False,
                )
            _remember(server, key)
            console.print("Press Ctrl-C to stop.")
            code = server.wait()
            console.print(f"[red]tritonserver exited with code {code}[/]; see {server.log_path}")
            raise typer.Exit(1)
        except (KeyboardInterrupt, _Stop):
            console.print("Stopping Triton")
        finally:
            server.stop()
            if isinstance(server.options.repository, Path):
                remove_state(server.options.repository, os.getpid())
            signal.signal(signal.SIGTERM, previous)


def _repository(repo: str) -> Path | str:
    """What Triton is given: a resolved folder, or an s3:// URL whose bucket holds models.

    The URL is checked with boto3 when it is installed (the ``[s3]`` extra), for a clear error
    instead of a server that fails to start; Triton itself reads S3 without it.
    """
    from tritonkit.repository import (
        ObjectStoreError,
        S3ExtraMissingError,
        is_object_store_url,
        object_store_models,
        parse_object_store_url,
    )

    if not is_object_store_url(repo):
        return Path(repo).resolve()

    url = parse_object_store_url(repo)
    try:
        models = object_store_models(url)
    except S3ExtraMissingError:
        return str(url)
    if not models:
        raise ObjectStoreError(
            f"{url} holds no model (no MODEL/config.pbtxt): publish one with `tritonkit build-repo "
            f"--repo {url}` or `tritonkit publish`"
        )
    return str(url)


def _sagemaker_model(repo: Path | str, name: str | None) -> str:
    """The model SageMaker's /invocations runs: the one named, or the repository's only model."""
    if name:
        return name
    if isinstance(repo, Path):
        models = sorted(config.parent.name for config in repo.glob("*/config.pbtxt"))
    else:
        from tritonkit.repository import object_store_models

        models = object_store_models(repo)
    if len(models) == 1:
        return models[0]
    raise typer.BadParameter(
        "--sagemaker needs --sagemaker-model (or SAGEMAKER_TRITON_DEFAULT_MODEL_NAME): the model "
        f"that /invocations runs, e.g. the ensemble; {repo} holds {', '.join(models) or 'no models'}",
        param_hint="--sagemaker-model",
    )
