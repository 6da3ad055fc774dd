"""Privacy operations (GDPR): data subject requests and the proof of each erasure,
per-organization retention overrides, the retention runs that enforce them, and legal holds.

Legal holds and per-organization overrides (``retention_policies``) feed the retention
precedence that ``services/compliance/registry.py`` applies (``RETENTION_PRECEDENCE``).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
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
    encrypted_column,
    envelope_check,
    json_default,
    opt_ref_id,
    opt_ts,
    pg_enum,
    task_run_ref,
    tenant_fk,
    tenant_key,
)
from are_workers.models.schemas import TableCounts, VerificationReport, validated


class SubjectType(StrEnum):
    CANDIDATE = "candidate"
    USER = "user"


class DsrKind(StrEnum):
    ACCESS = "access"  # Art. 15
    RECTIFICATION = "rectification"  # Art. 16
    ERASURE = "erasure"  # Art. 17
    RESTRICTION = "restriction"  # Art. 18
    PORTABILITY = "portability"  # Art. 20
    OBJECTION = "objection"  # Art. 21/22


class DsrStatus(StrEnum):
    RECEIVED = "received"
    VERIFYING_IDENTITY = "verifying_identity"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    REJECTED = "rejected"
    EXTENDED = "extended"  # Art. 12(3): deadline extended by up to two months


class RetentionAction(StrEnum):
    DELETE = "delete"
    ANONYMIZE = "anonymize"


class LegalHoldScope(StrEnum):
    ORGANIZATION = "organization"
    CANDIDATE = "candidate"
    TABLE = "table"


class RetentionRunStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class ErasureStrategy(StrEnum):
    DELETED = "deleted"
    ANONYMIZED = "anonymized"
    SKIPPED_HELD = "skipped_held"


class DataSubjectRequest(TenantMixin, TimestampMixin, Model):
    """A GDPR request from a data subject, tracked to its deadline.

    ``candidate_id`` is cleared when the candidate is erased; ``subject_ref`` and the
    verification report remain as proof the request was honoured.
    """

    __tablename__ = "data_subject_requests"

    kind: Mapped[DsrKind] = mapped_column(pg_enum(DsrKind, "dsr_kind"), info=not_pii())
    status: Mapped[DsrStatus] = mapped_column(
        pg_enum(DsrStatus, "dsr_status"), server_default=DsrStatus.RECEIVED.value, info=not_pii()
    )
    subject_type: Mapped[SubjectType] = mapped_column(
        pg_enum(SubjectType, "subject_type"), info=not_pii()
    )
    candidate_id: Mapped[opt_ref_id]
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"),
        index=True,
        info=not_pii(DataCategory.TECHNICAL),
    )
    subject_ref: Mapped[str] = mapped_column(
        String(64), info=not_pii(DataCategory.TECHNICAL, holds=Holds.REFERENCE)
    )
    requester_email: Mapped[str | None] = encrypted_column(
        "data_subject_requests", "requester_email", DataCategory.CONTACT
    )  # where to answer; nulled once the request is closed
    received_at: Mapped[datetime] = mapped_column(
        server_default=text("now()"), info=not_pii(DataCategory.TECHNICAL)
    )
    deadline_at: Mapped[datetime] = mapped_column(info=not_pii(DataCategory.TECHNICAL))
    extended_until: Mapped[opt_ts]
    completed_at: Mapped[opt_ts]
    export_file_id: Mapped[opt_ref_id]
    verification_report: Mapped[dict[str, Any] | None] = mapped_column(
        info=not_pii(holds=Holds.METRICS)
    )
    rejection_reason: Mapped[str | None] = mapped_column(
        String(200), info=pii(DataCategory.TECHNICAL, anonymize=Anonymize.NULL)
    )
    handled_by_user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"),
        index=True,
        info=not_pii(DataCategory.TECHNICAL),
    )
    task_run_id: Mapped[task_run_ref]

    @validates("verification_report")
    def _validate_report(self, _key: str, value: Any) -> Any:
        return None if value is None else validated(VerificationReport, value)

    __table_args__ = (
        tenant_key(),
        tenant_fk("candidate_id", "candidates", ondelete="SET NULL"),
        tenant_fk("export_file_id", "files", ondelete="SET NULL"),
        # The deadline monitor: open requests by due date.
        Index(
            "ix_data_subject_requests_open_deadline",
            "deadline_at",
            postgresql_where=text("status NOT IN ('completed', 'rejected')"),
        ),
        Index("ix_data_subject_requests_org_subject", "organization_id", "subject_ref"),
        CheckConstraint("deadline_at > received_at", name="deadline_after_receipt"),
        envelope_check("requester_email"),
        CheckConstraint(
            "extended_until IS NULL OR extended_until >= deadline_at", name="extension_later"
        ),
        CheckConstraint(
            "(status IN ('completed', 'rejected')) = (completed_at IS NOT NULL)",
            name="closed_has_time",
        ),
        CheckConstraint(
            "(subject_type = 'candidate') OR candidate_id IS NULL", name="candidate_subject"
        ),
        {
            "info": table_policy(
                retention_days=1095,
                clock="completed_at",
                purpose="Proof that data subject rights were honoured.",
            )
        },
    )


class ErasureRecord(TenantMixin, Model):
    """What one erasure did to one table (counts only): the per-table proof of erasure."""

    __tablename__ = "erasure_records"

    request_id: Mapped[opt_ref_id]
    retention_run_id: Mapped[opt_ref_id]
    subject_ref: Mapped[str | None] = mapped_column(
        String(64), info=not_pii(DataCategory.TECHNICAL, holds=Holds.REFERENCE)
    )
    table_name: Mapped[str] = mapped_column(String(64), info=not_pii(holds=Holds.CODE))
    strategy: Mapped[ErasureStrategy] = mapped_column(
        pg_enum(ErasureStrategy, "erasure_strategy"), info=not_pii()
    )
    row_count: Mapped[int] = mapped_column(Integer, info=not_pii())
    task_run_id: Mapped[task_run_ref]
    executed_at: Mapped[created_at_col]

    __table_args__ = (
        tenant_fk("request_id", "data_subject_requests", ondelete="SET NULL"),
        tenant_fk("retention_run_id", "retention_runs", ondelete="SET NULL"),
        CheckConstraint("row_count >= 0", name="row_count_non_negative"),
        {
            "info": table_policy(
                retention_days=1095, clock="executed_at", purpose="Proof of erasure."
            )
        },
    )


class RetentionPolicy(TenantMixin, TimestampMixin, Model):
    """An organization's override of a table's (or a data category's) retention."""

    __tablename__ = "retention_policies"

    table_name: Mapped[str | None] = mapped_column(String(64), info=not_pii(holds=Holds.CODE))
    data_category: Mapped[str | None] = mapped_column(String(32), info=not_pii(holds=Holds.CODE))
    retention_days: Mapped[int] = mapped_column(Integer, info=not_pii())
    action: Mapped[RetentionAction] = mapped_column(
        pg_enum(RetentionAction, "retention_action"),
        server_default=RetentionAction.DELETE.value,
        info=not_pii(),
    )
    reason: Mapped[str | None] = mapped_column(Text, info=not_pii(holds=Holds.TENANT_TEXT))
    created_by_user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"),
        index=True,
        info=not_pii(DataCategory.TECHNICAL),
    )

    __table_args__ = (
        UniqueConstraint(
            "organization_id", "table_name", "data_category", postgresql_nulls_not_distinct=True
        ),
        CheckConstraint(
            "(table_name IS NOT NULL) OR (data_category IS NOT NULL)", name="has_target"
        ),
        CheckConstraint("retention_days >= 0", name="retention_non_negative"),
        {"info": table_policy(retention_days=None, purpose="Retention configuration.")},
    )


class RetentionRun(Model):
    """One execution of a retention sweep: an organization's (its tenant tables) or, with
    ``organization_id`` NULL, the platform's (the global tables).

    The tenant column is optional, so the table is global (``GLOBAL_TABLES``): the platform
    sweep keeps it, and an organization's queries filter on its id, which never matches a
    platform run. ``UNIQUE (organization_id, id)`` stays the target of ``erasure_records``'
    composite foreign key.
    """

    __tablename__ = "retention_runs"

    organization_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"),
        index=True,
        info=not_pii(DataCategory.TECHNICAL),
    )
    status: Mapped[RetentionRunStatus] = mapped_column(
        pg_enum(RetentionRunStatus, "retention_run_status"),
        server_default=RetentionRunStatus.RUNNING.value,
        info=not_pii(),
    )
    dry_run: Mapped[bool] = mapped_column(Boolean, server_default=text("false"), info=not_pii())
    counts: Mapped[dict[str, Any]] = mapped_column(
        server_default=json_default(), info=not_pii(holds=Holds.METRICS)
    )  # rows deleted/anonymized per table
    horizons: Mapped[dict[str, Any]] = mapped_column(
        server_default=json_default(), info=not_pii(holds=Holds.METRICS)
    )  # the cut-off applied per table, for the record
    error_message: Mapped[str | None] = mapped_column(
        Text, info=pii(DataCategory.TECHNICAL, anonymize=Anonymize.NULL)
    )
    task_run_id: Mapped[task_run_ref]
    started_at: Mapped[created_at_col]
    finished_at: Mapped[opt_ts]

    @validates("counts")
    def _validate_counts(self, _key: str, value: Any) -> Any:
        return validated(TableCounts, value)

    __table_args__ = (
        tenant_key(),
        Index("ix_retention_runs_org_started", "organization_id", "started_at"),
        CheckConstraint("(status = 'running') = (finished_at IS NULL)", name="finished_has_time"),
        {
            "info": table_policy(
                retention_days=365, clock="finished_at", purpose="Proof of retention enforcement."
            )
        },
    )


class LegalHold(TenantMixin, TimestampMixin, Model):
    """A litigation hold: matching data must not be deleted while it is active.

    A candidate under hold cannot be deleted at all (the FK has no cascade): releasing a hold
    sets ``released_at``; the erasure task deletes released holds before the candidate.
    """

    __tablename__ = "legal_holds"

    scope: Mapped[LegalHoldScope] = mapped_column(
        pg_enum(LegalHoldScope, "legal_hold_scope"), info=not_pii()
    )
    candidate_id: Mapped[opt_ref_id]
    table_name: Mapped[str | None] = mapped_column(String(64), info=not_pii(holds=Holds.CODE))
    reason: Mapped[str] = mapped_column(Text, info=not_pii(holds=Holds.TENANT_TEXT))
    reference: Mapped[str | None] = mapped_column(
        String(200), info=not_pii(holds=Holds.TENANT_TEXT)
    )  # case number
    placed_by_user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"),
        index=True,
        info=not_pii(DataCategory.TECHNICAL),
    )
    placed_at: Mapped[datetime] = mapped_column(
        server_default=text("now()"), info=not_pii(DataCategory.TECHNICAL)
    )
    released_at: Mapped[opt_ts]

    __table_args__ = (
        tenant_fk("candidate_id", "candidates", ondelete="NO ACTION"),
        Index(
            "ix_legal_holds_active",
            "organization_id",
            "scope",
            postgresql_where=text("released_at IS NULL"),
        ),
        CheckConstraint(
            "(scope = 'candidate') = (candidate_id IS NOT NULL)", name="candidate_scope"
        ),
        CheckConstraint("(scope = 'table') = (table_name IS NOT NULL)", name="table_scope"),
        CheckConstraint(
            "released_at IS NULL OR released_at >= placed_at", name="release_after_place"
        ),
        {
            "info": table_policy(
                retention_days=None,
                clock="released_at",
                purpose="Preservation of evidence for legal claims (Art. 17(3)(e)).",
            )
        },
    )
