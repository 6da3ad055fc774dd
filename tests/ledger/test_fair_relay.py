"""Fair sharing between organizations: the relay's order, its backlog cap and the
per-organization cap on jobs in flight, on a real Postgres (savepoint per test)."""

from __future__ import annotations

import uuid

from dramatiq import Message
from dramatiq.brokers.stub import StubBroker
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from are_workers import ledger
from are_workers.config import Settings
from are_workers.models.task_runs import LEDGER_NOTIFY_CHANNEL
from are_workers.relay import Published, Relay, SharePolicy, publish_batch
from tests.factories import make_org

NAMES = {"default": "default", "ml": "ml-cpu", "media": "media", "compliance": "compliance"}


def _broker() -> StubBroker:
    broker = StubBroker()
    for queue in NAMES.values():
        broker.declare_queue(queue)
    return broker


def _enqueue(db: Session, org: uuid.UUID | None, count: int, *, age_s: float) -> list[uuid.UUID]:
    """``count`` jobs that became due ``age_s`` seconds ago, one millisecond apart."""
    return [
        ledger.enqueue(db, "system.noop", {"n": i}, organization_id=org,
                       delay_seconds=-age_s + i / 1000)
        for i in range(count)
    ]  # fmt: skip


def _publish(db: Session, broker: StubBroker, policy: SharePolicy, batch: int = 100) -> Published:
    return publish_batch(
        db.connection(), broker, batch_size=batch, queue_names=NAMES, policy=policy
    )


def _sent(broker: StubBroker, queue: str = "default") -> list[uuid.UUID]:
    return [uuid.UUID(Message.decode(m).message_id) for m in broker.queues[queue].queue]


def _owner(db: Session) -> dict[uuid.UUID, uuid.UUID | None]:
    rows = db.execute(text("SELECT id, organization_id FROM task_runs"))
    return {row.id: row.organization_id for row in rows}


def _claim(db: Session, ids: list[uuid.UUID]) -> None:
    claims = ledger.claim_many(db, list(ids), worker_id="w", lease_seconds=60, crash_cap=3)
    assert set(claims) == set(ids)


def test_the_relay_takes_turns_between_organizations(db: Session) -> None:
    """A bulk upload by A, then a few jobs by B and one platform job: B's first job goes
    out second, not after A's whole backlog."""
    a, b = make_org(db).id, make_org(db).id
    a_jobs = _enqueue(db, a, 6, age_s=60)
    b_jobs = _enqueue(db, b, 3, age_s=30)
    platform = _enqueue(db, None, 1, age_s=10)
    broker = _broker()
    assert _publish(db, broker, SharePolicy()).count == 10
    assert _sent(broker) == [
        a_jobs[0], b_jobs[0], platform[0],
        a_jobs[1], b_jobs[1],
        a_jobs[2], b_jobs[2],
        *a_jobs[3:],
    ]  # fmt: skip
    # The relay before fair sharing, for comparison: one global order, A's backlog first.
    db.execute(text("UPDATE task_runs SET published_at = NULL"))
    fifo = _broker()
    _publish(db, fifo, SharePolicy(fair=False))
    assert _sent(fifo) == [*a_jobs, *b_jobs, *platform]


def test_priority_orders_jobs_within_a_turn(db: Session) -> None:
    a, b = make_org(db).id, make_org(db).id
    (a_old,) = _enqueue(db, a, 1, age_s=60)
    (b_urgent,) = _enqueue(db, b, 1, age_s=1)
    db.execute(text("UPDATE task_runs SET priority = -1 WHERE id = :i"), {"i": b_urgent})
    broker = _broker()
    _publish(db, broker, SharePolicy())
    assert _sent(broker) == [b_urgent, a_old]


def test_the_broker_backlog_per_queue_is_capped(db: Session) -> None:
    a, b = make_org(db).id, make_org(db).id
    _enqueue(db, a, 10, age_s=60)
    _enqueue(db, b, 10, age_s=30)
    broker = _broker()
    policy = SharePolicy(backlog={"default": 4})
    first = _publish(db, broker, policy)
    assert first == Published(4, held_back=True)
    owners = _owner(db)
    assert [owners[j] for j in _sent(broker)] == [a, b, a, b]
    assert _publish(db, broker, policy) == Published(0, held_back=True)  # nothing claimed yet
    _claim(db, _sent(broker)[:3])  # three messages left the broker queue
    assert _publish(db, broker, policy).count == 3
    assert ledger.waiting_in_broker(db.connection()) == {"default": 4}
    # Another class has a backlog of its own.
    ledger.enqueue(db, "resumes.process_file", {"file_id": str(uuid.uuid4())}, organization_id=a)
    assert _publish(db, broker, policy).count == 1
    assert len(broker.queues["ml-cpu"].queue) == 1


def test_an_organizations_jobs_in_flight_are_capped(db: Session) -> None:
    a, b = make_org(db).id, make_org(db).id
    a_jobs = _enqueue(db, a, 5, age_s=60)
    b_jobs = _enqueue(db, b, 5, age_s=30)
    broker = _broker()
    policy = SharePolicy(org_max_in_flight={"default": 2})
    assert _publish(db, broker, policy) == Published(4, held_back=True)
    assert _sent(broker) == [a_jobs[0], b_jobs[0], a_jobs[1], b_jobs[1]]
    _claim(db, [a_jobs[0]])  # running still counts as in flight
    assert _publish(db, broker, policy).count == 0
    claim = ledger.claim(db, a_jobs[1], worker_id="w", lease_seconds=60, crash_cap=3)
    assert claim and ledger.mark_succeeded(db, a_jobs[1], claim.attempt)
    assert _publish(db, broker, policy).count == 1
    assert _sent(broker)[-1] == a_jobs[2]
    # Other classes are not capped by the default class's limit.
    ml_jobs = [
        ledger.enqueue(db, "resumes.process_file", {"file_id": str(uuid.uuid4())},
                       organization_id=a)
        for _ in range(3)
    ]  # fmt: skip
    assert _publish(db, broker, policy).count == 3
    assert set(_sent(broker, "ml-cpu")) == set(ml_jobs)


def test_the_fair_relay_reads_through_indexes(db: Session) -> None:
    """With a large backlog the relay's statements scan indexes, never the table."""
    orgs = [make_org(db).id for _ in range(3)]
    db.execute(
        text(
            """
            INSERT INTO task_runs (actor, queue_class, queue, args, organization_id, status,
                                   published_at, finished_at, available_at)
            SELECT 'system.noop', 'default', 'default', '{}', (CAST(:orgs AS uuid[]))[1 + g % 3],
                   CASE WHEN g % 10 = 0 THEN 'queued' ELSE 'succeeded' END::task_status,
                   CASE WHEN g % 10 = 0 THEN NULL ELSE now() END,
                   CASE WHEN g % 10 = 0 THEN NULL ELSE now() END,
                   now() - make_interval(secs => g)
            FROM generate_series(1, 30000) AS g
            """
        ),
        {"orgs": [str(o) for o in orgs]},
    )
    db.execute(text("ANALYZE task_runs"))
    statements = {
        "outbox classes": (ledger._OUTBOX_CLASSES, {}),
        "waiting": (ledger._WAITING, {}),
        "in flight": (
            ledger._IN_FLIGHT_BY_ORG,
            {"queue": "default", "none": ledger.NO_ORGANIZATION},
        ),
        "fair batch": (
            ledger._DUE_FAIR,
            {
                "class": "default",
                "limit": 64,
                "none": ledger.NO_ORGANIZATION,
                "orgs": [],
                "allowances": [],
                "default_allowance": 64,
            },
        ),
    }
    for name, (statement, params) in statements.items():
        plan = "\n".join(db.execute(text("EXPLAIN " + str(statement.text)), params).scalars())
        assert "Seq Scan on task_runs" not in plan, f"{name}:\n{plan}"
        assert "Index" in plan, f"{name}:\n{plan}"
        # The batch locks its chosen rows by primary key, not by reading the whole outbox.
        assert "ix_task_runs_outbox" not in plan, f"{name}:\n{plan}"


def test_one_wake_takes_a_whole_burst_of_completions(engine: Engine) -> None:
    """Completions notify row by row; the relay must take a burst in one wake, not sleep
    its gather time once per notification while the broker runs dry."""
    relay = Relay(engine, StubBroker(), Settings(relay_poll_seconds=5, relay_gather_seconds=0))
    listener = relay._listen()
    try:
        listener.execute(f"LISTEN {LEDGER_NOTIFY_CHANNEL}")
        with engine.begin() as conn:
            for i in range(200):
                conn.execute(text("SELECT pg_notify(:c, :p)"),
                             {"c": LEDGER_NOTIFY_CHANNEL, "p": str(i)})  # fmt: skip
        relay._wait_for_work(listener)
        assert list(listener.notifies(timeout=0)) == []
    finally:
        listener.close()
