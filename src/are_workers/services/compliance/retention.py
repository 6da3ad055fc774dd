"""The retention sweep: delete or anonymize what outlived its retention, per organization.

Driven by the metadata: every tenant table's policy (days, clock column), every PII column's
own retention, the organization's overrides (per table or per data category, delete or
anonymize) and its legal holds, with the precedence of ``models/security.py``
(legal hold > organization override > column > table default). A table added tomorrow is
swept as soon as it has a policy.

How it runs, and why:

* **Plan first.** Each target (a table's rows, or one column) is counted with the same
  predicate the sweep uses. The plan is the dry-run report, and it feeds the breaker.
* **Circuit breaker.** A target that would lose more than ``factor`` times the most any of the
  recent completed runs removed (and more than a floor) stops the whole run before anything
  is touched: a wrong clock, a retention override of 0 days or a restored old database
  must not wipe a table. The run is recorded as failed with the numbers, and an operator
  confirms it (``are-workers compliance retention confirm RUN``) to let exactly that much
  through.
* **Set-based batches.** Each batch is one statement: a keyset-paginated ``SELECT … FOR
  UPDATE SKIP LOCKED`` of ids feeding a ``DELETE`` (cascades remove children, including
  embeddings, transcripts and analysis results) or an ``UPDATE`` (column strategies from
  ``anonymize.py``), which also returns the storage keys of files that go with the rows.
  Each batch commits with one audit row (per batch, not per row) and the run's counts, so
  a long sweep holds no long locks and a crash loses at most one batch of progress.
* **Candidate legal holds** exclude every row that belongs to a held candidate, at any
  depth (the same FK paths erasure follows).
"""

from __future__ import annotations

import uuid
from collections import deque
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
    delete,
    func,
    literal,
    or_,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.orm import Session

from are_workers.errors import InvalidInputError, NotFoundError, PermanentError
from are_workers.models.audit import RetentionRun, RetentionRunStatus
from are_workers.models.classification import classification_of, policy_of
from are_workers.models.security import (
    RetentionOverrides,
    is_tenant_table,
    load_retention_overrides,
    resolve_retention,
)
from are_workers.services.compliance import audit
from are_workers.services.compliance.anonymize import ColumnAnonymizer, column_anonymizer
from are_workers.services.compliance.settings import ComplianceSettings, compliance_settings
from are_workers.services.compliance.storage import delete_objects
from are_workers.services.compliance.subjects import ownership_paths, subject_rows

log = structlog.get_logger(__name__)

MIN_UUID = uuid.UUID(int=0)
#: Audit rows younger than this are never pruned (the database function refuses too).
AUDIT_PRUNE_FLOOR_DAYS = 365
#: A confirmation lets through what was planned plus this margin (data keeps expiring).
CONFIRM_MARGIN = 1.1

Action = Literal["delete", "anonymize", "prune"]


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
    organization_id: uuid.UUID
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


def _row_actions(session: Session, organization_id: uuid.UUID) -> dict[str, str]:
    rows = session.execute(
        text(
            "SELECT table_name, action::text AS action FROM retention_policies "
            "WHERE organization_id = :org AND table_name IS NOT NULL"
        ),
        {"org": organization_id},
    )
    return {r.table_name: r.action for r in rows}


def build_targets(
    organization_id: uuid.UUID,
    now: datetime,
    overrides: RetentionOverrides,
    row_actions: dict[str, str],
) -> tuple[list[Target], list[str]]:
    """Every target for one organization, parents before children, and the held tables."""
    targets: list[Target] = []
    held: list[str] = []
    for table in _metadata_tables():
        policy = policy_of(table)
        if policy is None or not is_tenant_table(table):
            continue
        row = resolve_retention(table, None, overrides)
        if row.rule == "legal_hold":
            held.append(table.name)
            continue
        if table.name == "audit_log":
            if row.days is not None:
                days = max(row.days, AUDIT_PRUNE_FLOOR_DAYS)
                targets.append(
                    Target(table.name, table, "prune", days, row.rule, now - timedelta(days=days))
                )
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
    from are_workers.models.audit import LegalHold

    if table.name not in ownership_paths("candidate"):
        return None
    holds = LegalHold.__table__
    held = select(holds.c.candidate_id).where(
        holds.c.organization_id == organization_id,
        holds.c.released_at.is_(None),
        holds.c.scope == "candidate",
    )
    return table.c.id.not_in(subject_rows("candidate", table.name, organization_id, held))


def target_predicate(target: Target, organization_id: uuid.UUID) -> ColumnElement[bool]:
    table = target.table
    conditions: list[ColumnElement[bool]] = [
        table.c.organization_id == organization_id,
        target.clock.is_not(None),
        target.clock < target.cutoff,
    ]
    if target.rows_deleted_before is not None:
        conditions.append(target.clock >= target.rows_deleted_before)
    not_held = _not_held(table, organization_id)
    if not_held is not None:
        conditions.append(not_held)
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


# --- planning, breaker, sweeping ----------------------------------------------------------------


def plan(
    session: Session, organization_id: uuid.UUID, *, now: datetime | None = None
) -> RetentionPlan:
    """Targets and their counts: the dry-run report (nothing is changed)."""
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
    result = RetentionPlan(organization_id, now, targets, held=held)
    for target in targets:
        result.counts[target.key] = _count(session, target, organization_id)
    return result


def _count(session: Session, target: Target, organization_id: uuid.UUID) -> int:
    if target.action == "prune":
        return int(
            session.execute(
                text(
                    "SELECT count(*) FROM audit_log WHERE organization_id = :o AND seq IS NOT NULL "
                    "AND occurred_at < :before"
                ),
                {"o": organization_id, "before": target.cutoff},
            ).scalar_one()
        )
    stmt = (
        select(func.count())
        .select_from(target.table)
        .where(target_predicate(target, organization_id))
    )
    return int(session.execute(stmt).scalar_one())


class RetentionBreakerError(PermanentError):
    code = "retention_breaker"


@dataclass(frozen=True)
class BreakerVerdict:
    tripped: dict[str, dict[str, int]]  # key → {"planned": n, "baseline": m, "allowed": a}

    @property
    def ok(self) -> bool:
        return not self.tripped


def baseline(session: Session, organization_id: uuid.UUID, history: int) -> dict[str, int]:
    """The most each target lost in one of the recent completed (real) runs."""
    rows = session.execute(
        text(
            "SELECT counts FROM retention_runs WHERE organization_id = :o AND status = "
            "'completed' AND NOT dry_run ORDER BY started_at DESC LIMIT :n"
        ),
        {"o": organization_id, "n": history},
    ).scalars()
    out: dict[str, int] = {}
    for counts in rows:
        for key, value in (counts or {}).items():
            out[key] = max(out.get(key, 0), int(value))
    return out


def check_breaker(
    planned: dict[str, int],
    previous: dict[str, int],
    settings: ComplianceSettings,
    confirmed: dict[str, int] | None = None,
) -> BreakerVerdict:
    tripped: dict[str, dict[str, int]] = {}
    for key, count in planned.items():
        allowed = max(
            settings.retention_breaker_min_rows,
            int(settings.retention_breaker_factor * previous.get(key, 0)),
            int((confirmed or {}).get(key, 0) * CONFIRM_MARGIN),
        )
        if count > allowed:
            tripped[key] = {"planned": count, "baseline": previous.get(key, 0), "allowed": allowed}
    return BreakerVerdict(tripped)


def _breaker_message(run_id: uuid.UUID, verdict: BreakerVerdict) -> str:
    parts = [
        f"{key}: {v['planned']:,} rows (recent runs removed at most {v['baseline']:,})"
        for key, v in sorted(verdict.tripped.items())
    ]
    return (
        "Retention sweep stopped before deleting anything: it would remove far more than "
        "before — " + "; ".join(parts) + ". Check the clock and the retention settings; if "
        f"this is intended, run `are-workers compliance retention confirm {run_id}`."
    )


@dataclass
class SweepResult:
    run_id: uuid.UUID
    status: str
    dry_run: bool
    counts: dict[str, int]
    planned: dict[str, int]
    files_deleted: int = 0
    batches: int = 0
    held: list[str] = field(default_factory=list)
    message: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": str(self.run_id),
            "status": self.status,
            "dry_run": self.dry_run,
            "rows": sum(self.counts.values()),
            "counts": {k: v for k, v in self.counts.items() if v},
            "planned": {k: v for k, v in self.planned.items() if v},
            "files_deleted": self.files_deleted,
            "batches": self.batches,
            "held": self.held,
            "message": self.message,
        }


def _confirmed_counts(
    session: Session, organization_id: uuid.UUID, run_id: uuid.UUID | None
) -> dict[str, int] | None:
    if run_id is None:
        return None
    run = session.get(RetentionRun, run_id)
    if run is None or run.organization_id != organization_id:
        raise NotFoundError(f"Retention run {run_id} does not exist in this organization.")
    breaker = (run.horizons or {}).get("breaker")
    if run.status is not RetentionRunStatus.FAILED or not breaker:
        raise InvalidInputError(
            f"Retention run {run_id} did not stop at the circuit breaker; nothing to confirm."
        )
    return {key: int(v["planned"]) for key, v in breaker.items()}


def sweep(
    session: Session,
    organization_id: uuid.UUID,
    *,
    dry_run: bool = False,
    confirmed_run_id: uuid.UUID | None = None,
    settings: ComplianceSettings | None = None,
    now: datetime | None = None,
    task_run_id: uuid.UUID | None = None,
) -> SweepResult:
    """Plan, check the breaker, then delete/anonymize in committed batches.

    Commits as it goes (the run record first, then each batch), so call it with a session
    of its own (an actor's job session is fine: its final commit records the job).
    """
    settings = settings or compliance_settings()
    confirmed = _confirmed_counts(session, organization_id, confirmed_run_id)
    the_plan = plan(session, organization_id, now=now)
    run = RetentionRun(
        organization_id=organization_id,
        dry_run=dry_run,
        counts={},
        horizons={
            t.key: {
                "action": t.action,
                "days": t.days,
                "rule": t.rule,
                "cutoff": t.cutoff.isoformat(),
                "planned": the_plan.counts[t.key],
            }
            for t in the_plan.targets
        },
        task_run_id=task_run_id,
    )
    session.add(run)
    session.flush()
    result = SweepResult(run.id, "running", dry_run, {}, dict(the_plan.counts), held=the_plan.held)
    if dry_run:
        return _finish(session, run, result, counts=dict(the_plan.counts))
    verdict = check_breaker(
        the_plan.counts,
        baseline(session, organization_id, settings.retention_breaker_history),
        settings,
        confirmed,
    )
    if not verdict.ok:
        message = _breaker_message(run.id, verdict)
        run.horizons = {**run.horizons, "breaker": verdict.tripped}
        audit.record(
            session,
            organization_id=organization_id,
            action="retention.breaker_tripped",
            entity_type="retention_run",
            entity_id=run.id,
            output_refs={"tripped": verdict.tripped},
            task_run_id=task_run_id,
        )
        _finish(session, run, result, status=RetentionRunStatus.FAILED, message=message)
        log.warning(
            "retention_breaker_tripped",
            organization_id=str(organization_id),
            tripped=verdict.tripped,
        )
        raise RetentionBreakerError(message)
    session.commit()  # the run is visible while it works
    for target in the_plan.targets:
        if the_plan.counts[target.key] == 0:
            continue
        _sweep_target(session, target, organization_id, run, result, settings, task_run_id)
    return _finish(session, run, result, counts=result.counts)


def _finish(
    session: Session,
    run: RetentionRun,
    result: SweepResult,
    *,
    counts: dict[str, int] | None = None,
    status: RetentionRunStatus = RetentionRunStatus.COMPLETED,
    message: str | None = None,
) -> SweepResult:
    finished_at = session.execute(text("SELECT clock_timestamp()")).scalar_one()
    if counts is not None:
        run.counts = counts
        result.counts = counts
    run.status = status
    run.error_message = message
    run.finished_at = finished_at
    session.commit()
    result.status = status.value
    result.message = message
    return result


def _sweep_target(
    session: Session,
    target: Target,
    organization_id: uuid.UUID,
    run: RetentionRun,
    result: SweepResult,
    settings: ComplianceSettings,
    task_run_id: uuid.UUID | None,
) -> None:
    if target.action == "prune":
        row = session.execute(
            text("SELECT * FROM are_audit_prune(:o, :before)"),
            {"o": organization_id, "before": target.cutoff},
        ).one()
        _record_batch(
            session, target, organization_id, run, result, int(row.deleted), 0, task_run_id
        )
        return
    after = MIN_UUID
    while True:
        rows, last, seen, keys = _batch(
            session, target, organization_id, after, settings.retention_batch_size
        )
        files = delete_objects(keys)
        _record_batch(session, target, organization_id, run, result, rows, files, task_run_id)
        if seen < settings.retention_batch_size or last is None:
            return
        after = last


def _batch(
    session: Session, target: Target, organization_id: uuid.UUID, after: uuid.UUID, size: int
) -> tuple[int, uuid.UUID | None, int, list[str]]:
    """One set-based statement: lock a page of ids, delete/update them, return file keys."""
    table = target.table
    batch = (
        select(table.c.id)
        .where(target_predicate(target, organization_id), table.c.id > after)
        .order_by(table.c.id)
        .limit(size)
        .with_for_update(skip_locked=True)
        .cte("batch")
    )
    ids = select(batch.c.id)
    key_selects = (
        storage_key_selects(table, ids)
        if target.action == "delete"
        else referenced_file_keys(target.columns, ids)
    )
    if target.action == "delete":
        change: Any = delete(table).where(table.c.id.in_(ids)).returning(table.c.id)
    else:
        values = {c.column.name: c.value for c in target.columns if c.value is not None}
        if "updated_at" in table.c:
            values["updated_at"] = func.now()
        change = update(table).where(table.c.id.in_(ids)).values(values).returning(table.c.id)
    changed = change.cte("changed")
    columns = [
        select(func.count()).select_from(changed).scalar_subquery().label("rows"),
        select(batch.c.id).order_by(batch.c.id.desc()).limit(1).scalar_subquery().label("last"),
        select(func.count()).select_from(batch).scalar_subquery().label("seen"),
    ]
    if key_selects:
        keys = union_all(*key_selects).subquery("keys")
        columns.append(select(func.array_agg(keys.c[0])).scalar_subquery().label("keys"))
    else:
        columns.append(literal(None).label("keys"))
    row = session.execute(select(*columns)).one()
    return int(row.rows), row.last, int(row.seen), list(row.keys or [])


def _record_batch(
    session: Session,
    target: Target,
    organization_id: uuid.UUID,
    run: RetentionRun,
    result: SweepResult,
    rows: int,
    files: int,
    task_run_id: uuid.UUID | None,
) -> None:
    """Per batch: one audit row and the run's counts, committed with the batch."""
    if rows:
        result.counts[target.key] = result.counts.get(target.key, 0) + rows
    result.files_deleted += files
    result.batches += 1
    if rows == 0 and files == 0:
        session.commit()
        return
    action = {
        "delete": "retention.deleted",
        "anonymize": "retention.anonymized",
        "prune": "retention.audit_pruned",
    }[target.action]
    audit.record(
        session,
        organization_id=organization_id,
        action=action,
        entity_type="table",
        output_refs={
            "target": target.key,
            "rows": rows,
            "files": files,
            "cutoff": target.cutoff.isoformat(),
            "rule": target.rule,
            "retention_run_id": str(run.id),
        },
        task_run_id=task_run_id,
    )
    run.counts = dict(result.counts)
    session.commit()
