"""The Dramatiq broker, chosen by URL, with our middleware stack.

Import this module before any actor module: Dramatiq binds actors to the global broker at
declaration time. Upstream apps never import it: they enqueue through ``are_workers.client``,
which only writes to the ledger.

The stack deliberately leaves out Dramatiq's ``Retries`` (the ledger owns retries, so they
survive a broker that forgets everything), ``AgeLimit``, ``Callbacks`` and ``Pipelines``.
"""

from __future__ import annotations

from functools import lru_cache

import dramatiq
from dramatiq.middleware import CurrentMessage, ShutdownNotifications, TimeLimit

from are_workers.config import Settings, get_settings
from are_workers.embedded import ensure_broker_url
from are_workers.middleware.ledger import LedgerMiddleware
from are_workers.middleware.metrics import MetricsMiddleware
from are_workers.middleware.recycle import RecycleMiddleware
from are_workers.models.engine import get_engine

REDIS_NAMESPACE = "dramatiq"


def build_broker(url: str, settings: Settings) -> dramatiq.Broker:
    middleware = [
        TimeLimit(),
        ShutdownNotifications(notify_shutdown=False),
        CurrentMessage(),
        MetricsMiddleware(),
        RecycleMiddleware(
            max_jobs=settings.worker_max_jobs, max_memory_mb=settings.worker_max_memory_mb
        ),
        LedgerMiddleware(settings, get_engine),
    ]
    broker: dramatiq.Broker
    if url.startswith(("amqp://", "amqps://")):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        broker = RabbitmqBroker(url=url, middleware=middleware)
    else:
        from dramatiq.brokers.redis import RedisBroker

        # Redis redelivers a dead consumer's messages only after heartbeat_timeout; the
        # ledger's lease sweeper usually gets there first, so the default is fine.
        broker = RedisBroker(url=url, namespace=REDIS_NAMESPACE, middleware=middleware)
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


def broker_queue_depth(broker: dramatiq.Broker, queue: str) -> int | None:
    """Messages waiting in the broker for ``queue``, where the broker can tell cheaply."""
    from dramatiq.brokers.redis import RedisBroker

    if isinstance(broker, RedisBroker):
        return int(broker.client.llen(f"{REDIS_NAMESPACE}:{queue}"))
    return None


broker = get_broker()
