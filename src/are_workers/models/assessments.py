"""Skills assessments: item banks with IRT parameters, sessions, responses and norms.

The item columns mirror ``services.assessments.irt.ItemSpec`` (a, b, c, GRM thresholds,
content area, Sympson-Hetter k) and the database rejects what the IRT code would reject
per item (non-positive slope, guessing outside [0, 1) or on a non-3PL item, a GRM item
without ordered thresholds). Checks that need the whole bank run in ``ItemBank``.

A response's id is its idempotency key: the client generates it, so a retried submission
is an ``INSERT ... ON CONFLICT (id) DO NOTHING``, and one item is answered once per session.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Float,
    Index,
    Integer,
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
    json_default,
    opt_ref_id,
    opt_ts,
    pg_enum,
    ref_id,
    tenant_fk,
    tenant_key,
)
from are_workers.models.schemas import GrmThresholds, NormThetas, validated


class ItemModel(StrEnum):
    """The response model of an item (values as in ``services.assessments.irt``)."""

    ONE_PL = "1PL"
    TWO_PL = "2PL"
    THREE_PL = "3PL"
    GRM = "GRM"


class ItemStatus(StrEnum):
    DRAFT = "draft"
    PILOT = "pilot"  # administered unscored, to calibrate
    ACTIVE = "active"
    FLAGGED = "flagged"  # parameter drift detected; excluded until reviewed
    RETIRED = "retired"


class AssessmentKind(StrEnum):
    ADAPTIVE = "adaptive"
    FIXED = "fixed"


class AssessmentStatus(StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    ARCHIVED = "archived"


class SessionStatus(StrEnum):
    OPEN = "open"
    COMPLETED = "completed"
    EXPIRED = "expired"
    ABANDONED = "abandoned"


class ItemBank(TenantMixin, TimestampMixin, Model):
    """A calibrated pool of items on one scale."""

    __tablename__ = "item_banks"

    name: Mapped[str] = mapped_column(String(200), info=not_pii(holds=Holds.TENANT_TEXT))
    description: Mapped[str | None] = mapped_column(Text, info=not_pii(holds=Holds.TENANT_TEXT))
    content_areas: Mapped[dict[str, Any]] = mapped_column(
        server_default=json_default(), info=not_pii(holds=Holds.TENANT_TEXT)
    )  # target proportion per content area, for content balancing

    items: Mapped[list[AssessmentItem]] = relationship(
        back_populates="bank", foreign_keys="AssessmentItem.bank_id", passive_deletes=True
    )

    __table_args__ = (
        tenant_key(),
        UniqueConstraint("organization_id", "name"),
        {"info": table_policy(retention_days=None, purpose="Assessment content.")},
    )


class AssessmentItem(TenantMixin, TimestampMixin, Model):
    """One item with its IRT parameters and exposure control."""

    __tablename__ = "assessment_items"

    bank_id: Mapped[covered_ref_id]
    code: Mapped[str] = mapped_column(String(64), info=not_pii(holds=Holds.CODE))
    content: Mapped[dict[str, Any]] = mapped_column(
        server_default=json_default(), info=not_pii(holds=Holds.TENANT_TEXT)
    )  # stem, options, media: what the candidate sees
    model: Mapped[ItemModel] = mapped_column(pg_enum(ItemModel, "item_model"), info=not_pii())
    a: Mapped[float] = mapped_column(Float, server_default=text("1.0"), info=not_pii())
    b: Mapped[float | None] = mapped_column(Float, info=not_pii())
    c: Mapped[float] = mapped_column(Float, server_default=text("0.0"), info=not_pii())
    thresholds: Mapped[list[Any] | None] = mapped_column(info=not_pii(holds=Holds.METRICS))
    content_area: Mapped[str] = mapped_column(
        String(100), server_default="general", info=not_pii(holds=Holds.CODE)
    )
    exposure_rate: Mapped[float] = mapped_column(
        Float, server_default=text("0.0"), info=not_pii()
    )  # observed P(administered), refreshed from item_exposure
    sympson_hetter_k: Mapped[float] = mapped_column(
        Float, server_default=text("1.0"), info=not_pii()
    )  # P(administer | selected)
    status: Mapped[ItemStatus] = mapped_column(
        pg_enum(ItemStatus, "item_status"), server_default=ItemStatus.DRAFT.value, info=not_pii()
    )
    calibrated_at: Mapped[opt_ts]

    bank: Mapped[ItemBank] = relationship(
        back_populates="items", foreign_keys="AssessmentItem.bank_id"
    )

    @validates("thresholds")
    def _validate_thresholds(self, _key: str, value: Any) -> Any:
        return None if value is None else validated(GrmThresholds, value)

    __table_args__ = (
        tenant_key(),
        tenant_fk("bank_id", "item_banks"),
        UniqueConstraint("bank_id", "code"),
        # The CAT engine loads a bank's active items.
        Index("ix_assessment_items_bank_status", "bank_id", "status"),
        CheckConstraint("a > 0 AND a < 'Infinity'::float8", name="a_positive_finite"),
        CheckConstraint("c >= 0 AND c < 1", name="c_unit_interval"),
        CheckConstraint("model = '3PL' OR c = 0", name="c_only_3pl"),
        CheckConstraint("(model = 'GRM') = (b IS NULL)", name="b_unless_grm"),
        CheckConstraint("(model = 'GRM') = (thresholds IS NOT NULL)", name="thresholds_iff_grm"),
        CheckConstraint(
            "thresholds IS NULL OR (jsonb_typeof(thresholds) = 'array' "
            "AND jsonb_array_length(thresholds) >= 1)",
            name="thresholds_array",
        ),
        CheckConstraint("exposure_rate >= 0 AND exposure_rate <= 1", name="exposure_rate_range"),
        CheckConstraint(
            "sympson_hetter_k >= 0 AND sympson_hetter_k <= 1", name="sympson_hetter_k_range"
        ),
        {"info": table_policy(retention_days=None, purpose="Assessment content.")},
    )


class Assessment(TenantMixin, TimestampMixin, Model):
    """A test built from a bank (adaptive or fixed-form), optionally tied to a job."""

    __tablename__ = "assessments"

    bank_id: Mapped[ref_id]
    job_id: Mapped[opt_ref_id]
    name: Mapped[str] = mapped_column(String(200), info=not_pii(holds=Holds.TENANT_TEXT))
    kind: Mapped[AssessmentKind] = mapped_column(
        pg_enum(AssessmentKind, "assessment_kind"), info=not_pii()
    )
    status: Mapped[AssessmentStatus] = mapped_column(
        pg_enum(AssessmentStatus, "assessment_status"),
        server_default=AssessmentStatus.DRAFT.value,
        info=not_pii(),
    )
    config: Mapped[dict[str, Any]] = mapped_column(
        server_default=json_default(), info=not_pii(holds=Holds.TENANT_TEXT)
    )  # stopping rule (max items, SE target), exposure control, content balancing
    time_limit_seconds: Mapped[int | None] = mapped_column(Integer, info=not_pii())

    __table_args__ = (
        tenant_key(),
        tenant_fk("bank_id", "item_banks", ondelete="NO ACTION"),
        tenant_fk("job_id", "job_postings", ondelete="SET NULL"),
        CheckConstraint(
            "time_limit_seconds IS NULL OR time_limit_seconds > 0", name="time_limit_positive"
        ),
        {"info": table_policy(retention_days=None, purpose="Assessment definition.")},
    )


class NormGroup(TenantMixin, TimestampMixin, Model):
    """A reference population for an assessment: turns a theta into a percentile."""

    __tablename__ = "norm_groups"

    assessment_id: Mapped[covered_ref_id]
    name: Mapped[str] = mapped_column(String(200), info=not_pii(holds=Holds.TENANT_TEXT))
    description: Mapped[str | None] = mapped_column(Text, info=not_pii(holds=Holds.TENANT_TEXT))
    sample_size: Mapped[int] = mapped_column(Integer, info=not_pii())
    thetas: Mapped[list[Any]] = mapped_column(
        info=not_pii(DataCategory.ASSESSMENT, holds=Holds.METRICS)
    )  # sorted ability estimates: anonymous (no session ids), so it outlives the sessions
    mean: Mapped[float | None] = mapped_column(Float, info=not_pii())
    sd: Mapped[float | None] = mapped_column(Float, info=not_pii())
    computed_at: Mapped[datetime] = mapped_column(info=not_pii(DataCategory.TECHNICAL))

    @validates("thetas")
    def _validate_thetas(self, _key: str, value: Any) -> Any:
        return validated(NormThetas, value)

    __table_args__ = (
        tenant_key(),
        tenant_fk("assessment_id", "assessments"),
        UniqueConstraint("assessment_id", "name"),
        CheckConstraint("sample_size > 0", name="sample_size_positive"),
        CheckConstraint("jsonb_typeof(thetas) = 'array'", name="thetas_array"),
        CheckConstraint("sd IS NULL OR sd >= 0", name="sd_non_negative"),
        {"info": table_policy(retention_days=None, purpose="Score interpretation (norms).")},
    )


class AssessmentSession(TenantMixin, TimestampMixin, Model):
    """One candidate taking one assessment."""

    __tablename__ = "assessment_sessions"

    assessment_id: Mapped[ref_id]
    candidate_id: Mapped[ref_id]
    application_id: Mapped[opt_ref_id]
    norm_group_id: Mapped[opt_ref_id]
    status: Mapped[SessionStatus] = mapped_column(
        pg_enum(SessionStatus, "session_status"),
        server_default=SessionStatus.OPEN.value,
        info=not_pii(),
    )
    state: Mapped[dict[str, Any]] = mapped_column(
        server_default=json_default(), info=not_pii(holds=Holds.METRICS)
    )  # resumable client state (section, timer); the CAT engine's state is adaptive_sessions
    theta: Mapped[float | None] = mapped_column(Float, info=not_pii(DataCategory.ASSESSMENT))
    se: Mapped[float | None] = mapped_column(Float, info=not_pii(DataCategory.ASSESSMENT))
    percentile: Mapped[float | None] = mapped_column(Float, info=not_pii(DataCategory.ASSESSMENT))
    items_administered: Mapped[int] = mapped_column(
        Integer, server_default=text("0"), info=not_pii()
    )
    started_at: Mapped[datetime] = mapped_column(
        server_default=text("now()"), info=not_pii(DataCategory.TECHNICAL)
    )
    expires_at: Mapped[datetime] = mapped_column(info=not_pii(DataCategory.TECHNICAL))
    completed_at: Mapped[opt_ts]

    responses: Mapped[list[AssessmentResponse]] = relationship(
        back_populates="session",
        foreign_keys="AssessmentResponse.session_id",
        order_by="AssessmentResponse.position",
        passive_deletes=True,
    )

    __table_args__ = (
        tenant_key(),
        tenant_fk("assessment_id", "assessments"),
        tenant_fk("candidate_id", "candidates"),
        tenant_fk("application_id", "applications", ondelete="SET NULL"),
        tenant_fk("norm_group_id", "norm_groups", ondelete="SET NULL"),
        # The expiry sweeper: open sessions past their deadline.
        Index(
            "ix_assessment_sessions_open_expiry",
            "expires_at",
            postgresql_where=text("status = 'open'"),
        ),
        CheckConstraint("se IS NULL OR se >= 0", name="se_non_negative"),
        CheckConstraint(
            "percentile IS NULL OR (percentile >= 0 AND percentile <= 100)", name="percentile_range"
        ),
        CheckConstraint("items_administered >= 0", name="items_non_negative"),
        CheckConstraint("expires_at > started_at", name="expires_after_start"),
        CheckConstraint(
            "(status = 'completed') = (completed_at IS NOT NULL)", name="completed_has_time"
        ),
        {
            "info": table_policy(
                retention_days=None,
                clock="completed_at",
                subject="candidate_id",
                purpose="Skills assessment of candidates.",
            )
        },
    )


class AssessmentResponse(TenantMixin, Model):
    """A candidate's answer to one item. The id is the client's idempotency key."""

    __tablename__ = "assessment_responses"

    session_id: Mapped[covered_ref_id]
    item_id: Mapped[ref_id]
    position: Mapped[int] = mapped_column(SmallInteger, info=not_pii())
    category: Mapped[int | None] = mapped_column(
        SmallInteger, info=not_pii(DataCategory.ASSESSMENT)
    )  # scored category 0..m (1 = correct for dichotomous items)
    answer: Mapped[dict[str, Any] | None] = mapped_column(
        info=pii(DataCategory.ASSESSMENT, anonymize=Anonymize.NULL)
    )  # the raw answer (free text for open items)
    latency_ms: Mapped[int | None] = mapped_column(Integer, info=not_pii(DataCategory.BEHAVIOURAL))
    theta_after: Mapped[float | None] = mapped_column(Float, info=not_pii(DataCategory.ASSESSMENT))
    se_after: Mapped[float | None] = mapped_column(Float, info=not_pii(DataCategory.ASSESSMENT))
    answered_at: Mapped[created_at_col]

    session: Mapped[AssessmentSession] = relationship(
        back_populates="responses", foreign_keys="AssessmentResponse.session_id"
    )

    __table_args__ = (
        tenant_fk("session_id", "assessment_sessions"),
        # Items are retired, never deleted, while responses cite them.
        tenant_fk("item_id", "assessment_items", ondelete="NO ACTION"),
        UniqueConstraint("session_id", "item_id"),
        UniqueConstraint("session_id", "position"),
        CheckConstraint("position >= 0", name="position_non_negative"),
        CheckConstraint("category IS NULL OR category >= 0", name="category_non_negative"),
        CheckConstraint("latency_ms IS NULL OR latency_ms >= 0", name="latency_non_negative"),
        {
            "info": table_policy(
                retention_days=None,
                clock="answered_at",
                purpose="Skills assessment of candidates.",
            )
        },
    )
