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
from sqlalchemy import Connection, Engine

from are_workers import ledger, tracing
from are_workers.config import Settings
from are_workers.errors import PermanentError
from are_workers.models.task_runs import OUTBOX_NOTIFY_CHANNEL

log = structlog.get_logger(__name__)


def publish_due(
    engine: Engine,
    broker: dramatiq.Broker,
    *,
    batch_size: int,
    queue_names: dict[str, str] | None = None,
) -> int:
    """Publish one batch of due jobs; returns how many were taken off the outbox.

    A row's queue class is mapped to a queue name by ``queue_names`` (this deployment's
    settings), so an enqueuer never mirrors queue names. A row whose class this deployment
    does not know fails at once, with a message that says what to configure.
    """
    from are_workers.config import get_settings

    names = queue_names if queue_names is not None else get_settings().queue_names
    with engine.begin() as conn:
        return publish_batch(conn, broker, batch_size=batch_size, queue_names=names)


def publish_batch(
    conn: Connection, broker: dramatiq.Broker, *, batch_size: int, queue_names: dict[str, str]
) -> int:
    """:func:`publish_due` inside the caller's transaction (it must commit it)."""
    rows = ledger.lock_due(conn, batch_size)
    if not rows:
        return 0
    with tracing.span("relay.publish", **{"are.jobs": len(rows)}):
        return _publish_rows(conn, broker, rows, queue_names)


def _publish_rows(
    conn: Connection, broker: dramatiq.Broker, rows: list[Any], queue_names: dict[str, str]
) -> int:
    from are_workers.broker import enqueue_many

    routed = [(row, ledger.route(row, queue_names)) for row in rows]
    for row, queue in routed:
        if queue is None:
            ledger.fail_unclaimed(conn, row.id, error=_unroutable(row, queue_names))
    sendable = [(row, queue) for row, queue in routed if queue is not None]
    enqueue_many(
        broker,
        (
            dramatiq.Message(
                queue_name=queue,
                actor_name=row.actor,
                args=(),
                kwargs=row.args,
                options={},
                message_id=str(row.id),
            )
            for row, queue in sendable
        ),
    )
    # If the commit fails the rows are published again later: the duplicate messages find
    # the job claimed or done and are dropped.
    ledger.mark_published(conn, [(row.id, queue) for row, queue in sendable])
    return len(rows)


def _unroutable(row: Any, names: dict[str, str]) -> PermanentError:
    return PermanentError(
        f"The job names the queue class {row.queue_class!r}, which this deployment does not "
        f"know (known: {', '.join(sorted(names))}). Enqueue it with a known class, or deploy "
        "workers that serve that class, then replay the job.",
        code="unknown_queue_class",
    )


def sweep(engine: Engine, broker: dramatiq.Broker, settings: Settings) -> dict[str, int]:
    """Recover jobs of dead workers and re-send jobs whose message the broker lost."""
    with tracing.span("sweeper.sweep") as current:
        repaired = _sweep(engine, broker, settings)
        current.set_attribute("are.recovered", repaired["recovered"])
        current.set_attribute("are.resent", repaired["resent"])
    return repaired


def _sweep(engine: Engine, broker: dramatiq.Broker, settings: Settings) -> dict[str, int]:
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
                        self.engine,
                        self.broker,
                        batch_size=self.settings.relay_batch_size,
                        queue_names=self.settings.queue_names,
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
