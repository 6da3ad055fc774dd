"""The bare-Dramatiq side of bench/queue_overhead.py: a no-op actor on a plain RedisBroker.

It counts completions in Redis so the benchmark can tell when every message was processed.
"""

from __future__ import annotations

import os

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker

URL = os.environ["BENCH_REDIS_URL"]
broker = RedisBroker(url=URL, namespace="bench")
dramatiq.set_broker(broker)
counter = redis.Redis.from_url(URL)


@dramatiq.actor(queue_name="bench")
def noop(n: int) -> None:
    counter.incr("bench:done")
