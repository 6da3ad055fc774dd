"""Actors used only by the multi-process tests (loaded with ``--module``).

They write their side effect in the job's own transaction, so a test can count effects
exactly: a killed or fenced attempt must leave nothing behind.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import dramatiq
from sqlalchemy import text

from are_workers.broker import get_broker
from are_workers.errors import InvalidInputError, NotFoundError, TransientError
from are_workers.job_context import current_job


def _actor(fn: Any) -> Any:
    return dramatiq.actor(fn, actor_name=f"test.{fn.__name__}", queue_name="default",
                          broker=get_broker(), time_limit=600_000)  # fmt: skip


def _effect(key: str) -> None:
    current_job().session.execute(
        text("INSERT INTO test_effects (key, pid) VALUES (:k, :p)"), {"k": key, "p": os.getpid()}
    )


@_actor
def effect(key: str, sleep: float = 0.0) -> None:
    _effect(key)
    time.sleep(sleep)  # stands in for a long native call (torch, CTranslate2, OpenCV)


@_actor
def crash() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


@_actor
def flaky(key: str, fail_times: int) -> None:
    if current_job().claim.attempt <= fail_times:
        raise TransientError("dependency unavailable", delay_seconds=0.1)
    _effect(key)


@_actor
def corrupt() -> None:
    raise InvalidInputError("This PDF is corrupt. Upload the file again.", code="corrupt_file")


@_actor
def missing(file_id: str) -> None:
    raise NotFoundError(f"File {file_id} does not exist in this organization.")


@_actor
def effect_then_sleep_then_commit(key: str, sleep: float) -> None:
    """The outage test: the database goes away while this sleeps, so the commit fails."""
    _effect(key)
    time.sleep(sleep)
