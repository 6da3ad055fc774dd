"""How enqueues wake the relay: a NOTIFY while it sleeps, none while it polls (migration
0013), and no job left behind when it stops polling; real Postgres, real relay thread."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from dramatiq import Message
from dramatiq.brokers.stub import StubBroker
from sqlalchemy import Engine

from are_workers import ledger
from are_workers.config import Settings
from are_workers.models.task_runs import OUTBOX_NOTIFY_CHANNEL
from are_workers.relay import BUSY_LOCK, UNANNOUNCED_LOCK, Relay, _try_lock, _unlock


def _connect(engine: Engine) -> psycopg.Connection[Any]:
    dsn = engine.url.render_as_string(hide_password=False).replace(
        "postgresql+psycopg://", "postgresql://", 1
    )
    return psycopg.connect(dsn, autocommit=True)


@pytest.fixture
def listener(engine: Engine) -> Iterator[psycopg.Connection[Any]]:
    """Someone listening on the relay's channel, to count the NOTIFYs enqueues send."""
    conn = _connect(engine)
    conn.execute(f"LISTEN {OUTBOX_NOTIFY_CHANNEL}")
    yield conn
    conn.close()


@pytest.fixture
def relay_session(engine: Engine) -> Iterator[psycopg.Connection[Any]]:
    """A connection that plays the relay's part in the lock protocol."""
    conn = _connect(engine)
    yield conn
    conn.close()


def _notified(listener: psycopg.Connection[Any]) -> int:
    return sum(1 for _ in listener.notifies(timeout=0.2))


def _enqueue_committed(engine: Engine, n: int = 0) -> uuid.UUID:
    with engine.begin() as conn:
        return ledger.enqueue(conn, "system.noop", {"n": n})


def test_an_enqueue_wakes_a_sleeping_relay(
    engine: Engine, listener: psycopg.Connection[Any], clean_sql: None
) -> None:
    _enqueue_committed(engine)
    assert _notified(listener) == 1


def test_no_notify_while_a_relay_polls_and_it_waits_for_the_commit_before_it_stops(
    engine: Engine,
    listener: psycopg.Connection[Any],
    relay_session: psycopg.Connection[Any],
    clean_sql: None,
) -> None:
    assert _try_lock(relay_session, BUSY_LOCK)
    with engine.connect() as caller:
        with caller.begin():
            ledger.enqueue(caller, "system.noop", {"n": 1})
            # The relay stops polling while the job is not committed yet: it must not go to
            # sleep before this commit (nobody will announce the job).
            _unlock(relay_session, BUSY_LOCK)
            assert not _try_lock(relay_session, UNANNOUNCED_LOCK)
            # A job enqueued now, with no relay polling, is announced as usual.
            with engine.begin() as other:
                ledger.enqueue(other, "system.noop", {"n": 2})
            assert _notified(listener) == 1
        assert _try_lock(relay_session, UNANNOUNCED_LOCK)  # committed: it may stop now
    _unlock(relay_session, UNANNOUNCED_LOCK)
    assert _notified(listener) == 0


def test_a_rolled_back_enqueue_holds_nothing(
    engine: Engine, relay_session: psycopg.Connection[Any], clean_sql: None
) -> None:
    assert _try_lock(relay_session, BUSY_LOCK)
    with engine.connect() as caller, caller.begin() as transaction:
        ledger.enqueue(caller, "system.noop", {"n": 1})
        transaction.rollback()
    _unlock(relay_session, BUSY_LOCK)
    assert _try_lock(relay_session, UNANNOUNCED_LOCK)
    _unlock(relay_session, UNANNOUNCED_LOCK)


def _published(broker: StubBroker) -> set[uuid.UUID]:
    return {uuid.UUID(Message.decode(m).message_id) for m in broker.queues["default"].queue}


def _wait_until(condition: Any, timeout: float) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout}s")
        time.sleep(0.005)
    return time.monotonic() - started


def test_a_stream_of_enqueues_is_polled_and_every_job_is_published(
    engine: Engine,
    listener: psycopg.Connection[Any],
    relay_session: psycopg.Connection[Any],
    clean_sql: None,
) -> None:
    """One job per transaction: the relay polls (few NOTIFYs), a job whose transaction stays
    open while the relay stops polling is still published at once after its commit, and the
    relay goes back to sleep, where a lone job wakes it (the idle poll is 30 s)."""
    broker = StubBroker()
    broker.declare_queue("default")
    settings = Settings(relay_poll_seconds=30, relay_busy_poll_seconds=0.01)
    relay = Relay(engine, broker, settings, sweep_interval=3600)
    relay.start()
    try:
        stream = [_enqueue_committed(engine, 0)]
        _wait_until(lambda: set(stream) <= _published(broker), timeout=5)
        with engine.connect() as slow:
            slow_tx = slow.begin()
            for i in range(1, 60):
                stream.append(_enqueue_committed(engine, i))
                if i == 30:  # enqueued while the relay polls, committed after it stopped
                    late = ledger.enqueue(slow, "system.noop", {"n": "late"})
                time.sleep(0.002)
            _wait_until(lambda: set(stream) <= _published(broker), timeout=5)
            time.sleep(0.3)  # the relay finds nothing and wants to stop polling
            assert late not in _published(broker)
            slow_tx.commit()
            took = _wait_until(lambda: late in _published(broker), timeout=5)
        assert took < 1.0
        assert _notified(listener) < len(stream) // 2
        # Idle again: the busy lock is free, and a lone job is announced and published.
        _wait_until(lambda: _busy_lock_free(relay_session), timeout=5)
        lone = _enqueue_committed(engine, 99)
        assert _wait_until(lambda: lone in _published(broker), timeout=5) < 1.0
    finally:
        relay.stop()
    assert relay.published == len(stream) + 2


def _try_lock_shared(conn: psycopg.Connection[Any]) -> bool:
    return bool(conn.execute("SELECT pg_try_advisory_lock_shared(%s, %s)", BUSY_LOCK).fetchone()[0])  # type: ignore[index]


def _busy_lock_free(conn: psycopg.Connection[Any]) -> bool:
    free = _try_lock_shared(conn)
    if free:
        conn.execute("SELECT pg_advisory_unlock_shared(%s, %s)", BUSY_LOCK)
    return free


def test_a_relay_held_back_by_its_cap_sleeps_and_wakes_on_a_completion(
    engine: Engine, relay_session: psycopg.Connection[Any], clean_sql: None
) -> None:
    """Slow jobs fill the backlog: the relay stops polling (no busy lock) and the job that
    ends frees room that is refilled at once, not at the idle poll (30 s)."""
    broker = StubBroker()
    broker.declare_queue("default")
    settings = Settings(relay_poll_seconds=30, relay_busy_poll_seconds=0.01, relay_backlog=2)
    relay = Relay(engine, broker, settings, sweep_interval=3600)
    jobs = [_enqueue_committed(engine, i) for i in range(5)]
    relay.start()
    try:
        _wait_until(lambda: len(_published(broker)) == 2, timeout=5)
        _wait_until(lambda: _busy_lock_free(relay_session), timeout=5)
        time.sleep(0.2)
        assert len(_published(broker)) == 2
        first = next(j for j in jobs if j in _published(broker))
        with engine.begin() as conn:
            claim = ledger.claim(conn, first, worker_id="w", lease_seconds=60, crash_cap=3)
            assert claim is not None
        with engine.begin() as conn:
            assert ledger.mark_succeeded(conn, first, claim.attempt)
        assert _wait_until(lambda: len(_published(broker)) == 3, timeout=5) < 1.0
    finally:
        relay.stop()
