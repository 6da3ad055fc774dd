"""An actor for the tracing test (loaded with ``--module``): it makes a span of its own and
enqueues a follow-up job, both of which must land in the trace of the job that ran them."""

from __future__ import annotations

import dramatiq
from opentelemetry import trace

from are_workers import ledger
from are_workers.broker import get_broker
from are_workers.job_context import current_job


def _traced_effect(key: str) -> None:
    job = current_job()
    with trace.get_tracer("tests").start_as_current_span("inner work"):
        ledger.enqueue(job.session, "test.effect", {"key": f"{key}-follow-up"}, queue="default")


traced_effect = dramatiq.actor(
    _traced_effect, actor_name="test.traced_effect", queue_name="default", broker=get_broker()
)
