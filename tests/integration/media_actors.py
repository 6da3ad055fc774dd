"""Test-only hooks for media workers, loaded with ``--module`` (never in production).

* Each committed transcription chunk is noted in ``test_effects`` (key ``chunk:<index>``,
  the worker's pid), in a transaction of its own, so a test sees which process transcribed
  which chunk.
* ``ARE_TEST_KILL_AT_CHUNK=k``: once chunk k is committed by a job's first attempt, the
  worker SIGKILLs itself, as the OOM killer or a node going away would.
* A recording whose storage key contains ``poison`` kills the process when it is opened: a
  decoder crashing in native code, which no ``except`` can catch.
"""

from __future__ import annotations

import os
import signal
from typing import Any

import av
from sqlalchemy import text

from are_workers.models.engine import get_engine
from are_workers.services.media import checkpoints

KILL_AT_CHUNK = os.environ.get("ARE_TEST_KILL_AT_CHUNK")


def _note_then_maybe_die(event: checkpoints.ChunkCommitted) -> None:
    with get_engine().begin() as conn:
        conn.execute(
            text("INSERT INTO test_effects (key, pid) VALUES (:k, :p)"),
            {"k": f"chunk:{event.index}", "p": os.getpid()},
        )
    first_attempt = event.job is not None and event.job.attempt == 1
    if KILL_AT_CHUNK is not None and event.index == int(KILL_AT_CHUNK) and first_attempt:
        os.kill(os.getpid(), signal.SIGKILL)


checkpoints.chunk_committed_hooks.append(_note_then_maybe_die)

_open = av.open


def _crashing_open(file: Any, *args: Any, **kwargs: Any) -> Any:
    if "poison" in str(file):
        os.kill(os.getpid(), signal.SIGKILL)
    return _open(file, *args, **kwargs)


av.open = _crashing_open
