"""``tritonkit rollout`` / ``tritonkit rollback``: change the served version of a pipeline safely."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from tritonkit.client import TritonClient

from ._console import console, domain_errors

if TYPE_CHECKING:
    from tritonkit.rollout import RolloutResult

RepoOption = Annotated[
    Path, typer.Option("--repo", envvar="TRITONKIT_REPO", help="The repository the server serves.")
]
UrlOption = Annotated[
    str | None,
    typer.Option(
        envvar="TRITONKIT_URL", help="Server URL (default: the `tritonkit serve` running on --repo)."
    ),
]
KeyOption = Annotated[
    str | None, typer.Option(envvar="TRITONKIT_ADMIN_KEY", help="Admin key of the model-repository API.")
]
LogOption = Annotated[Path | None, typer.Option(help="The server's log, to report its reasons for failures.")]


def _run(
    repo: Path,
    url: str | None,
    admin_key: str | None,
    log: Path | None,
    act: Callable[[TritonClient, Path | None, Callable[[str], None]], RolloutResult],
) -> None:
    with domain_errors():
        from tritonkit.rollout import RolloutError
        from tritonkit.server import read_state

        state = read_state(repo)
        if url is None:
            if state is None:
                raise typer.BadParameter(
                    f"no `tritonkit serve` is running on {repo}: pass --url (and --admin-key)",
                    param_hint="--url",
                )
            url = state.http_url
        key = admin_key or (state.admin_key if state else None)
        server_log = log or (Path(state.log) if state and state.log else None)
        with TritonClient(url, headers={"admin-key": key} if key else None, timeout_s=120) as client:
            try:
                result = act(client, server_log, lambda text: console.print(f"- {text}", highlight=False))
            except RolloutError as exc:
                console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
                raise typer.Exit(1) from None
        checked = (
            ""
            if result.max_abs_diff is None
            else f" (check images match the build: max |diff| {result.max_abs_diff:.1e})"
        )
        console.print(
            f"[green]{result.name} now serves version {result.current}[/] (was {result.previous}){checked}",
            highlight=False,
        )


def rollout_command(
    name: Annotated[str, typer.Argument(help="The pipeline (ensemble) name.")],
    version: Annotated[int, typer.Option("--version", "-v", help="The version to make current.")],
    repo: RepoOption = Path("model_repository"),
    url: UrlOption = None,
    admin_key: KeyOption = None,
    log: LogOption = None,
) -> None:
    """Load a version next to the current one, check its answers, then make it current."""
    from tritonkit.rollout import rollout

    _run(
        repo,
        url,
        admin_key,
        log,
        lambda client, server_log, say: rollout(client, repo, name, version, log=server_log, progress=say),
    )


def rollback_command(
    name: Annotated[str, typer.Argument(help="The pipeline (ensemble) name.")],
    repo: RepoOption = Path("model_repository"),
    url: UrlOption = None,
    admin_key: KeyOption = None,
    log: LogOption = None,
) -> None:
    """Return a pipeline to the newest version older than the one it serves."""
    from tritonkit.rollout import rollback

    _run(
        repo,
        url,
        admin_key,
        log,
        lambda client, server_log, say: rollback(client, repo, name, log=server_log, progress=say),
    )
