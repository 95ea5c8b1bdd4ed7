"""One console for the CLI, and the one place where domain errors become a red line and exit 1."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

import typer
from rich.console import Console
from rich.markup import escape

console = Console()
err_console = Console(stderr=True)


def widen_when_piped(width: int = 120) -> None:
    """Give piped output (CI logs, ``| tee``) room for the tables instead of rich's 80 columns."""
    if not sys.stdout.isatty() and "COLUMNS" not in os.environ:
        console.width = width
        err_console.width = width


def _domain_errors() -> tuple[type[BaseException], ...]:
    from tritonkit.converters import ConversionError
    from tritonkit.repository import RepositoryError
    from tritonkit.server import ServerError

    errors: list[type[BaseException]] = [ConversionError, RepositoryError, ServerError]
    with contextlib.suppress(ImportError):
        from tritonkit.client import TritonClientError

        errors.append(TritonClientError)
    with contextlib.suppress(ImportError):
        from tritonkit.bench import BenchError

        errors.append(BenchError)
    return tuple(errors)


@contextlib.contextmanager
def domain_errors() -> Iterator[None]:
    """Print a tritonkit error as one red sentence (no traceback) and exit with status 1."""
    try:
        yield
    except _domain_errors() as exc:
        # escaped: a message is text, and "pip install 'tritonkit[serve]'" must keep its [serve]
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
