"""Audit partitions: create the coming months ahead of time, drop the months nobody needs.

``audit_log`` is partitioned by calendar month of ``occurred_at`` (migration 0004). Old audit
data goes by dropping a whole partition: instant, no bloat, no row trigger to switch off.

Who decides what, and why:

* **The database** (``are_audit_drop_partition``, SECURITY DEFINER) enforces what no policy
  may lower: a partition whose rows are younger than a year, or that still holds unsealed
  rows, is never dropped. It leaves one ``audit.pruned`` anchor per organization, so each
  chain is re-anchored (``audit_chain.verify``) and continues (``audit_chain.chain_head``).
* **This module** applies each organization's policy, because a partition holds every
  organization's rows of that month: it goes only when *every* organization with rows in it
  has let them expire (its audit retention, default six years, or its override), and none of
  them has a legal hold on the organization, on ``audit_log``, or on a candidate whose
  pseudonym appears in it. Otherwise it stays, and the report says for whom.
* **Ahead of time**, the coming months' partitions are created (``ensure``). A row whose
  month has no partition still lands in the default partition, so an audited write never
  fails; ``ensure`` later moves such rows into a partition of their own month.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from are_workers.crypto import subject_ref
from are_workers.models.audit import AUDIT_DEFAULT_PARTITION, AUDIT_PRUNE_FLOOR_DAYS, AuditLog
from are_workers.models.privacy import LegalHold, LegalHoldScope
from are_workers.services.compliance import audit_chain, audit_keys, pruning_records
from are_workers.services.compliance.registry import load_retention_overrides, resolve_retention

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Partition:
    name: str
    lower: datetime | None  # None: the default partition
    upper: datetime | None
    estimated_rows: int


@dataclass
class PartitionVerdict:
    partition: Partition
    droppable: bool
    reason: str
    organizations: list[uuid.UUID] = field(default_factory=list)
    retention_days: dict[uuid.UUID, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "partition": self.partition.name,
            "lower": self.partition.lower.isoformat() if self.partition.lower else None,
            "upper": self.partition.upper.isoformat() if self.partition.upper else None,
            "estimated_rows": self.partition.estimated_rows,
            "droppable": self.droppable,
            "reason": self.reason,
            "organizations": [str(o) for o in self.organizations],
        }


@dataclass
class PruneResult:
    dry_run: bool
    created: list[str]
    dropped: dict[str, dict[str, int]]  # partition → organization → rows removed
    verdicts: list[PartitionVerdict]

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "created": self.created,
            "dropped": self.dropped,
            "rows_dropped": sum(sum(orgs.values()) for orgs in self.dropped.values()),
            "partitions": [v.as_dict() for v in self.verdicts],
        }


def ensure(session: Session, months_ahead: int | None = None) -> list[str]:
    """Create this month's and the next ``months_ahead`` months' partitions; commits."""
    if months_ahead is None:
        from are_workers.config import get_settings

        months_ahead = get_settings().audit_partition_months_ahead
    created = list(
        session.execute(
            text("SELECT are_audit_ensure_partitions(:n)"), {"n": months_ahead}
        ).scalars()
    )
    session.commit()
    if created:
        log.info("audit_partitions_created", partitions=created)
    return created


def partitions(session: Session) -> list[Partition]:
    """Every partition of ``audit_log`` with its bounds, oldest first (default last)."""
    rows = session.execute(
        text(
            r"""
            SELECT c.relname AS name, c.reltuples::bigint AS estimated_rows,
                   substring(pg_get_expr(c.relpartbound, c.oid) FROM 'FROM \(''([^'']+)''\)')
                       ::timestamptz AS lower,
                   substring(pg_get_expr(c.relpartbound, c.oid) FROM 'TO \(''([^'']+)''\)')
                       ::timestamptz AS upper
            FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = 'audit_log'::regclass
            ORDER BY upper NULLS LAST, c.relname
            """
        )
    ).all()
    return [Partition(r.name, r.lower, r.upper, max(int(r.estimated_rows), 0)) for r in rows]


#: Rows of one partition, read through the parent (the planner prunes to that partition).
_IN_PARTITION = "occurred_at >= :lower AND occurred_at < :upper"


def _organizations_in(session: Session, partition: Partition) -> list[uuid.UUID]:
    """The organizations with rows in a partition, one index probe each (a loose index scan
    on ``(organization_id, occurred_at)``, not a scan of the month's rows).

    Read through ``audit_log``: the runtime role has no grant on the partitions themselves.
    """
    return list(
        session.execute(
            text(
                f"""
                WITH RECURSIVE orgs(org_id) AS (
                    (SELECT organization_id FROM audit_log WHERE {_IN_PARTITION}
                     ORDER BY organization_id LIMIT 1)
                    UNION ALL
                    SELECT (SELECT a.organization_id FROM audit_log a
                            WHERE a.organization_id > orgs.org_id AND {_IN_PARTITION}
                            ORDER BY a.organization_id LIMIT 1)
                    FROM orgs WHERE orgs.org_id IS NOT NULL
                )
                SELECT org_id FROM orgs WHERE org_id IS NOT NULL
                """  # noqa: S608 - constant predicate
            ),
            {"lower": partition.lower, "upper": partition.upper},
        ).scalars()
    )


def _held_candidate_in(session: Session, partition: Partition, organization_id: uuid.UUID) -> bool:
    held = session.scalars(
        select(LegalHold.candidate_id).where(
            LegalHold.organization_id == organization_id,
            LegalHold.scope == LegalHoldScope.CANDIDATE,
            LegalHold.released_at.is_(None),
            LegalHold.candidate_id.is_not(None),
        )
    ).all()
    if not held:
        return False
    return bool(
        session.execute(
            text(
                f"SELECT EXISTS (SELECT 1 FROM audit_log WHERE {_IN_PARTITION} "  # noqa: S608 - constant predicate
                "AND organization_id = :o AND subject_ref = ANY(:refs))"
            ),
            {
                "lower": partition.lower,
                "upper": partition.upper,
                "o": organization_id,
                "refs": [subject_ref(c) for c in held],
            },
        ).scalar_one()
    )


def judge(session: Session, partition: Partition, now: datetime) -> PartitionVerdict:
    """May this partition go? Every organization with rows in it must agree."""
    if partition.upper is None:
        return PartitionVerdict(partition, False, "the default partition is never dropped")
    floor = now - timedelta(days=AUDIT_PRUNE_FLOOR_DAYS)
    if partition.upper > floor:
        return PartitionVerdict(
            partition, False, f"younger than {AUDIT_PRUNE_FLOOR_DAYS} days (the floor)"
        )
    organizations = _organizations_in(session, partition)
    retention_days: dict[uuid.UUID, int] = {}
    table = AuditLog.__table__
    for organization_id in organizations:
        retention = resolve_retention(
            table,  # type: ignore[arg-type]
            None,
            load_retention_overrides(session, organization_id),
        )
        if retention.days is None:
            return PartitionVerdict(
                partition, False, f"organization {organization_id} has a legal hold", organizations
            )
        days = max(retention.days, AUDIT_PRUNE_FLOOR_DAYS)
        retention_days[organization_id] = days
        if partition.upper > now - timedelta(days=days):
            return PartitionVerdict(
                partition,
                False,
                f"organization {organization_id} keeps audit rows for {days} days "
                f"({retention.rule})",
                organizations,
            )
        if _held_candidate_in(session, partition, organization_id):
            return PartitionVerdict(
                partition,
                False,
                f"organization {organization_id} holds a candidate with rows in it",
                organizations,
            )
    return PartitionVerdict(
        partition, True, "expired for every organization", organizations, retention_days
    )


def prune(
    session: Session,
    *,
    dry_run: bool = False,
    now: datetime | None = None,
    months_ahead: int | None = None,
    key: Ed25519PrivateKey | None = None,
    directory: Path | None = None,
) -> PruneResult:
    """Create the coming partitions, then drop each expired one; commits per partition.

    Each drop's ranges are signed with the head-signing key and exported outside the
    database (``pruning_records``) before the drop commits: verification accepts a gap only
    with such a record. The key is loaded before anything is dropped, so a process without
    it drops nothing.
    """
    created = [] if dry_run else ensure(session, months_ahead)
    now = now or session.execute(text("SELECT now()")).scalar_one()
    verdicts = [
        judge(session, p, now) for p in partitions(session) if p.name != AUDIT_DEFAULT_PARTITION
    ]
    result = PruneResult(dry_run, created, {}, verdicts)
    if dry_run or not any(v.droppable for v in verdicts):
        return result
    key = key or audit_keys.signing_key()
    for verdict in verdicts:
        if not verdict.droppable:
            continue
        for organization_id in verdict.organizations:  # an old row may still be unsealed
            audit_chain.seal(session, organization_id)
        rows = session.execute(
            text("SELECT * FROM are_audit_drop_partition(:p)"), {"p": verdict.partition.name}
        ).all()
        for row in rows:
            org = row.pruned_organization_id
            pruning_records.export_record(
                org,
                verdict.partition.name,
                pruning_records.ranges_of(row.pruned_ranges),
                retention_days=verdict.retention_days.get(org, AUDIT_PRUNE_FLOOR_DAYS),
                key=key,
                directory=directory,
            )
        session.commit()
        for row in rows:  # the anchor is sealed right away: it is what follows the gap
            audit_chain.seal(session, row.pruned_organization_id)
        result.dropped[verdict.partition.name] = {
            str(r.pruned_organization_id): int(r.pruned_rows) for r in rows
        }
        log.info(
            "audit_partition_dropped",
            partition=verdict.partition.name,
            rows=sum(int(r.pruned_rows) for r in rows),
            organizations=len(rows),
        )
    return result
