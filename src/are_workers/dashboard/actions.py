"""What an operator can do from the dashboard, each in one transaction with its audit row.

The operations are the ledger's and the services' own (``ledger.replay``, ``ledger.cancel``,
``scheduler.pause_platform``, ``retention_runs.confirm_stopped``), the ones the CLI runs;
this module adds the record of who did it. An action on one organization's job goes on that
organization's audit chain; an action that concerns the whole platform (a schedule paused
everywhere, a bulk replay across tenants, a job or a retention run without an organization)
goes on the platform chain (``audit.PLATFORM_ORGANIZATION_ID``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

from are_workers import ledger, scheduler
from are_workers.dashboard.access import Identity
from are_workers.dashboard.queries import BULK_COUNT, BULK_REPLAY, JobFilter, bulk_sql
from are_workers.models.audit import ActorType
from are_workers.services.compliance import audit
from are_workers.services.compliance.retention_runs import confirm_stopped

#: The most jobs one bulk replay re-queues (the preview says when a filter selects more).
BULK_CAP = 10_000


@dataclass(frozen=True)
class Outcome:
    ok: bool
    message: str


def _audit(
    conn: Connection,
    who: Identity,
    organization_id: uuid.UUID | None,
    action: str,
    *,
    entity_type: str,
    entity_id: uuid.UUID | None,
    refs: dict[str, Any] | None = None,
) -> None:
    fields: dict[str, Any] = {
        "action": action,
        "actor_type": ActorType.API_KEY if who.via == "token" else ActorType.USER,
        "actor_id": who.actor_uuid,
        "entity_type": entity_type,
        "entity_id": entity_id,
        "input_refs": {"operator": who.operator_id, "via": f"dashboard/{who.via}", **(refs or {})},
    }
    if organization_id is None:
        audit.record_platform(conn, **fields)
    else:
        audit.record(conn, organization_id=organization_id, **fields)


def _job_org(conn: Connection, job_id: uuid.UUID) -> tuple[bool, uuid.UUID | None]:
    row = conn.execute(
        text("SELECT organization_id FROM task_runs WHERE id = :i"), {"i": job_id}
    ).first()
    return (row is not None, row.organization_id if row else None)


def _job_action(
    conn: Connection,
    who: Identity,
    job_id: uuid.UUID,
    change: Callable[[Connection, uuid.UUID], bool],
    *,
    refused: str,
    action: str,
    done: str,
) -> Outcome:
    """One ledger change on one job, audited with the operator's pseudonym."""
    exists, org = _job_org(conn, job_id)
    if not exists:
        return Outcome(False, f"No job {job_id}.")
    if not change(conn, job_id):
        return Outcome(False, refused)
    _audit(conn, who, org, action, entity_type="task_run", entity_id=job_id)
    return Outcome(True, done)


def replay_job(conn: Connection, who: Identity, job_id: uuid.UUID) -> Outcome:
    return _job_action(
        conn, who, job_id, ledger.replay,
        refused="Only a dead, failed or cancelled job can be replayed.",
        action="dashboard.job_replayed",
        done="Re-queued: the relay publishes it to a worker.",
    )  # fmt: skip


def cancel_job(conn: Connection, who: Identity, job_id: uuid.UUID) -> Outcome:
    return _job_action(
        conn, who, job_id, ledger.cancel,
        refused="Only a queued, retrying or running job can be cancelled.",
        action="dashboard.job_cancelled",
        done="Cancelled: a running attempt's result will not commit.",
    )  # fmt: skip


def bulk_preview(conn: Connection, job_filter: JobFilter) -> int:
    """How many jobs a bulk replay of this filter would re-queue (at most ``BULK_CAP + 1``)."""
    sql, params = bulk_sql(BULK_COUNT, job_filter)
    return int(conn.execute(text(sql), params | {"cap": BULK_CAP + 1}).scalar_one())


def bulk_replay(conn: Connection, who: Identity, job_filter: JobFilter) -> Outcome:
    sql, params = bulk_sql(BULK_REPLAY, job_filter)
    replayed = [row.id for row in conn.execute(text(sql), params | {"cap": BULK_CAP})]
    _audit(
        conn,
        who,
        job_filter.organization_id,
        "dashboard.jobs_bulk_replayed",
        entity_type="task_run",
        entity_id=None,
        refs={"filter": job_filter.query_string(), "count": len(replayed)},
    )
    return Outcome(True, f"Re-queued {len(replayed)} job(s).")


def pause_schedule(conn: Connection, who: Identity, name: str, reason: str | None) -> Outcome:
    scheduler.pause_platform(
        conn, name, reason or f"paused from the dashboard by {who.operator_id}"
    )
    _audit(conn, who, None, "dashboard.schedule_paused", entity_type="schedule", entity_id=None,
           refs={"schedule": name})  # fmt: skip
    return Outcome(True, f"Paused {name} on the whole platform.")


def resume_schedule(conn: Connection, who: Identity, name: str) -> Outcome:
    scheduler.resume_platform(conn, name)
    _audit(conn, who, None, "dashboard.schedule_resumed", entity_type="schedule", entity_id=None,
           refs={"schedule": name})  # fmt: skip
    return Outcome(True, f"Resumed {name}.")


def confirm_retention(conn: Connection, who: Identity, run_id: uuid.UUID) -> Outcome:
    confirmation = confirm_stopped(conn, run_id)
    if confirmation is None:
        return Outcome(False, "No retention run stopped by the circuit breaker has that id.")
    _audit(
        conn,
        who,
        confirmation.organization_id,
        "dashboard.retention_confirmed",
        entity_type="retention_run",
        entity_id=run_id,
        refs={"job_id": str(confirmation.job_id)},
    )
    return Outcome(True, f"Confirmed: sweep job {confirmation.job_id} will finish the run.")
