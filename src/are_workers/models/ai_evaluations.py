"""AI evaluations of candidates against jobs, with per-requirement evidence.

``ai_model_versions`` is global: a model version (an embedding model, an LLM, Whisper, the
rules engine) is a property of the platform, shared by every tenant, and every AI output
row points at the one that produced it (EU AI Act record-keeping, reproducibility).

An evaluation is idempotent on ``(candidate_id, job_id, input_hash)``: the hash covers the
resume version, the job's criteria and the model version, so re-running unchanged inputs
finds the existing row. A human can review it (GDPR Art. 22: no decision based solely on
automated processing), and ``needs_review`` routes it to one.
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
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
    task_run_ref,
    tenant_fk,
    tenant_key,
)

if TYPE_CHECKING:
    from are_workers.models.candidates import Candidate


class ModelKind(StrEnum):
    EMBEDDING = "embedding"
    LLM = "llm"
    CLASSIFIER = "classifier"
    RANKER = "ranker"
    ASR = "asr"  # speech recognition (Whisper)
    VISION = "vision"
    PARSER = "parser"
    RULES = "rules"  # deterministic scoring, versioned like a model


class ModelStatus(StrEnum):
    ACTIVE = "active"
    DEPRECATED = "deprecated"
    RETIRED = "retired"


class EvaluationStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    SKIPPED = "skipped"  # skip_reason says why (no consent, no resume, Art. 22 objection)
    NEEDS_REVIEW = "needs_review"
    FAILED = "failed"


class ReviewDecision(StrEnum):
    CONFIRMED = "confirmed"
    OVERRIDDEN = "overridden"
    ESCALATED = "escalated"


class AIModelVersion(TimestampMixin, Model):
    """A version of a model or scoring method. Global."""

    __tablename__ = "ai_model_versions"

    kind: Mapped[ModelKind] = mapped_column(pg_enum(ModelKind, "model_kind"), info=not_pii())
    name: Mapped[str] = mapped_column(String(200), info=not_pii(holds=Holds.CODE))
    version: Mapped[str] = mapped_column(String(100), info=not_pii(holds=Holds.CODE))
    provider: Mapped[str | None] = mapped_column(String(100), info=not_pii(holds=Holds.CODE))
    params: Mapped[dict[str, Any]] = mapped_column(
        server_default=json_default(), info=not_pii(holds=Holds.METRICS)
    )  # temperature, prompt template hash, quantisation, ...
    status: Mapped[ModelStatus] = mapped_column(
        pg_enum(ModelStatus, "model_status"),
        server_default=ModelStatus.ACTIVE.value,
        info=not_pii(),
    )
    released_at: Mapped[opt_ts]

    __table_args__ = (
        UniqueConstraint("kind", "name", "version"),
        {"info": table_policy(retention_days=None, purpose="Model registry (traceability).")},
    )


class AIEvaluation(TenantMixin, TimestampMixin, Model):
    """An AI evaluation of a candidate for a job."""

    __tablename__ = "ai_evaluations"

    candidate_id: Mapped[covered_ref_id]
    job_id: Mapped[ref_id]
    application_id: Mapped[opt_ref_id]
    model_version_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("ai_model_versions.id", ondelete="RESTRICT"),
        index=True,
        info=not_pii(DataCategory.TECHNICAL),
    )
    status: Mapped[EvaluationStatus] = mapped_column(
        pg_enum(EvaluationStatus, "evaluation_status"),
        server_default=EvaluationStatus.PENDING.value,
        info=not_pii(),
    )
    skip_reason: Mapped[str | None] = mapped_column(String(64), info=not_pii(holds=Holds.CODE))
    overall_score: Mapped[float | None] = mapped_column(
        Float, info=not_pii(DataCategory.ASSESSMENT)
    )  # 0..100
    must_haves_met: Mapped[bool | None] = mapped_column(info=not_pii(DataCategory.ASSESSMENT))
    summary: Mapped[str | None] = mapped_column(
        Text, info=pii(DataCategory.ASSESSMENT, anonymize=Anonymize.REDACT)
    )  # generated prose about the candidate
    criteria_snapshot: Mapped[dict[str, Any]] = mapped_column(
        server_default=json_default(), info=not_pii(holds=Holds.TENANT_TEXT)
    )  # the job's evaluation_criteria as used (the job may change later)
    output: Mapped[dict[str, Any] | None] = mapped_column(
        info=pii(DataCategory.ASSESSMENT, anonymize=Anonymize.NULL)
    )  # the raw model output, which quotes the resume
    input_hash: Mapped[str] = mapped_column(
        String(64), info=not_pii(DataCategory.TECHNICAL, holds=Holds.REFERENCE)
    )
    task_run_id: Mapped[task_run_ref]
    error_code: Mapped[str | None] = mapped_column(String(64), info=not_pii(holds=Holds.CODE))
    completed_at: Mapped[opt_ts]

    candidate: Mapped[Candidate] = relationship(
        back_populates="ai_evaluations", foreign_keys="AIEvaluation.candidate_id"
    )
    scores: Mapped[list[EvaluationCriterionScore]] = relationship(
        back_populates="evaluation",
        foreign_keys="EvaluationCriterionScore.evaluation_id",
        passive_deletes=True,
    )
    reviews: Mapped[list[EvaluationReview]] = relationship(
        back_populates="evaluation",
        foreign_keys="EvaluationReview.evaluation_id",
        passive_deletes=True,
    )

    __table_args__ = (
        tenant_key(),
        tenant_fk("candidate_id", "candidates"),
        tenant_fk("job_id", "job_postings"),
        tenant_fk("application_id", "applications", ondelete="SET NULL"),
        UniqueConstraint("candidate_id", "job_id", "input_hash"),
        # Ranking a job's evaluated candidates, and the review queue.
        Index("ix_ai_evaluations_job_score", "job_id", "status", "overall_score"),
        Index(
            "ix_ai_evaluations_needs_review",
            "organization_id",
            "created_at",
            postgresql_where=text("status = 'needs_review'"),
        ),
        CheckConstraint(
            "overall_score IS NULL OR (overall_score >= 0 AND overall_score <= 100)",
            name="overall_score_range",
        ),
        CheckConstraint(
            "(status = 'skipped') = (skip_reason IS NOT NULL)", name="skipped_has_reason"
        ),
        CheckConstraint(
            "status <> 'completed' OR overall_score IS NOT NULL", name="completed_has_score"
        ),
        {
            "info": table_policy(
                retention_days=None,
                clock="created_at",
                subject="candidate_id",
                purpose="Decision support: AI evaluation of candidates against job criteria.",
            )
        },
    )


class EvaluationCriterionScore(TenantMixin, Model):
    """The score of one requirement (or custom criterion) with its cited evidence.

    ``evidence_text`` is a verbatim span of the resume; ``evidence_char_start/end`` locate it
    in ``parsed_resumes.raw_text`` so the UI can highlight it.
    """

    __tablename__ = "evaluation_criteria_scores"

    evaluation_id: Mapped[covered_ref_id]
    requirement_id: Mapped[opt_ref_id]
    criterion_key: Mapped[str] = mapped_column(
        String(64), info=not_pii(holds=Holds.CODE)
    )  # the requirement id as text, or a custom criterion's key
    score: Mapped[float] = mapped_column(Float, info=not_pii(DataCategory.ASSESSMENT))  # 0..1
    weight: Mapped[float] = mapped_column(Float, info=not_pii())
    met: Mapped[bool | None] = mapped_column(info=not_pii(DataCategory.ASSESSMENT))
    confidence: Mapped[float | None] = mapped_column(Float, info=not_pii())
    evidence_text: Mapped[str | None] = mapped_column(
        Text, info=pii(DataCategory.EMPLOYMENT, anonymize=Anonymize.NULL)
    )
    evidence_parsed_resume_id: Mapped[opt_ref_id]
    evidence_char_start: Mapped[int | None] = mapped_column(Integer, info=not_pii())
    evidence_char_end: Mapped[int | None] = mapped_column(Integer, info=not_pii())
    rationale: Mapped[str | None] = mapped_column(
        Text, info=pii(DataCategory.ASSESSMENT, anonymize=Anonymize.REDACT)
    )
    created_at: Mapped[created_at_col]

    evaluation: Mapped[AIEvaluation] = relationship(
        back_populates="scores", foreign_keys="EvaluationCriterionScore.evaluation_id"
    )

    __table_args__ = (
        tenant_fk("evaluation_id", "ai_evaluations"),
        tenant_fk("requirement_id", "job_requirements", ondelete="SET NULL"),
        tenant_fk("evidence_parsed_resume_id", "parsed_resumes", ondelete="SET NULL"),
        UniqueConstraint("evaluation_id", "criterion_key"),
        CheckConstraint("score >= 0 AND score <= 1", name="score_unit_range"),
        CheckConstraint("weight >= 0", name="weight_non_negative"),
        CheckConstraint(
            "confidence IS NULL OR (confidence >= 0 AND confidence <= 1)", name="confidence_range"
        ),
        CheckConstraint(
            "(evidence_char_start IS NULL) = (evidence_char_end IS NULL) AND "
            "(evidence_char_start IS NULL OR "
            "(evidence_char_start >= 0 AND evidence_char_end >= evidence_char_start))",
            name="evidence_span_valid",
        ),
        {"info": table_policy(retention_days=None, purpose="Explainability of AI evaluations.")},
    )


class EvaluationReview(TenantMixin, Model):
    """A human's review of an AI evaluation (confirm, override, escalate)."""

    __tablename__ = "evaluation_reviews"

    evaluation_id: Mapped[covered_ref_id]
    reviewer_user_id: Mapped[opt_ref_id]
    decision: Mapped[ReviewDecision] = mapped_column(
        pg_enum(ReviewDecision, "review_decision"), info=not_pii()
    )
    override_score: Mapped[float | None] = mapped_column(
        Float, info=not_pii(DataCategory.ASSESSMENT)
    )
    comment: Mapped[str | None] = mapped_column(
        Text, info=pii(DataCategory.ASSESSMENT, anonymize=Anonymize.REDACT)
    )
    reviewed_at: Mapped[created_at_col]

    evaluation: Mapped[AIEvaluation] = relationship(
        back_populates="reviews", foreign_keys="EvaluationReview.evaluation_id"
    )

    __table_args__ = (
        tenant_fk("evaluation_id", "ai_evaluations"),
        member_fk("reviewer_user_id", ondelete="SET NULL"),
        Index("ix_evaluation_reviews_eval_reviewed", "evaluation_id", "reviewed_at"),
        CheckConstraint(
            "(decision = 'overridden') = (override_score IS NOT NULL)",
            name="override_has_score",
        ),
        CheckConstraint(
            "override_score IS NULL OR (override_score >= 0 AND override_score <= 100)",
            name="override_score_range",
        ),
        {
            "info": table_policy(
                retention_days=None, clock="reviewed_at", purpose="Human oversight (GDPR Art. 22)."
            )
        },
    )
