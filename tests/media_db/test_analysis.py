"""Speech and video analysis of transcribed answers: consents, skip reasons, relevance."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from are_workers.errors import ConfigurationError, PermanentError
from are_workers.models.ai_evaluations import AIModelVersion, ModelKind
from are_workers.models.candidates import CandidateConsent, ConsentPurpose, ConsentStatus
from are_workers.models.subscription import UsageKind, UsageRecord
from are_workers.models.video_interviews import (
    SpeechAnalytics,
    VideoAnalysisResult,
    VideoInterview,
    VideoInterviewQuestion,
    VideoInterviewStatus,
    VideoResponse,
    VideoResponseStatus,
)
from are_workers.services.media import answer_analysis, answer_transcription
from are_workers.services.media.store import TransactionFactory, vision_detector
from are_workers.services.media.video_analysis import VideoAnalysisOptions
from tests.media_db.conftest import (
    Recorded,
    RecordFn,
    consent_to_face_analysis,
    give_consent,
    run_answer_job,
)
from tests.media_db.media import FIXTURES, write_answer

LABELS = json.loads((FIXTURES / "labels.json").read_text())
_TRANSCRIBED: dict[bytes, tuple[Any, list[Any]]] = {}


@pytest.fixture(autouse=True)
def _whisper_once_per_recording(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests are about analysis: Whisper runs once per recording for the module, and
    the stored transcript comes through the same chunk-by-chunk path as in a worker."""
    real = answer_transcription.transcribe_chunks

    def cached(path: Any, *, completed: Any = (), on_chunk_done: Any = None, **kw: Any) -> Any:
        key = Path(path).read_bytes()
        if key not in _TRANSCRIBED or completed:
            chunks: list[Any] = []
            _TRANSCRIBED[key] = (real(path, on_chunk_done=chunks.append, **kw), chunks)
        transcript, chunks = _TRANSCRIBED[key]
        for chunk in chunks:
            if on_chunk_done is not None:
                on_chunk_done(chunk)
        return transcript

    monkeypatch.setattr(answer_transcription, "transcribe_chunks", cached)


def _fixed(value: float) -> Any:
    calls: list[tuple[str, str]] = []

    def similarity(question: str, answer: str) -> float:
        calls.append((question, answer))
        return value

    similarity.calls = calls  # type: ignore[attr-defined]
    return similarity


def _transcribed(
    db: Session, record: RecordFn, savepoints: TransactionFactory, recording: Any = None, **kw: Any
) -> Recorded:
    answer = record(recording or FIXTURES / "interview.mp4", **kw)
    answer_transcription.transcribe_response(
        db, organization_id=answer.org_id, response_id=answer.response.id, transactions=savepoints
    )
    return answer


def _analyze(db: Session, answer: Recorded, savepoints: TransactionFactory, **kw: Any) -> Any:
    return run_answer_job(db, answer_analysis.analyze_response, answer, savepoints, **kw)


def _video_rows(db: Session, answer: Recorded) -> list[VideoAnalysisResult]:
    return list(
        db.scalars(
            select(VideoAnalysisResult).where(
                VideoAnalysisResult.video_response_id == answer.response.id
            )
        )
    )


def _speech_row(db: Session, transcript_id: Any) -> SpeechAnalytics:
    return db.scalars(
        select(SpeechAnalytics).where(SpeechAnalytics.transcript_id == transcript_id)
    ).one()


def test_with_consent_the_answer_gets_speech_and_video_signals_once(
    db: Session, record: RecordFn, savepoints: TransactionFactory
) -> None:
    answer = record(FIXTURES / "interview.mp4")
    consent_to_face_analysis(db, answer.graph)
    answer_transcription.transcribe_response(
        db, organization_id=answer.org_id, response_id=answer.response.id, transactions=savepoints
    )
    similarity = _fixed(0.61)
    outcome = _analyze(db, answer, savepoints, similarity=similarity)
    assert outcome.as_result() | {"transcript_id": None} == {
        "transcript_id": None,
        "speech_detected": True,
        "relevance": "scored",
        "video": "analysed",
    }
    assert similarity.calls[0][0] == answer.question.prompt

    speech = _speech_row(db, outcome.transcript_id)
    assert speech.words_per_minute and 100 < speech.words_per_minute < 250
    assert speech.pause_ratio is not None and 0 <= speech.pause_ratio <= 1
    assert speech.filler_word_rate == 0
    signals = speech.metrics["signals"]
    assert signals["answer_relevance"]["value"] == pytest.approx(0.61)
    assert all(s["definition"] and s["unit"] for s in signals.values())  # definitions stored
    assert "mean_pause_ms" in signals and speech.metrics["relevance"] == "scored"

    (video,) = _video_rows(db, answer)
    assert video.summary["status"] == "analysed" and video.summary["data_category"] == "biometric"
    presence = video.signals["signals"]["face_presence_ratio"]["value"]
    assert presence == pytest.approx(LABELS["interview.mp4"]["face_presence_ratio"], abs=0.05)
    (two_faces,) = video.signals["intervals"]["multiple_faces"]
    assert two_faces["start"] == pytest.approx(6.0, abs=0.5)
    assert video.summary["needs_human_review"] is True  # a second face for 2 s
    assert "frames" not in video.signals  # no per-frame data, no face boxes
    model = db.get_one(AIModelVersion, video.model_version_id)
    detector = vision_detector(VideoAnalysisOptions())
    assert (model.kind, model.name) == (ModelKind.VISION, detector.name)
    assert video.signals["detector"] == detector.to_dict()  # which detector ran

    response = db.get_one(VideoResponse, answer.response.id)
    db.refresh(response)
    assert (response.status, response.error_code) == (VideoResponseStatus.PROCESSED, None)
    interview = db.get_one(VideoInterview, answer.interview.id)
    db.refresh(interview)
    assert interview.status is VideoInterviewStatus.PROCESSED and interview.processed_at

    again = _analyze(db, answer, savepoints, similarity=similarity)  # a redelivery
    assert again == outcome
    assert len(_video_rows(db, answer)) == 1
    count = select(func.count()).select_from(SpeechAnalytics)
    assert db.scalar(count.where(SpeechAnalytics.transcript_id == outcome.transcript_id)) == 1


@pytest.mark.parametrize(
    ("consents", "reason"),
    [
        ({}, "no_biometric_consent"),
        ({ConsentPurpose.BIOMETRIC_PROCESSING: ConsentStatus.GRANTED}, "no_video_analysis_consent"),
        (
            {
                ConsentPurpose.BIOMETRIC_PROCESSING: ConsentStatus.WITHDRAWN,
                ConsentPurpose.VIDEO_ANALYSIS: ConsentStatus.GRANTED,
            },
            "no_biometric_consent",
        ),
    ],
    ids=["none", "biometric-only", "biometric-withdrawn"],
)
def test_without_consent_face_analysis_is_skipped_with_the_reason(
    db: Session,
    record: RecordFn,
    savepoints: TransactionFactory,
    consents: dict[ConsentPurpose, ConsentStatus],
    reason: str,
) -> None:
    answer = _transcribed(db, record, savepoints)
    for purpose, status in consents.items():
        give_consent(db, answer.graph, purpose, status)
    outcome = _analyze(db, answer, savepoints, similarity=_fixed(0.5))
    assert outcome.video == reason
    (video,) = _video_rows(db, answer)
    assert video.signals == {}
    assert video.summary["status"] == "skipped" and video.summary["reason_code"] == reason
    assert "consent" in video.summary["reason"]
    assert _speech_row(db, outcome.transcript_id).words_per_minute  # speech still analysed
    response = db.get_one(VideoResponse, answer.response.id)
    db.refresh(response)
    assert response.status is VideoResponseStatus.PROCESSED  # a skip is not a failure


def test_withdrawn_consent_removes_earlier_face_analysis(
    db: Session, record: RecordFn, savepoints: TransactionFactory
) -> None:
    answer = _transcribed(db, record, savepoints)
    consent_to_face_analysis(db, answer.graph)
    _analyze(db, answer, savepoints)
    assert _video_rows(db, answer)[0].summary["status"] == "analysed"
    db.execute(
        delete(CandidateConsent).where(CandidateConsent.candidate_id == answer.graph.candidate.id)
    )
    _analyze(db, answer, savepoints)
    (video,) = _video_rows(db, answer)
    assert video.summary["status"] == "skipped" and video.signals == {}


def test_usage_is_recorded_once_per_analysis_job(
    db: Session, record: RecordFn, savepoints: TransactionFactory
) -> None:
    from are_workers import ledger
    from are_workers.services.media.store import JobRef

    answer = _transcribed(db, record, savepoints)
    job = ledger.enqueue(db, "media.analyze_response", {"response_id": str(answer.response.id)})
    for _ in range(2):
        _analyze(db, answer, savepoints, job=JobRef(job, 1))
    usage = db.scalars(select(UsageRecord).where(UsageRecord.task_run_id == job)).one()
    assert usage.kind is UsageKind.VIDEO_ANALYSIS and float(usage.quantity) > 13
    assert usage.model_version_id is None  # no face analysis ran without consent


def test_relevance_reasons(
    db: Session, record: RecordFn, savepoints: TransactionFactory, tmp_path: Any
) -> None:
    answer = _transcribed(db, record, savepoints)
    assert _analyze(db, answer, savepoints).relevance == "no_embedder"

    def unavailable(question: str, answer: str) -> float:
        raise ConfigurationError("ARE_EMBEDDING_MODEL_PATH=/nowhere has no model")

    outcome = _analyze(db, answer, savepoints, similarity=unavailable)
    assert outcome.relevance == "embedder_unavailable"
    speech = _speech_row(db, outcome.transcript_id)
    assert speech.metrics["signals"]["answer_relevance"]["value"] is None
    assert speech.words_per_minute  # everything else still measured

    silent = write_answer(tmp_path / "silent.mp4", np.zeros(3 * 16_000, dtype=np.float32))
    quiet = _transcribed(db, record, savepoints, silent)
    similarity = _fixed(0.9)
    outcome = _analyze(db, quiet, savepoints, similarity=similarity)
    assert (outcome.relevance, outcome.speech_detected) == ("no_speech", False)
    assert similarity.calls == []
    speech = _speech_row(db, outcome.transcript_id)
    assert speech.words_per_minute is None and speech.metrics["speech_detected"] is False
    response = db.get_one(VideoResponse, quiet.response.id)
    db.refresh(response)
    assert (response.status, response.error_code) == (VideoResponseStatus.PROCESSED, "no_speech")


def test_relevance_with_the_real_multilingual_model(
    db: Session, record: RecordFn, savepoints: TransactionFactory
) -> None:
    """On-topic and off-topic questions, in English and in German, for the same answer ("I
    enjoy building reliable systems..."), scored by the multilingual E5 the actor uses: the
    language of the question does not decide the score, its topic does."""
    from are_workers.ml.multilingual import get_encoder

    similarity = answer_analysis.encoder_similarity(get_encoder)
    answer = _transcribed(db, record, savepoints)
    scores = {}
    for topic, prompt in [
        ("on", "What kind of engineering work do you enjoy, and who do you like to work with?"),
        ("off", "What is your favourite recipe for apple pie?"),
        ("on-de", "Welche Art von Ingenieursarbeit machen Sie gern, und mit wem arbeiten Sie?"),
        ("off-de", "Was ist Ihr Lieblingsrezept für Apfelkuchen?"),
    ]:
        db.get_one(VideoInterviewQuestion, answer.question.id).prompt = prompt
        db.flush()
        outcome = _analyze(db, answer, savepoints, similarity=similarity)
        metrics = _speech_row(db, outcome.transcript_id).metrics
        scores[topic] = metrics["signals"]["answer_relevance"]["value"]
    # E5's cosines are compressed (unrelated texts score about 0.75): margins, not 0.2
    assert scores["on"] > scores["off"] + 0.05, scores
    assert scores["on-de"] > scores["off-de"] + 0.03, scores


def test_analysis_needs_a_transcript_and_no_objection(
    db: Session, record: RecordFn, savepoints: TransactionFactory
) -> None:
    answer = record(FIXTURES / "interview.mp4")
    with pytest.raises(PermanentError) as caught:
        _analyze(db, answer, savepoints)
    assert caught.value.code == "not_transcribed"
    transcribed = _transcribed(db, record, savepoints)
    give_consent(db, transcribed.graph, ConsentPurpose.AUTOMATED_DECISION, ConsentStatus.OBJECTED)
    with pytest.raises(PermanentError) as caught:
        _analyze(db, transcribed, savepoints)
    assert caught.value.code == "automated_processing_objected"
