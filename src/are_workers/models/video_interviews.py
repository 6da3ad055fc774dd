"""One-way (asynchronous) video interviews and their analysis.

Pipeline: a candidate records ``video_responses`` → the media worker transcribes them
chunk by chunk (``transcription_checkpoints`` makes a killed job resume where it stopped;
segments are written as chunks complete) → speech analytics and, only with a
``video_analysis``/``biometric_processing`` consent, face analysis.

Minimisation: the raw video reference (``video_responses.file_id``) is kept 90 days, face
analysis 180 days; the transcript lives as long as the application.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy import (
    text as sql_text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from are_workers.models.base import Model, TenantMixin, TimestampMixin, created_at_col
from are_workers.models.classification import (
    Anonymize,
    DataCategory,
    Holds,
    not_pii,
    pii,
    table_policy,
)
from are_workers.models.columns import (
    covered_ref_id,
    json_default,
    opt_ts,
    pg_enum,
    ref_id,
    task_run_ref,
    tenant_fk,
    tenant_key,
)
from are_workers.models.schemas import ChunkLanguages, TranscriptWords, validated

RAW_VIDEO_RETENTION_DAYS = 90
FACE_ANALYSIS_RETENTION_DAYS = 180


class VideoInterviewStatus(StrEnum):
    INVITED = "invited"
    IN_PROGRESS = "in_progress"
    SUBMITTED = "submitted"
    PROCESSING = "processing"
    PROCESSED = "processed"
    FAILED = "failed"
    EXPIRED = "expired"


class VideoResponseStatus(StrEnum):
    UPLOADED = "uploaded"
    TRANSCRIBING = "transcribing"
    ANALYZING = "analyzing"
    PROCESSED = "processed"
    FAILED = "failed"


class TranscriptStatus(StrEnum):
    PARTIAL = "partial"  # chunks still being transcribed; see transcription_checkpoints
    COMPLETE = "complete"


class VideoInterview(TenantMixin, TimestampMixin, Model):
    """An invitation to record answers to a job's video questions."""

    __tablename__ = "video_interviews"

    application_id: Mapped[ref_id]
    status: Mapped[VideoInterviewStatus] = mapped_column(
        pg_enum(VideoInterviewStatus, "video_interview_status"),
        server_default=VideoInterviewStatus.INVITED.value,
        info=not_pii(),
    )
    language: Mapped[str | None] = mapped_column(String(16), info=not_pii(holds=Holds.CODE))
    invited_at: Mapped[datetime] = mapped_column(
        server_default=sql_text("now()"), info=not_pii(DataCategory.TECHNICAL)
    )
    expires_at: Mapped[datetime] = mapped_column(info=not_pii(DataCategory.TECHNICAL))
    submitted_at: Mapped[opt_ts]
    processed_at: Mapped[opt_ts]
    error_code: Mapped[str | None] = mapped_column(String(64), info=not_pii(holds=Holds.CODE))
    error_message: Mapped[str | None] = mapped_column(
        Text, info=pii(DataCategory.TECHNICAL, anonymize=Anonymize.NULL)
    )

    responses: Mapped[list[VideoResponse]] = relationship(
        back_populates="video_interview",
        foreign_keys="VideoResponse.video_interview_id",
        passive_deletes=True,
    )

    __table_args__ = (
        tenant_key(),
        tenant_fk("application_id", "applications"),
        CheckConstraint("expires_at > invited_at", name="expires_after_invite"),
        {"info": table_policy(retention_days=None, purpose="Asynchronous video interviewing.")},
    )


class VideoInterviewQuestion(TenantMixin, TimestampMixin, Model):
    """A question of a job's video interview."""

    __tablename__ = "video_interview_questions"

    job_id: Mapped[covered_ref_id]
    prompt: Mapped[str] = mapped_column(Text, info=not_pii(holds=Holds.TENANT_TEXT))
    position: Mapped[int] = mapped_column(Integer, info=not_pii())
    think_time_seconds: Mapped[int] = mapped_column(
        Integer, server_default=sql_text("30"), info=not_pii()
    )
    max_duration_seconds: Mapped[int] = mapped_column(
        Integer, server_default=sql_text("180"), info=not_pii()
    )
    max_attempts: Mapped[int] = mapped_column(
        SmallInteger, server_default=sql_text("1"), info=not_pii()
    )

    __table_args__ = (
        tenant_key(),
        tenant_fk("job_id", "job_postings"),
        UniqueConstraint("job_id", "position", deferrable=True, initially="DEFERRED"),
        CheckConstraint("max_duration_seconds > 0", name="duration_positive"),
        CheckConstraint("think_time_seconds >= 0", name="think_time_non_negative"),
        CheckConstraint("max_attempts >= 1", name="attempts_positive"),
        {"info": table_policy(retention_days=None, purpose="Video interview definition.")},
    )


class VideoResponse(TenantMixin, TimestampMixin, Model):
    """One recorded answer (one attempt at one question)."""

    __tablename__ = "video_responses"

    video_interview_id: Mapped[covered_ref_id]
    question_id: Mapped[ref_id]
    file_id: Mapped[uuid.UUID | None] = mapped_column(
        index=True,
        info=pii(
            DataCategory.BIOMETRIC,
            anonymize=Anonymize.NULL,
            retention_days=RAW_VIDEO_RETENTION_DAYS,
        ),
    )  # the raw recording (a face and a voice): the reference is dropped after 90 days
    attempt: Mapped[int] = mapped_column(SmallInteger, server_default=sql_text("1"), info=not_pii())
    status: Mapped[VideoResponseStatus] = mapped_column(
        pg_enum(VideoResponseStatus, "video_response_status"),
        server_default=VideoResponseStatus.UPLOADED.value,
        info=not_pii(),
    )
    duration_seconds: Mapped[float | None] = mapped_column(Float, info=not_pii())
    recorded_at: Mapped[datetime] = mapped_column(
        server_default=sql_text("now()"), info=not_pii(DataCategory.TECHNICAL)
    )
    error_code: Mapped[str | None] = mapped_column(String(64), info=not_pii(holds=Holds.CODE))
    error_message: Mapped[str | None] = mapped_column(
        Text, info=pii(DataCategory.TECHNICAL, anonymize=Anonymize.NULL)
    )

    video_interview: Mapped[VideoInterview] = relationship(
        back_populates="responses", foreign_keys="VideoResponse.video_interview_id"
    )
    transcripts: Mapped[list[Transcript]] = relationship(
        back_populates="video_response",
        foreign_keys="Transcript.video_response_id",
        passive_deletes=True,
    )

    __table_args__ = (
        tenant_key(),
        tenant_fk("video_interview_id", "video_interviews"),
        tenant_fk("question_id", "video_interview_questions", ondelete="NO ACTION"),
        tenant_fk("file_id", "files", ondelete="SET NULL"),
        UniqueConstraint("video_interview_id", "question_id", "attempt"),
        Index(
            "ix_video_responses_pending",
            "status",
            "updated_at",
            postgresql_where=sql_text("status IN ('uploaded', 'transcribing', 'analyzing')"),
        ),
        CheckConstraint("attempt >= 1", name="attempt_positive"),
        CheckConstraint(
            "duration_seconds IS NULL OR duration_seconds >= 0", name="duration_non_negative"
        ),
        {
            "info": table_policy(
                retention_days=None, clock="recorded_at", purpose="Video interview answers."
            )
        },
    )


class Transcript(TenantMixin, TimestampMixin, Model):
    """The transcript of a video response by one ASR model version."""

    __tablename__ = "transcripts"

    video_response_id: Mapped[covered_ref_id]
    model_version_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("ai_model_versions.id", ondelete="RESTRICT"),
        index=True,
        info=not_pii(DataCategory.TECHNICAL),
    )
    status: Mapped[TranscriptStatus] = mapped_column(
        pg_enum(TranscriptStatus, "transcript_status"),
        server_default=TranscriptStatus.PARTIAL.value,
        info=not_pii(),
    )
    text: Mapped[str | None] = mapped_column(
        Text, info=pii(DataCategory.COMMUNICATION, anonymize=Anonymize.NULL)
    )  # assembled when complete
    language: Mapped[str | None] = mapped_column(String(16), info=not_pii(holds=Holds.CODE))
    language_probability: Mapped[float | None] = mapped_column(Float, info=not_pii())
    duration_seconds: Mapped[float | None] = mapped_column(Float, info=not_pii())
    word_count: Mapped[int | None] = mapped_column(Integer, info=not_pii())

    video_response: Mapped[VideoResponse] = relationship(
        back_populates="transcripts", foreign_keys="Transcript.video_response_id"
    )
    segments: Mapped[list[TranscriptSegment]] = relationship(
        back_populates="transcript",
        foreign_keys="TranscriptSegment.transcript_id",
        order_by="TranscriptSegment.segment_index",
        passive_deletes=True,
    )

    __table_args__ = (
        tenant_key(),
        tenant_fk("video_response_id", "video_responses"),
        UniqueConstraint("video_response_id", "model_version_id"),
        CheckConstraint(
            "language_probability IS NULL OR "
            "(language_probability >= 0 AND language_probability <= 1)",
            name="language_probability_range",
        ),
        CheckConstraint("status <> 'complete' OR text IS NOT NULL", name="complete_has_text"),
        {"info": table_policy(retention_days=None, purpose="Transcription of interview answers.")},
    )


class TranscriptSegment(TenantMixin, Model):
    """A timed segment of a transcript, with word timings (``words``)."""

    __tablename__ = "transcript_segments"

    transcript_id: Mapped[covered_ref_id]
    segment_index: Mapped[int] = mapped_column(Integer, info=not_pii())
    start_ms: Mapped[int] = mapped_column(Integer, info=not_pii())
    end_ms: Mapped[int] = mapped_column(Integer, info=not_pii())
    text: Mapped[str] = mapped_column(
        Text, info=pii(DataCategory.COMMUNICATION, anonymize=Anonymize.REDACT)
    )
    words: Mapped[list[Any]] = mapped_column(
        server_default=json_default("[]"),
        info=pii(DataCategory.COMMUNICATION, anonymize=Anonymize.REDACT),
    )
    avg_logprob: Mapped[float | None] = mapped_column(Float, info=not_pii())
    no_speech_prob: Mapped[float | None] = mapped_column(Float, info=not_pii())
    created_at: Mapped[created_at_col]

    transcript: Mapped[Transcript] = relationship(
        back_populates="segments", foreign_keys="TranscriptSegment.transcript_id"
    )

    @validates("words")
    def _validate_words(self, _key: str, value: Any) -> Any:
        return validated(TranscriptWords, value)

    __table_args__ = (
        tenant_fk("transcript_id", "transcripts"),
        # Idempotency: a resumed chunk rewrites its segments with ON CONFLICT DO UPDATE.
        UniqueConstraint("transcript_id", "segment_index"),
        CheckConstraint("start_ms >= 0 AND end_ms >= start_ms", name="timing_ordered"),
        CheckConstraint("segment_index >= 0", name="index_non_negative"),
        {"info": table_policy(retention_days=None, purpose="Transcription of interview answers.")},
    )


class TranscriptionCheckpoint(TenantMixin, Model):
    """Progress of a resumable transcription: the last chunk whose segments are committed."""

    __tablename__ = "transcription_checkpoints"

    video_response_id: Mapped[covered_ref_id]
    model_version_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("ai_model_versions.id", ondelete="RESTRICT"),
        index=True,
        info=not_pii(DataCategory.TECHNICAL),
    )
    chunk_seconds: Mapped[float] = mapped_column(Float, info=not_pii())
    total_chunks: Mapped[int | None] = mapped_column(Integer, info=not_pii())
    chunk_index_done: Mapped[int] = mapped_column(
        Integer, server_default=sql_text("-1"), info=not_pii()
    )  # -1: nothing done yet
    carry_text: Mapped[str | None] = mapped_column(
        Text, info=pii(DataCategory.COMMUNICATION, anonymize=Anonymize.NULL)
    )  # the previous chunk's tail, used as the next chunk's prompt
    chunk_languages: Mapped[list[Any]] = mapped_column(
        server_default=json_default("[]"), info=not_pii(holds=Holds.METRICS)
    )  # [{language, probability}] of chunks 0..chunk_index_done
    task_run_id: Mapped[task_run_ref]
    updated_at: Mapped[datetime] = mapped_column(
        server_default=sql_text("now()"),
        onupdate=sql_text("now()"),
        info=not_pii(DataCategory.TECHNICAL),
    )

    @validates("chunk_languages")
    def _validate_chunk_languages(self, _key: str, value: Any) -> Any:
        return validated(ChunkLanguages, value)

    __table_args__ = (
        tenant_fk("video_response_id", "video_responses"),
        UniqueConstraint("video_response_id", "model_version_id"),
        CheckConstraint("chunk_seconds > 0", name="chunk_seconds_positive"),
        CheckConstraint("chunk_index_done >= -1", name="chunk_index_valid"),
        CheckConstraint(
            "total_chunks IS NULL OR chunk_index_done < total_chunks", name="done_within_total"
        ),
        {
            "info": table_policy(
                retention_days=30,
                clock="updated_at",
                purpose="Operational: resuming interrupted transcriptions.",
            )
        },
    )


class VideoAnalysisResult(TenantMixin, Model):
    """Face and visual signals of a video response (biometric, special category)."""

    __tablename__ = "video_analysis_results"

    video_response_id: Mapped[covered_ref_id]
    model_version_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("ai_model_versions.id", ondelete="RESTRICT"),
        index=True,
        info=not_pii(DataCategory.TECHNICAL),
    )
    signals: Mapped[dict[str, Any]] = mapped_column(
        info=pii(DataCategory.BIOMETRIC, anonymize=Anonymize.DELETE_ROW)
    )  # per-window face presence, gaze, expression estimates
    summary: Mapped[dict[str, Any]] = mapped_column(
        server_default=json_default(),
        info=pii(DataCategory.BIOMETRIC, anonymize=Anonymize.DELETE_ROW),
    )
    created_at: Mapped[created_at_col]

    __table_args__ = (
        tenant_fk("video_response_id", "video_responses"),
        UniqueConstraint("video_response_id", "model_version_id"),
        {
            "info": table_policy(
                retention_days=FACE_ANALYSIS_RETENTION_DAYS,
                clock="created_at",
                purpose="Video analysis with explicit consent (Art. 9(2)(a)).",
            )
        },
    )


class SpeechAnalytics(TenantMixin, Model):
    """Delivery metrics derived from a transcript's timings (pace, pauses, fillers)."""

    __tablename__ = "speech_analytics"

    transcript_id: Mapped[covered_ref_id]
    words_per_minute: Mapped[float | None] = mapped_column(
        Float, info=not_pii(DataCategory.BEHAVIOURAL)
    )
    filler_word_rate: Mapped[float | None] = mapped_column(
        Float, info=not_pii(DataCategory.BEHAVIOURAL)
    )
    pause_ratio: Mapped[float | None] = mapped_column(Float, info=not_pii(DataCategory.BEHAVIOURAL))
    mean_pause_ms: Mapped[float | None] = mapped_column(
        Float, info=not_pii(DataCategory.BEHAVIOURAL)
    )
    metrics: Mapped[dict[str, Any]] = mapped_column(
        server_default=json_default(),
        info=pii(DataCategory.BEHAVIOURAL, anonymize=Anonymize.NULL),
    )
    created_at: Mapped[created_at_col]

    __table_args__ = (
        tenant_fk("transcript_id", "transcripts"),
        UniqueConstraint("transcript_id"),
        CheckConstraint(
            "pause_ratio IS NULL OR (pause_ratio >= 0 AND pause_ratio <= 1)",
            name="pause_ratio_range",
        ),
        CheckConstraint(
            "words_per_minute IS NULL OR words_per_minute >= 0", name="wpm_non_negative"
        ),
        {"info": table_policy(retention_days=None, purpose="Interview delivery analytics.")},
    )
