"""The platform retention sweep: the global tables (no tenant), found from the metadata,
planned, guarded by the same breaker, swept in batches and recorded in ``retention_runs``
with no organization, where an organization's queries never see it."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from are_workers.config import Settings
from are_workers.errors import InvalidInputError, NotFoundError
from are_workers.models import Base
from are_workers.models.classification import classification_of, policy_of
from are_workers.models.privacy import RetentionRun, RetentionRunStatus
from are_workers.models.security import is_tenant_table
from are_workers.services.compliance import retention_runs
from are_workers.services.compliance.retention import (
    SWEPT_ELSEWHERE,
    RetentionBreakerError,
    build_platform_targets,
    plan_platform,
    sweep,
    sweep_platform,
    swept_tables,
)
from are_workers.services.compliance.retention_breaker import baseline, runs_of
from tests.factories import make_org, make_user, utcnow

SETTINGS = Settings(retention_batch_size=2, retention_breaker_min_rows=1000)
STRICT = Settings(
    retention_batch_size=2, retention_breaker_min_rows=2, retention_breaker_factor=2.0
)


def _sessions(db: Session, user_id: uuid.UUID, *, expired_days_ago: int, n: int = 1) -> None:
    for _ in range(n):
        db.execute(
            text(
                "INSERT INTO user_sessions (user_id, token_hash, ip_address, user_agent, "
                "created_at, expires_at) VALUES (:u, :t, '203.0.113.7', 'Mozilla/5.0', "
                "now() - make_interval(days => :d + 1), now() - make_interval(days => :d))"
            ),
            {"u": user_id, "t": uuid.uuid4().hex, "d": expired_days_ago},
        )


def _old_job(db: Session, *, finished_days_ago: int) -> uuid.UUID:
    return db.execute(
        text(
            "INSERT INTO task_runs (actor, queue, status, finished_at) VALUES "
            "('system.noop', 'default', 'succeeded', now() - make_interval(days => :d)) "
            "RETURNING id"
        ),
        {"d": finished_days_ago},
    ).scalar_one()


def _left(db: Session, user_id: uuid.UUID) -> list[tuple[Any, ...]]:
    rows = db.execute(
        text(
            "SELECT ip_address, user_agent FROM user_sessions WHERE user_id = :u "
            "ORDER BY expires_at"
        ),
        {"u": user_id},
    )
    return [tuple(r) for r in rows]


def _run(db: Session, settings: Settings = SETTINGS, **options: Any) -> RetentionRun:
    """A real platform sweep (no job needed) and the ``retention_runs`` row it left."""
    return _record(db, sweep_platform(db, settings=settings, **options).run_id)


def _record(db: Session, run_id: uuid.UUID) -> RetentionRun:
    db.expire_all()
    run = db.get(RetentionRun, run_id)
    assert run is not None and run.organization_id is None
    return run


def test_every_table_with_a_retention_is_swept_by_exactly_one_sweep() -> None:
    def retained(table: Any) -> bool:
        policy = policy_of(table)
        columns = (classification_of(c) for c in table.columns)
        return policy is not None and (
            policy.retention_days is not None
            or any(c is not None and c.retention_days is not None for c in columns)
        )

    tenant = {t.name for t in swept_tables(tenant=True)}
    platform = {t.name for t in swept_tables(tenant=False)}
    assert not tenant & platform
    everything = {t.name for t in Base.metadata.sorted_tables if policy_of(t) is not None}
    assert tenant | platform | set(SWEPT_ELSEWHERE) == everything
    expected = {
        t.name
        for t in Base.metadata.sorted_tables
        if not is_tenant_table(t) and retained(t) and t.name not in SWEPT_ELSEWHERE
    }
    targets = build_platform_targets(utcnow())
    assert {t.table.name for t in targets} == expected
    assert {"user_sessions", "task_runs", "retention_runs"} <= expected
    assert "retention_runs" in platform  # organization_id is nullable: platform runs
    by_key = {t.key: t for t in targets}
    assert by_key["user_sessions"].days == 90 and by_key["user_sessions"].rule == "table_default"
    assert by_key["user_sessions.ip_address"].action == "anonymize"
    assert by_key["user_sessions.ip_address"].rule == "column"


def test_the_dry_run_counts_what_would_go_and_changes_nothing(db: Session) -> None:
    user = make_user(db).id
    _sessions(db, user, expired_days_ago=100, n=3)  # past the table's 90 days
    _sessions(db, user, expired_days_ago=40, n=2)  # past the 30 days of ip and user agent
    _sessions(db, user, expired_days_ago=5)
    _old_job(db, finished_days_ago=100)
    report = plan_platform(db)
    assert report.organization_id is None and report.held == []
    counts = {k: v for k, v in report.counts.items() if v}
    assert counts == {
        "user_sessions": 3,
        "user_sessions.ip_address": 2,
        "user_sessions.user_agent": 2,
        "task_runs": 1,
    }
    result = sweep_platform(db, dry_run=True, settings=SETTINGS)
    assert result.dry_run and result.status == "completed"
    assert result.as_dict()["counts"] == counts
    assert result.as_dict()["scope"] == "platform"
    assert len(_left(db, user)) == 6
    run = _record(db, result.run_id)
    assert run.dry_run and run.status is RetentionRunStatus.COMPLETED
    assert run.counts == report.counts and run.finished_at is not None  # planned, zeros too


class _Events:
    """Stands in for the module's logger (structlog caches loggers once configured)."""

    def __init__(self) -> None:
        self.logged: list[dict[str, Any]] = []

    def _record(self, event: str, **fields: Any) -> None:
        self.logged.append({"event": event, **fields})

    info = warning = _record


def test_the_sweep_deletes_and_anonymizes_in_batches_recorded_in_retention_runs(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = make_user(db).id
    _sessions(db, user, expired_days_ago=100, n=3)
    _sessions(db, user, expired_days_ago=40, n=2)
    _sessions(db, user, expired_days_ago=5)
    old_job = _old_job(db, finished_days_ago=100)
    events = _Events()
    monkeypatch.setattr(retention_runs, "log", events)
    run = _run(db)
    logs = events.logged
    counts = {
        "user_sessions": 3,
        "user_sessions.ip_address": 2,
        "user_sessions.user_agent": 2,
        "task_runs": 1,
    }
    assert run.counts == counts and run.status is RetentionRunStatus.COMPLETED
    assert not run.dry_run and run.error_message is None and run.finished_at is not None
    assert run.task_run_id is None  # a real platform sweep no longer needs a job
    assert run.horizons["user_sessions"]["days"] == 90
    assert run.horizons["user_sessions.ip_address"]["planned"] == 2
    assert "breaker" not in run.horizons
    batches = [e for e in logs if e["event"] == "retention_batch"]
    assert sorted((e["target"], e["rows"]) for e in batches) == [
        ("task_runs", 1),
        ("user_sessions", 1),
        ("user_sessions", 2),
        ("user_sessions.ip_address", 2),
        ("user_sessions.user_agent", 2),
    ]
    assert {e["retention_run_id"] for e in batches} == {str(run.id)}
    assert _left(db, user) == [(None, None), (None, None), ("203.0.113.7", "Mozilla/5.0")]
    assert db.execute(text("SELECT 1 FROM task_runs WHERE id = :i"), {"i": old_job}).first() is None
    audited = db.execute(
        text("SELECT count(*) FROM audit_log WHERE action LIKE 'retention.%'")
    ).scalar_one()
    assert audited == 0  # audit_log is tenant-only: the batches were logged instead
    again = _run(db)
    assert again.counts == {} and again.id != run.id  # idempotent


def test_the_breaker_stops_a_platform_sweep_until_confirmed(db: Session) -> None:
    user = make_user(db).id
    _sessions(db, user, expired_days_ago=100)
    assert _run(db, STRICT).counts == {"user_sessions": 1}
    _sessions(db, user, expired_days_ago=100, n=6)
    with pytest.raises(RetentionBreakerError) as stopped:
        _run(db, STRICT)
    message = stopped.value.user_message
    assert "user_sessions: 6 rows (recent runs removed at most 1)" in message
    run_id = uuid.UUID(message.rsplit("confirm ", 1)[1].split("`")[0])
    tripped = _record(db, run_id)
    assert tripped.status is RetentionRunStatus.FAILED and tripped.counts == {}
    assert tripped.error_message == message and tripped.finished_at is not None
    assert tripped.horizons["breaker"]["user_sessions"] == {
        "planned": 6,
        "baseline": 1,
        "allowed": 2,
    }
    assert len(_left(db, user)) == 6  # nothing was deleted
    confirmed = _run(db, STRICT, confirmed_run_id=run_id)
    assert confirmed.counts == {"user_sessions": 6}
    assert confirmed.status is RetentionRunStatus.COMPLETED
    with pytest.raises(InvalidInputError, match="did not stop at the circuit breaker"):
        sweep_platform(db, settings=STRICT, confirmed_run_id=confirmed.id, dry_run=True)
    with pytest.raises(NotFoundError, match="does not exist"):
        sweep_platform(db, settings=STRICT, confirmed_run_id=uuid.uuid4(), dry_run=True)


def test_an_organization_never_sees_platform_runs(db: Session) -> None:
    org = make_org(db).id
    user = make_user(db).id
    _sessions(db, user, expired_days_ago=100, n=3)
    platform = _run(db)
    db.add(
        RetentionRun(
            organization_id=org,
            status=RetentionRunStatus.COMPLETED,
            counts={"user_sessions": 50, "candidates": 7},
            finished_at=utcnow(),
        )
    )
    db.flush()
    listed = db.scalars(select(RetentionRun).where(runs_of(org))).all()
    assert [r.organization_id for r in listed] == [org]
    assert platform.id in set(db.scalars(select(RetentionRun.id).where(runs_of(None))))
    assert org not in set(db.scalars(select(RetentionRun.organization_id).where(runs_of(None))))
    # each breaker reads its own scope's runs only
    assert baseline(db, org, 5) == {"user_sessions": 50, "candidates": 7}
    assert baseline(db, None, 5) == {"user_sessions": 3}
    # and one scope cannot confirm (nor learn of) the other's runs
    with pytest.raises(NotFoundError, match="does not exist in this organization"):
        sweep(db, org, confirmed_run_id=platform.id, dry_run=True)
    tenant_run = listed[0].id
    with pytest.raises(NotFoundError, match="Platform retention run"):
        sweep_platform(db, confirmed_run_id=tenant_run, dry_run=True)


def test_the_runtime_role_sweeps_committed_global_rows(
    owner_engine: Engine, runtime_engine: Engine
) -> None:
    with Session(owner_engine) as db:
        user = make_user(db).id
        _sessions(db, user, expired_days_ago=100, n=2)
        _sessions(db, user, expired_days_ago=40)
        _old_job(db, finished_days_ago=100)
        db.commit()
    with Session(runtime_engine) as runtime:
        result = sweep_platform(runtime, settings=SETTINGS)
        runtime.commit()
    assert result.counts == {
        "user_sessions": 2,
        "user_sessions.ip_address": 1,
        "user_sessions.user_agent": 1,
        "task_runs": 1,
    }
    with Session(owner_engine) as db:
        assert _left(db, user) == [(None, None)]
        run = _record(db, result.run_id)
        assert run.status is RetentionRunStatus.COMPLETED and run.counts == result.counts
