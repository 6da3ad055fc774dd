"""Fairness: bias audits of the AI tools, and the voluntary self-identification they use.

Self-identification (gender, ethnicity, disability, veteran status) is Art. 9 special
category data collected only for bias audits. It is kept in its own table, apart from the
candidate row, encrypted, and read only by the bias audit, which publishes aggregates.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Integer, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, validates

from are_workers.models.base import Model, TenantMixin, TimestampMixin
from are_workers.models.classification import (
    DataCategory,
    Holds,
    not_pii,
    table_policy,
)
from are_workers.models.columns import (
    covered_ref_id,
    encrypted_column,
    envelope_check,
    opt_ref_id,
    opt_ts,
    pg_enum,
    task_run_ref,
    tenant_fk,
)
from are_workers.models.schemas import BiasAuditMetrics, validated


class BiasReportStatus(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    WITHDRAWN = "withdrawn"


class BiasAuditReport(TenantMixin, TimestampMixin, Model):
    """Adverse-impact metrics of an AI tool over a period (NYC LL 144, EU AI Act).

    Aggregates only; groups below ``min_group_size`` are suppressed in ``metrics``.
    """

    __tablename__ = "bias_audit_reports"

    job_id: Mapped[opt_ref_id]
    model_version_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("ai_model_versions.id", ondelete="RESTRICT"),
        index=True,
        info=not_pii(DataCategory.TECHNICAL),
    )
    period_start: Mapped[datetime] = mapped_column(info=not_pii())
    period_end: Mapped[datetime] = mapped_column(info=not_pii())
    min_group_size: Mapped[int] = mapped_column(Integer, server_default=text("10"), info=not_pii())
    sample_size: Mapped[int] = mapped_column(Integer, info=not_pii())
    metrics: Mapped[dict[str, Any]] = mapped_column(info=not_pii(holds=Holds.METRICS))
    status: Mapped[BiasReportStatus] = mapped_column(
        pg_enum(BiasReportStatus, "bias_report_status"),
        server_default=BiasReportStatus.DRAFT.value,
        info=not_pii(),
    )
    task_run_id: Mapped[task_run_ref]
    published_at: Mapped[opt_ts]

    @validates("metrics")
    def _validate_metrics(self, _key: str, value: Any) -> Any:
        return validated(BiasAuditMetrics, value)

    __table_args__ = (
        tenant_fk("job_id", "job_postings", ondelete="SET NULL"),
        CheckConstraint("period_end > period_start", name="period_ordered"),
        CheckConstraint("min_group_size >= 1 AND sample_size >= 0", name="sizes_valid"),
        {
            "info": table_policy(
                retention_days=1095,
                clock="period_end",
                purpose="Bias audits of automated employment decision tools.",
            )
        },
    )


class CandidateSelfIdentification(TenantMixin, TimestampMixin, Model):
    """Voluntary self-identification for bias audits (special category, encrypted)."""

    __tablename__ = "candidate_self_identifications"

    candidate_id: Mapped[covered_ref_id]
    gender: Mapped[str | None] = encrypted_column(
        "candidate_self_identifications", "gender", DataCategory.DEMOGRAPHIC
    )
    ethnicity: Mapped[str | None] = encrypted_column(
        "candidate_self_identifications", "ethnicity", DataCategory.DEMOGRAPHIC
    )
    disability_status: Mapped[str | None] = encrypted_column(
        "candidate_self_identifications", "disability_status", DataCategory.HEALTH
    )
    veteran_status: Mapped[str | None] = encrypted_column(
        "candidate_self_identifications", "veteran_status", DataCategory.DEMOGRAPHIC
    )
    age_band: Mapped[str | None] = encrypted_column(
        "candidate_self_identifications", "age_band", DataCategory.DEMOGRAPHIC
    )
    declined_to_answer: Mapped[bool] = mapped_column(
        Boolean, server_default=text("false"), info=not_pii()
    )
    collected_at: Mapped[datetime] = mapped_column(
        server_default=text("now()"), info=not_pii(DataCategory.TECHNICAL)
    )

    __table_args__ = (
        tenant_fk("candidate_id", "candidates"),
        UniqueConstraint("candidate_id"),
        *(
            envelope_check(column)
            for column in ("gender", "ethnicity", "disability_status", "veteran_status", "age_band")
        ),
        {
            "info": table_policy(
                retention_days=365,
                clock="collected_at",
                subject="candidate_id",
                purpose="Bias audits only (Art. 9(2)(a) explicit consent); never shown to "
                "recruiters or used in evaluation.",
            )
        },
    )
