"""``tritonkit publish``: upload a version of a local repository into object storage."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ._console import console, domain_errors


def publish(
    local_repo: Annotated[Path, typer.Argument(help="Local model repository, e.g. model_repository.")],
    url: Annotated[str, typer.Argument(help="Where to: s3://bucket/prefix or s3://host:port/bucket/prefix.")],
    model: Annotated[
        list[str] | None, typer.Option("--model", "-m", help="Model to publish (repeatable; default: all).")
    ] = None,
    version: Annotated[
        int | None, typer.Option(help="Version to publish (default: the newest all the models have).")
    ] = None,
) -> None:
    """Upload one version of a local repository's models to S3, config.pbtxt last.

    The version keeps its number and is never overwritten. Credentials come from the standard
    AWS variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION).
    """
    with domain_errors():
        from tritonkit.repository import publish_to_object_store

        with console.status("Uploading", spinner="dots"):
            publication = publish_to_object_store(local_repo, url, models=model, version=version)
        table = Table(title=f"version {publication.version} published", show_header=False)
        table.add_column(style="bold")
        table.add_column()
        for location in publication.version_urls:
            table.add_row("model", location)
        table.add_row("objects", str(len(publication.keys)))
        console.print(table)
        console.print(f"Serve it with: [bold]tritonkit serve --repo {publication.url}[/]", highlight=False)
