"""What a retention sweep would remove: its targets (a table's rows, or one column), the
predicate each is swept by, the files that go with the rows, and the counted plan (the
dry-run report, and what the breaker reads)."""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import structlog
from sqlalchemy import (
    Column,
    ColumnElement,
    ForeignKeyConstraint,
    Select,
    Table,
    and_,
    func,
    or_,
    select,
    text,
)
from sqlalchemy.orm import Session

from are_workers.errors import NotFoundError
from are_workers.models.classification import classification_of, policy_of
from are_workers.models.security import is_tenant_table
from are_workers.services.compliance.anonymize import ColumnAnonymizer, column_anonymizer
from are_workers.services.compliance.registry import (
    RetentionOverrides,
    load_retention_overrides,
    resolve_retention,
    subject_registry,
)

log = structlog.get_logger(__name__)

MIN_UUID = uuid.UUID(int=0)
#: A confirmation lets through what was planned plus this margin (data keeps expiring).
CONFIRM_MARGIN = 1.1
#: Tables with a retention policy that another job enforces, and how: neither sweep
#: touches them, whatever their tenancy.
SWEPT_ELSEWHERE: dict[str, str] = {
    "audit_log": "monthly partitions, dropped whole by the audit partition job",
}
#: The job that sweeps the global tables.
PLATFORM_SWEEP_ACTOR = "compliance.retention_sweep_platform"

Action = Literal["delete", "anonymize"]
AUDIT_ACTIONS: dict[Action, str] = {
    "delete": "retention.deleted",
    "anonymize": "retention.anonymized",
}


def _metadata_tables() -> list[Table]:
    import are_workers.models  # noqa: F401 - registers every table
    from are_workers.models.base import Base

    return list(Base.metadata.sorted_tables)


# --- targets -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One thing the sweep removes: a table's expired rows, or one column's expired values."""

    key: str  # "candidates", or "user_sessions.ip_address" for a column
    table: Table
    action: Action
    days: int
    rule: str
    cutoff: datetime
    columns: tuple[ColumnAnonymizer, ...] = ()
    #: For a column target: rows older than this are deleted whole by the table's target.
    rows_deleted_before: datetime | None = None

    @property
    def clock(self) -> Column[Any]:
        policy = policy_of(self.table)
        assert policy is not None
        return self.table.c[policy.clock]


@dataclass
class RetentionPlan:
    organization_id: uuid.UUID | None  # None: the platform's global tables
    now: datetime
    targets: list[Target]
    counts: dict[str, int] = field(default_factory=dict)
    held: list[str] = field(default_factory=list)  # tables skipped because of a hold

    def as_report(self) -> list[dict[str, Any]]:
        return [
            {
                "target": t.key,
                "action": t.action,
                "days": t.days,
                "rule": t.rule,
                "cutoff": t.cutoff.isoformat(),
                "rows": self.counts.get(t.key, 0),
            }
            for t in self.targets
        ]

    def horizons(self) -> dict[str, dict[str, Any]]:
        """What each target applied, for the run's record."""
        return {
            t.key: {
                "action": t.action,
                "days": t.days,
                "rule": t.rule,
                "cutoff": t.cutoff.isoformat(),
                "planned": self.counts[t.key],
            }
            for t in self.targets
        }


def _row_actions(session: Session, organization_id: uuid.UUID) -> dict[str, str]:
    rows = session.execute(
        text(
            "SELECT table_name, action::text AS action FROM retention_policies "
            "WHERE organization_id = :org AND table_name IS NOT NULL"
        ),
        {"org": organization_id},
    )
    return {r.table_name: r.action for r in rows}


def swept_tables(*, tenant: bool) -> list[Table]:
    """The tables one kind of sweep covers, parents before children: tenant tables
    (``tenant=True``) or the global ones, each with a policy, none swept elsewhere."""
    return [
        table
        for table in _metadata_tables()
        if policy_of(table) is not None
        and is_tenant_table(table) is tenant
        and table.name not in SWEPT_ELSEWHERE
    ]


def build_targets(
    organization_id: uuid.UUID,
    now: datetime,
    overrides: RetentionOverrides,
    row_actions: dict[str, str],
) -> tuple[list[Target], list[str]]:
    """Every target for one organization, parents before children, and the held tables."""
    return _targets(swept_tables(tenant=True), now, overrides, row_actions)


def build_platform_targets(now: datetime) -> list[Target]:
    """Every target of the global tables: their own and their columns' retention only
    (tenants' overrides and legal holds are about tenant data)."""
    targets, _ = _targets(swept_tables(tenant=False), now, RetentionOverrides(), {})
    return targets


def _targets(
    tables: Iterable[Table],
    now: datetime,
    overrides: RetentionOverrides,
    row_actions: dict[str, str],
) -> tuple[list[Target], list[str]]:
    targets: list[Target] = []
    held: list[str] = []
    for table in tables:
        row = resolve_retention(table, None, overrides)
        if row.rule == "legal_hold":
            held.append(table.name)
            continue
        if row.days is not None:
            action: Action = "anonymize" if row_actions.get(table.name) == "anonymize" else "delete"
            anonymizers = _pii_anonymizers(table) if action == "anonymize" else ()
            if any(a.value is None for a in anonymizers):
                action, anonymizers = "delete", ()  # the row cannot exist without a value
            if action == "delete" or anonymizers:
                targets.append(
                    Target(
                        table.name,
                        table,
                        action,
                        row.days,
                        row.rule,
                        now - timedelta(days=row.days),
                        anonymizers,
                    )
                )
        for column in table.columns:
            cl = classification_of(column)
            if cl is None or not cl.pii:
                continue
            col = resolve_retention(table, column.name, overrides)
            if col.days is None or (row.days is not None and col.days >= row.days):
                continue
            if col.rule not in {"column", "organization_override"}:
                continue
            anonymizer = column_anonymizer(column)
            targets.append(
                Target(
                    f"{table.name}.{column.name}",
                    table,
                    "delete" if anonymizer.value is None else "anonymize",
                    col.days,
                    col.rule,
                    now - timedelta(days=col.days),
                    (anonymizer,),
                    rows_deleted_before=now - timedelta(days=row.days)
                    if row.days is not None and row_actions.get(table.name) != "anonymize"
                    else None,
                )
            )
    return targets, held


def _pii_anonymizers(table: Table) -> tuple[ColumnAnonymizer, ...]:
    return tuple(
        column_anonymizer(c)
        for c in table.columns
        if (cl := classification_of(c)) is not None and cl.pii
    )


# --- predicates ------------------------------------------------------------------------------


def _referenced(fk: ForeignKeyConstraint) -> Table:
    return fk.elements[0].column.table


def _not_held(table: Table, organization_id: uuid.UUID) -> ColumnElement[bool] | None:
    """Rows of ``table`` that do not belong to a candidate under an active legal hold."""
    from are_workers.models.privacy import LegalHold

    entry = subject_registry("candidate").get(table.name)
    if entry is None:
        return None
    holds = LegalHold.__table__
    held = select(holds.c.candidate_id).where(
        holds.c.organization_id == organization_id,
        holds.c.released_at.is_(None),
        holds.c.scope == "candidate",
    )
    return table.c.id.not_in(entry.row_ids(organization_id, held))


def target_predicate(target: Target, organization_id: uuid.UUID | None) -> ColumnElement[bool]:
    """The rows a target removes: one organization's, or (``None``) a global table's."""
    table = target.table
    conditions: list[ColumnElement[bool]] = [
        target.clock.is_not(None),
        target.clock < target.cutoff,
    ]
    if organization_id is not None:
        conditions.append(table.c.organization_id == organization_id)
        not_held = _not_held(table, organization_id)
        if not_held is not None:
            conditions.append(not_held)
    if target.rows_deleted_before is not None:
        conditions.append(target.clock >= target.rows_deleted_before)
    if target.action == "anonymize":
        conditions.append(or_(*(c.holds_data for c in target.columns)))
    elif target.columns:  # a DELETE_ROW column with its own retention
        conditions.append(target.columns[0].holds_data)
    return and_(*conditions)


# --- files that go with rows -------------------------------------------------------------------


def _cascade_children(table: Table) -> list[tuple[Table, ForeignKeyConstraint]]:
    out = []
    for child in _metadata_tables():
        for fk in child.foreign_key_constraints:
            if _referenced(fk) is table and (fk.ondelete or "").upper() == "CASCADE":
                out.append((child, fk))
    return out


def storage_key_selects(table: Table, ids: Any) -> list[Select[Any]]:
    """SELECTs of the storage keys of files deleted along with ``table`` rows in ``ids``.

    Follows ON DELETE CASCADE from ``table`` (breadth-first), so deleting a candidate finds
    its files and their versions.
    """
    selects: list[Select[Any]] = []
    if "storage_key" in table.c:
        selects.append(select(table.c.storage_key).where(table.c.id.in_(ids)))
    queue: deque[tuple[Table, list[tuple[Table, ForeignKeyConstraint]]]] = deque([(table, [])])
    seen = {table.name}
    while queue:
        parent, path = queue.popleft()
        for child, fk in _cascade_children(parent):
            if child.name in seen or child.name == "organizations":
                continue
            seen.add(child.name)
            child_path = [*path, (child, fk)]
            if "storage_key" in child.c:
                selects.append(_keys_through(table, child_path, ids))
            queue.append((child, child_path))
    return selects


def _keys_through(root: Table, path: list[tuple[Table, ForeignKeyConstraint]], ids: Any) -> Any:
    leaf = path[-1][0]
    stmt = select(leaf.c.storage_key).select_from(leaf)
    for child, fk in reversed(path):
        parent = _referenced(fk)
        if parent is root:
            link = next(e.parent for e in fk.elements if e.parent.name != "organization_id")
            return stmt.where(child.c[link.name].in_(ids))
        stmt = stmt.join(parent, and_(*(e.column == e.parent for e in fk.elements)))
    raise AssertionError("path does not reach the root")


def referenced_file_keys(columns: tuple[ColumnAnonymizer, ...], ids: Any) -> list[Select[Any]]:
    """Storage keys of files that anonymized columns point at (``video_responses.file_id``)."""
    from are_workers.models.files import File

    files = File.__table__
    selects = []
    for anonymizer in columns:
        column = anonymizer.column
        for fk in column.table.foreign_key_constraints:
            if _referenced(fk) is files and column.name in fk.columns:
                selects.append(
                    select(files.c.storage_key).where(
                        files.c.id.in_(select(column).where(column.table.c.id.in_(ids)))
                    )
                )
    return selects


# --- planning ------------------------------------------------------------------------------------


def plan(
    session: Session, organization_id: uuid.UUID, *, now: datetime | None = None
) -> RetentionPlan:
    """One organization's targets and their counts: the dry-run report (nothing changes)."""
    if (
        session.execute(
            text("SELECT 1 FROM organizations WHERE id = :o"), {"o": organization_id}
        ).first()
        is None
    ):
        raise NotFoundError(f"Organization {organization_id} does not exist.")
    now = now or session.execute(text("SELECT now()")).scalar_one()
    overrides = load_retention_overrides(session, organization_id)
    targets, held = build_targets(
        organization_id, now, overrides, _row_actions(session, organization_id)
    )
    return _counted(session, RetentionPlan(organization_id, now, targets, held=held))


def plan_platform(session: Session, *, now: datetime | None = None) -> RetentionPlan:
    """The global tables' targets and their counts: the platform's dry-run report."""
    now = now or session.execute(text("SELECT now()")).scalar_one()
    return _counted(session, RetentionPlan(None, now, build_platform_targets(now)))


def _counted(session: Session, the_plan: RetentionPlan) -> RetentionPlan:
    for target in the_plan.targets:
        stmt = (
            select(func.count())
            .select_from(target.table)
            .where(target_predicate(target, the_plan.organization_id))
        )
        the_plan.counts[target.key] = int(session.execute(stmt).scalar_one())
    return the_plan
