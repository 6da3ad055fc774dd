"""The worker registry's writes: register, heartbeat, stop, and forgetting old rows."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from are_workers import worker_registry
from are_workers.dashboard import queries
from are_workers.worker_registry import Registration


def _row(db: Session, worker_id: str):  # type: ignore[no-untyped-def]
    return db.execute(
        text("SELECT * FROM worker_registry WHERE worker_id = :w"), {"w": worker_id}
    ).one()


def test_a_worker_registers_reports_its_jobs_and_stops(db: Session) -> None:
    me = Registration("host-a/101", ["ml-cpu", "default"], threads=8, host="host-a", pid=101)
    worker_registry.register(db, me)
    row = _row(db, "host-a/101")
    assert row.queues == ["default", "ml-cpu"] and row.threads == 8 and row.running_jobs == 0
    worker_registry.heartbeat(db, me, running_jobs=3)
    assert _row(db, "host-a/101").running_jobs == 3
    worker_registry.stopped(db, "host-a/101")
    row = _row(db, "host-a/101")
    assert row.stopped_at is not None and row.running_jobs == 0
    worker_registry.register(db, me)  # the same id again (a reused pid): alive again
    assert _row(db, "host-a/101").stopped_at is None


def test_rows_not_seen_for_a_week_are_forgotten_when_a_worker_starts(db: Session) -> None:
    old = Registration("host-b/7", ["default"], threads=1, host="host-b", pid=7)
    worker_registry.register(db, old)
    db.execute(text("UPDATE worker_registry SET last_seen_at = now() - interval '8 days' "
                    "WHERE worker_id = 'host-b/7'"))  # fmt: skip
    worker_registry.register(db, Registration("host-c/8", ["media"], 1, host="host-c", pid=8))
    ids = {r["worker_id"] for r in queries.rows(db.connection(), queries.WORKERS)}
    assert "host-b/7" not in ids and "host-c/8" in ids
