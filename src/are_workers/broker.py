"""The Dramatiq broker, chosen by URL, with our middleware stack.

Import this module before any actor module: Dramatiq binds actors to the global broker at
declaration time. Upstream apps never import it: they enqueue through ``are_workers.client``,
which only writes to the ledger.

The stack deliberately leaves out Dramatiq's ``Retries`` (the ledger owns retries, so they
survive a broker that forgets everything), ``AgeLimit``, ``Callbacks`` and ``Pipelines``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import CurrentMessage, ShutdownNotifications, TimeLimit

from are_workers.config import Settings, get_settings
from are_workers.embedded import ensure_broker_url
from are_workers.middleware.deferred_acks import DeferredAcks
from are_workers.middleware.ledger import LedgerMiddleware
from are_workers.middleware.metrics import MetricsMiddleware
from are_workers.middleware.recycle import RecycleMiddleware
from are_workers.models.engine import get_engine

REDIS_NAMESPACE = "dramatiq"


class _LedgerRedisBroker(RedisBroker):
    """Dramatiq's Redis broker whose consumers ack a job's message after its completion."""

    deferred_acks: DeferredAcks | None = None

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 5000) -> Any:
        consumer = super().consume(queue_name, prefetch, timeout)
        return self.deferred_acks.wrap(consumer) if self.deferred_acks else consumer


def build_broker(url: str, settings: Settings) -> dramatiq.Broker:
    ledger_middleware = LedgerMiddleware(settings, get_engine)
    middleware = [
        TimeLimit(),
        ShutdownNotifications(notify_shutdown=False),
        CurrentMessage(),
        MetricsMiddleware(),
        RecycleMiddleware(
            max_jobs=settings.worker_max_jobs, max_memory_mb=settings.worker_max_memory_mb
        ),
        ledger_middleware,
    ]
    broker: dramatiq.Broker
    if url.startswith(("amqp://", "amqps://")):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        broker = RabbitmqBroker(url=url, middleware=middleware)
    else:
        # Redis redelivers a dead consumer's messages only after heartbeat_timeout; the
        # ledger's lease sweeper usually gets there first, so the default is fine.
        redis_broker = _LedgerRedisBroker(url=url, namespace=REDIS_NAMESPACE, middleware=middleware)
        _route_dispatch_through_pipelines(redis_broker)
        acks = DeferredAcks(lambda: pipelined(redis_broker))
        redis_broker.deferred_acks = ledger_middleware.acks = acks
        broker = redis_broker
    for queue in settings.all_queues:
        broker.declare_queue(queue)
    return broker


@lru_cache(maxsize=1)
def get_broker() -> dramatiq.Broker:
    """Build the broker once per process and make it Dramatiq's global broker."""
    settings = get_settings()
    broker = build_broker(ensure_broker_url(settings), settings)
    dramatiq.set_broker(broker)
    return broker


def ledger_middleware(broker: dramatiq.Broker) -> LedgerMiddleware:
    return next(m for m in broker.middleware if isinstance(m, LedgerMiddleware))


def recycle_middleware(broker: dramatiq.Broker) -> RecycleMiddleware:
    return next(m for m in broker.middleware if isinstance(m, RecycleMiddleware))


class _PipelinedScript:
    """Dramatiq's dispatch script, sent through this thread's pipeline while one is open."""

    def __init__(self, script: Any) -> None:
        self.script = script
        self.pipelines = threading.local()

    def __call__(self, keys: Any = None, args: Any = None, client: Any = None) -> Any:
        if client is None:
            client = getattr(self.pipelines, "current", None)
        return self.script(keys=keys, args=args, client=client)


def _route_dispatch_through_pipelines(broker: dramatiq.Broker) -> None:
    scripts = getattr(broker, "scripts", None)
    if isinstance(scripts, dict) and "dispatch" in scripts:
        scripts["dispatch"] = _PipelinedScript(scripts["dispatch"])


@contextmanager
def pipelined(broker: dramatiq.Broker) -> Iterator[None]:
    """Queue this thread's Redis commands of ``broker`` and send them at once on exit.

    Only the broker's dispatch script (enqueue, ack, nack) is queued, and the commands'
    replies are not returned: use it for commands whose replies nobody reads. A failed send
    raises on exit. A broker that is not Redis runs each command as usual.
    """
    dispatch = getattr(broker, "scripts", {}).get("dispatch")
    if not isinstance(dispatch, _PipelinedScript):
        yield
        return
    pipeline = broker.client.pipeline(transaction=False)  # type: ignore[attr-defined]
    dispatch.pipelines.current = pipeline
    try:
        yield
    finally:
        dispatch.pipelines.current = None
    pipeline.execute()


def enqueue_many(broker: dramatiq.Broker, messages: Iterable[dramatiq.Message[Any]]) -> int:
    """Publish messages with one Redis round trip for all of them, where the broker allows.

    Why: the relay publishes batches of hundreds of jobs; one round trip per message made it
    the busiest thread of the supervisor. Each message still goes through ``broker.enqueue``
    (the same Lua script and middleware), queued on a pipeline that is sent once. A failed
    send raises, so the relay does not mark the batch published and sends it again (a
    duplicate message claims nothing and is dropped).
    """
    count = 0
    with pipelined(broker):
        for message in messages:
            broker.enqueue(message)
            count += 1
    return count


def broker_queue_depth(broker: dramatiq.Broker, queue: str) -> int | None:
    """Messages waiting in the broker for ``queue``, where the broker can tell cheaply."""
    if isinstance(broker, RedisBroker):
        return int(broker.client.llen(f"{REDIS_NAMESPACE}:{queue}"))
    return None


broker = get_broker()
