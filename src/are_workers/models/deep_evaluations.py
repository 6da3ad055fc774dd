"""Portfolios and their deep evaluation: documents, images, code archives and links, scored
against a job's requirements with findings that cite their evidence (file and passage).

Links are stored as metadata only: the workers never fetch a candidate-supplied URL
(SSRF, and consent covers what was uploaded, not what a page says today).
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


class PortfolioStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    PROCESSED = "processed"
    FAILED = "failed"


class PortfolioItemKind(StrEnum):
    DOCUMENT = "document"
    IMAGE = "image"
    CODE_ARCHIVE = "code_archive"
    LINK = "link"


class DeepEvaluationStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    SKIPPED = "skipped"
    NEEDS_REVIEW = "needs_review"
    FAILED = "failed"


class FindingKind(StrEnum):
    STRENGTH = "strength"
    GAP = "gap"
    CONCERN = "concern"  # e.g. suspected plagiarism: always routed to a human


class Portfolio(TenantMixin, TimestampMixin, Model):
    """A candidate's body of work submitted for evaluation."""

    __tablename__ = "portfolios"

    candidate_id: Mapped[ref_id]
    title: Mapped[str | None] = mapped_column(
        String(300), info=pii(DataCategory.EMPLOYMENT, anonymize=Anonymize.NULL)
    )
    status: Mapped[PortfolioStatus] = mapped_column(
        pg_enum(PortfolioStatus, "portfolio_status"),
        server_default=PortfolioStatus.PENDING.value,
        info=not_pii(),
    )
    submitted_at: Mapped[opt_ts]

    candidate: Mapped[Candidate] = relationship(
        back_populates="portfolios", foreign_keys="Portfolio.candidate_id"
    )
    items: Mapped[list[PortfolioItem]] = relationship(
        back_populates="portfolio",
        foreign_keys="PortfolioItem.portfolio_id",
        order_by="PortfolioItem.position",
        passive_deletes=True,
    )

    __table_args__ = (
        tenant_key(),
        tenant_fk("candidate_id", "candidates"),
        {
            "info": table_policy(
                retention_days=None,
                subject="candidate_id",
                purpose="Evaluation of work samples submitted by candidates.",
            )
        },
    )


class PortfolioItem(TenantMixin, TimestampMixin, Model):
    """One piece of a portfolio: an uploaded file, or a link (metadata only)."""

    __tablename__ = "portfolio_items"

    portfolio_id: Mapped[covered_ref_id]
    kind: Mapped[PortfolioItemKind] = mapped_column(
        pg_enum(PortfolioItemKind, "portfolio_item_kind"), info=not_pii()
    )
    file_id: Mapped[opt_ref_id]
    url: Mapped[str | None] = mapped_column(
        String(2000), info=pii(DataCategory.IDENTITY, anonymize=Anonymize.NULL)
    )  # github.com/<name> identifies the person
    title: Mapped[str | None] = mapped_column(
        String(300), info=pii(DataCategory.EMPLOYMENT, anonymize=Anonymize.NULL)
    )
    description: Mapped[str | None] = mapped_column(
        Text, info=pii(DataCategory.EMPLOYMENT, anonymize=Anonymize.NULL)
    )
    status: Mapped[PortfolioStatus] = mapped_column(
        pg_enum(PortfolioStatus, "portfolio_status"),
        server_default=PortfolioStatus.PENDING.value,
        info=not_pii(),
    )
    error_code: Mapped[str | None] = mapped_column(String(64), info=not_pii(holds=Holds.CODE))
    error_message: Mapped[str | None] = mapped_column(
        Text, info=pii(DataCategory.TECHNICAL, anonymize=Anonymize.NULL)
    )
    stats: Mapped[dict[str, Any]] = mapped_column(
        server_default=json_default(),
        # No file content, but an archive's paths ("jane_doe_thesis/", a README's path),
        # which can name the person: the erasure proof found one here.
        info=pii(DataCategory.EMPLOYMENT, anonymize=Anonymize.REDACT),
    )  # pages, files in archive, languages and paths: structure only, no content
    position: Mapped[int] = mapped_column(Integer, server_default=text("0"), info=not_pii())

    portfolio: Mapped[Portfolio] = relationship(
        back_populates="items", foreign_keys="PortfolioItem.portfolio_id"
    )

    __table_args__ = (
        tenant_key(),
        tenant_fk("portfolio_id", "portfolios"),
        # The item is its file: deleting the file deletes the item.
        tenant_fk("file_id", "files"),
        Index("ix_portfolio_items_portfolio_position", "portfolio_id", "position"),
        CheckConstraint("(kind = 'link') = (url IS NOT NULL)", name="url_iff_link"),
        CheckConstraint("(kind = 'link') = (file_id IS NULL)", name="file_unless_link"),
        {"info": table_policy(retention_days=None, purpose="Work samples.")},
    )


class DeepEvaluation(TenantMixin, TimestampMixin, Model):
    """An evaluation of a portfolio against a job's requirements."""

    __tablename__ = "deep_evaluations"

    portfolio_id: Mapped[ref_id]
    job_id: Mapped[ref_id]
    application_id: Mapped[opt_ref_id]
    model_version_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("ai_model_versions.id", ondelete="RESTRICT"),
        index=True,
        info=not_pii(DataCategory.TECHNICAL),
    )  # the model that wrote the findings
    pipeline_versions: Mapped[dict[str, Any]] = mapped_column(
        server_default=json_default(), info=not_pii(holds=Holds.CODE)
    )  # every component used: {"ocr": "...", "vision": "...", "code_metrics": "..."}
    status: Mapped[DeepEvaluationStatus] = mapped_column(
        pg_enum(DeepEvaluationStatus, "deep_evaluation_status"),
        server_default=DeepEvaluationStatus.QUEUED.value,
        info=not_pii(),
    )
    overall_score: Mapped[float | None] = mapped_column(
        Float, info=not_pii(DataCategory.ASSESSMENT)
    )
    summary: Mapped[str | None] = mapped_column(
        Text, info=pii(DataCategory.ASSESSMENT, anonymize=Anonymize.REDACT)
    )
    error_code: Mapped[str | None] = mapped_column(String(64), info=not_pii(holds=Holds.CODE))
    error_message: Mapped[str | None] = mapped_column(
        Text, info=pii(DataCategory.TECHNICAL, anonymize=Anonymize.NULL)
    )
    task_run_id: Mapped[task_run_ref]
    started_at: Mapped[opt_ts]
    completed_at: Mapped[opt_ts]

    findings: Mapped[list[DeepEvaluationFinding]] = relationship(
        back_populates="evaluation",
        foreign_keys="DeepEvaluationFinding.deep_evaluation_id",
        passive_deletes=True,
    )

    __table_args__ = (
        tenant_key(),
        tenant_fk("portfolio_id", "portfolios"),
        tenant_fk("job_id", "job_postings"),
        tenant_fk("application_id", "applications", ondelete="SET NULL"),
        Index("ix_deep_evaluations_job_status", "job_id", "status"),
        CheckConstraint(
            "overall_score IS NULL OR (overall_score >= 0 AND overall_score <= 100)",
            name="overall_score_range",
        ),
        CheckConstraint(
            "status <> 'completed' OR overall_score IS NOT NULL", name="completed_has_score"
        ),
        {"info": table_policy(retention_days=None, purpose="Decision support on work samples.")},
    )


class DeepEvaluationFinding(TenantMixin, Model):
    """A finding about one requirement, citing a passage of a portfolio file."""

    __tablename__ = "deep_evaluation_findings"

    deep_evaluation_id: Mapped[ref_id]
    requirement_id: Mapped[opt_ref_id]
    portfolio_item_id: Mapped[opt_ref_id]
    kind: Mapped[FindingKind] = mapped_column(pg_enum(FindingKind, "finding_kind"), info=not_pii())
    score: Mapped[float | None] = mapped_column(Float, info=not_pii(DataCategory.ASSESSMENT))
    summary: Mapped[str] = mapped_column(
        Text, info=pii(DataCategory.ASSESSMENT, anonymize=Anonymize.REDACT)
    )
    evidence_file_id: Mapped[opt_ref_id]
    evidence_passage: Mapped[str | None] = mapped_column(
        Text, info=pii(DataCategory.EMPLOYMENT, anonymize=Anonymize.NULL)
    )  # verbatim quote from the candidate's work
    evidence_locator: Mapped[dict[str, Any]] = mapped_column(
        server_default=json_default(), info=pii(DataCategory.EMPLOYMENT, anonymize=Anonymize.REDACT)
    )  # {"path": "src/app.py", "lines": [10, 42]} / {"page": 3} / {"bbox": [...]}
    evidence_char_start: Mapped[int | None] = mapped_column(Integer, info=not_pii())
    evidence_char_end: Mapped[int | None] = mapped_column(Integer, info=not_pii())
    created_at: Mapped[created_at_col]

    evaluation: Mapped[DeepEvaluation] = relationship(
        back_populates="findings", foreign_keys="DeepEvaluationFinding.deep_evaluation_id"
    )

    __table_args__ = (
        tenant_fk("deep_evaluation_id", "deep_evaluations"),
        tenant_fk("requirement_id", "job_requirements", ondelete="SET NULL"),
        tenant_fk("portfolio_item_id", "portfolio_items", ondelete="SET NULL"),
        tenant_fk("evidence_file_id", "files", ondelete="SET NULL"),
        CheckConstraint("score IS NULL OR (score >= 0 AND score <= 1)", name="score_unit_range"),
        CheckConstraint(
            "(evidence_char_start IS NULL) = (evidence_char_end IS NULL) AND "
            "(evidence_char_start IS NULL OR "
            "(evidence_char_start >= 0 AND evidence_char_end >= evidence_char_start))",
            name="evidence_span_valid",
        ),
        {"info": table_policy(retention_days=None, purpose="Explainability of deep evaluations.")},
    )
