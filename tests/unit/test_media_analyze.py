"""The whole analysis of a local file, as the CLI and the actors run it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from are_workers.errors import InvalidInputError
from are_workers.services.media.analyze import (
    AnalysisOptions,
    analyze_media,
    format_analysis,
    main,
)
from are_workers.services.media.transcription import ChunkResult, word_error_rate

MEDIA = Path(__file__).resolve().parents[1] / "fixtures" / "media"
LABELS = json.loads((MEDIA / "labels.json").read_text())


def test_interview_video_end_to_end() -> None:
    chunks: list[ChunkResult] = []
    analysis = analyze_media(
        MEDIA / "interview.mp4",
        question="Why do you want this job?",
        similarity=lambda q, a: 0.42,
        on_chunk_done=chunks.append,
        require_audio=True,
        require_video=True,
    )
    assert analysis.transcript is not None
    assert analysis.speech is not None
    assert word_error_rate(LABELS["interview.mp4"]["text"], analysis.transcript.text) <= 0.15
    assert [c.index for c in chunks] == [0]
    assert analysis.speech.signals["answer_relevance"].value == pytest.approx(0.42)
    assert analysis.video is not None
    assert analysis.proctoring is not None
    assert analysis.proctoring.summary.needs_human_review
    assert analysis.skipped == {}
    assert set(analysis.timings) >= {"probe", "transcription", "video", "proctoring"}

    data = json.loads(analysis.to_json())
    assert data["video"]["data_category"] == data["proctoring"]["data_category"] == "biometric"
    assert data["speech"]["signals"]["speaking_rate_wpm"]["definition"]
    report = format_analysis(analysis)
    assert "multiple faces: 6.0-8.0 s" in report
    assert "needs human review: yes" in report


def test_missing_tracks_are_skipped_unless_required() -> None:
    analysis = analyze_media(MEDIA / "silence.ogg")
    assert analysis.video is None
    assert analysis.skipped == {"video": "no_video_track"}
    assert analysis.transcript is not None
    assert analysis.transcript.is_empty
    assert analysis.speech is not None
    assert not analysis.speech.speech_detected
    with pytest.raises(InvalidInputError) as caught:
        analyze_media(MEDIA / "silence.ogg", require_video=True)
    assert caught.value.code == "no_video_track"


def test_proctoring_can_be_left_out() -> None:
    analysis = analyze_media(MEDIA / "no_audio.mp4", options=AnalysisOptions(proctor=False))
    assert analysis.proctoring is None
    assert analysis.skipped == {"transcription": "no_audio_track", "proctoring": "not_requested"}


def test_cli_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(MEDIA / "no_audio.mp4"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["video"]["signals"]["face_presence_ratio"]["value"] == pytest.approx(1.0)
    assert data["transcript"] is None


def test_cli_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "answer.webm"
    empty.touch()
    assert main([str(empty)]) == 2
    assert "empty_file" in capsys.readouterr().err
