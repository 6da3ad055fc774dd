"""Shared CLI plumbing: settings with logging, rich for people, JSON for scripts, errors that
say what to do. The command modules import it, never each other (no ``main`` <-> ``pipeline``
cycle)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape

from are_workers.errors import AreWorkersError, PermanentError

if TYPE_CHECKING:
    from are_workers.config import Settings

#: Where stdout is not a terminal (a pipe, a file, a script) tables are printed as wide as
#: their content: a width of 80 would cut ids and messages short.
UNBOUNDED_WIDTH = 100_000
console = Console(width=None if sys.stdout.isatty() else UNBOUNDED_WIDTH)
err_console = Console(stderr=True)


def json_output_mode(enabled: bool) -> None:
    """With ``--json``, stdout carries exactly one JSON document (:func:`print_json`):
    everything this module's ``console`` would have shown people (progress bars, panels,
    notes) goes to stderr instead."""
    if enabled:
        console.file = sys.stderr


def cell_limits(max_width: int) -> dict[str, Any]:
    """Column options: clipped to ``max_width`` with an ellipsis on a terminal, whole
    otherwise (a script reading the table gets every character)."""
    if console.is_terminal:
        return {"no_wrap": True, "overflow": "ellipsis", "max_width": max_width}
    return {"no_wrap": True, "overflow": "ignore"}


def cli_settings(*, service: bool = False, process: str | None = None) -> Settings:
    """Settings, and logging: JSON for long-running services (when configured), else text.

    ``process`` names a long-running process whose spans are exported when tracing is
    configured (``are_workers.tracing``).
    """
    from are_workers.config import get_settings
    from are_workers.logs import configure_logging

    settings = get_settings()
    configure_logging(
        settings.log_level, json=service and settings.log_json, file=settings.log_file
    )
    if process is not None:
        from are_workers import tracing

        tracing.configure(settings, process=process)
    return settings


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


@contextmanager
def friendly_errors() -> Iterator[None]:
    """Show our errors as one clear line (exit 1) instead of a traceback. The message is
    printed as written: brackets in it ("are-workers[llm]") are text, not markup."""
    try:
        yield
    except PermanentError as exc:
        err_console.print(f"[bold red]error[/]: {escape(exc.user_message)}")
        raise typer.Exit(1) from None
    except AreWorkersError as exc:
        err_console.print(f"[bold red]error[/]: {escape(str(exc))}")
        raise typer.Exit(1) from None
