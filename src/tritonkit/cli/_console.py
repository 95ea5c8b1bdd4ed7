"""One console for the CLI, and the one place where domain errors become a red line and exit 1."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

import typer
from rich.console import Console

# Piped output (CI logs, `| tee`) gets room for the tables instead of rich's 80-column default.
_PIPED_WIDTH = None if sys.stdout.isatty() or "COLUMNS" in os.environ else 120
console = Console(width=_PIPED_WIDTH)
err_console = Console(stderr=True, width=_PIPED_WIDTH)


def _domain_errors() -> tuple[type[BaseException], ...]:
    from tritonkit.converters import ConversionError
    from tritonkit.repository import RepositoryError
    from tritonkit.server import ServerError

    errors: list[type[BaseException]] = [ConversionError, RepositoryError, ServerError]
    with contextlib.suppress(ImportError):
        from tritonkit.client import TritonClientError

        errors.append(TritonClientError)
    return tuple(errors)


@contextlib.contextmanager
def domain_errors() -> Iterator[None]:
    """Print a tritonkit error as one red sentence (no traceback) and exit with status 1."""
    try:
        yield
    except _domain_errors() as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True, soft_wrap=True)
        raise typer.Exit(1) from None
