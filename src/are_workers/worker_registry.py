"""The worker registry: each worker process says who it is, what it reads and how busy it is.

Why a table and not the broker: the dashboard reads only the database (the ledger is the
source of truth), and a process that dies stops updating its row, so a stale
``last_seen_at`` is how a silent worker shows. The row is written by the lease heartbeat
thread (``middleware/leases.py``) on its own connection: one small UPSERT per heartbeat.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, text

from are_workers.ledger import Executor

#: Rows not seen for this long are deleted when a worker registers (dead hosts, old pids).
FORGET_AFTER_DAYS = 7


@dataclass(frozen=True)
class Registration:
    """What a worker process reports about itself (``worker_id`` as the ledger names it)."""

    worker_id: str
    queues: list[str]
    threads: int
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)


_UPSERT_SQL = """
    INSERT INTO worker_registry (worker_id, host, pid, queues, threads, running_jobs)
    VALUES (:worker_id, :host, :pid, CAST(:queues AS jsonb), :threads, :running)
    ON CONFLICT (worker_id) DO UPDATE
    SET queues = EXCLUDED.queues, threads = EXCLUDED.threads,
        running_jobs = EXCLUDED.running_jobs, last_seen_at = now(), stopped_at = NULL
"""
_UPSERT = text(_UPSERT_SQL)
# A process that starts under a worker id seen before (a pid reused) starts a new life.
_REGISTER = text(_UPSERT_SQL + ", started_at = now()")
_FORGET = text(
    "DELETE FROM worker_registry "
    "WHERE last_seen_at < now() - make_interval(days => :days) AND worker_id <> :worker_id"
)
_STOPPED = text(
    "UPDATE worker_registry SET stopped_at = now(), last_seen_at = now(), running_jobs = 0 "
    "WHERE worker_id = :worker_id"
)


def _params(registration: Registration, running_jobs: int) -> dict[str, Any]:
    return {
        "worker_id": registration.worker_id,
        "host": registration.host,
        "pid": registration.pid,
        "queues": json.dumps(sorted(registration.queues)),
        "threads": registration.threads,
        "running": running_jobs,
    }


def register(conn: Executor, registration: Registration) -> None:
    """First report of a starting process (re-started if its worker id was seen before)."""
    conn.execute(_REGISTER, _params(registration, 0))
    conn.execute(_FORGET, {"days": FORGET_AFTER_DAYS, "worker_id": registration.worker_id})


def heartbeat(conn: Executor, registration: Registration, running_jobs: int) -> None:
    conn.execute(_UPSERT, _params(registration, running_jobs))


def stopped(conn: Executor, worker_id: str) -> None:
    conn.execute(_STOPPED, {"worker_id": worker_id})


def workers(conn: Connection, *, limit: int = 500) -> list[dict[str, Any]]:
    """Live workers first, then stopped ones, newest report first."""
    rows = conn.execute(
        text(
            """
            SELECT worker_id, host, pid, queues, threads, running_jobs, started_at,
                   last_seen_at, stopped_at,
                   EXTRACT(EPOCH FROM now() - last_seen_at)::float AS silent_s
            FROM worker_registry
            ORDER BY stopped_at IS NOT NULL, last_seen_at DESC
            LIMIT :limit
            """
        ),
        {"limit": limit},
    )
    return [dict(r._mapping) for r in rows]
