"""Job postings, their requirements, and the skills taxonomy.

``skills`` and ``skill_aliases`` are global: one shared vocabulary lets a resume parsed for
one tenant and a job written by another map to the same skill ids, and lets the parser's
normalisation improve for everyone. They hold no tenant or personal data. Everything else
is tenant-owned. Requirements are what the AI evaluation scores, one row each.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy import (
    text as sql_text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from are_workers.models.base import Model, TenantMixin, TimestampMixin, created_at_col
from are_workers.models.classification import DataCategory, Holds, not_pii, table_policy
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
from are_workers.models.schemas import EvaluationCriteria, validated

if TYPE_CHECKING:
    from are_workers.models.applications import Application


class JobStatus(StrEnum):
    DRAFT = "draft"
    OPEN = "open"
    PAUSED = "paused"
    CLOSED = "closed"
    ARCHIVED = "archived"


class EmploymentType(StrEnum):
    FULL_TIME = "full_time"
    PART_TIME = "part_time"
    CONTRACT = "contract"
    TEMPORARY = "temporary"
    INTERNSHIP = "internship"


class Workplace(StrEnum):
    ONSITE = "onsite"
    HYBRID = "hybrid"
    REMOTE = "remote"


class RequirementKind(StrEnum):
    SKILL = "skill"
    EXPERIENCE = "experience"
    EDUCATION = "education"
    LANGUAGE = "language"
    CERTIFICATION = "certification"
    OTHER = "other"


class StageKind(StrEnum):
    APPLIED = "applied"
    SCREENING = "screening"
    ASSESSMENT = "assessment"
    INTERVIEW = "interview"
    OFFER = "offer"
    HIRED = "hired"
    REJECTED = "rejected"


class HiringRole(StrEnum):
    HIRING_MANAGER = "hiring_manager"
    RECRUITER = "recruiter"
    COORDINATOR = "coordinator"
    INTERVIEWER = "interviewer"
    APPROVER = "approver"


class QuestionKind(StrEnum):
    TEXT = "text"
    YES_NO = "yes_no"
    SINGLE_CHOICE = "single_choice"
    MULTIPLE_CHOICE = "multiple_choice"
    NUMBER = "number"


class JobPosting(TenantMixin, TimestampMixin, Model):
    """A job opening. ``evaluation_criteria`` is validated by :class:`EvaluationCriteria`."""

    __tablename__ = "job_postings"

    title: Mapped[str] = mapped_column(String(300), info=not_pii(holds=Holds.TENANT_TEXT))
    description: Mapped[str] = mapped_column(Text, info=not_pii(holds=Holds.TENANT_TEXT))
    status: Mapped[JobStatus] = mapped_column(
        pg_enum(JobStatus, "job_status"), server_default=JobStatus.DRAFT.value, info=not_pii()
    )
    department_id: Mapped[opt_ref_id]
    location: Mapped[str | None] = mapped_column(String(300), info=not_pii(holds=Holds.TENANT_TEXT))
    employment_type: Mapped[EmploymentType | None] = mapped_column(
        pg_enum(EmploymentType, "employment_type"), info=not_pii()
    )
    workplace: Mapped[Workplace | None] = mapped_column(
        pg_enum(Workplace, "workplace"), info=not_pii()
    )
    salary_min: Mapped[Decimal | None] = mapped_column(Numeric(12, 2), info=not_pii())
    salary_max: Mapped[Decimal | None] = mapped_column(Numeric(12, 2), info=not_pii())
    salary_currency: Mapped[str | None] = mapped_column(String(3), info=not_pii(holds=Holds.CODE))
    language: Mapped[str] = mapped_column(
        String(16), server_default="en", info=not_pii(holds=Holds.CODE)
    )
    evaluation_criteria: Mapped[dict[str, Any]] = mapped_column(
        server_default=json_default(), info=not_pii(holds=Holds.TENANT_TEXT)
    )
    external_ref: Mapped[str | None] = mapped_column(
        String(255), info=not_pii(DataCategory.TECHNICAL, holds=Holds.REFERENCE)
    )  # the upstream ATS's id
    created_by_user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"),
        index=True,
        info=not_pii(DataCategory.TECHNICAL),
    )
    opened_at: Mapped[opt_ts]
    closed_at: Mapped[opt_ts]

    requirements: Mapped[list[JobRequirement]] = relationship(
        back_populates="job",
        foreign_keys="JobRequirement.job_id",
        order_by="JobRequirement.position",
        passive_deletes=True,
    )
    pipeline_stages: Mapped[list[PipelineStage]] = relationship(
        back_populates="job",
        foreign_keys="PipelineStage.job_id",
        order_by="PipelineStage.position",
        passive_deletes=True,
    )
    applications: Mapped[list[Application]] = relationship(
        back_populates="job", foreign_keys="Application.job_id", passive_deletes=True
    )

    @validates("evaluation_criteria")
    def _validate_criteria(self, _key: str, value: Any) -> Any:
        return validated(EvaluationCriteria, value)

    __table_args__ = (
        tenant_key(),
        tenant_fk("department_id", "departments", ondelete="SET NULL"),
        Index("ix_job_postings_org_status", "organization_id", "status"),
        CheckConstraint(
            "salary_min IS NULL OR salary_max IS NULL OR salary_min <= salary_max",
            name="salary_range_ordered",
        ),
        CheckConstraint("salary_min IS NULL OR salary_min >= 0", name="salary_non_negative"),
        CheckConstraint(
            "jsonb_typeof(evaluation_criteria) = 'object'", name="evaluation_criteria_object"
        ),
        {
            "info": table_policy(
                retention_days=None,
                clock="closed_at",
                purpose="Job openings; business records, no personal data.",
            )
        },
    )


class JobRequirement(TenantMixin, TimestampMixin, Model):
    """One requirement of a job; the unit the AI evaluation scores and cites evidence for."""

    __tablename__ = "job_requirements"

    job_id: Mapped[covered_ref_id]
    text: Mapped[str] = mapped_column(Text, info=not_pii(holds=Holds.TENANT_TEXT))
    kind: Mapped[RequirementKind] = mapped_column(
        pg_enum(RequirementKind, "requirement_kind"), info=not_pii()
    )
    must_have: Mapped[bool] = mapped_column(
        Boolean, server_default=sql_text("false"), info=not_pii()
    )
    weight: Mapped[float] = mapped_column(Float, server_default=sql_text("1.0"), info=not_pii())
    min_years: Mapped[Decimal | None] = mapped_column(Numeric(4, 1), info=not_pii())
    skill_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("skills.id", ondelete="SET NULL"),
        index=True,
        info=not_pii(DataCategory.TECHNICAL),
    )
    position: Mapped[int] = mapped_column(Integer, server_default=sql_text("0"), info=not_pii())

    job: Mapped[JobPosting] = relationship(
        back_populates="requirements", foreign_keys="JobRequirement.job_id"
    )
    skill: Mapped[Skill | None] = relationship()

    __table_args__ = (
        tenant_key(),
        tenant_fk("job_id", "job_postings"),
        Index("ix_job_requirements_job_position", "job_id", "position"),
        CheckConstraint("weight >= 0 AND weight <= 1", name="weight_unit_range"),
        CheckConstraint(
            "min_years IS NULL OR (min_years >= 0 AND min_years <= 60)", name="min_years_range"
        ),
        {"info": table_policy(retention_days=None, purpose="What a job asks for.")},
    )


class Skill(TimestampMixin, Model):
    """A skill in the shared taxonomy (global), optionally mapped to ESCO/O*NET."""

    __tablename__ = "skills"

    name: Mapped[str] = mapped_column(String(200), info=not_pii(holds=Holds.PLATFORM_TEXT))
    slug: Mapped[str] = mapped_column(
        String(200), unique=True, info=not_pii(holds=Holds.PLATFORM_TEXT)
    )
    category: Mapped[str | None] = mapped_column(String(100), info=not_pii(holds=Holds.CODE))
    external_code: Mapped[str | None] = mapped_column(
        String(255), info=not_pii(holds=Holds.PLATFORM_TEXT)
    )
    parent_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("skills.id", ondelete="SET NULL"),
        index=True,
        info=not_pii(DataCategory.TECHNICAL),
    )
    description: Mapped[str | None] = mapped_column(Text, info=not_pii(holds=Holds.PLATFORM_TEXT))

    aliases: Mapped[list[SkillAlias]] = relationship(back_populates="skill", passive_deletes=True)

    __table_args__ = (
        CheckConstraint("slug ~ '^[a-z0-9][a-z0-9+#.-]*$'", name="slug_format"),
        {"info": table_policy(retention_days=None, purpose="Shared skills vocabulary.")},
    )


class SkillAlias(Model):
    """Another spelling of a skill ("JS" → JavaScript), used to normalise parsed text."""

    __tablename__ = "skill_aliases"

    skill_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("skills.id", ondelete="CASCADE"),
        index=True,
        info=not_pii(DataCategory.TECHNICAL),
    )
    alias: Mapped[str] = mapped_column(String(200), info=not_pii(holds=Holds.PLATFORM_TEXT))
    created_at: Mapped[created_at_col]

    skill: Mapped[Skill] = relationship(back_populates="aliases")

    __table_args__ = (
        Index("uq_skill_aliases_alias_lower", sql_text("lower(alias)"), unique=True),
        {"info": table_policy(retention_days=None, purpose="Shared skills vocabulary.")},
    )


class JobSkill(TenantMixin, Model):
    """A taxonomy skill a job asks for (the structured twin of skill requirements)."""

    __tablename__ = "job_skills"

    job_id: Mapped[covered_ref_id]
    skill_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("skills.id", ondelete="RESTRICT"),
        index=True,
        info=not_pii(DataCategory.TECHNICAL),
    )
    required: Mapped[bool] = mapped_column(
        Boolean, server_default=sql_text("false"), info=not_pii()
    )
    weight: Mapped[float] = mapped_column(Float, server_default=sql_text("1.0"), info=not_pii())
    created_at: Mapped[created_at_col]

    __table_args__ = (
        tenant_fk("job_id", "job_postings"),
        UniqueConstraint("job_id", "skill_id"),
        CheckConstraint("weight >= 0 AND weight <= 1", name="weight_unit_range"),
        {"info": table_policy(retention_days=None, purpose="What a job asks for.")},
    )


class PipelineStage(TenantMixin, TimestampMixin, Model):
    """A step of a job's hiring pipeline (applied → screening → ... → hired)."""

    __tablename__ = "pipeline_stages"

    job_id: Mapped[covered_ref_id]
    name: Mapped[str] = mapped_column(String(100), info=not_pii(holds=Holds.TENANT_TEXT))
    kind: Mapped[StageKind] = mapped_column(pg_enum(StageKind, "stage_kind"), info=not_pii())
    position: Mapped[int] = mapped_column(Integer, info=not_pii())

    job: Mapped[JobPosting] = relationship(
        back_populates="pipeline_stages", foreign_keys="PipelineStage.job_id"
    )

    __table_args__ = (
        tenant_key(),
        tenant_fk("job_id", "job_postings"),
        # Deferred, so a reorder can swap positions inside one transaction.
        UniqueConstraint("job_id", "position", deferrable=True, initially="DEFERRED"),
        CheckConstraint("position >= 0", name="position_non_negative"),
        {"info": table_policy(retention_days=None, purpose="Hiring workflow definition.")},
    )


class HiringTeamMember(TenantMixin, Model):
    """A member's role on one job's hiring team (who sees and decides)."""

    __tablename__ = "hiring_team_members"

    job_id: Mapped[covered_ref_id]
    user_id: Mapped[ref_id]
    role: Mapped[HiringRole] = mapped_column(pg_enum(HiringRole, "hiring_role"), info=not_pii())
    created_at: Mapped[created_at_col]

    __table_args__ = (
        tenant_fk("job_id", "job_postings"),
        member_fk("user_id"),
        UniqueConstraint("job_id", "user_id", "role"),
        {
            "info": table_policy(
                retention_days=None, subject="user_id", purpose="Access and accountability per job."
            )
        },
    )


class JobScreeningQuestion(TenantMixin, TimestampMixin, Model):
    """A question candidates answer when applying (knock-out questions included)."""

    __tablename__ = "job_screening_questions"

    job_id: Mapped[covered_ref_id]
    prompt: Mapped[str] = mapped_column(Text, info=not_pii(holds=Holds.TENANT_TEXT))
    kind: Mapped[QuestionKind] = mapped_column(
        pg_enum(QuestionKind, "question_kind"), info=not_pii()
    )
    options: Mapped[list[Any]] = mapped_column(
        server_default=json_default("[]"), info=not_pii(holds=Holds.TENANT_TEXT)
    )
    required: Mapped[bool] = mapped_column(Boolean, server_default=sql_text("true"), info=not_pii())
    knockout_answer: Mapped[dict[str, Any] | None] = mapped_column(
        info=not_pii(holds=Holds.TENANT_TEXT)
    )
    position: Mapped[int] = mapped_column(Integer, server_default=sql_text("0"), info=not_pii())

    __table_args__ = (
        tenant_key(),
        tenant_fk("job_id", "job_postings"),
        Index("ix_job_screening_questions_job_position", "job_id", "position"),
        CheckConstraint(
            "kind NOT IN ('single_choice', 'multiple_choice') OR jsonb_array_length(options) > 0",
            name="choices_have_options",
        ),
        {"info": table_policy(retention_days=None, purpose="Application form definition.")},
    )
