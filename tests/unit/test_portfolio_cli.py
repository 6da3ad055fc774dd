"""``are-workers portfolio evaluate``: local deep evaluation, one JSON document on stdout with
``--json``, worded refusals for bad archives (with a stand-in embedder: no model download)."""

from __future__ import annotations

import io
import json
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import structlog
from typer.testing import CliRunner

from are_workers.cli.main import app
from tests.unit.test_portfolio_evidence import bag_of_words

ROOT = Path(__file__).resolve().parents[2]
SAM = ROOT / "samples" / "portfolios" / "backend_sam_okafor"
JOB = ROOT / "samples" / "jobs" / "backend_engineer.md"


@pytest.fixture(autouse=True)
def _logs_outlive_the_runner() -> Iterator[None]:
    """The CLI sends logs to stderr unless logging is configured; CliRunner's stderr closes
    after each call, so configure it here (not cached) and reset it afterwards."""
    structlog.configure(
        logger_factory=structlog.PrintLoggerFactory(file=sys.__stderr__),
        cache_logger_on_first_use=False,
    )
    yield
    structlog.reset_defaults()


@pytest.fixture(autouse=True)
def _stand_in_embedder(monkeypatch: pytest.MonkeyPatch) -> None:
    from are_workers.ml import embedder

    stand_in = SimpleNamespace(embed=bag_of_words, info=SimpleNamespace(key="bow@test"))
    monkeypatch.setattr(embedder, "get_embedder", lambda settings=None: stand_in)


def test_json_output_is_exactly_one_document_on_stdout() -> None:
    result = CliRunner().invoke(
        app, ["portfolio", "evaluate", str(SAM), "--job", str(JOB), "--json"]
    )
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)  # the whole of stdout parses: nothing else there
    assert "backend engineer" in document["job"].lower()
    assert document["outcome"] in {"completed", "needs_review"}
    assert document["overall_score"] is not None
    assert [item["item_id"] for item in document["items"]] == ["0", "1", "2"]
    assert document["items"][2]["kind"] == "link"
    assert all(isinstance(item["passages"], int) for item in document["items"])
    assert "loading the embedding model" in result.stderr


def test_a_zip_slip_archive_is_refused_in_words(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("ok.py", "print(1)\n")
        archive.writestr("../../evil.py", "x = 1\n")
    bad = tmp_path / "project.zip"
    bad.write_bytes(buffer.getvalue())
    result = CliRunner().invoke(app, ["portfolio", "evaluate", str(bad), "--job", str(JOB)])
    assert result.exit_code == 0
    assert "climbs out of the archive" in result.stderr
    as_json = CliRunner().invoke(
        app, ["portfolio", "evaluate", str(bad), "--job", str(JOB), "--json"]
    )
    document = json.loads(as_json.stdout)
    [item] = document["items"]
    assert item["status"] == "failed" or item["error_code"]
    assert "climbs out of the archive" in item["error_message"]


def test_a_file_over_the_upload_limit_is_refused_before_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from are_workers.config import get_settings

    monkeypatch.setenv("ARE_MAX_FILE_BYTES", "10")
    get_settings.cache_clear()
    try:
        big = tmp_path / "notes.md"
        big.write_text("# notes\n" * 10)
        result = CliRunner().invoke(app, ["portfolio", "evaluate", str(big), "--job", str(JOB)])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1
    assert "upload limit" in result.stderr and result.stdout == ""
