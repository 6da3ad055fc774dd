"""The outbox relay and the sweeper: the only code that publishes jobs to the broker.

Why a relay: an enqueue is just an INSERT in the caller's transaction, so a job exists if and
only if the caller committed. The relay publishes committed rows in batches (woken by a
``NOTIFY`` from the insert trigger, or by its poll interval), and the sweeper repairs what
the broker or a worker lost:

* a running job whose lease expired (its worker died) is re-queued, or marked dead at the
  crash cap;
* a published job that no worker claimed for ``republish_after_seconds`` is handed back to
  the relay when the broker shows it does not hold it (Redis restarted empty, a flush).

Several relays may run at once (one per worker pool): ``FOR UPDATE SKIP LOCKED`` keeps them
from publishing the same row twice, and a duplicate message is dropped at claim anyway.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import dramatiq
import structlog
from sqlalchemy import Engine

from are_workers import ledger
from are_workers.config import Settings
from are_workers.models.task_runs import OUTBOX_NOTIFY_CHANNEL

log = structlog.get_logger(__name__)


def publish_due(engine: Engine, broker: dramatiq.Broker, *, batch_size: int) -> int:
    """Publish one batch of due jobs; returns how many were published."""
    from are_workers.broker import enqueue_many

    with engine.begin() as conn:
        rows = ledger.lock_due(conn, batch_size)
        if not rows:
            return 0
        enqueue_many(
            broker,
            (
                dramatiq.Message(
                    queue_name=row.queue,
                    actor_name=row.actor,
                    args=(),
                    kwargs=row.args,
                    options={},
                    message_id=str(row.id),
                )
                for row in rows
            ),
        )
        # If this commit fails the rows are published again later: the duplicate messages
        # find the job claimed or done and are dropped.
        ledger.mark_published(conn, [row.id for row in rows])
    return len(rows)


def sweep(engine: Engine, broker: dramatiq.Broker, settings: Settings) -> dict[str, int]:
    """Recover jobs of dead workers and re-send jobs whose message the broker lost."""
    from are_workers.broker import broker_queue_depth

    with engine.begin() as conn:
        recovered = ledger.recover_expired_leases(conn, crash_cap=settings.crash_cap)
    resent = 0
    with engine.begin() as conn:
        stale = ledger.stale_published(conn, after_seconds=settings.republish_after_seconds)
        by_queue: dict[str, list[Any]] = {}
        for row in stale:
            by_queue.setdefault(row.queue, []).append(row.id)
        for queue, ids in by_queue.items():
            depth = broker_queue_depth(broker, queue)
            # A queue with a backlog still holds its messages; only an empty one lost them.
            if depth is None or depth == 0:
                ledger.unpublish(conn, ids)
                resent += len(ids)
    if recovered or resent:
        log.warning("sweeper_repaired", recovered_leases=recovered, resent=resent)
    return {"recovered": recovered, "resent": resent}


class Relay:
    """Runs publish + sweep until stopped; used as a thread in the worker and as a command."""

    def __init__(
        self,
        engine: Engine,
        broker: dramatiq.Broker,
        settings: Settings,
        *,
        sweep_interval: float | None = None,
    ) -> None:
        self.engine = engine
        self.broker = broker
        self.settings = settings
        self.sweep_interval = sweep_interval or max(1.0, settings.heartbeat_seconds)
        self.stop_event = threading.Event()
        self.published = 0
        self._thread: threading.Thread | None = None

    def run(self) -> None:
        last_sweep = 0.0
        listener = None
        while not self.stop_event.is_set():
            try:
                if listener is None:
                    listener = self._listen()
                while (
                    n := publish_due(
                        self.engine, self.broker, batch_size=self.settings.relay_batch_size
                    )
                ) > 0:
                    self.published += n
                    if n < self.settings.relay_batch_size:
                        break
                if time.monotonic() - last_sweep >= self.sweep_interval:
                    sweep(self.engine, self.broker, self.settings)
                    last_sweep = time.monotonic()
                # Sleep until an insert notifies us, or the poll interval passes; then let a
                # burst of inserts gather so one commit publishes many rows.
                for _ in listener.notifies(timeout=self.settings.relay_poll_seconds, stop_after=1):
                    self.stop_event.wait(self.settings.relay_gather_seconds)
            except Exception:
                log.warning("relay_error_retrying", exc_info=True)
                if listener is not None:
                    try:
                        listener.close()
                    except Exception:  # the connection is already gone
                        log.debug("relay_listener_close_failed")
                listener = None
                self.stop_event.wait(1.0)
        if listener is not None:
            listener.close()

    def _listen(self) -> Any:
        import psycopg

        dsn = self.engine.url.render_as_string(hide_password=False).replace(
            "postgresql+psycopg://", "postgresql://", 1
        )
        conn = psycopg.connect(dsn, autocommit=True, application_name="are-relay")
        conn.execute(f"LISTEN {OUTBOX_NOTIFY_CHANNEL}")
        return conn

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="are-relay", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
