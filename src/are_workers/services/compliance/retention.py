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

__all__ = [
    "PLATFORM_SWEEP_ACTOR",
    "SWEPT_ELSEWHERE",
    "RetentionBreakerError",
    "RetentionPlan",
    "SweepResult",
    "Target",
    "build_platform_targets",
    "build_targets",
    "plan",
    "plan_platform",
    "sweep",
    "sweep_platform",
    "swept_tables",
]


import uuid
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import (
    delete,
    func,
    literal,
    select,
    union_all,
    update,
)
from sqlalchemy.orm import Session

from are_workers.config import Settings, get_settings
from are_workers.job_context import current_job_id
from are_workers.models.privacy import RetentionRunStatus
from are_workers.services import storage
from are_workers.services.compliance.retention_breaker import (
    RetentionBreakerError,
    breaker_message,
    check_breaker,
)
from are_workers.services.compliance.retention_plan import (
    MIN_UUID,
    PLATFORM_SWEEP_ACTOR,
    SWEPT_ELSEWHERE,
    RetentionPlan,
    Target,
    build_platform_targets,
    build_targets,
    plan,
    plan_platform,
    referenced_file_keys,
    storage_key_selects,
    swept_tables,
    target_predicate,
)
from are_workers.services.compliance.retention_runs import (
    PlatformRunLog,
    RunLog,
    SweepResult,
    TenantRunLog,
)

log = structlog.get_logger(__name__)

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
        result.message = breaker_message(run_id, verdict)
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
