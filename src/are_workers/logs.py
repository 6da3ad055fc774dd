"""Structured logging: JSON lines for machines, a readable console for people.

Why structlog with contextvars: the ledger middleware binds job id, message id, actor and
organization once per message, and every log line in services below it carries them.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TextIO

import structlog


def _drop_results_warning(record: logging.LogRecord) -> bool:
    """Dramatiq warns that return values are discarded; ours go to the ledger's result."""
    return "Results middleware" not in record.getMessage()


class _CurrentStderr:
    """Whatever ``sys.stderr`` is when a line is written, not when logging was configured.

    Loggers are cached on first use; bound to the stderr of that moment, they would keep
    writing to it after it was swapped and closed (a CLI run inside a test runner, a
    library that redirects stderr for a while) and every later log call would raise
    "I/O operation on closed file"."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(level: str = "INFO", *, json: bool = True, file: Path | None = None) -> None:
    """Log to stderr, or (``file``, ``ARE_LOG_FILE``) append to that file: the demo sends
    its workers' log lines there so that they do not interleave with its own output."""
    stream: TextIO | _CurrentStderr = _CurrentStderr()
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        stream = file.open("a", buffering=1, encoding="utf-8")
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(file=stream),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )
    # Dramatiq and SQLAlchemy use stdlib logging: route it through the same format.
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared[:4],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
        if json
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    handler.addFilter(_drop_results_warning)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("pgserver").setLevel(logging.WARNING)
