"""Audit trail: the tamper-evident audit log, and the log of access to personal data.

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
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from are_workers.models.base import Model, TenantMixin
from are_workers.models.classification import DataCategory, Holds, not_pii, table_policy
from are_workers.models.columns import json_default, pg_enum, task_run_ref
from are_workers.models.privacy import SubjectType

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
    action: Mapped[str] = mapped_column(
        String(100), info=not_pii(holds=Holds.CODE)
    )  # "candidate.evaluated"
    entity_type: Mapped[str | None] = mapped_column(String(64), info=not_pii(holds=Holds.CODE))
    entity_id: Mapped[uuid.UUID | None] = mapped_column(info=not_pii(DataCategory.TECHNICAL))
    subject_ref: Mapped[str | None] = mapped_column(
        String(64), info=not_pii(DataCategory.TECHNICAL, holds=Holds.REFERENCE)
    )  # HMAC(subject id): links entries about one person without naming them
    model_name: Mapped[str | None] = mapped_column(String(200), info=not_pii(holds=Holds.CODE))
    model_version: Mapped[str | None] = mapped_column(String(100), info=not_pii(holds=Holds.CODE))
    input_refs: Mapped[dict[str, Any]] = mapped_column(
        server_default=json_default(), info=not_pii(DataCategory.TECHNICAL, holds=Holds.REFERENCE)
    )  # ids and content hashes of the inputs, never the content
    output_refs: Mapped[dict[str, Any]] = mapped_column(
        server_default=json_default(), info=not_pii(DataCategory.TECHNICAL, holds=Holds.REFERENCE)
    )
    request_id: Mapped[str | None] = mapped_column(
        String(100), info=not_pii(DataCategory.TECHNICAL, holds=Holds.REFERENCE)
    )
    task_run_id: Mapped[task_run_ref]
    prev_hash: Mapped[str | None] = mapped_column(
        String(64), info=not_pii(DataCategory.TECHNICAL, holds=Holds.REFERENCE)
    )
    row_hash: Mapped[str | None] = mapped_column(
        String(64), info=not_pii(DataCategory.TECHNICAL, holds=Holds.REFERENCE)
    )

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
        String(64), info=not_pii(DataCategory.TECHNICAL, holds=Holds.REFERENCE)
    )  # pseudonym, so the log survives the subject's erasure
    table_name: Mapped[str] = mapped_column(String(64), info=not_pii(holds=Holds.CODE))
    columns: Mapped[list[Any]] = mapped_column(
        server_default=json_default("[]"), info=not_pii(holds=Holds.CODE)
    )
    purpose: Mapped[str] = mapped_column(String(100), info=not_pii(holds=Holds.CODE))
    request_id: Mapped[str | None] = mapped_column(
        String(100), info=not_pii(DataCategory.TECHNICAL, holds=Holds.REFERENCE)
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
