"""The outbox relay and the sweeper: the only code that publishes jobs to the broker.

Why a relay: an enqueue is just an INSERT in the caller's transaction, so a job exists if and
only if the caller committed. The relay publishes committed rows in batches (woken by a
``NOTIFY`` from the insert trigger, or by its poll interval; while jobs keep coming it polls
every ``relay_busy_poll_seconds`` instead and the trigger skips the ``NOTIFY``, whose commit
lock would serialise enqueues: see ``Relay._next_mode``), and the sweeper repairs what
the broker or a worker lost:

* a running job whose lease expired (its worker died) is re-queued, or marked dead at the
  crash cap;
* a published job that no worker claimed for ``republish_after_seconds`` is handed back to
  the relay when the broker shows it does not hold it (Redis restarted empty, a flush).

Fair sharing: per queue class, the relay publishes round-robin across the organizations
with due work (each one's first job, then each one's second, …; priority orders jobs within
a turn), and keeps at most ``ARE_RELAY_BACKLOG`` published-but-unclaimed jobs per queue, so
that a bulk upload cannot put thousands of messages in front of another organization's
first job. ``ARE_ORG_MAX_IN_FLIGHT`` optionally caps one organization's jobs in flight
(published or running) per class, so a GPU pool is shared. While a cap holds due work back,
the relay also wakes on job completions, which free room.

Several relays may run at once (one per worker pool): ``FOR UPDATE SKIP LOCKED`` keeps them
from publishing the same row twice, a transaction-scoped advisory lock per queue keeps two
of them from filling the same queue's backlog at once, and a duplicate message is dropped at
claim anyway.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import dramatiq
import structlog
from sqlalchemy import Connection, Engine

from are_workers import ledger, tracing
from are_workers.config import Settings
from are_workers.errors import PermanentError
from are_workers.models.task_runs import LEDGER_NOTIFY_CHANNEL, OUTBOX_NOTIFY_CHANNEL

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class SharePolicy:
    """How the relay shares each queue: per queue class, the broker backlog cap and one
    organization's cap on jobs in flight (absent: uncapped). ``fair=False`` is the relay
    before fair sharing: one global priority order, no caps."""

    fair: bool = True
    backlog: dict[str, int] = field(default_factory=dict)
    org_max_in_flight: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> SharePolicy:
        backlogs = {c: settings.backlog_for_class(c) for c in settings.queue_names}
        return cls(
            fair=settings.relay_fair,
            backlog={c: cap for c, cap in backlogs.items() if cap is not None},
            org_max_in_flight=dict(settings.org_max_in_flight),
        )


#: The advisory locks the insert trigger reads (migration 0013):
#: a relay that polls holds BUSY; an enqueue that skipped its NOTIFY holds UNANNOUNCED (shared)
#: until its transaction ends.
LOCK_SPACE = 1095910743
BUSY_LOCK = (LOCK_SPACE, 1)
UNANNOUNCED_LOCK = (LOCK_SPACE, 2)
_IDLE, _BUSY, _DRAINING, _LOOK_AGAIN = "idle", "busy", "draining", "look again"
#: A busy relay stops polling after this many polls in a row that published nothing.
BUSY_LINGER_POLLS = 10


def _try_lock(conn: Any, key: tuple[int, int]) -> bool:
    return bool(conn.execute("SELECT pg_try_advisory_lock(%s, %s)", key).fetchone()[0])


def _unlock(conn: Any, key: tuple[int, int]) -> None:
    conn.execute("SELECT pg_advisory_unlock(%s, %s)", key)


@dataclass(frozen=True)
class Published:
    """One relay pass: how many jobs it took off the outbox, and whether due work is held
    back by a cap (then a completion, which frees room, is worth waking up for)."""

    count: int
    held_back: bool = False


def publish_due(
    engine: Engine,
    broker: dramatiq.Broker,
    *,
    batch_size: int,
    queue_names: dict[str, str] | None = None,
    policy: SharePolicy | None = None,
) -> Published:
    """Publish one batch of due jobs.

    A row's queue class is mapped to a queue name by ``queue_names`` (this deployment's
    settings), so an enqueuer never mirrors queue names. A row whose class this deployment
    does not know fails at once, with a message that says what to configure.
    """
    from are_workers.config import get_settings

    if queue_names is None or policy is None:
        settings = get_settings()
        queue_names = settings.queue_names if queue_names is None else queue_names
        policy = SharePolicy.from_settings(settings) if policy is None else policy
    with engine.begin() as conn:
        # The pass need not wait for its WAL flush: if a crash loses it, its rows are
        # published again and the duplicates dropped at claim; and a worker's claim, a durable
        # commit that comes after it in the WAL, flushes it anyway. One fsync fewer per pass
        # for the callers' and workers' commits to queue behind.
        conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
        return publish_batch(
            conn, broker, batch_size=batch_size, queue_names=queue_names, policy=policy
        )


def publish_batch(
    conn: Connection,
    broker: dramatiq.Broker,
    *,
    batch_size: int,
    queue_names: dict[str, str],
    policy: SharePolicy | None = None,
) -> Published:
    """:func:`publish_due` inside the caller's transaction (it must commit it)."""
    policy = policy or SharePolicy()
    if policy.fair:
        rows, held_back = _take_fair_shares(conn, batch_size, queue_names, policy)
    else:
        rows, held_back = ledger.lock_due(conn, batch_size), False
    if not rows:
        return Published(0, held_back)
    with tracing.span("relay.publish", **{"are.jobs": len(rows)}):
        _publish_rows(conn, broker, rows, queue_names)
    return Published(len(rows), held_back)


def _publish_rows(
    conn: Connection, broker: dramatiq.Broker, rows: list[Any], queue_names: dict[str, str]
) -> None:
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


def _take_fair_shares(
    conn: Connection, batch_size: int, queue_names: dict[str, str], policy: SharePolicy
) -> tuple[list[Any], bool]:
    """Lock this pass's rows: per queue class with room, round-robin across organizations.

    A class's room is its backlog cap less the jobs already waiting in its broker queue; an
    organization's allowance is its in-flight cap less its jobs in flight on that queue.
    """
    rows: list[Any] = []
    held_back = False
    waiting = ledger.waiting_in_broker(conn) if policy.backlog else {}
    for queue_class in ledger.outbox_classes(conn):
        if queue_class is None:
            rows += ledger.lock_due_pinned(conn, batch_size)
            continue
        queue = queue_names.get(queue_class)
        if queue is None:  # nobody serves it: fail its due rows (see publish_batch)
            rows += ledger.lock_due_of_class(conn, queue_class, batch_size)
            continue
        room = batch_size
        cap = policy.backlog.get(queue_class)
        if cap is not None:
            room = min(room, cap - waiting.get(queue, 0))
            # Refill a capped queue once half of it is free, not job by job: a pass costs
            # the same few statements and a commit whether it publishes 1 job or 64.
            if room < max(1, min(batch_size, cap) // 2):
                held_back = True
                continue
        if not ledger.try_lock_queue(conn, queue):
            continue  # another relay is filling this queue right now
        org_cap = policy.org_max_in_flight.get(queue_class)
        in_flight = ledger.in_flight_by_organization(conn, queue) if org_cap else {}
        taken = ledger.lock_due_fair(conn, queue_class, room, org_cap=org_cap, in_flight=in_flight)
        held_back = held_back or (cap is not None and len(taken) == room)
        if org_cap is not None:
            for row in taken:
                org = row.organization_id or ledger.NO_ORGANIZATION
                in_flight[org] = in_flight.get(org, 0) + 1
            # An organization at its cap may have more due work: a completion frees room.
            held_back = held_back or any(n >= org_cap for n in in_flight.values())
        rows += taken
    return rows, held_back


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
        self.policy = SharePolicy.from_settings(settings)
        self.stop_event = threading.Event()
        self.published = 0
        self._thread: threading.Thread | None = None

    def run(self) -> None:
        last_sweep = 0.0
        listener = None
        mode, on_completions = _IDLE, False
        last_published = -1e9
        while not self.stop_event.is_set():
            try:
                if listener is None:
                    listener, mode, on_completions = self._listen(), _IDLE, False
                published = self.published
                held_back = self._publish_until_drained()
                if time.monotonic() - last_sweep >= self.sweep_interval:
                    sweep(self.engine, self.broker, self.settings)
                    last_sweep = time.monotonic()
                if self.published > published:
                    last_published = time.monotonic()
                linger = BUSY_LINGER_POLLS * self.settings.relay_busy_poll_seconds
                mode = self._next_mode(listener, mode, time.monotonic() - last_published < linger)
                # Held back by a cap and not polling: a completion frees room, wake on it.
                if (held_back and mode != _BUSY) != on_completions:
                    on_completions = not on_completions
                    verb = "LISTEN" if on_completions else "UNLISTEN"
                    listener.execute(f"{verb} {LEDGER_NOTIFY_CHANNEL}")
                if mode == _LOOK_AGAIN:
                    mode = _IDLE
                    continue
                if mode == _IDLE:
                    self._wait_for_work(listener)
                else:
                    self._pause(listener)
            except Exception:
                log.warning("relay_error_retrying", exc_info=True)
                if listener is not None:
                    try:
                        listener.close()  # its session locks go with it
                    except Exception:  # the connection is already gone
                        log.debug("relay_listener_close_failed")
                listener = None
                self.stop_event.wait(1.0)
        if listener is not None:
            listener.close()

    def _next_mode(self, listener: Any, mode: str, active: bool) -> str:
        """Poll while jobs keep coming, be woken by ``NOTIFY`` otherwise.

        Busy (``active``: a pass published jobs within the last ``BUSY_LINGER_POLLS`` polls):
        hold the busy lock, so enqueues skip their ``NOTIFY``, and poll every
        ``relay_busy_poll_seconds``. (A queue held back by its cap with no room freed for
        that long, slow jobs, is not busy: the relay sleeps and wakes on completions.) No
        longer busy: release the lock, then wait until every transaction that skipped its
        ``NOTIFY`` has ended (the "unannounced" lock, taken exclusively only with ``try``: a
        caller never waits in line behind us), polling meanwhile; then look at the outbox
        once more before sleeping (``_LOOK_AGAIN``). Only one relay is busy at a time; the
        others are woken as before, or poll at ``relay_poll_seconds``.
        """
        if active:
            if mode != _BUSY and _try_lock(listener, BUSY_LOCK):
                return _BUSY
            return mode
        if mode == _BUSY:
            _unlock(listener, BUSY_LOCK)
            mode = _DRAINING
        if mode == _DRAINING and _try_lock(listener, UNANNOUNCED_LOCK):
            _unlock(listener, UNANNOUNCED_LOCK)
            return _LOOK_AGAIN
        return mode

    def _pause(self, listener: Any) -> None:
        """Sleep one busy poll interval; take the notifications that came meanwhile."""
        self.stop_event.wait(self.settings.relay_busy_poll_seconds)
        for _ in listener.notifies(timeout=0):
            pass

    def _wait_for_work(self, listener: Any) -> None:
        """Sleep until an insert notifies us (or, while a cap holds work back, a job ends and
        frees room), or the poll interval passes; then let a burst of notifications gather
        and take them all, so that one pass serves them all.

        Why drain: completions notify one row at a time, hundreds a second; waiting the
        gather time once per notification left the relay asleep while the broker ran dry.
        """
        woken = False
        for _ in listener.notifies(timeout=self.settings.relay_poll_seconds, stop_after=1):
            woken = True
        if woken:
            self.stop_event.wait(self.settings.relay_gather_seconds)
            for _ in listener.notifies(timeout=0):
                pass

    def _publish_until_drained(self) -> bool:
        """Publish full batches until the outbox has no more due work that may go now;
        returns whether a cap holds work back."""
        while True:
            result = publish_due(
                self.engine,
                self.broker,
                batch_size=self.settings.relay_batch_size,
                queue_names=self.settings.queue_names,
                policy=self.policy,
            )
            self.published += result.count
            if result.count < self.settings.relay_batch_size:
                return result.held_back

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
