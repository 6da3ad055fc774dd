"""The retention sweeps: delete or anonymize what outlived its retention, per organization
and, for the global tables (no tenant), once for the platform.

Driven by the metadata: every table's policy (days, clock column), every PII column's own
retention, and for a tenant table the organization's overrides (per table or per data
category, delete or anonymize) and its legal holds, with the precedence of
``registry.py`` (legal hold > organization override > column > table default). A
table added tomorrow is swept as soon as it has a policy: by the organization sweep if it
has a NOT NULL ``organization_id``, by the platform sweep otherwise (the platform, not a
tenant, controls that data, so only the table's and the columns' own retention apply).
``audit_log`` is swept by neither (:data:`SWEPT_ELSEWHERE`): its monthly partitions are
dropped whole by a platform job of their own.

How it runs, and why (both sweeps share every step):

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
  Each batch commits with its record (per batch, not per row) and the run's counts, so a
  long sweep holds no long locks and a crash loses at most one batch of progress.
* **Candidate legal holds** exclude every row that belongs to a held candidate, at any
  depth (the same FK paths erasure follows).

Where a run is recorded: every run in ``retention_runs`` (counts per target, the cut-offs and
the breaker's numbers, status), an organization's with its ``organization_id``, the
platform's with none. Each batch of an organization's run writes an audit row; ``audit_log``
is tenant-only (each organization's hash chain), so a platform batch is logged as a
``retention_batch`` event instead (:class:`PlatformRunLog`).
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
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

from are_workers.config import Settings, get_settings
from are_workers.errors import InvalidInputError, NotFoundError, PermanentError
from are_workers.job_context import current_job_id
from are_workers.models.classification import classification_of, policy_of
from are_workers.models.privacy import RetentionRun, RetentionRunStatus
from are_workers.models.security import is_tenant_table
from are_workers.services import storage
from are_workers.services.compliance import audit
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
_AUDIT_ACTIONS: dict[Action, str] = {
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


# --- the circuit breaker ---------------------------------------------------------------------


class RetentionBreakerError(PermanentError):
    code = "retention_breaker"


@dataclass(frozen=True)
class BreakerVerdict:
    tripped: dict[str, dict[str, int]]  # key → {"planned": n, "baseline": m, "allowed": a}

    @property
    def ok(self) -> bool:
        return not self.tripped


def runs_of(organization_id: uuid.UUID | None) -> ColumnElement[bool]:
    """The ``retention_runs`` of one scope: an organization's, or (``None``) the platform's.

    An organization's filter never matches a platform run (NULL), nor the reverse.
    """
    column = RetentionRun.__table__.c.organization_id
    return column.is_(None) if organization_id is None else column == organization_id


def baseline(session: Session, organization_id: uuid.UUID | None, history: int) -> dict[str, int]:
    """The most each target lost in one of the scope's recent completed (real) runs."""
    runs = RetentionRun.__table__
    rows = session.execute(
        select(runs.c.counts)
        .where(
            runs_of(organization_id),
            runs.c.status == RetentionRunStatus.COMPLETED,
            runs.c.dry_run.is_(False),
        )
        .order_by(runs.c.started_at.desc())
        .limit(history)
    ).scalars()
    return _most_per_target(rows)


def _most_per_target(runs: Iterable[dict[str, Any] | None]) -> dict[str, int]:
    out: dict[str, int] = {}
    for counts in runs:
        for key, value in (counts or {}).items():
            out[key] = max(out.get(key, 0), int(value))
    return out


def check_breaker(
    planned: dict[str, int],
    previous: dict[str, int],
    settings: Settings,
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


# --- where a run is recorded -------------------------------------------------------------------


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
    #: What the run's record holds besides the counts (a platform run: scope and cut-offs).
    details: dict[str, Any] = field(default_factory=dict)

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
            **self.details,
        }


class RunLog(ABC):
    """Where one sweep keeps its record: a ``retention_runs`` row (counts per target, the
    cut-offs and the breaker's numbers in ``horizons``, status, message), written in the
    sweep's session and committed with the batch it records.

    The two kinds differ only in what accompanies a batch or a stop at the breaker
    (:meth:`_on_batch`, :meth:`_on_tripped`) and in which runs are theirs: an
    organization's (:class:`TenantRunLog`) or the platform's, ``organization_id`` NULL
    (:class:`PlatformRunLog`). Each only ever reads runs of its own scope.
    """

    organization_id: uuid.UUID | None

    def __init__(self, session: Session, task_run_id: uuid.UUID | None) -> None:
        self.session = session
        self.task_run_id = task_run_id
        self.run: RetentionRun | None = None

    def confirmed(self, run_id: uuid.UUID | None) -> dict[str, int] | None:
        """What the run ``run_id`` of this scope planned when the breaker stopped it."""
        if run_id is None:
            return None
        run = self.session.get(RetentionRun, run_id)
        if run is None or run.organization_id != self.organization_id:
            raise NotFoundError(self._not_found(run_id))
        breaker = (run.horizons or {}).get("breaker")
        if run.status is not RetentionRunStatus.FAILED or not breaker:
            raise InvalidInputError(
                f"Retention run {run_id} did not stop at the circuit breaker; nothing to confirm."
            )
        return {key: int(v["planned"]) for key, v in breaker.items()}

    @abstractmethod
    def _not_found(self, run_id: uuid.UUID) -> str: ...

    def _run(self) -> RetentionRun:
        assert self.run is not None, "open() the run first"
        return self.run

    def open(self, the_plan: RetentionPlan, dry_run: bool) -> uuid.UUID:
        self.run = RetentionRun(
            organization_id=self.organization_id,
            dry_run=dry_run,
            counts={},
            horizons=the_plan.horizons(),
            task_run_id=self.task_run_id,
        )
        self.session.add(self.run)
        self.session.flush()
        return self.run.id

    def details(self) -> dict[str, Any]:
        return {}

    def baseline(self, history: int) -> dict[str, int]:
        return baseline(self.session, self.organization_id, history)

    def tripped(self, run_id: uuid.UUID, verdict: BreakerVerdict) -> None:
        run = self._run()
        run.horizons = {**run.horizons, "breaker": verdict.tripped}
        self._on_tripped(run_id, verdict)

    def batch(self, target: Target, rows: int, files: int, result: SweepResult) -> None:
        self._on_batch(target, _batch_refs(target, rows, files, result.run_id))
        self._run().counts = dict(result.counts)

    def close(self, result: SweepResult, status: RetentionRunStatus) -> None:
        finished_at = self.session.execute(text("SELECT clock_timestamp()")).scalar_one()
        run = self._run()
        run.counts = result.counts
        run.status = status
        run.error_message = result.message
        run.finished_at = finished_at

    @abstractmethod
    def _on_tripped(self, run_id: uuid.UUID, verdict: BreakerVerdict) -> None:
        """A stop's own record, besides the run's (the sweep logs it as well)."""

    @abstractmethod
    def _on_batch(self, target: Target, refs: dict[str, Any]) -> None:
        """The batch's own record, besides the run's counts."""


class TenantRunLog(RunLog):
    """An organization's run: its ``retention_runs`` row, and one audit row per batch."""

    organization_id: uuid.UUID

    def __init__(
        self, session: Session, organization_id: uuid.UUID, task_run_id: uuid.UUID | None
    ) -> None:
        super().__init__(session, task_run_id)
        self.organization_id = organization_id

    def _not_found(self, run_id: uuid.UUID) -> str:
        return f"Retention run {run_id} does not exist in this organization."

    def _on_tripped(self, run_id: uuid.UUID, verdict: BreakerVerdict) -> None:
        audit.record(
            self.session,
            organization_id=self.organization_id,
            action="retention.breaker_tripped",
            entity_type="retention_run",
            entity_id=run_id,
            output_refs={"tripped": verdict.tripped},
        )

    def _on_batch(self, target: Target, refs: dict[str, Any]) -> None:
        audit.record(
            self.session,
            organization_id=self.organization_id,
            action=_AUDIT_ACTIONS[target.action],
            entity_type="table",
            output_refs=refs,
        )


class PlatformRunLog(RunLog):
    """A platform run: a ``retention_runs`` row with ``organization_id`` NULL, exactly like an
    organization's, and one ``retention_batch`` log event per batch in place of its audit
    row (``audit_log`` is tenant-only: each organization's hash chain)."""

    organization_id = None

    def _not_found(self, run_id: uuid.UUID) -> str:
        return f"Platform retention run {run_id} does not exist."

    def details(self) -> dict[str, Any]:
        return {"scope": "platform"}

    def _on_tripped(self, run_id: uuid.UUID, verdict: BreakerVerdict) -> None:
        pass  # the sweep's retention_breaker_tripped event is the record

    def _on_batch(self, target: Target, refs: dict[str, Any]) -> None:
        log.info("retention_batch", scope="platform", **refs)


def _batch_refs(target: Target, rows: int, files: int, run_id: uuid.UUID) -> dict[str, Any]:
    return {
        "target": target.key,
        "rows": rows,
        "files": files,
        "cutoff": target.cutoff.isoformat(),
        "rule": target.rule,
        "retention_run_id": str(run_id),
    }


# --- sweeping ----------------------------------------------------------------------------------


def sweep(
    session: Session,
    organization_id: uuid.UUID,
    *,
    dry_run: bool = False,
    confirmed_run_id: uuid.UUID | None = None,
    settings: Settings | None = None,
    now: datetime | None = None,
) -> SweepResult:
    """Plan one organization, check the breaker, then delete/anonymize in committed batches.

    Commits as it goes (the run record first, then each batch), so call it with a session
    of its own (an actor's job session is fine: its final commit records the job).
    """
    task_run_id = current_job_id()
    run_log = TenantRunLog(session, organization_id, task_run_id)
    confirmed = run_log.confirmed(confirmed_run_id)
    return _execute(
        session,
        plan(session, organization_id, now=now),
        run_log,
        dry_run=dry_run,
        confirmed=confirmed,
        settings=settings or get_settings(),
    )


def sweep_platform(
    session: Session,
    *,
    dry_run: bool = False,
    confirmed_run_id: uuid.UUID | None = None,
    settings: Settings | None = None,
    now: datetime | None = None,
) -> SweepResult:
    """The same sweep over the global tables, recorded in ``retention_runs`` with no
    organization (:class:`PlatformRunLog`)."""
    task_run_id = current_job_id()
    run_log = PlatformRunLog(session, task_run_id)
    confirmed = run_log.confirmed(confirmed_run_id)
    return _execute(
        session,
        plan_platform(session, now=now),
        run_log,
        dry_run=dry_run,
        confirmed=confirmed,
        settings=settings or get_settings(),
    )


def _execute(
    session: Session,
    the_plan: RetentionPlan,
    run_log: RunLog,
    *,
    dry_run: bool,
    confirmed: dict[str, int] | None,
    settings: Settings,
) -> SweepResult:
    run_id = run_log.open(the_plan, dry_run)
    result = SweepResult(
        run_id,
        "running",
        dry_run,
        {},
        dict(the_plan.counts),
        held=the_plan.held,
        details=run_log.details(),
    )
    if dry_run:
        result.counts = dict(the_plan.counts)
        return _finish(session, run_log, result)
    verdict = check_breaker(
        the_plan.counts, run_log.baseline(settings.retention_breaker_history), settings, confirmed
    )
    if not verdict.ok:
        result.message = _breaker_message(run_id, verdict)
        run_log.tripped(run_id, verdict)
        _finish(session, run_log, result, status=RetentionRunStatus.FAILED)
        log.warning(
            "retention_breaker_tripped",
            organization_id=str(the_plan.organization_id) if the_plan.organization_id else None,
            run_id=str(run_id),
            tripped=verdict.tripped,
        )
        raise RetentionBreakerError(result.message)
    session.commit()  # the run is visible while it works
    for target in the_plan.targets:
        if the_plan.counts[target.key] == 0:
            continue
        _sweep_target(session, target, the_plan.organization_id, run_log, result, settings)
    return _finish(session, run_log, result)


def _finish(
    session: Session,
    run_log: RunLog,
    result: SweepResult,
    *,
    status: RetentionRunStatus = RetentionRunStatus.COMPLETED,
) -> SweepResult:
    result.status = status.value
    run_log.close(result, status)
    session.commit()
    return result


def _sweep_target(
    session: Session,
    target: Target,
    organization_id: uuid.UUID | None,
    run_log: RunLog,
    result: SweepResult,
    settings: Settings,
) -> None:
    after = MIN_UUID
    while True:
        rows, last, seen, keys = _batch(
            session, target, organization_id, after, settings.retention_batch_size
        )
        files = storage.delete(keys, organization_id)
        _record_batch(session, target, run_log, result, rows, files)
        if seen < settings.retention_batch_size or last is None:
            return
        after = last


def _batch(
    session: Session,
    target: Target,
    organization_id: uuid.UUID | None,
    after: uuid.UUID,
    size: int,
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
    run_log: RunLog,
    result: SweepResult,
    rows: int,
    files: int,
) -> None:
    """Per batch: its record and the run's counts, committed with the batch."""
    if rows:
        result.counts[target.key] = result.counts.get(target.key, 0) + rows
    result.files_deleted += files
    result.batches += 1
    if rows or files:
        run_log.batch(target, rows, files, result)
    session.commit()
