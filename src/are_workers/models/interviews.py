"""Live interviews: scheduling, participants, and structured feedback (scorecards).

Interviewers must be members of the application's organization (:func:`member_fk`).
Feedback survives an interviewer leaving (the author reference is set to NULL), because the
hiring decision it supported still has to be explainable.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import CheckConstraint, Index, SmallInteger, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

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
    tenant_fk,
    tenant_key,
)


class InterviewKind(StrEnum):
    PHONE_SCREEN = "phone_screen"
    VIDEO_CALL = "video_call"
    ONSITE = "onsite"
    TECHNICAL = "technical"
    PANEL = "panel"


class InterviewStatus(StrEnum):
    SCHEDULED = "scheduled"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"


class ParticipantRole(StrEnum):
    LEAD = "lead"
    INTERVIEWER = "interviewer"
    SHADOW = "shadow"
    COORDINATOR = "coordinator"


class ParticipantResponse(StrEnum):
    NEEDS_ACTION = "needs_action"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    TENTATIVE = "tentative"


class Recommendation(StrEnum):
    STRONG_NO = "strong_no"
    NO = "no"
    YES = "yes"
    STRONG_YES = "strong_yes"


class Interview(TenantMixin, TimestampMixin, Model):
    """A scheduled conversation with a candidate about one application."""

    __tablename__ = "interviews"

    application_id: Mapped[ref_id]
    stage_id: Mapped[opt_ref_id]
    kind: Mapped[InterviewKind] = mapped_column(
        pg_enum(InterviewKind, "interview_kind"), info=not_pii()
    )
    status: Mapped[InterviewStatus] = mapped_column(
        pg_enum(InterviewStatus, "interview_status"),
        server_default=InterviewStatus.SCHEDULED.value,
        info=not_pii(),
    )
    scheduled_start: Mapped[datetime] = mapped_column(info=not_pii())
    scheduled_end: Mapped[datetime] = mapped_column(info=not_pii())
    timezone: Mapped[str] = mapped_column(
        String(64), server_default="UTC", info=not_pii(holds=Holds.CODE)
    )
    location: Mapped[str | None] = mapped_column(String(500), info=not_pii(holds=Holds.TENANT_TEXT))
    meeting_url: Mapped[str | None] = mapped_column(
        String(1000), info=not_pii(DataCategory.TECHNICAL, holds=Holds.REFERENCE)
    )
    cancelled_at: Mapped[opt_ts]

    participants: Mapped[list[InterviewParticipant]] = relationship(
        back_populates="interview",
        foreign_keys="InterviewParticipant.interview_id",
        passive_deletes=True,
    )
    feedback: Mapped[list[InterviewFeedback]] = relationship(
        back_populates="interview",
        foreign_keys="InterviewFeedback.interview_id",
        passive_deletes=True,
    )

    __table_args__ = (
        tenant_key(),
        tenant_fk("application_id", "applications"),
        tenant_fk("stage_id", "pipeline_stages", ondelete="SET NULL"),
        CheckConstraint("scheduled_end > scheduled_start", name="ends_after_start"),
        # Calendars: an organization's upcoming interviews.
        Index("ix_interviews_org_start", "organization_id", "scheduled_start"),
        {"info": table_policy(retention_days=None, purpose="Interview scheduling.")},
    )


class InterviewParticipant(TenantMixin, Model):
    """An interviewer on an interview."""

    __tablename__ = "interview_participants"

    interview_id: Mapped[covered_ref_id]
    user_id: Mapped[ref_id]
    role: Mapped[ParticipantRole] = mapped_column(
        pg_enum(ParticipantRole, "participant_role"), info=not_pii()
    )
    response: Mapped[ParticipantResponse] = mapped_column(
        pg_enum(ParticipantResponse, "participant_response"),
        server_default=ParticipantResponse.NEEDS_ACTION.value,
        info=not_pii(),
    )
    created_at: Mapped[created_at_col]

    interview: Mapped[Interview] = relationship(
        back_populates="participants", foreign_keys="InterviewParticipant.interview_id"
    )

    __table_args__ = (
        tenant_fk("interview_id", "interviews"),
        member_fk("user_id"),
        UniqueConstraint("interview_id", "user_id"),
        {
            "info": table_policy(
                retention_days=None, subject="user_id", purpose="Interview scheduling."
            )
        },
    )


class ScorecardTemplate(TenantMixin, TimestampMixin, Model):
    """The attributes interviewers rate, per organization or per job."""

    __tablename__ = "scorecard_templates"

    job_id: Mapped[opt_ref_id]
    name: Mapped[str] = mapped_column(String(200), info=not_pii(holds=Holds.TENANT_TEXT))
    attributes: Mapped[list[Any]] = mapped_column(
        server_default=json_default("[]"), info=not_pii(holds=Holds.TENANT_TEXT)
    )  # [{"key": "communication", "label": "...", "guidance": "..."}]

    __table_args__ = (
        tenant_key(),
        tenant_fk("job_id", "job_postings"),
        {"info": table_policy(retention_days=None, purpose="Structured interviewing.")},
    )


class InterviewFeedback(TenantMixin, TimestampMixin, Model):
    """One interviewer's scorecard for one interview."""

    __tablename__ = "interview_feedback"

    interview_id: Mapped[covered_ref_id]
    author_user_id: Mapped[opt_ref_id]
    template_id: Mapped[opt_ref_id]
    recommendation: Mapped[Recommendation | None] = mapped_column(
        pg_enum(Recommendation, "recommendation"), info=not_pii(DataCategory.ASSESSMENT)
    )
    overall_rating: Mapped[int | None] = mapped_column(
        SmallInteger, info=not_pii(DataCategory.ASSESSMENT)
    )
    notes: Mapped[str | None] = mapped_column(
        Text, info=pii(DataCategory.ASSESSMENT, anonymize=Anonymize.REDACT)
    )
    submitted_at: Mapped[opt_ts]

    interview: Mapped[Interview] = relationship(
        back_populates="feedback", foreign_keys="InterviewFeedback.interview_id"
    )
    ratings: Mapped[list[ScorecardRating]] = relationship(
        back_populates="feedback",
        foreign_keys="ScorecardRating.feedback_id",
        passive_deletes=True,
    )

    __table_args__ = (
        tenant_key(),
        tenant_fk("interview_id", "interviews"),
        tenant_fk("template_id", "scorecard_templates", ondelete="SET NULL"),
        member_fk("author_user_id", ondelete="SET NULL"),
        # One scorecard per interviewer (NULL authors, i.e. former members, may repeat).
        UniqueConstraint("interview_id", "author_user_id"),
        CheckConstraint(
            "overall_rating IS NULL OR overall_rating BETWEEN 1 AND 5", name="rating_range"
        ),
        {"info": table_policy(retention_days=None, purpose="Structured interviewing.")},
    )


class ScorecardRating(TenantMixin, Model):
    """The rating of one scorecard attribute."""

    __tablename__ = "scorecard_ratings"

    feedback_id: Mapped[covered_ref_id]
    attribute_key: Mapped[str] = mapped_column(String(64), info=not_pii(holds=Holds.CODE))
    rating: Mapped[int] = mapped_column(SmallInteger, info=not_pii(DataCategory.ASSESSMENT))
    comment: Mapped[str | None] = mapped_column(
        Text, info=pii(DataCategory.ASSESSMENT, anonymize=Anonymize.REDACT)
    )
    created_at: Mapped[created_at_col]

    feedback: Mapped[InterviewFeedback] = relationship(
        back_populates="ratings", foreign_keys="ScorecardRating.feedback_id"
    )

    __table_args__ = (
        tenant_fk("feedback_id", "interview_feedback"),
        UniqueConstraint("feedback_id", "attribute_key"),
        CheckConstraint("rating BETWEEN 1 AND 5", name="rating_range"),
        {"info": table_policy(retention_days=None, purpose="Structured interviewing.")},
    )
