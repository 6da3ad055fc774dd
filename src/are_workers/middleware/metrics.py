"""Prometheus metrics for jobs: durations by actor and outcome.

Why our own: Dramatiq's Prometheus middleware runs its own HTTP server per process and knows
nothing of the ledger's outcomes (retrying, failed, dead). Children write to the
multiprocess directory (``PROMETHEUS_MULTIPROC_DIR``); the supervisor serves ``/metrics``.
"""

from __future__ import annotations

import time
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy
from dramatiq.middleware import Middleware
from prometheus_client import Counter, Histogram

JOB_SECONDS = Histogram(
    "are_job_duration_seconds",
    "Job run time by actor and outcome.",
    ["actor", "outcome"],
    buckets=(0.005, 0.02, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
)
JOBS_SKIPPED = Counter(
    "are_jobs_duplicate_total", "Messages dropped because their job was not claimable.", ["actor"]
)


class MetricsMiddleware(Middleware):
    def __init__(self) -> None:
        self._started: dict[str, float] = {}

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        self._started[message.message_id] = time.perf_counter()

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        started = self._started.pop(message.message_id, None)
        if started is None:
            return
        outcome = "success" if exception is None else type(exception).__name__
        JOB_SECONDS.labels(message.actor_name, outcome).observe(time.perf_counter() - started)

    def after_skip_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        self._started.pop(message.message_id, None)
        JOBS_SKIPPED.labels(message.actor_name).inc()
