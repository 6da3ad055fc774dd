"""The bare-Dramatiq side of bench/queue_overhead.py: a no-op actor on a plain RedisBroker.

The actor does nothing at all: the benchmark tells when every message was processed by
joining the queue (Dramatiq's own ``broker.join``: the queue's message hash is empty once
every message was acked), so the bare side pays no bookkeeping of ours per job.
"""

from __future__ import annotations

import os

import dramatiq
from dramatiq.brokers.redis import RedisBroker

URL = os.environ["BENCH_REDIS_URL"]
broker = RedisBroker(url=URL, namespace="bench")
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name="bench")
def noop(n: int) -> None:
    """Nothing: the work of a job is not what this benchmark measures."""
