"""Applications: a candidate in one job's pipeline, its history, answers and offers.

An application ties a candidate and a job of the *same* organization (two composite tenant
FKs), once per pair. Its retention clock starts when it closes (hired, rejected,
withdrawn): an open application is never swept.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from are_workers.models.base import Model, TenantMixin, TimestampMixin
from are_workers.models.candidates import CANDIDATE_RETENTION_DAYS
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
    opt_ref_id,
    opt_ts,
    pg_enum,
    ref_id,
    tenant_fk,
    tenant_key,
)

if TYPE_CHECKING:
    from are_workers.models.candidates import Candidate
    from are_workers.models.jobs import JobPosting, PipelineStage


class ApplicationStatus(StrEnum):
    ACTIVE = "active"
    ON_HOLD = "on_hold"
    HIRED = "hired"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


class OfferStatus(StrEnum):
    DRAFT = "draft"
    PENDING_APPROVAL = "pending_approval"
    APPROVED = "approved"
    SENT = "sent"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    RESCINDED = "rescinded"
    EXPIRED = "expired"


class Application(TenantMixin, TimestampMixin, Model):
    """A candidate's application to a job."""

    __tablename__ = "applications"

    candidate_id: Mapped[ref_id]
    job_id: Mapped[covered_ref_id]
    current_stage_id: Mapped[opt_ref_id]
    status: Mapped[ApplicationStatus] = mapped_column(
        pg_enum(ApplicationStatus, "application_status"),
        server_default=ApplicationStatus.ACTIVE.value,
        info=not_pii(),
    )
    source: Mapped[str | None] = mapped_column(String(64), info=not_pii(holds=Holds.CODE))
    cover_letter: Mapped[str | None] = mapped_column(
        Text, info=pii(DataCategory.COMMUNICATION, anonymize=Anonymize.NULL)
    )
    rejection_reason: Mapped[str | None] = mapped_column(
        String(64), info=not_pii(holds=Holds.CODE)
    )  # a reason code from the organization's list, never free text
    rejection_note: Mapped[str | None] = mapped_column(
        Text, info=pii(DataCategory.ASSESSMENT, anonymize=Anonymize.REDACT)
    )
    external_ref: Mapped[str | None] = mapped_column(
        String(255), info=not_pii(DataCategory.TECHNICAL, holds=Holds.REFERENCE)
    )
    applied_at: Mapped[datetime] = mapped_column(
        server_default=text("now()"), info=not_pii(DataCategory.TECHNICAL)
    )
    closed_at: Mapped[opt_ts]

    candidate: Mapped[Candidate] = relationship(
        back_populates="applications", foreign_keys="Application.candidate_id"
    )
    job: Mapped[JobPosting] = relationship(
        back_populates="applications", foreign_keys="Application.job_id"
    )
    current_stage: Mapped[PipelineStage | None] = relationship(
        foreign_keys="Application.current_stage_id"
    )
    stage_history: Mapped[list[ApplicationStageHistory]] = relationship(
        back_populates="application",
        foreign_keys="ApplicationStageHistory.application_id",
        order_by="ApplicationStageHistory.changed_at",
        passive_deletes=True,
    )
    answers: Mapped[list[ApplicationAnswer]] = relationship(
        back_populates="application",
        foreign_keys="ApplicationAnswer.application_id",
        passive_deletes=True,
    )
    offers: Mapped[list[Offer]] = relationship(
        back_populates="application", foreign_keys="Offer.application_id", passive_deletes=True
    )

    __table_args__ = (
        tenant_key(),
        tenant_fk("candidate_id", "candidates"),
        tenant_fk("job_id", "job_postings"),
        tenant_fk("current_stage_id", "pipeline_stages", ondelete="SET NULL"),
        UniqueConstraint("job_id", "candidate_id"),
        Index("ix_applications_job_status", "job_id", "status"),
        CheckConstraint(
            "(status IN ('hired', 'rejected', 'withdrawn')) = (closed_at IS NOT NULL)",
            name="closed_iff_final",
        ),
        {
            "info": table_policy(
                retention_days=CANDIDATE_RETENTION_DAYS,
                clock="closed_at",
                subject="candidate_id",
                purpose="Recruitment: tracking a candidate through a job's pipeline.",
            )
        },
    )


class ApplicationStageHistory(TenantMixin, Model):
    """One move of an application between pipeline stages (time-in-stage reporting)."""

    __tablename__ = "application_stage_history"

    application_id: Mapped[covered_ref_id]
    from_stage_id: Mapped[opt_ref_id]
    to_stage_id: Mapped[opt_ref_id]
    changed_by_user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"),
        index=True,
        info=not_pii(DataCategory.TECHNICAL),
    )
    reason: Mapped[str | None] = mapped_column(
        Text, info=pii(DataCategory.ASSESSMENT, anonymize=Anonymize.REDACT)
    )
    changed_at: Mapped[datetime] = mapped_column(
        server_default=text("now()"), info=not_pii(DataCategory.TECHNICAL)
    )

    application: Mapped[Application] = relationship(
        back_populates="stage_history", foreign_keys="ApplicationStageHistory.application_id"
    )

    __table_args__ = (
        tenant_fk("application_id", "applications"),
        tenant_fk("from_stage_id", "pipeline_stages", ondelete="SET NULL"),
        tenant_fk("to_stage_id", "pipeline_stages", ondelete="SET NULL"),
        Index("ix_application_stage_history_app_changed", "application_id", "changed_at"),
        {
            "info": table_policy(
                retention_days=None, clock="changed_at", purpose="Pipeline history."
            )
        },
    )


class ApplicationAnswer(TenantMixin, TimestampMixin, Model):
    """A candidate's answer to a screening question."""

    __tablename__ = "application_answers"

    application_id: Mapped[covered_ref_id]
    question_id: Mapped[ref_id]
    answer_text: Mapped[str | None] = mapped_column(
        Text, info=pii(DataCategory.COMMUNICATION, anonymize=Anonymize.NULL)
    )
    answer_value: Mapped[dict[str, Any] | None] = mapped_column(
        info=pii(DataCategory.COMMUNICATION, anonymize=Anonymize.NULL)
    )
    knocked_out: Mapped[bool] = mapped_column(Boolean, server_default=text("false"), info=not_pii())

    application: Mapped[Application] = relationship(
        back_populates="answers", foreign_keys="ApplicationAnswer.application_id"
    )

    __table_args__ = (
        tenant_key(),
        tenant_fk("application_id", "applications"),
        tenant_fk("question_id", "job_screening_questions"),
        UniqueConstraint("application_id", "question_id"),
        {"info": table_policy(retention_days=None, purpose="Application form answers.")},
    )


class Offer(TenantMixin, TimestampMixin, Model):
    """A job offer made on an application."""

    __tablename__ = "offers"

    application_id: Mapped[ref_id]
    status: Mapped[OfferStatus] = mapped_column(
        pg_enum(OfferStatus, "offer_status"), server_default=OfferStatus.DRAFT.value, info=not_pii()
    )
    salary_amount: Mapped[Decimal | None] = mapped_column(
        Numeric(12, 2), info=pii(DataCategory.FINANCIAL, anonymize=Anonymize.NULL)
    )
    salary_currency: Mapped[str | None] = mapped_column(String(3), info=not_pii(holds=Holds.CODE))
    start_date: Mapped[date | None] = mapped_column(Date, info=not_pii(DataCategory.EMPLOYMENT))
    terms: Mapped[dict[str, Any] | None] = mapped_column(
        info=pii(DataCategory.FINANCIAL, anonymize=Anonymize.NULL)
    )  # bonus, equity, benefits
    letter_file_id: Mapped[opt_ref_id]
    created_by_user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"),
        index=True,
        info=not_pii(DataCategory.TECHNICAL),
    )
    approved_at: Mapped[opt_ts]
    sent_at: Mapped[opt_ts]
    expires_at: Mapped[opt_ts]
    responded_at: Mapped[opt_ts]

    application: Mapped[Application] = relationship(
        back_populates="offers", foreign_keys="Offer.application_id"
    )

    __table_args__ = (
        tenant_fk("application_id", "applications"),
        tenant_fk("letter_file_id", "files", ondelete="SET NULL"),
        CheckConstraint("salary_amount IS NULL OR salary_amount >= 0", name="salary_non_negative"),
        {"info": table_policy(retention_days=None, purpose="Offers and their terms.")},
    )
