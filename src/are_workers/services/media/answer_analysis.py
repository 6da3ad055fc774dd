"""The ``media.analyze_response`` job: speech analytics of an answer's stored words and,
with consent, face analysis of its recording; it leaves the answer ``processed``.

A skipped face analysis is a ``video_analysis_results`` row that says why. Each stored result
(speech signals, face signals or the skip) writes one audit row in the transaction that
stores it: the model that made it, the recording by file id and content hash, the rows
written by id, and counts; never words or face data.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from are_workers.config import Settings, get_settings
from are_workers.errors import ConfigurationError, InvalidInputError
from are_workers.ml.multilingual import Encoder
from are_workers.ml.transcriber import Word
from are_workers.models.subscription import UsageKind, UsageUnit
from are_workers.models.video_interviews import (
    SpeechAnalytics,
    Transcript,
    TranscriptSegment,
    TranscriptStatus,
    VideoAnalysisResult,
    VideoResponse,
    VideoResponseStatus,
)
from are_workers.services import consent
from are_workers.services.compliance import audit
from are_workers.services.consent import Activity, load_consents
from are_workers.services.media import signals_to_dict
from are_workers.services.media.answers import (
    Answer,
    answer_notice,
    begin_attempt,
    load_answer,
    recording_path,
    settle_interview,
)
from are_workers.services.media.checkpoints import segment_from_row
from are_workers.services.media.probe import probe_media
from are_workers.services.media.proctoring import REVIEW_NOTICE, proctor_observations
from are_workers.services.media.speech_analytics import (
    Similarity,
    SpeechAnalyticsOptions,
    analyze_words,
)
from are_workers.services.media.speech_analytics import (
    SpeechAnalytics as SpeechSignals,
)
from are_workers.services.media.store import (
    JobRef,
    TransactionFactory,
    audit_recording_decision,
    digest,
    gpu_memory_errors_as_transient,
    options_digest,
    vision_model_version,
)
from are_workers.services.media.video_analysis import VideoAnalysisOptions, analyze_video
from are_workers.services.model_registry import record_usage

log = structlog.get_logger(__name__)

SPEECH_AUDIT_ACTION = "speech_analytics.analysed"
VIDEO_AUDIT_ACTION = "video_analysis.analysed"
VIDEO_SKIPPED_AUDIT_ACTION = "video_analysis.skipped"
SPEECH_MODEL_NAME = "are-speech-analytics"
SPEECH_METRICS_VERSION = 1
"""Bump when what ``speech_analytics.metrics`` holds, or how it is computed, changes."""


def encoder_similarity(encoder: Callable[[], Encoder]) -> Similarity:
    """``similarity(question, answer)``: the cosine of the question read as a query and the
    answer as a passage by a multilingual encoder (E5), so an answer given in German or
    French is compared with an English question on its meaning.

    ``encoder`` is called only when there is something to compare, so a worker whose answers
    are all silent never loads the text model.
    """

    def similarity(question: str, answer: str) -> float:
        model = encoder()
        return float(model.queries([question])[0] @ model.passages([answer])[0])

    return similarity


@dataclass(frozen=True, slots=True)
class AnalysisOutcome:
    transcript_id: uuid.UUID
    speech_detected: bool
    relevance: str
    """``scored``, or why not: ``no_question``, ``no_speech``, ``no_embedder``,
    ``embedder_unavailable``."""
    video: str
    """``analysed``, or the consent it lacked: ``no_biometric_consent``,
    ``no_video_analysis_consent``."""

    def as_result(self) -> dict[str, Any]:
        return {
            "transcript_id": str(self.transcript_id),
            "speech_detected": self.speech_detected,
            "relevance": self.relevance,
            "video": self.video,
        }


def analyze_response(
    session: Session,
    *,
    organization_id: uuid.UUID,
    response_id: uuid.UUID,
    transactions: TransactionFactory,
    job: JobRef | None = None,
    similarity: Similarity | None = None,
    similarity_model: str | None = None,
    settings: Settings | None = None,
    speech_options: SpeechAnalyticsOptions | None = None,
    video_options: VideoAnalysisOptions | None = None,
) -> AnalysisOutcome:
    """Speech signals of the answer's transcript and, with consent, its video signals.

    Needs a complete transcript (``media.transcribe_response`` queues this job when it has
    written one). ``similarity`` scores the answer's relevance to the question; without it
    the relevance signal is empty and says why. ``similarity_model`` names its embedding
    model (``name@version``) in the audit log.
    """
    settings = settings or get_settings()
    speech_options = speech_options or SpeechAnalyticsOptions()
    video_options = video_options or VideoAnalysisOptions()
    answer = load_answer(session, organization_id, response_id)
    consents = load_consents(session, answer.candidate_id)
    consent.ensure_allowed(consents, Activity.JUDGMENT, what="the answer")
    transcript = session.execute(
        select(
            Transcript.id,
            Transcript.text,
            Transcript.language,
            Transcript.language_probability,
            Transcript.duration_seconds,
            Transcript.model_version_id,
        )
        .where(
            Transcript.organization_id == organization_id,
            Transcript.video_response_id == response_id,
            Transcript.status == TranscriptStatus.COMPLETE,
        )
        .order_by(Transcript.updated_at.desc())
        .limit(1)
    ).one_or_none()
    if transcript is None:
        raise InvalidInputError(
            "The answer has no transcript yet, so it cannot be analysed: transcribe it first.",
            code="not_transcribed",
        )
    biometric = consent.refusal(consents, Activity.BIOMETRIC, video=True)
    refusal = (biometric.code, biometric.message) if biometric is not None else None
    path = recording_path(session, answer, settings) if refusal is None else None
    vision_version_id = vision_model_version(transactions, video_options)
    begin_attempt(
        transactions,
        answer,
        status=VideoResponseStatus.ANALYZING,
        job=job,
        crash_cap=settings.crash_cap,
    )
    session.commit()  # read-only so far; see transcribe_response

    rows = session.scalars(
        select(TranscriptSegment)
        .where(TranscriptSegment.transcript_id == transcript.id)
        .order_by(TranscriptSegment.segment_index)
    )
    words = [word for row in rows for word in segment_from_row(row).words]
    duration = transcript.duration_seconds or 0.0
    speech, relevance = _speech_signals(
        words,
        duration=duration,
        text=transcript.text or "",
        question=answer.question,
        similarity=similarity,
        options=speech_options,
    )
    speech_id = _store_speech(
        session, answer, transcript.id, speech, relevance, words, speech_options
    )
    task_run_id = job.id if job else None
    _audit_speech(
        session,
        answer,
        transcript,
        speech_id,
        relevance=relevance,
        similarity_model=similarity_model if relevance == "scored" else None,
        words=len(words),
        options=speech_options,
        task_run_id=task_run_id,
    )
    if refusal is None:
        assert path is not None
        _store_video(session, answer, vision_version_id, path, settings, video_options, task_run_id)
        video = "analysed"
    else:
        _store_video_skipped(session, answer, vision_version_id, refusal, task_run_id)
        video = refusal[0]

    record_usage(
        session,
        organization_id=organization_id,
        kind=UsageKind.VIDEO_ANALYSIS,
        quantity=duration,
        unit=UsageUnit.SECOND,
        model_version_id=vision_version_id if refusal is None else None,
    )
    silent = not words
    error_code, error_message = answer_notice(
        silent=silent,
        language=transcript.language,
        language_probability=transcript.language_probability,
    )
    session.execute(
        update(VideoResponse)
        .where(VideoResponse.id == response_id, VideoResponse.organization_id == organization_id)
        .values(
            status=VideoResponseStatus.PROCESSED,
            error_code=error_code,
            error_message=error_message,
        )
    )
    settle_interview(session, organization_id, answer.interview_id)
    return AnalysisOutcome(
        transcript_id=transcript.id,
        speech_detected=not silent,
        relevance=relevance,
        video=video,
    )


def _speech_signals(
    words: Sequence[Word],
    *,
    duration: float,
    text: str,
    question: str,
    similarity: Similarity | None,
    options: SpeechAnalyticsOptions,
) -> tuple[SpeechSignals, str]:
    """Signals, and whether relevance was scored (or why not)."""
    reason = None
    if similarity is None:
        reason = "no_embedder"
    elif not question.strip():
        reason = "no_question"
    elif not words:
        reason = "no_speech"
    if reason is None:
        try:
            with gpu_memory_errors_as_transient("answer relevance"):
                scored = analyze_words(
                    words,
                    duration=duration,
                    answer_text=text,
                    question=question,
                    similarity=similarity,
                    options=options,
                )
            return scored, "scored"
        except ConfigurationError as exc:
            log.warning("answer_relevance_unavailable", error=str(exc))
            reason = "embedder_unavailable"
    plain = analyze_words(words, duration=duration, answer_text=text, options=options)
    return plain, reason


def _mean_pause_ms(words: Sequence[Word], options: SpeechAnalyticsOptions) -> float | None:
    ordered = sorted(words, key=lambda w: (w.start, w.end))
    pauses = [
        gap
        for prev, nxt in itertools.pairwise(ordered)
        if (gap := round(nxt.start - prev.end, 3)) >= options.pause_min_seconds
    ]
    return round(1000 * sum(pauses) / len(pauses), 1) if pauses else None


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _store_speech(
    session: Session,
    answer: Answer,
    transcript_id: uuid.UUID,
    speech: SpeechSignals,
    relevance: str,
    words: Sequence[Word],
    options: SpeechAnalyticsOptions,
) -> uuid.UUID:
    """One row per transcript; every signal stored with its unit and definition."""
    signals = speech.signals
    mean_pause = _mean_pause_ms(words, options)
    metrics = speech.to_dict()
    metrics["signals"]["mean_pause_ms"] = {
        "value": mean_pause,
        "unit": "milliseconds",
        "definition": f"Mean length of the pauses of {options.pause_min_seconds:g} s or more "
        "between two words.",
    }
    metrics |= {
        "version": SPEECH_METRICS_VERSION,
        "relevance": relevance,
        "columns": {
            "words_per_minute": "speaking_rate_wpm",
            "filler_word_rate": "filler_words_per_minute",
            "pause_ratio": "pause_ratio",
            "mean_pause_ms": "mean_pause_ms",
        },
    }
    values: dict[str, Any] = {
        "words_per_minute": _number(signals["speaking_rate_wpm"].value),
        "filler_word_rate": _number(signals["filler_words_per_minute"].value),
        "pause_ratio": _number(signals["pause_ratio"].value),
        "mean_pause_ms": mean_pause,
        "metrics": metrics,
    }
    stmt = insert(SpeechAnalytics).values(
        organization_id=answer.organization_id, transcript_id=transcript_id, **values
    )
    speech_id: uuid.UUID = session.scalars(
        stmt.on_conflict_do_update(index_elements=["transcript_id"], set_=values).returning(
            SpeechAnalytics.id
        )
    ).one()
    return speech_id


def _audit_speech(
    session: Session,
    answer: Answer,
    transcript: Any,
    speech_id: uuid.UUID,
    *,
    relevance: str,
    similarity_model: str | None,
    words: int,
    options: SpeechAnalyticsOptions,
    task_run_id: uuid.UUID | None,
) -> None:
    """The speech signals as an AI decision: from which transcript (and ASR model), by which
    rules and, when relevance was scored, which embedding model. Counts, never words."""
    name = f"{SPEECH_MODEL_NAME}+{similarity_model}" if similarity_model else SPEECH_MODEL_NAME
    audit.record(
        session,
        organization_id=answer.organization_id,
        action=SPEECH_AUDIT_ACTION,
        entity_type="speech_analytics",
        entity_id=speech_id,
        subject_id=answer.candidate_id,
        model_name=name,
        model_version=f"{SPEECH_METRICS_VERSION}/{options_digest(options)}",
        input_refs={
            "video_response_id": str(answer.id),
            "transcript_id": str(transcript.id),
            "asr_model_version_id": str(transcript.model_version_id),
            "words": words,
        },
        output_refs={"speech_analytics_id": str(speech_id), "relevance": relevance},
    )


def _store_video(
    session: Session,
    answer: Answer,
    model_version_id: uuid.UUID,
    path: Path,
    settings: Settings,
    options: VideoAnalysisOptions,
    task_run_id: uuid.UUID | None,
) -> None:
    """Signals and intervals, and whether a person should look: no frames, no face boxes."""
    media = probe_media(path, settings=settings)
    with gpu_memory_errors_as_transient("video analysis"):
        video = analyze_video(path, options=options, settings=settings, media=media)
    review = proctor_observations(
        video.observations, duration=video.duration, video_options=options
    ).summary
    signals = {
        "version": 1,
        "data_category": video.data_category.value,
        "duration": video.duration,
        "sample_fps": video.sample_fps,
        "detector": video.detector.to_dict() if video.detector else None,
        "signals": signals_to_dict(video.signals),
        "intervals": {
            "multiple_faces": [i.to_dict() for i in video.multiple_faces_intervals],
            "no_face": [i.to_dict() for i in video.no_face_intervals],
            "face_away": [i.to_dict() for i in video.face_away_intervals],
        },
    }
    summary = {
        "status": "analysed",
        "data_category": video.data_category.value,
        "needs_human_review": review.needs_human_review,
        "review_reasons": list(review.review_reasons),
        "notice": REVIEW_NOTICE,
    }
    stmt = insert(VideoAnalysisResult).values(
        organization_id=answer.organization_id,
        video_response_id=answer.id,
        model_version_id=model_version_id,
        signals=signals,
        summary=summary,
    )
    result_id: uuid.UUID = session.scalars(
        stmt.on_conflict_do_update(
            index_elements=["video_response_id", "model_version_id"],
            set_={"signals": signals, "summary": summary},
        ).returning(VideoAnalysisResult.id)
    ).one()
    audit_recording_decision(
        session,
        answer,
        action=VIDEO_AUDIT_ACTION,
        entity_type="video_analysis_results",
        entity_id=result_id,
        model_version_id=model_version_id,
        output_refs={
            "video_analysis_result_id": str(result_id),
            "needs_human_review": review.needs_human_review,
            "result_sha256": digest([signals, summary]),
        },
        task_run_id=task_run_id,
    )


def _store_video_skipped(
    session: Session,
    answer: Answer,
    model_version_id: uuid.UUID,
    refusal: tuple[str, str],
    task_run_id: uuid.UUID | None,
) -> None:
    """Why there is no face analysis, as a row the UI shows; and no biometric data left
    from earlier runs, since the consent they relied on is gone."""
    session.execute(
        delete(VideoAnalysisResult).where(
            VideoAnalysisResult.organization_id == answer.organization_id,
            VideoAnalysisResult.video_response_id == answer.id,
        )
    )
    code, reason = refusal
    result_id = session.scalars(
        insert(VideoAnalysisResult)
        .values(
            organization_id=answer.organization_id,
            video_response_id=answer.id,
            model_version_id=model_version_id,
            signals={},
            summary={"status": "skipped", "reason_code": code, "reason": reason},
        )
        .returning(VideoAnalysisResult.id)
    ).one()
    audit.record(
        session,
        organization_id=answer.organization_id,
        action=VIDEO_SKIPPED_AUDIT_ACTION,
        entity_type="video_analysis_results",
        entity_id=result_id,
        subject_id=answer.candidate_id,
        input_refs={"video_response_id": str(answer.id)},
        output_refs={"video_analysis_result_id": str(result_id), "reason_code": code},
    )
