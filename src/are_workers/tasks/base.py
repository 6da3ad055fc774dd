"""``job_actor``: declares a Dramatiq actor from its catalogue entry.

Why: the queue and time limit of each job kind live once, in ``are_workers.catalog``, where
the light client reads them too. Actors stay thin: they take IDs, fetch their session from
``current_job()`` and call a service function.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import dramatiq

from are_workers.broker import get_broker
from are_workers.catalog import JOB_KINDS, queue_for

F = TypeVar("F", bound=Callable[..., Any])


def job_actor(name: str, **options: Any) -> Callable[[F], dramatiq.Actor[Any, Any]]:
    kind = JOB_KINDS[name]

    def declare(fn: F) -> dramatiq.Actor[Any, Any]:
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> None:
            # The return value is the job's result on its ledger row (Dramatiq discards it).
            from are_workers.middleware.ledger import current_job

            result = fn(*args, **kwargs)
            if result is not None:
                current_job().result = result

        declare_actor = dramatiq.actor(
            actor_name=name,
            queue_name=queue_for(name),
            broker=get_broker(),
            time_limit=kind.time_limit_s * 1000,
            **options,
        )
        return declare_actor(run)

    return declare


#: Warm-up functions per queue class: a worker child runs those of the queues it consumes
#: before it reports ready, so the first job does not pay for loading a model.
WARMUPS: dict[str, list[Callable[[], None]]] = {}


def warmup(queue_class: str) -> Callable[[Callable[[], None]], Callable[[], None]]:
    def register(fn: Callable[[], None]) -> Callable[[], None]:
        WARMUPS.setdefault(queue_class, []).append(fn)
        return fn

    return register
