"""The ledger contract, statement by statement, on a real Postgres (savepoint per test)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from are_workers import ledger
from are_workers.errors import InvalidInputError, PermanentError, TransientError


def _claim(db: Session, job_id: uuid.UUID, worker: str = "w1", lease: int = 60):
    return ledger.claim(db, job_id, worker_id=worker, lease_seconds=lease, crash_cap=3)


def _status(db: Session, job_id: uuid.UUID) -> str:
    return db.execute(
        text("SELECT status::text FROM task_runs WHERE id=:i"), {"i": job_id}
    ).scalar_one()


def test_enqueue_is_part_of_the_callers_transaction(db: Session) -> None:
    nested = db.begin_nested()
    job_id = ledger.enqueue(db, "system.noop", {"n": 1})
    nested.rollback()
    assert ledger.get_job(db, job_id) is None


def test_idempotency_key_returns_the_first_job(db: Session) -> None:
    org = db.execute(
        text("INSERT INTO organizations (name, slug) VALUES ('A', 'a-idem') RETURNING id")
    ).scalar_one()
    first = ledger.enqueue(db, "system.noop", organization_id=org, idempotency_key="k1")
    second = ledger.enqueue(db, "system.noop", organization_id=org, idempotency_key="k1")
    other = ledger.enqueue(db, "system.noop", organization_id=org, idempotency_key="k2")
    global_a = ledger.enqueue(db, "system.noop", idempotency_key="g")
    global_b = ledger.enqueue(db, "system.noop", idempotency_key="g")
    assert first == second != other
    assert global_a == global_b


def test_unknown_job_type_is_refused_at_enqueue(db: Session) -> None:
    with pytest.raises(PermanentError, match="Unknown job type"):
        ledger.enqueue(db, "resumes.nope", {})


def test_arguments_must_be_ids_and_scalars(db: Session) -> None:
    with pytest.raises(PermanentError, match="JSON IDs and scalars"):
        ledger.enqueue(db, "system.noop", {"obj": object()})


def test_claim_once_then_duplicates_are_dropped(db: Session) -> None:
    job_id = ledger.enqueue(db, "system.noop")
    claim = _claim(db, job_id)
    assert claim is not None and claim.attempt == 1 and not claim.recovered
    assert _claim(db, job_id, worker="w2") is None  # running under a live lease
    assert ledger.mark_succeeded(db, job_id, claim.attempt, {"ok": True})
    assert _claim(db, job_id, worker="w2") is None  # already done
    assert _status(db, job_id) == "succeeded"


def test_expired_lease_can_be_taken_over_and_fences_the_old_worker(db: Session) -> None:
    job_id = ledger.enqueue(db, "system.noop")
    first = _claim(db, job_id, worker="old")
    db.execute(
        text("UPDATE task_runs SET lease_expires_at = now() - interval '1 s' WHERE id=:i"),
        {"i": job_id},
    )
    second = _claim(db, job_id, worker="new")
    assert first and second and second.recovered and second.attempt == 2
    assert not ledger.mark_succeeded(db, job_id, first.attempt)  # the old worker lost its lease
    assert ledger.mark_succeeded(db, job_id, second.attempt)


def test_permanent_error_fails_with_the_users_message_and_is_not_retried(db: Session) -> None:
    job_id = ledger.enqueue(db, "system.noop")
    claim = _claim(db, job_id)
    assert claim
    status = ledger.mark_failed(
        db,
        job_id,
        claim.attempt,
        error=InvalidInputError("This PDF is password-protected."),
        max_attempts=6,
        backoff_base=1,
        backoff_max=10,
    )
    view = ledger.get_job(db, job_id)
    assert status == "failed" and view is not None
    assert view.error_message == "This PDF is password-protected."
    assert view.error_type == "InvalidInputError:invalid_input"
    assert _claim(db, job_id) is None


def test_transient_errors_retry_with_backoff_then_die(db: Session) -> None:
    job_id = ledger.enqueue(db, "system.noop")
    statuses = []
    for _ in range(3):
        db.execute(text("UPDATE task_runs SET available_at = now() WHERE id=:i"), {"i": job_id})
        claim = _claim(db, job_id)
        assert claim
        statuses.append(
            ledger.mark_failed(
                db,
                job_id,
                claim.attempt,
                error=TransientError("db busy"),
                max_attempts=3,
                backoff_base=1,
                backoff_max=10,
            )
        )
    assert statuses == ["retrying", "retrying", "dead"]
    view = ledger.get_job(db, job_id)
    assert view and "Gave up after 3 attempts" in (view.error_message or "")
    assert "jobs replay" in (view.error_message or "")
    assert ledger.replay(db, job_id) and _status(db, job_id) == "queued"


def test_retry_is_not_claimable_before_its_backoff(db: Session) -> None:
    job_id = ledger.enqueue(db, "system.noop")
    claim = _claim(db, job_id)
    assert claim
    ledger.mark_failed(
        db, job_id, 1, error=RuntimeError("x"), max_attempts=5, backoff_base=30, backoff_max=60
    )
    assert _claim(db, job_id) is None
    assert ledger.backoff_seconds(1, 2, 600) == 2 and ledger.backoff_seconds(4, 2, 600) == 16
    assert ledger.backoff_seconds(20, 2, 600) == 600


def test_sweeper_requeues_dead_workers_jobs_then_marks_poison_dead(db: Session) -> None:
    job_id = ledger.enqueue(db, "system.noop")
    conn = db.connection()
    for expected in ("retrying", "retrying", "dead"):
        db.execute(text("UPDATE task_runs SET available_at = now() WHERE id=:i"), {"i": job_id})
        assert ledger.claim(conn, job_id, worker_id="w", lease_seconds=60, crash_cap=3)
        db.execute(
            text("UPDATE task_runs SET lease_expires_at = now() - interval '1 s' WHERE id=:i"),
            {"i": job_id},
        )
        assert ledger.recover_expired_leases(conn, crash_cap=3) == 1
        assert _status(db, job_id) == expected
    view = ledger.get_job(db, job_id)
    assert view and view.crashes == 3 and "died 3 times" in (view.error_message or "")


def test_relay_sees_only_due_unpublished_rows_and_stale_ones_come_back(db: Session) -> None:
    due = ledger.enqueue(db, "system.noop")
    later = ledger.enqueue(db, "system.noop", delay_seconds=3600)
    conn = db.connection()
    rows = ledger.lock_due(conn, 100)
    ids = {r.id for r in rows}
    assert due in ids and later not in ids
    ledger.mark_published(conn, [(due, "default")])
    assert due not in {r.id for r in ledger.lock_due(conn, 100)}
    db.execute(
        text("UPDATE task_runs SET published_at = now() - interval '1 hour' WHERE id=:i"),
        {"i": due},
    )
    stale = ledger.stale_published(conn, after_seconds=60)
    assert due in {r.id for r in stale}
    ledger.unpublish(conn, [due])
    assert due in {r.id for r in ledger.lock_due(conn, 100)}


def test_cancel_and_prune(db: Session) -> None:
    job_id = ledger.enqueue(db, "system.noop")
    claim = _claim(db, job_id)
    assert claim and ledger.cancel(db, job_id)
    assert not ledger.mark_succeeded(db, job_id, claim.attempt)  # a cancelled job's work is dropped
    assert not ledger.cancel(db, job_id)
    done = ledger.enqueue(db, "system.noop")
    c = _claim(db, done)
    assert c and ledger.mark_succeeded(db, done, c.attempt)
    db.execute(
        text("UPDATE task_runs SET finished_at = now() - interval '40 days' WHERE id=:i"),
        {"i": done},
    )
    assert ledger.prune(db, older_than_days=30) >= 1
    assert ledger.get_job(db, done) is None and ledger.get_job(db, job_id) is not None


def test_heartbeat_renews_only_this_workers_leases(db: Session) -> None:
    mine = ledger.enqueue(db, "system.noop")
    theirs = ledger.enqueue(db, "system.noop")
    assert _claim(db, mine, worker="me", lease=5) and _claim(db, theirs, worker="them", lease=5)
    assert ledger.renew_leases(db, [mine, theirs], worker_id="me", lease=300) == 1


def test_queue_depths_report_ready_jobs_and_oldest_age(db: Session) -> None:
    ledger.enqueue(db, "system.noop")
    depths = {d["queue"]: d for d in ledger.queue_depths(db)}
    assert depths["default"]["ready"] >= 1
    assert depths["default"]["oldest_age_s"] >= 0


def test_finish_and_claim_does_both_in_one_statement_fenced_on_the_attempt(db: Session) -> None:
    running, stale, queued = (ledger.enqueue(db, "system.noop") for _ in range(3))
    claim = _claim(db, running)
    old = _claim(db, stale)
    assert claim and old
    db.execute(
        text("UPDATE task_runs SET attempts = attempts + 1 WHERE id=:i"), {"i": stale}
    )  # taken over since: the old attempt is fenced off
    done, claims = ledger.finish_and_claim(
        db,
        [(running, claim.attempt, '{"ok": true}'), (stale, old.attempt, None)],
        [str(queued), str(running)],  # `running` is not claimable: it is finishing
        worker_id="w1",
        lease_seconds=60,
        crash_cap=3,
    )
    assert done == {running}
    assert set(claims) == {queued} and claims[queued].attempt == 1
    assert ledger.get_job(db, running).result == {"ok": True}
    assert _status(db, stale) == "running" and _status(db, queued) == "running"


def test_finish_and_claim_with_nothing_to_finish_or_claim(db: Session) -> None:
    job_id = ledger.enqueue(db, "system.noop")
    assert ledger.finish_and_claim(db, [], [], worker_id="w", lease_seconds=60, crash_cap=3) == (
        set(),
        {},
    )
    done, claims = ledger.finish_and_claim(
        db, [], [job_id], worker_id="w", lease_seconds=60, crash_cap=3
    )
    assert not done and claims[job_id].actor == "system.noop"


def test_the_relay_routes_a_queue_class_by_the_workers_settings(db: Session) -> None:
    """Fix: an upstream app had to mirror ``ARE_QUEUE_ML``; now it names the class."""
    from dramatiq import Message
    from dramatiq.brokers.stub import StubBroker

    from are_workers.relay import publish_batch

    upstream = db.execute(text(
        "INSERT INTO task_runs (actor, queue_class, args) VALUES "
        "('matching.match_job', 'ml', '{}') RETURNING id"
    )).scalar_one()  # fmt: skip
    legacy = db.execute(text(
        "INSERT INTO task_runs (actor, queue, args) VALUES ('system.noop', 'default', '{}') "
        "RETURNING id"
    )).scalar_one()  # fmt: skip
    unknown = db.execute(text(
        "INSERT INTO task_runs (actor, queue_class, args) VALUES ('system.noop', 'quantum', '{}') "
        "RETURNING id"
    )).scalar_one()  # fmt: skip
    mine = ledger.enqueue(db, "matching.embed_job", {"job_id": str(uuid.uuid4())})
    assert db.execute(text("SELECT queue_class FROM task_runs WHERE id = :i"),
                      {"i": mine}).scalar_one() == "ml"  # fmt: skip
    broker = StubBroker()
    for queue in ("ml-gpu", "default"):
        broker.declare_queue(queue)
    names = {"default": "default", "ml": "ml-gpu", "media": "media", "compliance": "compliance"}
    publish_batch(db.connection(), broker, batch_size=100, queue_names=names)
    routed = dict(db.execute(text(
        "SELECT id, queue FROM task_runs WHERE id IN (:a, :b, :c)"
    ), {"a": upstream, "b": legacy, "c": mine}).all())  # fmt: skip
    assert routed == {upstream: "ml-gpu", legacy: "default", mine: "ml-gpu"}
    sent = {Message.decode(m).message_id for m in broker.queues["ml-gpu"].queue}
    assert {str(upstream), str(mine)} <= sent
    failed = db.execute(text("SELECT status::text, error_message FROM task_runs WHERE id = :i"),
                        {"i": unknown}).one()  # fmt: skip
    assert failed.status == "failed" and "queue class 'quantum'" in failed.error_message
    with pytest.raises(IntegrityError), db.begin_nested():
        db.execute(text("INSERT INTO task_runs (actor, args) VALUES ('system.noop', '{}')"))
