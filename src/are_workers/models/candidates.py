"""Candidates and everything known about them: parsed resumes, history, skills, consents.

A person can be a candidate in several organizations: each organization holds its own row
(it is the controller of its own copy), deduplicated within the tenant by a blind index of
the email address. Email and phone are application-encrypted (AES-GCM envelopes stored as
text); the blind index (a keyed HMAC) allows exact lookup without decrypting. Voluntary
self-identification for bias audits is *not* here: it lives apart in
``candidate_self_identifications`` (audit module), which only the bias audit reads.
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
    Integer,
    Numeric,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
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
    encrypted_column,
    envelope_check,
    json_default,
    member_fk,
    opt_ref_id,
    opt_ts,
    pg_enum,
    ref_id,
    tenant_fk,
    tenant_key,
)
from are_workers.models.schemas import ResumeSections, validated

if TYPE_CHECKING:
    from are_workers.models.ai_evaluations import AIEvaluation
    from are_workers.models.applications import Application
    from are_workers.models.deep_evaluations import Portfolio
    from are_workers.models.files import File

#: Candidate data is kept two years after the candidate's last activity unless the
#: organization overrides it (retention_policies) or a legal hold applies.
CANDIDATE_RETENTION_DAYS = 730


class CandidateSource(StrEnum):
    APPLIED = "applied"
    SOURCED = "sourced"
    REFERRAL = "referral"
    AGENCY = "agency"
    IMPORTED = "imported"


class ProcessingStatus(StrEnum):
    """Where the candidate is in the AI pipeline (parse → embed → match/evaluate)."""

    PENDING = "pending"
    PROCESSING = "processing"
    PROCESSED = "processed"
    FAILED = "failed"
    NEEDS_REVIEW = "needs_review"


class CandidateStatus(StrEnum):
    ACTIVE = "active"
    ARCHIVED = "archived"
    ANONYMIZED = "anonymized"  # erased: the row remains only as an anonymous statistic


class EntrySource(StrEnum):
    PARSED = "parsed"
    MANUAL = "manual"
    IMPORTED = "imported"


class SkillSource(StrEnum):
    PARSED = "parsed"
    SELF_REPORTED = "self_reported"
    INFERRED = "inferred"
    ASSESSED = "assessed"


class NoteVisibility(StrEnum):
    PRIVATE = "private"
    HIRING_TEAM = "hiring_team"
    ORGANIZATION = "organization"


class ConsentPurpose(StrEnum):
    """What a consent (or objection) is about. Workers check these before processing."""

    DATA_PROCESSING = "data_processing"
    TALENT_POOL = "talent_pool"  # keep the profile for future openings
    AUTOMATED_PROCESSING = "automated_processing"  # parsing, embedding, matching
    AI_EVALUATION = "ai_evaluation"
    AUTOMATED_DECISION = "automated_decision"  # GDPR Art. 22 (objection recorded here)
    VIDEO_ANALYSIS = "video_analysis"
    BIOMETRIC_PROCESSING = "biometric_processing"  # face analysis, proctoring (Art. 9)
    MARKETING = "marketing"


class ConsentStatus(StrEnum):
    GRANTED = "granted"
    WITHDRAWN = "withdrawn"
    OBJECTED = "objected"  # Art. 21/22 objection: processing for this purpose must stop


class ConsentSource(StrEnum):
    APPLICATION_FORM = "application_form"
    CANDIDATE_PORTAL = "candidate_portal"
    EMAIL = "email"
    RECRUITER = "recruiter"
    API = "api"


def _candidate_policy(purpose: str, *, retention_days: int | None = None) -> dict[str, Any]:
    return table_policy(
        retention_days=retention_days, clock="created_at", subject="candidate_id", purpose=purpose
    )


class Candidate(TenantMixin, TimestampMixin, Model):
    """A person applying to (or sourced by) one organization."""

    __tablename__ = "candidates"

    user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"),
        index=True,
        info=not_pii(DataCategory.TECHNICAL),
    )  # the portal login, when the candidate has one (one user, many tenants' candidates)
    full_name: Mapped[str] = mapped_column(
        String(300), info=pii(DataCategory.IDENTITY, anonymize=Anonymize.FAKE)
    )
    email: Mapped[str | None] = encrypted_column("candidates", "email", DataCategory.CONTACT)
    email_blind_index: Mapped[str | None] = mapped_column(
        String(64), info=pii(DataCategory.CONTACT, anonymize=Anonymize.NULL)
    )
    phone: Mapped[str | None] = encrypted_column("candidates", "phone", DataCategory.CONTACT)
    location: Mapped[str | None] = mapped_column(
        String(300), info=pii(DataCategory.CONTACT, anonymize=Anonymize.NULL)
    )
    country_code: Mapped[str | None] = mapped_column(String(2), info=not_pii(holds=Holds.CODE))
    headline: Mapped[str | None] = mapped_column(
        String(300), info=pii(DataCategory.EMPLOYMENT, anonymize=Anonymize.NULL)
    )
    summary: Mapped[str | None] = mapped_column(
        Text, info=pii(DataCategory.EMPLOYMENT, anonymize=Anonymize.NULL)
    )
    profile_url: Mapped[str | None] = mapped_column(
        String(500), info=pii(DataCategory.IDENTITY, anonymize=Anonymize.NULL)
    )
    language: Mapped[str | None] = mapped_column(String(16), info=not_pii(holds=Holds.CODE))
    years_of_experience: Mapped[Decimal | None] = mapped_column(
        Numeric(4, 1), info=not_pii(DataCategory.EMPLOYMENT)
    )
    source: Mapped[CandidateSource] = mapped_column(
        pg_enum(CandidateSource, "candidate_source"),
        server_default=CandidateSource.APPLIED.value,
        info=not_pii(),
    )
    status: Mapped[CandidateStatus] = mapped_column(
        pg_enum(CandidateStatus, "candidate_status"),
        server_default=CandidateStatus.ACTIVE.value,
        info=not_pii(),
    )
    processing_status: Mapped[ProcessingStatus] = mapped_column(
        pg_enum(ProcessingStatus, "processing_status"),
        server_default=ProcessingStatus.PENDING.value,
        info=not_pii(),
    )
    status_message: Mapped[str | None] = mapped_column(
        Text, info=pii(DataCategory.TECHNICAL, anonymize=Anonymize.NULL)
    )
    external_ref: Mapped[str | None] = mapped_column(
        String(255), info=not_pii(DataCategory.TECHNICAL, holds=Holds.REFERENCE)
    )
    last_activity_at: Mapped[datetime] = mapped_column(
        server_default=text("now()"), info=not_pii(DataCategory.TECHNICAL)
    )
    anonymized_at: Mapped[opt_ts]

    files: Mapped[list[File]] = relationship(
        back_populates="candidate", foreign_keys="File.candidate_id", passive_deletes=True
    )
    parsed_resumes: Mapped[list[ParsedResume]] = relationship(
        back_populates="candidate", foreign_keys="ParsedResume.candidate_id", passive_deletes=True
    )
    experience: Mapped[list[CandidateExperience]] = relationship(
        back_populates="candidate",
        foreign_keys="CandidateExperience.candidate_id",
        order_by="CandidateExperience.position",
        passive_deletes=True,
    )
    education: Mapped[list[CandidateEducation]] = relationship(
        back_populates="candidate",
        foreign_keys="CandidateEducation.candidate_id",
        order_by="CandidateEducation.position",
        passive_deletes=True,
    )
    skills: Mapped[list[CandidateSkill]] = relationship(
        back_populates="candidate", foreign_keys="CandidateSkill.candidate_id", passive_deletes=True
    )
    consents: Mapped[list[CandidateConsent]] = relationship(
        back_populates="candidate",
        foreign_keys="CandidateConsent.candidate_id",
        passive_deletes=True,
    )
    applications: Mapped[list[Application]] = relationship(
        back_populates="candidate", foreign_keys="Application.candidate_id", passive_deletes=True
    )
    if TYPE_CHECKING:  # wired in models/relationships.py (the AI modules depend on us)
        ai_evaluations: Mapped[list[AIEvaluation]]
        portfolios: Mapped[list[Portfolio]]

    __table_args__ = (
        tenant_key(),
        # One candidate per address within a tenant; other tenants have their own copy.
        UniqueConstraint("organization_id", "email_blind_index"),
        Index(
            "ix_candidates_processing",
            "processing_status",
            "updated_at",
            postgresql_where=text("processing_status IN ('pending', 'processing')"),
        ),
        Index("ix_candidates_org_last_activity", "organization_id", "last_activity_at"),
        CheckConstraint(
            "years_of_experience IS NULL OR years_of_experience BETWEEN 0 AND 80",
            name="years_of_experience_range",
        ),
        CheckConstraint(
            "email_blind_index IS NULL OR email_blind_index ~ '^[0-9a-f]{64}$'",
            name="blind_index_hex",
        ),
        envelope_check("email"),
        envelope_check("phone"),
        CheckConstraint(
            "(status = 'anonymized') = (anonymized_at IS NOT NULL)", name="anonymized_has_time"
        ),
        {
            "info": table_policy(
                retention_days=CANDIDATE_RETENTION_DAYS,
                clock="last_activity_at",
                subject="id",
                purpose="Recruitment: evaluating candidates for current and future openings.",
            )
        },
    )


class ParsedResume(TenantMixin, Model):
    """The text and sections extracted from a resume file by one parser version."""

    __tablename__ = "parsed_resumes"

    candidate_id: Mapped[ref_id]
    file_id: Mapped[covered_ref_id]
    parser_version: Mapped[str] = mapped_column(
        String(64), info=not_pii(DataCategory.TECHNICAL, holds=Holds.CODE)
    )
    language: Mapped[str | None] = mapped_column(String(16), info=not_pii(holds=Holds.CODE))
    raw_text: Mapped[str | None] = mapped_column(
        Text, info=pii(DataCategory.EMPLOYMENT, anonymize=Anonymize.NULL)
    )
    sections: Mapped[list[Any]] = mapped_column(
        server_default=json_default("[]"),
        info=pii(DataCategory.EMPLOYMENT, anonymize=Anonymize.REDACT),
    )
    page_count: Mapped[int | None] = mapped_column(Integer, info=not_pii(DataCategory.TECHNICAL))
    char_count: Mapped[int | None] = mapped_column(Integer, info=not_pii(DataCategory.TECHNICAL))
    warnings: Mapped[list[Any]] = mapped_column(
        server_default=json_default("[]"), info=not_pii(holds=Holds.CODE)
    )
    created_at: Mapped[created_at_col]

    candidate: Mapped[Candidate] = relationship(
        back_populates="parsed_resumes", foreign_keys="ParsedResume.candidate_id"
    )

    @validates("sections")
    def _validate_sections(self, _key: str, value: Any) -> Any:
        return validated(ResumeSections, value)

    __table_args__ = (
        tenant_key(),
        tenant_fk("candidate_id", "candidates"),
        tenant_fk("file_id", "files"),
        # Idempotency: re-parsing a file with the same parser version updates in place.
        UniqueConstraint("file_id", "parser_version"),
        CheckConstraint("jsonb_typeof(sections) = 'array'", name="sections_array"),
        {"info": _candidate_policy("Resume parsing for matching and evaluation.")},
    )


class CandidateExperience(TenantMixin, TimestampMixin, Model):
    """A position in the candidate's work history."""

    __tablename__ = "candidate_experience"

    candidate_id: Mapped[covered_ref_id]
    parsed_resume_id: Mapped[opt_ref_id]
    title: Mapped[str | None] = mapped_column(
        String(300), info=pii(DataCategory.EMPLOYMENT, anonymize=Anonymize.NULL)
    )
    company: Mapped[str | None] = mapped_column(
        String(300), info=pii(DataCategory.EMPLOYMENT, anonymize=Anonymize.NULL)
    )
    location: Mapped[str | None] = mapped_column(
        String(300), info=pii(DataCategory.EMPLOYMENT, anonymize=Anonymize.NULL)
    )
    start_date: Mapped[date | None] = mapped_column(Date, info=not_pii(DataCategory.EMPLOYMENT))
    end_date: Mapped[date | None] = mapped_column(Date, info=not_pii(DataCategory.EMPLOYMENT))
    is_current: Mapped[bool] = mapped_column(Boolean, server_default=text("false"), info=not_pii())
    description: Mapped[str | None] = mapped_column(
        Text, info=pii(DataCategory.EMPLOYMENT, anonymize=Anonymize.NULL)
    )
    source: Mapped[EntrySource] = mapped_column(
        pg_enum(EntrySource, "entry_source"), info=not_pii()
    )
    position: Mapped[int] = mapped_column(Integer, server_default=text("0"), info=not_pii())

    candidate: Mapped[Candidate] = relationship(
        back_populates="experience", foreign_keys="CandidateExperience.candidate_id"
    )

    __table_args__ = (
        tenant_fk("candidate_id", "candidates"),
        tenant_fk("parsed_resume_id", "parsed_resumes", ondelete="SET NULL"),
        Index("ix_candidate_experience_candidate_position", "candidate_id", "position"),
        CheckConstraint(
            "start_date IS NULL OR end_date IS NULL OR end_date >= start_date", name="dates_ordered"
        ),
        CheckConstraint("NOT (is_current AND end_date IS NOT NULL)", name="current_has_no_end"),
        {"info": _candidate_policy("Work history used for matching and evaluation.")},
    )


class CandidateEducation(TenantMixin, TimestampMixin, Model):
    """A degree or course in the candidate's education."""

    __tablename__ = "candidate_education"

    candidate_id: Mapped[covered_ref_id]
    parsed_resume_id: Mapped[opt_ref_id]
    institution: Mapped[str | None] = mapped_column(
        String(300), info=pii(DataCategory.EDUCATION, anonymize=Anonymize.NULL)
    )
    degree: Mapped[str | None] = mapped_column(
        String(200), info=pii(DataCategory.EDUCATION, anonymize=Anonymize.NULL)
    )
    field_of_study: Mapped[str | None] = mapped_column(
        String(200), info=pii(DataCategory.EDUCATION, anonymize=Anonymize.NULL)
    )
    grade: Mapped[str | None] = mapped_column(
        String(50), info=pii(DataCategory.EDUCATION, anonymize=Anonymize.NULL)
    )
    start_date: Mapped[date | None] = mapped_column(Date, info=not_pii(DataCategory.EDUCATION))
    end_date: Mapped[date | None] = mapped_column(Date, info=not_pii(DataCategory.EDUCATION))
    description: Mapped[str | None] = mapped_column(
        Text, info=pii(DataCategory.EDUCATION, anonymize=Anonymize.NULL)
    )
    source: Mapped[EntrySource] = mapped_column(
        pg_enum(EntrySource, "entry_source"), info=not_pii()
    )
    position: Mapped[int] = mapped_column(Integer, server_default=text("0"), info=not_pii())

    candidate: Mapped[Candidate] = relationship(
        back_populates="education", foreign_keys="CandidateEducation.candidate_id"
    )

    __table_args__ = (
        tenant_fk("candidate_id", "candidates"),
        tenant_fk("parsed_resume_id", "parsed_resumes", ondelete="SET NULL"),
        Index("ix_candidate_education_candidate_position", "candidate_id", "position"),
        CheckConstraint(
            "start_date IS NULL OR end_date IS NULL OR end_date >= start_date", name="dates_ordered"
        ),
        {"info": _candidate_policy("Education used for matching and evaluation.")},
    )


class CandidateSkill(TenantMixin, TimestampMixin, Model):
    """A taxonomy skill the candidate has, and where that knowledge came from."""

    __tablename__ = "candidate_skills"

    candidate_id: Mapped[covered_ref_id]
    skill_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("skills.id", ondelete="RESTRICT"),
        index=True,
        info=not_pii(DataCategory.TECHNICAL),
    )
    source: Mapped[SkillSource] = mapped_column(
        pg_enum(SkillSource, "skill_source"), info=not_pii()
    )
    years: Mapped[Decimal | None] = mapped_column(
        Numeric(4, 1), info=not_pii(DataCategory.EMPLOYMENT)
    )
    proficiency: Mapped[int | None] = mapped_column(
        SmallInteger, info=not_pii(DataCategory.EMPLOYMENT)
    )

    candidate: Mapped[Candidate] = relationship(
        back_populates="skills", foreign_keys="CandidateSkill.candidate_id"
    )

    __table_args__ = (
        tenant_fk("candidate_id", "candidates"),
        UniqueConstraint("candidate_id", "skill_id", "source"),
        CheckConstraint("years IS NULL OR (years >= 0 AND years <= 60)", name="years_range"),
        CheckConstraint(
            "proficiency IS NULL OR proficiency BETWEEN 1 AND 5", name="proficiency_range"
        ),
        {"info": _candidate_policy("Skills used for matching.")},
    )


class CandidateNote(TenantMixin, TimestampMixin, Model):
    """A recruiter's free-text note about a candidate (personal data: an opinion)."""

    __tablename__ = "candidate_notes"

    candidate_id: Mapped[ref_id]
    application_id: Mapped[opt_ref_id]
    author_user_id: Mapped[opt_ref_id]
    body: Mapped[str] = mapped_column(
        Text, info=pii(DataCategory.ASSESSMENT, anonymize=Anonymize.REDACT)
    )
    visibility: Mapped[NoteVisibility] = mapped_column(
        pg_enum(NoteVisibility, "note_visibility"),
        server_default=NoteVisibility.HIRING_TEAM.value,
        info=not_pii(),
    )

    __table_args__ = (
        tenant_fk("candidate_id", "candidates"),
        tenant_fk("application_id", "applications", ondelete="SET NULL"),
        member_fk("author_user_id", ondelete="SET NULL"),
        {"info": _candidate_policy("Collaboration on hiring decisions.")},
    )


class Tag(TenantMixin, TimestampMixin, Model):
    """A label recruiters put on candidates ("silver medalist", "relocation")."""

    __tablename__ = "tags"

    name: Mapped[str] = mapped_column(String(100), info=not_pii(holds=Holds.TENANT_TEXT))
    color: Mapped[str | None] = mapped_column(String(7), info=not_pii(holds=Holds.CODE))

    __table_args__ = (
        tenant_key(),
        Index("uq_tags_org_name_lower", "organization_id", text("lower(name)"), unique=True),
        {"info": table_policy(retention_days=None, purpose="Organizing candidates.")},
    )


class CandidateTag(TenantMixin, Model):
    """A tag on a candidate."""

    __tablename__ = "candidate_tags"

    candidate_id: Mapped[covered_ref_id]
    tag_id: Mapped[ref_id]
    created_at: Mapped[created_at_col]

    __table_args__ = (
        tenant_fk("candidate_id", "candidates"),
        tenant_fk("tag_id", "tags"),
        UniqueConstraint("candidate_id", "tag_id"),
        {"info": _candidate_policy("Organizing candidates.")},
    )


class CandidateConsent(TenantMixin, TimestampMixin, Model):
    """The current consent (or objection) of a candidate for one purpose.

    One row per purpose, updated in place; every change is also written to ``audit_log``.
    Workers check it before processing (no ``granted`` row for ``ai_evaluation`` → the
    evaluation is skipped with a reason).
    """

    __tablename__ = "candidate_consents"

    candidate_id: Mapped[covered_ref_id]
    purpose: Mapped[ConsentPurpose] = mapped_column(
        pg_enum(ConsentPurpose, "consent_purpose"), info=not_pii()
    )
    status: Mapped[ConsentStatus] = mapped_column(
        pg_enum(ConsentStatus, "consent_status"), info=not_pii()
    )
    source: Mapped[ConsentSource] = mapped_column(
        pg_enum(ConsentSource, "consent_source"), info=not_pii()
    )
    policy_version: Mapped[str] = mapped_column(String(64), info=not_pii(holds=Holds.CODE))
    granted_at: Mapped[opt_ts]
    withdrawn_at: Mapped[opt_ts]
    evidence: Mapped[dict[str, Any]] = mapped_column(
        server_default=json_default(),
        info=pii(DataCategory.TECHNICAL, anonymize=Anonymize.REDACT),
    )  # IP address, user agent, form version: proof of how consent was given

    candidate: Mapped[Candidate] = relationship(
        back_populates="consents", foreign_keys="CandidateConsent.candidate_id"
    )

    __table_args__ = (
        tenant_fk("candidate_id", "candidates"),
        UniqueConstraint("candidate_id", "purpose"),
        CheckConstraint("status <> 'granted' OR granted_at IS NOT NULL", name="granted_has_time"),
        CheckConstraint(
            "status <> 'withdrawn' OR withdrawn_at IS NOT NULL", name="withdrawn_has_time"
        ),
        {"info": _candidate_policy("Lawful basis: proof of consent and objections.")},
    )
