"""``are-workers media analyze``: the jobs' analysis on a local file, for people and scripts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from are_workers.cli.media import media_app
from tests.media_db.media import FIXTURES


@pytest.fixture(autouse=True)
def _keep_test_logging(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command configures logging onto the runner's stderr, which is closed when the
    command returns; later tests would then log into a closed file."""
    monkeypatch.setattr(
        "are_workers.services.media.analyze.configure_logging", lambda *a, **k: None
    )


def test_analyze_prints_json_for_scripts() -> None:
    result = CliRunner().invoke(media_app, ["analyze", str(FIXTURES / "no_audio.mp4"), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["skipped"] == {"transcription": "no_audio_track"}
    assert data["video"]["signals"]["face_presence_ratio"]["value"] == 1.0


def test_analyze_explains_a_bad_file_and_exits_2(tmp_path: Path) -> None:
    empty = tmp_path / "answer.webm"
    empty.touch()
    result = CliRunner().invoke(media_app, ["analyze", str(empty)])
    assert result.exit_code == 2
    assert "empty_file" in result.output
