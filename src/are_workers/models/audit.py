"""Audit trail and compliance operations: the tamper-evident audit log, data access log,
data subject requests and erasure records, retention policies and runs, legal holds,
schedule overrides, bias audits, and voluntary self-identification.

The audit log holds *no personal data*: subjects appear only as ``subject_ref``, a keyed
pseudonym (HMAC of the subject id), so an erasure never has to rewrite it and its hash
chain stays verifiable. Writers only INSERT (no lock, no contention between workers); a
single sealer later assigns each organization's unsealed rows, in ``(occurred_at, id)``
order, their ``seq``, ``prev_hash`` and ``row_hash`` (:func:`audit_row_hash`). A trigger
makes the table append-only: an UPDATE may only seal an unsealed row (set the three chain
columns, nothing else); DELETE is allowed only when the organization itself is being
deleted. Old audit data goes by dropping whole monthly partitions
(``services/compliance/audit_partitions.py``); the chain is re-anchored on the
``audit.pruned`` entry that the dropping function leaves for each organization.

Self-identification (gender, ethnicity, disability, veteran status) is Art. 9 special
category data collected only for bias audits. It is kept in its own table, apart from the
candidate row, encrypted, and read only by the bias audit, which publishes aggregates.

Legal holds and per-organization overrides (``retention_policies``) feed the retention
precedence defined in ``models/security.py`` (``RETENTION_PRECEDENCE``).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
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
    task_run_ref,
    tenant_fk,
    tenant_key,
)
from are_workers.models.schemas import BiasAuditMetrics, TableCounts, VerificationReport, validated

AUDIT_RETENTION_DAYS = 2190  # six years: limitation periods for employment claims
#: The GUC the partition functions set (``SET LOCAL``) to move rows out of the default partition.
AUDIT_RETENTION_GUC = "are.audit_retention"
#: ``audit_log`` is partitioned by month of ``occurred_at`` (UTC): ``audit_log_p202612`` …,
#: plus a default partition that catches rows of a month without one (migration 0004).
#: Partitions are made and dropped at run time, so Alembic ignores them.
AUDIT_PARTITION_PREFIX = "audit_log_p"
AUDIT_DEFAULT_PARTITION = "audit_log_default"
#: The database function refuses to drop a partition whose rows are younger than this.
AUDIT_PRUNE_FLOOR_DAYS = 365


def is_audit_partition(table_name: str) -> bool:
    """A run-time partition of ``audit_log`` (never described by the models)."""
    suffix = table_name.removeprefix(AUDIT_PARTITION_PREFIX)
    return table_name == AUDIT_DEFAULT_PARTITION or (
        suffix != table_name and len(suffix) == 6 and suffix.isdigit()
    )


class ActorType(StrEnum):
    USER = "user"
    API_KEY = "api_key"
    WORKER = "worker"
    SYSTEM = "system"
    CANDIDATE = "candidate"  # via the portal


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


class BiasReportStatus(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    WITHDRAWN = "withdrawn"


class ErasureStrategy(StrEnum):
    DELETED = "deleted"
    ANONYMIZED = "anonymized"
    SKIPPED_HELD = "skipped_held"


class AuditLog(TenantMixin, Model):
    """One audited action. Append-only, hash-chained per organization, no personal data."""

    __tablename__ = "audit_log"

    seq: Mapped[int | None] = mapped_column(
        BigInteger, info=not_pii(DataCategory.TECHNICAL)
    )  # NULL until sealed
    occurred_at: Mapped[datetime] = mapped_column(
        primary_key=True,  # the partition key must be part of every unique key
        server_default=text("now()"),
        info=not_pii(DataCategory.TECHNICAL),
    )
    actor_type: Mapped[ActorType] = mapped_column(pg_enum(ActorType, "actor_type"), info=not_pii())
    actor_id: Mapped[uuid.UUID | None] = mapped_column(
        info=not_pii(DataCategory.TECHNICAL)
    )  # a user/api key id, or NULL for the system: an id, never a name or address
    action: Mapped[str] = mapped_column(String(100), info=not_pii())  # "candidate.evaluated"
    entity_type: Mapped[str | None] = mapped_column(String(64), info=not_pii())
    entity_id: Mapped[uuid.UUID | None] = mapped_column(info=not_pii(DataCategory.TECHNICAL))
    subject_ref: Mapped[str | None] = mapped_column(
        String(64), info=not_pii(DataCategory.TECHNICAL)
    )  # HMAC(subject id): links entries about one person without naming them
    model_name: Mapped[str | None] = mapped_column(String(200), info=not_pii())
    model_version: Mapped[str | None] = mapped_column(String(100), info=not_pii())
    input_refs: Mapped[dict[str, Any]] = mapped_column(
        server_default=json_default(), info=not_pii(DataCategory.TECHNICAL)
    )  # ids and content hashes of the inputs, never the content
    output_refs: Mapped[dict[str, Any]] = mapped_column(
        server_default=json_default(), info=not_pii(DataCategory.TECHNICAL)
    )
    request_id: Mapped[str | None] = mapped_column(
        String(100), info=not_pii(DataCategory.TECHNICAL)
    )
    task_run_id: Mapped[task_run_ref]
    prev_hash: Mapped[str | None] = mapped_column(String(64), info=not_pii(DataCategory.TECHNICAL))
    row_hash: Mapped[str | None] = mapped_column(String(64), info=not_pii(DataCategory.TECHNICAL))

    __table_args__ = (
        # Not unique: a partitioned table's unique keys must include occurred_at. One sealer
        # per organization (advisory lock) assigns seq; verification names a duplicate.
        Index("ix_audit_log_org_seq", "organization_id", "seq"),
        Index("ix_audit_log_org_entity", "organization_id", "entity_type", "entity_id"),
        Index("ix_audit_log_org_subject", "organization_id", "subject_ref"),
        Index("ix_audit_log_org_occurred", "organization_id", "occurred_at"),
        # The sealer's queue: unsealed rows per organization, oldest first.
        Index(
            "ix_audit_log_unsealed",
            "organization_id",
            "occurred_at",
            postgresql_where=text("seq IS NULL"),
        ),
        CheckConstraint("seq IS NULL OR seq >= 1", name="seq_positive"),
        CheckConstraint("(seq IS NULL) = (row_hash IS NULL)", name="sealed_together"),
        CheckConstraint(
            "seq IS NULL OR ((seq = 1) = (prev_hash IS NULL))", name="chain_starts_once"
        ),
        CheckConstraint("row_hash IS NULL OR row_hash ~ '^[0-9a-f]{64}$'", name="row_hash_hex"),
        CheckConstraint("prev_hash IS NULL OR prev_hash ~ '^[0-9a-f]{64}$'", name="prev_hash_hex"),
        {
            "postgresql_partition_by": "RANGE (occurred_at)",
            "info": table_policy(
                retention_days=AUDIT_RETENTION_DAYS,
                clock="occurred_at",
                purpose="Accountability (GDPR Art. 5(2), SOC 2, EU AI Act logging).",
            ),
        },
    )


def audit_row_hash(row: AuditLog, *, seq: int, prev_hash: str | None) -> str:
    """The chain hash of a row: SHA-256 over its fields and the previous row's hash.

    The canonical form (unit-separator-joined text, UTC timestamps with microseconds, JSON
    with sorted keys) is defined here once, for the sealer and for verification.
    """
    occurred = row.occurred_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    fields = [
        str(row.id),
        str(row.organization_id),
        str(seq),
        occurred,
        str(row.actor_type.value if isinstance(row.actor_type, ActorType) else row.actor_type),
        str(row.actor_id or ""),
        row.action,
        row.entity_type or "",
        str(row.entity_id or ""),
        row.subject_ref or "",
        row.model_name or "",
        row.model_version or "",
        json.dumps(row.input_refs or {}, sort_keys=True, separators=(",", ":")),
        json.dumps(row.output_refs or {}, sort_keys=True, separators=(",", ":")),
        row.request_id or "",
        str(row.task_run_id or ""),
        prev_hash or "",
    ]
    return hashlib.sha256("\x1f".join(fields).encode()).hexdigest()


class DataAccessLog(TenantMixin, Model):
    """Who read whose personal data, and why (export, review, worker processing)."""

    __tablename__ = "data_access_log"

    actor_type: Mapped[ActorType] = mapped_column(pg_enum(ActorType, "actor_type"), info=not_pii())
    actor_id: Mapped[uuid.UUID | None] = mapped_column(info=not_pii(DataCategory.TECHNICAL))
    subject_type: Mapped[SubjectType] = mapped_column(
        pg_enum(SubjectType, "subject_type"), info=not_pii()
    )
    subject_ref: Mapped[str] = mapped_column(
        String(64), info=not_pii(DataCategory.TECHNICAL)
    )  # pseudonym, so the log survives the subject's erasure
    table_name: Mapped[str] = mapped_column(String(64), info=not_pii())
    columns: Mapped[list[Any]] = mapped_column(server_default=json_default("[]"), info=not_pii())
    purpose: Mapped[str] = mapped_column(String(100), info=not_pii())
    request_id: Mapped[str | None] = mapped_column(
        String(100), info=not_pii(DataCategory.TECHNICAL)
    )
    accessed_at: Mapped[datetime] = mapped_column(
        server_default=text("now()"), info=not_pii(DataCategory.TECHNICAL)
    )

    __table_args__ = (
        Index("ix_data_access_log_org_subject", "organization_id", "subject_ref", "accessed_at"),
        {
            "info": table_policy(
                retention_days=730,
                clock="accessed_at",
                purpose="Accountability for access to personal data.",
            )
        },
    )


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
    subject_ref: Mapped[str] = mapped_column(String(64), info=not_pii(DataCategory.TECHNICAL))
    requester_email: Mapped[str | None] = mapped_column(
        Text, info=pii(DataCategory.CONTACT, anonymize=Anonymize.NULL, encrypted=True)
    )  # where to answer; nulled once the request is closed
    received_at: Mapped[datetime] = mapped_column(
        server_default=text("now()"), info=not_pii(DataCategory.TECHNICAL)
    )
    deadline_at: Mapped[datetime] = mapped_column(info=not_pii(DataCategory.TECHNICAL))
    extended_until: Mapped[opt_ts]
    completed_at: Mapped[opt_ts]
    export_file_id: Mapped[opt_ref_id]
    verification_report: Mapped[dict[str, Any] | None] = mapped_column(info=not_pii())
    rejection_reason: Mapped[str | None] = mapped_column(String(200), info=not_pii())
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
        String(64), info=not_pii(DataCategory.TECHNICAL)
    )
    table_name: Mapped[str] = mapped_column(String(64), info=not_pii())
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

    table_name: Mapped[str | None] = mapped_column(String(64), info=not_pii())
    data_category: Mapped[str | None] = mapped_column(String(32), info=not_pii())
    retention_days: Mapped[int] = mapped_column(Integer, info=not_pii())
    action: Mapped[RetentionAction] = mapped_column(
        pg_enum(RetentionAction, "retention_action"),
        server_default=RetentionAction.DELETE.value,
        info=not_pii(),
    )
    reason: Mapped[str | None] = mapped_column(Text, info=not_pii())
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
        server_default=json_default(), info=not_pii()
    )  # rows deleted/anonymized per table
    horizons: Mapped[dict[str, Any]] = mapped_column(
        server_default=json_default(), info=not_pii()
    )  # the cut-off applied per table, for the record
    error_message: Mapped[str | None] = mapped_column(Text, info=not_pii())
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
    table_name: Mapped[str | None] = mapped_column(String(64), info=not_pii())
    reason: Mapped[str] = mapped_column(Text, info=not_pii())
    reference: Mapped[str | None] = mapped_column(String(200), info=not_pii())  # case number
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


class ScheduleOverride(Model):
    """An override of a periodic job: another cron, or paused (per tenant or platform-wide).

    ``organization_id`` NULL means the whole platform (ops pausing a schedule), so this is
    the one table where the tenant column is optional.
    """

    __tablename__ = "schedule_overrides"

    organization_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"),
        index=True,
        info=not_pii(DataCategory.TECHNICAL),
    )
    schedule_name: Mapped[str] = mapped_column(String(100), info=not_pii())
    cron: Mapped[str | None] = mapped_column(String(100), info=not_pii())
    paused: Mapped[bool] = mapped_column(Boolean, server_default=text("false"), info=not_pii())
    paused_until: Mapped[opt_ts]
    reason: Mapped[str | None] = mapped_column(Text, info=not_pii())
    updated_by_user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"),
        index=True,
        info=not_pii(DataCategory.TECHNICAL),
    )
    created_at: Mapped[created_at_col]
    updated_at: Mapped[datetime] = mapped_column(
        server_default=text("now()"), onupdate=text("now()"), info=not_pii(DataCategory.TECHNICAL)
    )

    __table_args__ = (
        UniqueConstraint("organization_id", "schedule_name", postgresql_nulls_not_distinct=True),
        CheckConstraint("cron IS NOT NULL OR paused", name="overrides_something"),
        {"info": table_policy(retention_days=None, purpose="Operating periodic jobs.")},
    )


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
    metrics: Mapped[dict[str, Any]] = mapped_column(info=not_pii())
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
    gender: Mapped[str | None] = mapped_column(
        Text, info=pii(DataCategory.DEMOGRAPHIC, anonymize=Anonymize.NULL, encrypted=True)
    )
    ethnicity: Mapped[str | None] = mapped_column(
        Text, info=pii(DataCategory.DEMOGRAPHIC, anonymize=Anonymize.NULL, encrypted=True)
    )
    disability_status: Mapped[str | None] = mapped_column(
        Text, info=pii(DataCategory.HEALTH, anonymize=Anonymize.NULL, encrypted=True)
    )
    veteran_status: Mapped[str | None] = mapped_column(
        Text, info=pii(DataCategory.DEMOGRAPHIC, anonymize=Anonymize.NULL, encrypted=True)
    )
    age_band: Mapped[str | None] = mapped_column(
        Text, info=pii(DataCategory.DEMOGRAPHIC, anonymize=Anonymize.NULL, encrypted=True)
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
