"""Asks a worker child to retire after N jobs or above a memory ceiling.

Why not Dramatiq's ``max_tasks_per_child`` example: it restarts every process (and reloads
every model) together. Here a child that crosses its threshold stops taking messages, drains,
and exits with ``RECYCLE_EXIT_CODE``; the supervisor starts a fresh one. A file lock makes
children retire one at a time so the pool never loses more than one process of capacity.
"""

from __future__ import annotations

import resource
import threading
from typing import Any

import dramatiq
import structlog
from dramatiq.broker import MessageProxy
from dramatiq.middleware import Middleware

log = structlog.get_logger(__name__)

RECYCLE_EXIT_CODE = 75


def rss_mb() -> float:
    """Current resident set size in MiB (Linux /proc; falls back to the peak)."""
    try:
        with open("/proc/self/statm") as handle:
            pages = int(handle.read().split()[1])
        return pages * resource.getpagesize() / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class RecycleMiddleware(Middleware):
    def __init__(self, *, max_jobs: int = 0, max_memory_mb: int = 0) -> None:
        self.max_jobs = max_jobs
        self.max_memory_mb = max_memory_mb
        self.jobs_done = 0
        self.retire = threading.Event()
        self._lock = threading.Lock()

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        with self._lock:
            self.jobs_done += 1
            done = self.jobs_done
        if self.retire.is_set():
            return
        if self.max_jobs and done >= self.max_jobs:
            log.info("worker_recycling", reason="max_jobs", jobs=done)
            self.retire.set()
        elif self.max_memory_mb and rss_mb() > self.max_memory_mb:
            log.info("worker_recycling", reason="memory", rss_mb=round(rss_mb()))
            self.retire.set()
