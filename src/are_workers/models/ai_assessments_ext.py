"""Adaptive testing and proctoring: the CAT engine's state, item exposure and drift, and
remote proctoring with its (biometric) events.

Proctoring processes face and gaze signals: GDPR Art. 9 biometric data, so every signal
column is classified ``BIOMETRIC``, the workers require a ``biometric_processing`` consent
before writing here, and retention is short (180 days after the session ends).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Float,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, validates

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
    member_fk,
    opt_ref_id,
    opt_ts,
    pg_enum,
    ref_id,
    task_run_ref,
    tenant_fk,
    tenant_key,
)
from are_workers.models.schemas import AdaptiveState, validated

PROCTORING_RETENTION_DAYS = 180


class RunStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class DriftStatus(StrEnum):
    OPEN = "open"
    ACCEPTED = "accepted"  # new parameters adopted
    RECALIBRATED = "recalibrated"
    RETIRED = "retired"  # the item was withdrawn


class ProctoringStatus(StrEnum):
    ACTIVE = "active"
    COMPLETED = "completed"
    FLAGGED = "flagged"
    REVIEWED = "reviewed"


class ProctoringEventKind(StrEnum):
    FACE_ABSENT = "face_absent"
    MULTIPLE_FACES = "multiple_faces"
    GAZE_AWAY = "gaze_away"
    IDENTITY_MISMATCH = "identity_mismatch"
    VOICES_DETECTED = "voices_detected"
    TAB_SWITCH = "tab_switch"
    COPY_PASTE = "copy_paste"
    FULLSCREEN_EXIT = "fullscreen_exit"


class EventSeverity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class ProctoringDecision(StrEnum):
    CLEARED = "cleared"
    VIOLATION = "violation"
    INCONCLUSIVE = "inconclusive"


class AdaptiveSession(TenantMixin, Model):
    """The CAT engine's state for one adaptive assessment session.

    ``revision`` is an optimistic lock: a worker updates ``WHERE revision = :seen`` so two
    deliveries of the same response cannot both advance the session.
    """

    __tablename__ = "adaptive_sessions"

    assessment_session_id: Mapped[covered_ref_id]
    selection_method: Mapped[str] = mapped_column(
        String(64), server_default="max_information", info=not_pii(holds=Holds.CODE)
    )
    exposure_control: Mapped[str] = mapped_column(
        String(64), server_default="sympson_hetter", info=not_pii(holds=Holds.CODE)
    )
    engine_state: Mapped[dict[str, Any]] = mapped_column(
        server_default=json_default(), info=not_pii(DataCategory.ASSESSMENT, holds=Holds.METRICS)
    )
    next_item_id: Mapped[opt_ref_id]
    revision: Mapped[int] = mapped_column(Integer, server_default=text("0"), info=not_pii())
    created_at: Mapped[created_at_col]
    updated_at: Mapped[datetime] = mapped_column(
        server_default=text("now()"), onupdate=text("now()"), info=not_pii(DataCategory.TECHNICAL)
    )

    @validates("engine_state")
    def _validate_state(self, _key: str, value: Any) -> Any:
        return validated(AdaptiveState, value)

    __table_args__ = (
        tenant_fk("assessment_session_id", "assessment_sessions"),
        tenant_fk("next_item_id", "assessment_items", ondelete="SET NULL"),
        UniqueConstraint("assessment_session_id"),
        CheckConstraint("revision >= 0", name="revision_non_negative"),
        {"info": table_policy(retention_days=None, purpose="Adaptive test administration.")},
    )


class ItemExposure(TenantMixin, Model):
    """Exposure counters of one item (input to Sympson-Hetter calibration)."""

    __tablename__ = "item_exposure"

    item_id: Mapped[covered_ref_id]
    selected_count: Mapped[int] = mapped_column(
        BigInteger, server_default=text("0"), info=not_pii()
    )  # chosen by the selection rule
    administered_count: Mapped[int] = mapped_column(
        BigInteger, server_default=text("0"), info=not_pii()
    )  # actually shown (passed the exposure filter)
    sessions_count: Mapped[int] = mapped_column(
        BigInteger, server_default=text("0"), info=not_pii()
    )  # sessions in the window: the denominator of the exposure rate
    window_started_at: Mapped[datetime] = mapped_column(
        server_default=text("now()"), info=not_pii(DataCategory.TECHNICAL)
    )
    updated_at: Mapped[datetime] = mapped_column(
        server_default=text("now()"), onupdate=text("now()"), info=not_pii(DataCategory.TECHNICAL)
    )

    __table_args__ = (
        tenant_fk("item_id", "assessment_items"),
        UniqueConstraint("item_id"),
        CheckConstraint(
            "selected_count >= 0 AND administered_count >= 0 AND sessions_count >= 0",
            name="counts_non_negative",
        ),
        CheckConstraint("administered_count <= selected_count", name="administered_le_selected"),
        {
            "info": table_policy(
                retention_days=None, clock="updated_at", purpose="Item exposure control."
            )
        },
    )


class ItemCalibrationRun(TenantMixin, Model):
    """A re-estimation of a bank's item parameters from accumulated responses."""

    __tablename__ = "item_calibration_runs"

    bank_id: Mapped[ref_id]
    status: Mapped[RunStatus] = mapped_column(
        pg_enum(RunStatus, "run_status"), server_default=RunStatus.RUNNING.value, info=not_pii()
    )
    method: Mapped[str] = mapped_column(String(64), info=not_pii(holds=Holds.CODE))  # e.g. "mml-em"
    sample_size: Mapped[int | None] = mapped_column(Integer, info=not_pii())
    summary: Mapped[dict[str, Any]] = mapped_column(
        server_default=json_default(), info=not_pii(holds=Holds.METRICS)
    )  # fit statistics, aggregated
    task_run_id: Mapped[task_run_ref]
    started_at: Mapped[created_at_col]
    finished_at: Mapped[opt_ts]

    __table_args__ = (
        tenant_key(),
        tenant_fk("bank_id", "item_banks"),
        CheckConstraint("sample_size IS NULL OR sample_size >= 0", name="sample_non_negative"),
        {
            "info": table_policy(
                retention_days=None, clock="finished_at", purpose="Psychometric quality control."
            )
        },
    )


class ItemDriftFlag(TenantMixin, Model):
    """An item whose re-estimated parameter moved beyond tolerance."""

    __tablename__ = "item_drift_flags"

    calibration_run_id: Mapped[covered_ref_id]
    item_id: Mapped[ref_id]
    parameter: Mapped[str] = mapped_column(String(16), info=not_pii(holds=Holds.CODE))
    previous_value: Mapped[float] = mapped_column(Float, info=not_pii())
    new_value: Mapped[float] = mapped_column(Float, info=not_pii())
    statistic: Mapped[float | None] = mapped_column(Float, info=not_pii())
    status: Mapped[DriftStatus] = mapped_column(
        pg_enum(DriftStatus, "drift_status"), server_default=DriftStatus.OPEN.value, info=not_pii()
    )
    resolved_by_user_id: Mapped[opt_ref_id]
    flagged_at: Mapped[created_at_col]
    resolved_at: Mapped[opt_ts]

    __table_args__ = (
        tenant_fk("calibration_run_id", "item_calibration_runs"),
        tenant_fk("item_id", "assessment_items"),
        member_fk("resolved_by_user_id", ondelete="SET NULL"),
        UniqueConstraint("calibration_run_id", "item_id", "parameter"),
        CheckConstraint("parameter IN ('a', 'b', 'c', 'thresholds')", name="parameter_known"),
        CheckConstraint("(status = 'open') = (resolved_at IS NULL)", name="resolved_has_time"),
        {
            "info": table_policy(
                retention_days=None, clock="flagged_at", purpose="Psychometric quality control."
            )
        },
    )


class ProctoringSession(TenantMixin, TimestampMixin, Model):
    """Remote proctoring of one assessment session."""

    __tablename__ = "proctoring_sessions"

    assessment_session_id: Mapped[covered_ref_id]
    status: Mapped[ProctoringStatus] = mapped_column(
        pg_enum(ProctoringStatus, "proctoring_status"),
        server_default=ProctoringStatus.ACTIVE.value,
        info=not_pii(),
    )
    risk_score: Mapped[float | None] = mapped_column(
        Float, info=pii(DataCategory.BIOMETRIC, anonymize=Anonymize.NULL)
    )  # inferred from face/gaze signals
    decision: Mapped[ProctoringDecision | None] = mapped_column(
        pg_enum(ProctoringDecision, "proctoring_decision"), info=not_pii(DataCategory.ASSESSMENT)
    )
    review_note: Mapped[str | None] = mapped_column(
        Text, info=pii(DataCategory.ASSESSMENT, anonymize=Anonymize.REDACT)
    )
    reviewed_by_user_id: Mapped[opt_ref_id]
    started_at: Mapped[datetime] = mapped_column(
        server_default=text("now()"), info=not_pii(DataCategory.TECHNICAL)
    )
    ended_at: Mapped[opt_ts]

    __table_args__ = (
        tenant_key(),
        tenant_fk("assessment_session_id", "assessment_sessions"),
        member_fk("reviewed_by_user_id", ondelete="SET NULL"),
        UniqueConstraint("assessment_session_id"),
        CheckConstraint(
            "risk_score IS NULL OR (risk_score >= 0 AND risk_score <= 1)", name="risk_score_range"
        ),
        CheckConstraint("ended_at IS NULL OR ended_at >= started_at", name="ends_after_start"),
        {
            "info": table_policy(
                retention_days=PROCTORING_RETENTION_DAYS,
                clock="ended_at",
                purpose="Assessment integrity (remote proctoring), with explicit consent.",
            )
        },
    )


class ProctoringEvent(TenantMixin, Model):
    """One detected proctoring event (biometric when it comes from the camera)."""

    __tablename__ = "proctoring_events"

    proctoring_session_id: Mapped[covered_ref_id]
    kind: Mapped[ProctoringEventKind] = mapped_column(
        pg_enum(ProctoringEventKind, "proctoring_event_kind"), info=not_pii()
    )
    severity: Mapped[EventSeverity] = mapped_column(
        pg_enum(EventSeverity, "event_severity"), info=not_pii()
    )
    occurred_at: Mapped[datetime] = mapped_column(info=not_pii(DataCategory.TECHNICAL))
    offset_ms: Mapped[int | None] = mapped_column(Integer, info=not_pii())
    confidence: Mapped[float | None] = mapped_column(Float, info=not_pii())
    details: Mapped[dict[str, Any]] = mapped_column(
        server_default=json_default(),
        info=pii(DataCategory.BIOMETRIC, anonymize=Anonymize.REDACT),
    )  # face boxes, gaze vectors, match distances
    snapshot_file_id: Mapped[opt_ref_id]

    __table_args__ = (
        tenant_fk("proctoring_session_id", "proctoring_sessions"),
        tenant_fk("snapshot_file_id", "files", ondelete="SET NULL"),
        Index("ix_proctoring_events_session_time", "proctoring_session_id", "occurred_at"),
        CheckConstraint(
            "confidence IS NULL OR (confidence >= 0 AND confidence <= 1)", name="confidence_range"
        ),
        CheckConstraint("offset_ms IS NULL OR offset_ms >= 0", name="offset_non_negative"),
        {
            "info": table_policy(
                retention_days=None, clock="occurred_at", purpose="Assessment integrity evidence."
            )
        },
    )
