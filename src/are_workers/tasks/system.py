"""Diagnostics jobs: measure the queue, test the plumbing."""

from __future__ import annotations

import time
import uuid
from typing import Any

from are_workers.broker import get_broker
from are_workers.job_context import current_job
from are_workers.tasks.base import job_actor


@job_actor("system.noop")
def noop(**_ignored: Any) -> dict[str, Any]:
    """Does nothing: used by the queue benchmark and smoke checks."""
    return {"ok": True}


@job_actor("system.sleep")
def sleep(seconds: float = 1.0) -> dict[str, Any]:
    """Sleeps (interruptibly) so operators can watch leases, drains and recycling."""
    time.sleep(min(float(seconds), 3600.0))
    return {"slept": seconds}


@job_actor("system.handle_dead")
def handle_dead(dead_job_id: uuid.UUID) -> dict[str, Any]:
    """Record on its entity that a job whose worker kept dying gave up (its ``on_dead``)."""
    from are_workers.dead_jobs import run_dead_hook

    job = current_job()
    return run_dead_hook(job.session, get_broker(), dead_job_id, job.organization_id)
