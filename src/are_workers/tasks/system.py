"""Diagnostics jobs: measure the queue, test the plumbing."""

from __future__ import annotations

import time
from typing import Any

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
