"""Running a dead job's ``on_dead`` hook in a worker, after the sweeper gave up on it.

Why a job: a job whose worker died at every attempt is marked ``dead`` by the sweeper, a
process that imports no actor and so knows no hook. The sweeper enqueues
``system.handle_dead`` in the same transaction; a worker (which knows every actor) runs the
dead job's hook with its parsed arguments and a :class:`GaveUpError`, so the entity the job
was about (a file, an answer, an evaluation) says it gave up instead of "processing".
"""

from __future__ import annotations

import uuid
from typing import Any

import dramatiq
from sqlalchemy import text
from sqlalchemy.orm import Session

from are_workers import ledger
from are_workers.errors import GaveUpError, NotFoundError
from are_workers.job_context import JobContext
from are_workers.middleware.ledger import failure_hook, parsed_arguments


def run_dead_hook(
    session: Session, broker: dramatiq.Broker, dead_job_id: uuid.UUID, organization_id: Any
) -> dict[str, Any]:
    """Call the dead job's ``on_dead`` (or ``on_permanent_failure``) hook; idempotent."""
    row = session.execute(
        text(
            "SELECT id, actor, args, attempts, crashes, max_attempts, organization_id, "
            "status::text AS status FROM task_runs WHERE id = :id "
            "AND organization_id IS NOT DISTINCT FROM :org"
        ),
        {"id": dead_job_id, "org": organization_id},
    ).one_or_none()
    if row is None:
        raise NotFoundError("The dead job does not exist in this organization.")
    if row.status != "dead":
        return {"dead_job_id": str(row.id), "skipped": f"the job is {row.status}, not dead"}
    try:
        options = dict(broker.get_actor(row.actor).options)
    except dramatiq.errors.ActorNotFound:
        return {"dead_job_id": str(row.id), "skipped": "no worker here knows its actor"}
    hook = failure_hook(options, "dead")
    if hook is None:
        return {"dead_job_id": str(row.id), "hook": None}
    kwargs = parsed_arguments(options, dict(row.args))
    if kwargs is None:
        return {"dead_job_id": str(row.id), "skipped": "its arguments name no entity"}
    claim = ledger.Claim(
        row.id, row.actor, row.attempts, row.organization_id, dict(row.args), recovered=True,
        max_attempts=row.max_attempts,
    )  # fmt: skip
    error = GaveUpError(row.crashes, "WorkerLost", crashed=True)
    hook(session, error, kwargs, JobContext(session=session, claim=claim))
    return {"dead_job_id": str(row.id), "hook": getattr(hook, "__qualname__", str(hook))}
