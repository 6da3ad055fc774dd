"""Shared CLI output: rich for people, JSON for scripts, errors that say what to do."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.console import Console

from are_workers.errors import AreWorkersError, PermanentError

console = Console()
err_console = Console(stderr=True)


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


@contextmanager
def friendly_errors() -> Iterator[None]:
    """Show our errors as one clear line (exit 1) instead of a traceback."""
    try:
        yield
    except PermanentError as exc:
        err_console.print(f"[bold red]error[/]: {exc.user_message}")
        raise typer.Exit(1) from None
    except AreWorkersError as exc:
        err_console.print(f"[bold red]error[/]: {exc}")
        raise typer.Exit(1) from None
