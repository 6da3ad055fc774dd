"""Shared CLI plumbing: settings with logging, rich for people, JSON for scripts, errors that
say what to do. The command modules import it, never each other (no ``main`` <-> ``pipeline``
cycle)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from are_workers.errors import AreWorkersError, PermanentError

if TYPE_CHECKING:
    from are_workers.config import Settings

console = Console()
err_console = Console(stderr=True)


def cli_settings(*, service: bool = False, process: str | None = None) -> Settings:
    """Settings, and logging: JSON for long-running services (when configured), else text.

    ``process`` names a long-running process whose spans are exported when tracing is
    configured (``are_workers.tracing``).
    """
    from are_workers.config import get_settings
    from are_workers.logs import configure_logging

    settings = get_settings()
    configure_logging(settings.log_level, json=service and settings.log_json)
    if process is not None:
        from are_workers import tracing

        tracing.configure(settings, process=process)
    return settings


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
