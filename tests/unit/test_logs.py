"""Logging survives the stderr it was configured with being swapped out and closed."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator

import pytest
import structlog

from are_workers.logs import configure_logging


@pytest.fixture
def restored_logging() -> Iterator[None]:
    handlers = logging.getLogger().handlers[:]
    yield
    structlog.reset_defaults()
    logging.getLogger().handlers[:] = handlers


def test_a_cached_logger_writes_to_the_stderr_of_the_moment(
    monkeypatch: pytest.MonkeyPatch, restored_logging: None
) -> None:
    first = io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    configure_logging("INFO", json=True)
    log = structlog.get_logger("test-logs")
    log.info("first", n=1)  # cached on first use, while ``first`` is stderr
    logging.getLogger("test-logs.stdlib").warning("from stdlib")
    assert json.loads(first.getvalue().splitlines()[0])["event"] == "first"
    assert "from stdlib" in first.getvalue()

    first.close()  # a test runner's or CLI runner's capture ends
    second = io.StringIO()
    monkeypatch.setattr(sys, "stderr", second)
    log.info("second", n=2)
    logging.getLogger("test-logs.stdlib").warning("again")

    lines = second.getvalue().splitlines()
    record = json.loads(lines[0])
    assert (record["event"], record["n"], record["level"]) == ("second", 2, "info")
    assert "again" in second.getvalue()
