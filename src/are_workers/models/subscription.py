"""Plans, subscriptions, metered AI usage and invoices.

``plans`` is global (the price list every tenant picks from). Usage is metered per AI job
(``usage_records``): the workers write one row per billable unit of work, keyed by the job
that did it, so a retried job never bills twice.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Numeric,
    String,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from are_workers.models.base import Model, TenantMixin, TimestampMixin, created_at_col
from are_workers.models.classification import DataCategory, Holds, not_pii, table_policy
from are_workers.models.columns import (
    json_default,
    opt_ref_id,
    opt_ts,
    pg_enum,
    ref_id,
    task_run_ref,
    tenant_fk,
    tenant_key,
)


class BillingInterval(StrEnum):
    MONTH = "month"
    YEAR = "year"


class SubscriptionStatus(StrEnum):
    TRIALING = "trialing"
    ACTIVE = "active"
    PAST_DUE = "past_due"
    CANCELED = "canceled"


class UsageKind(StrEnum):
    """A billable kind of AI work (one per worker pipeline)."""

    RESUME_PARSING = "resume_parsing"
    RESUME_EMBEDDING = "resume_embedding"
    JOB_EMBEDDING = "job_embedding"
    MATCHING = "matching"
    EVALUATION = "evaluation"
    DEEP_EVALUATION = "deep_evaluation"
    TRANSCRIPTION = "transcription"
    VIDEO_ANALYSIS = "video_analysis"
    ASSESSMENT_SCORING = "assessment_scoring"
    PROCTORING_ANALYSIS = "proctoring_analysis"
    CHAT_COMPLETION = "chat_completion"


class UsageUnit(StrEnum):
    ITEM = "item"
    PAGE = "page"
    TOKEN = "token"  # noqa: S105 - a billing unit, not a secret
    SECOND = "second"
    REQUEST = "request"


usage_kind_enum = pg_enum(UsageKind, "usage_kind")


class InvoiceStatus(StrEnum):
    DRAFT = "draft"
    OPEN = "open"
    PAID = "paid"
    VOID = "void"
    UNCOLLECTIBLE = "uncollectible"


class Plan(TimestampMixin, Model):
    """A price plan. Global: the same catalogue for every tenant."""

    __tablename__ = "plans"

    code: Mapped[str] = mapped_column(String(64), unique=True, info=not_pii(holds=Holds.CODE))
    name: Mapped[str] = mapped_column(String(200), info=not_pii(holds=Holds.PLATFORM_TEXT))
    interval: Mapped[BillingInterval] = mapped_column(
        pg_enum(BillingInterval, "billing_interval"), info=not_pii()
    )
    price_cents: Mapped[int] = mapped_column(BigInteger, info=not_pii(DataCategory.FINANCIAL))
    currency: Mapped[str] = mapped_column(String(3), info=not_pii(holds=Holds.CODE))
    limits: Mapped[dict[str, Any]] = mapped_column(
        server_default=json_default(), info=not_pii(holds=Holds.METRICS)
    )  # included units per UsageKind and period, e.g. {"evaluation": 500}
    is_active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"), info=not_pii())

    __table_args__ = (
        CheckConstraint("price_cents >= 0", name="price_non_negative"),
        CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency_iso4217"),
        {"info": table_policy(retention_days=None, purpose="Price catalogue.")},
    )


class Subscription(TenantMixin, TimestampMixin, Model):
    """An organization's subscription to a plan."""

    __tablename__ = "subscriptions"

    plan_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("plans.id", ondelete="RESTRICT"),
        index=True,
        info=not_pii(DataCategory.TECHNICAL),
    )
    status: Mapped[SubscriptionStatus] = mapped_column(
        pg_enum(SubscriptionStatus, "subscription_status"), info=not_pii()
    )
    current_period_start: Mapped[datetime] = mapped_column(info=not_pii())
    current_period_end: Mapped[datetime] = mapped_column(info=not_pii())
    cancel_at: Mapped[opt_ts]
    external_ref: Mapped[str | None] = mapped_column(
        String(255), info=not_pii(DataCategory.FINANCIAL, holds=Holds.REFERENCE)
    )  # the payment provider's subscription id

    __table_args__ = (
        tenant_key(),
        CheckConstraint("current_period_end > current_period_start", name="period_ordered"),
        # At most one live subscription per organization.
        Index(
            "uq_subscriptions_live",
            "organization_id",
            unique=True,
            postgresql_where=text("status IN ('trialing', 'active', 'past_due')"),
        ),
        {
            "info": table_policy(
                retention_days=3650, clock="updated_at", purpose="Billing (contract records)."
            )
        },
    )


class Invoice(TenantMixin, TimestampMixin, Model):
    """An invoice for one billing period (subscription fee plus metered usage)."""

    __tablename__ = "invoices"

    subscription_id: Mapped[opt_ref_id]
    number: Mapped[str] = mapped_column(
        String(64), unique=True, info=not_pii(DataCategory.FINANCIAL, holds=Holds.REFERENCE)
    )
    status: Mapped[InvoiceStatus] = mapped_column(
        pg_enum(InvoiceStatus, "invoice_status"),
        server_default=InvoiceStatus.DRAFT.value,
        info=not_pii(),
    )
    currency: Mapped[str] = mapped_column(String(3), info=not_pii(holds=Holds.CODE))
    period_start: Mapped[datetime] = mapped_column(info=not_pii())
    period_end: Mapped[datetime] = mapped_column(info=not_pii())
    subtotal_cents: Mapped[int] = mapped_column(BigInteger, info=not_pii(DataCategory.FINANCIAL))
    tax_cents: Mapped[int] = mapped_column(
        BigInteger, server_default=text("0"), info=not_pii(DataCategory.FINANCIAL)
    )
    total_cents: Mapped[int] = mapped_column(BigInteger, info=not_pii(DataCategory.FINANCIAL))
    issued_at: Mapped[opt_ts]
    due_at: Mapped[opt_ts]
    paid_at: Mapped[opt_ts]

    lines: Mapped[list[InvoiceLineItem]] = relationship(
        back_populates="invoice", passive_deletes=True
    )

    __table_args__ = (
        tenant_key(),
        tenant_fk("subscription_id", "subscriptions", ondelete="SET NULL"),
        CheckConstraint("period_end > period_start", name="period_ordered"),
        CheckConstraint("subtotal_cents >= 0 AND tax_cents >= 0", name="amounts_non_negative"),
        CheckConstraint("total_cents = subtotal_cents + tax_cents", name="total_adds_up"),
        {
            "info": table_policy(
                retention_days=3650,
                clock="issued_at",
                purpose="Accounting records (statutory retention of 10 years).",
            )
        },
    )


class InvoiceLineItem(TenantMixin, Model):
    """One line of an invoice (the plan fee, or the overage of one usage kind)."""

    __tablename__ = "invoice_line_items"

    invoice_id: Mapped[ref_id]
    description: Mapped[str] = mapped_column(String(500), info=not_pii(holds=Holds.PLATFORM_TEXT))
    usage_kind: Mapped[UsageKind | None] = mapped_column(usage_kind_enum, info=not_pii())
    quantity: Mapped[Decimal] = mapped_column(Numeric(18, 6), info=not_pii())
    unit_amount_cents: Mapped[int] = mapped_column(BigInteger, info=not_pii(DataCategory.FINANCIAL))
    amount_cents: Mapped[int] = mapped_column(BigInteger, info=not_pii(DataCategory.FINANCIAL))
    created_at: Mapped[created_at_col]

    invoice: Mapped[Invoice] = relationship(
        back_populates="lines", foreign_keys="InvoiceLineItem.invoice_id"
    )

    __table_args__ = (
        tenant_fk("invoice_id", "invoices"),
        CheckConstraint("quantity >= 0", name="quantity_non_negative"),
        {"info": table_policy(retention_days=None, purpose="Lines of an invoice.")},
    )


class UsageRecord(TenantMixin, Model):
    """One metered unit of AI work, written by the worker in the job's own transaction."""

    __tablename__ = "usage_records"

    kind: Mapped[UsageKind] = mapped_column(usage_kind_enum, info=not_pii())
    quantity: Mapped[Decimal] = mapped_column(Numeric(18, 6), info=not_pii())
    unit: Mapped[UsageUnit] = mapped_column(pg_enum(UsageUnit, "usage_unit"), info=not_pii())
    task_run_id: Mapped[task_run_ref]
    model_version_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("ai_model_versions.id", ondelete="RESTRICT"),
        index=True,
        info=not_pii(DataCategory.TECHNICAL),
    )
    subscription_id: Mapped[opt_ref_id]
    invoice_id: Mapped[opt_ref_id]
    created_at: Mapped[created_at_col]

    __table_args__ = (
        tenant_fk("subscription_id", "subscriptions", ondelete="SET NULL"),
        tenant_fk("invoice_id", "invoices", ondelete="SET NULL"),
        CheckConstraint("quantity >= 0", name="quantity_non_negative"),
        # Idempotency: a retried job records its usage once.
        Index(
            "uq_usage_records_task_run_kind",
            "task_run_id",
            "kind",
            unique=True,
            postgresql_where=text("task_run_id IS NOT NULL"),
        ),
        # Period totals per tenant, and the invoicing scan of unbilled usage.
        Index("ix_usage_records_org_created", "organization_id", "created_at"),
        Index(
            "ix_usage_records_unbilled",
            "organization_id",
            "kind",
            "created_at",
            postgresql_where=text("invoice_id IS NULL"),
        ),
        {
            "info": table_policy(
                retention_days=2555,
                clock="created_at",
                purpose="Metered billing of AI jobs; ids and quantities only.",
            )
        },
    )
