"""The thin scheduler: due ticks, one catch-up, overrides and pauses, leader election."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from are_workers.models.task_runs import ScheduleOverride
from are_workers.scheduler import (
    DEFAULT_SCHEDULES,
    LastRun,
    LostLeadership,
    Schedule,
    Scheduler,
    due_tick,
    run_due,
    run_id,
    run_key,
    schedule_named,
)
from tests.factories import make_org

T0 = datetime(2026, 11, 24, 10, 0, 7, tzinfo=UTC)
WEEK = timedelta(days=7)
HOURLY = Schedule("test-hourly", "compliance.retention_sweep", "0 * * * *", "organization", "t")
PLATFORM = Schedule("test-platform", "compliance.seal_audit_chain", "*/5 * * * *", "platform", "t")


def _last(tick: datetime) -> LastRun:
    return LastRun(tick, uuid.uuid4(), "succeeded")


def test_missed_ticks_collapse_into_one_catch_up() -> None:
    cron = "0 * * * *"
    assert due_tick(cron, T0, _last(T0.replace(minute=0, second=0)), WEEK) is None
    three_days_down = _last(T0 - timedelta(days=3))
    assert due_tick(cron, T0, three_days_down, WEEK) == datetime(2026, 11, 24, 10, tzinfo=UTC)
    # No record of a previous run: the latest tick runs if it is recent, not if it is old.
    assert due_tick(cron, T0, None, WEEK) == datetime(2026, 11, 24, 10, tzinfo=UTC)
    assert due_tick("0 5 1 * *", T0, None, WEEK) is None  # monthly, last tick 23 days ago


def test_run_keys_and_ids_are_deterministic() -> None:
    tick = datetime(2026, 11, 24, 10, tzinfo=UTC)
    org = uuid.uuid4()
    assert run_key(HOURLY, tick) == "schedule:test-hourly:2026-11-24T10:00:00Z"
    assert run_id(HOURLY, org, tick) == run_id(HOURLY, org, tick)
    assert run_id(HOURLY, org, tick) != run_id(HOURLY, uuid.uuid4(), tick)
    assert schedule_named("retention-sweep").actor == "compliance.retention_sweep"
    assert {s.actor for s in DEFAULT_SCHEDULES} >= {
        "compliance.retention_sweep",
        "compliance.verify_audit_chain",
        "compliance.bias_audit",
    }


def test_every_default_schedule_names_a_job_kind_and_a_valid_cron() -> None:
    from croniter import croniter

    from are_workers.catalog import JOB_KINDS

    for schedule in DEFAULT_SCHEDULES:
        assert schedule.actor in JOB_KINDS and croniter.is_valid(schedule.cron), schedule.name
    assert len({s.name for s in DEFAULT_SCHEDULES}) == len(DEFAULT_SCHEDULES)
    platform = schedule_named("retention-sweep-platform")
    assert (platform.actor, platform.scope) == ("compliance.retention_sweep_platform", "platform")
    index = schedule_named("tenant-index-sync")
    assert (index.actor, index.scope) == ("matching.sync_tenant_index", "organization")
    assert croniter(index.cron).get_next(float) - croniter(index.cron).get_prev(float) == 86400
    calibration = schedule_named("item-calibration")
    assert (calibration.actor, calibration.scope) == ("assessments.calibrate_items", "organization")


def _jobs(db: Session, actor: str, orgs: list[uuid.UUID | None]) -> list[tuple[object, ...]]:
    rows = db.execute(
        text(
            "SELECT organization_id, idempotency_key, id FROM task_runs WHERE actor = :a "
            "ORDER BY idempotency_key"
        ),
        {"a": actor},
    )
    return [tuple(r) for r in rows if r.organization_id in orgs]


def test_each_tick_is_enqueued_once_per_tenant_and_caught_up_once(db: Session) -> None:
    a, b = make_org(db), make_org(db)
    conn = db.connection()
    first = [
        r
        for r in run_due(conn, now=T0, schedules=[HOURLY, PLATFORM], catch_up=WEEK)
        if r.organization_id in {a.id, b.id, None}
    ]
    assert {(r.schedule, r.organization_id) for r in first} == {
        ("test-hourly", a.id),
        ("test-hourly", b.id),
        ("test-platform", None),
    }
    for run in first:
        schedule = HOURLY if run.schedule == "test-hourly" else PLATFORM
        assert run.job_id == run_id(schedule, run.organization_id, run.tick)
    # The same instant again, and a few seconds later: nothing new.
    assert not [
        r
        for r in run_due(conn, now=T0 + timedelta(seconds=5), schedules=[HOURLY], catch_up=WEEK)
        if r.organization_id in {a.id, b.id}
    ]
    # Three days of downtime: one catch-up run per tenant, for the latest tick.
    later = T0 + timedelta(days=3)
    again = [
        r
        for r in run_due(conn, now=later, schedules=[HOURLY], catch_up=WEEK)
        if r.organization_id in {a.id, b.id}
    ]
    assert sorted(r.tick for r in again) == [datetime(2026, 11, 27, 10, tzinfo=UTC)] * 2
    jobs = _jobs(db, HOURLY.actor, [a.id, b.id])
    assert len(jobs) == 4
    assert len({key for _, key, _ in jobs}) == 2  # one key per tick, shared by tenants


def test_overrides_change_the_cron_or_pause_per_tenant_or_everywhere(db: Session) -> None:
    a, b = make_org(db), make_org(db)
    db.add(
        ScheduleOverride(
            organization_id=a.id, schedule_name="test-hourly", paused=True, reason="tenant asked"
        )
    )
    db.add(ScheduleOverride(organization_id=b.id, schedule_name="test-hourly", cron="*/10 * * * *"))
    db.flush()
    conn = db.connection()
    runs = [
        r
        for r in run_due(conn, now=T0, schedules=[HOURLY], catch_up=WEEK)
        if r.organization_id in {a.id, b.id}
    ]
    assert [(r.organization_id, r.tick) for r in runs] == [
        (b.id, datetime(2026, 11, 24, 10, 0, tzinfo=UTC))
    ]
    later = T0 + timedelta(minutes=12)
    runs = [
        r
        for r in run_due(conn, now=later, schedules=[HOURLY], catch_up=WEEK)
        if r.organization_id in {a.id, b.id}
    ]
    assert [(r.organization_id, r.tick) for r in runs] == [
        (b.id, datetime(2026, 11, 24, 10, 10, tzinfo=UTC))
    ]
    # A platform-wide pause stops every tenant; a pause that has ended does not.
    db.add(
        ScheduleOverride(
            organization_id=None,
            schedule_name="test-hourly",
            paused=True,
            paused_until=later + timedelta(hours=1),
        )
    )
    db.flush()
    assert not [
        r
        for r in run_due(conn, now=later + timedelta(minutes=30), schedules=[HOURLY], catch_up=WEEK)
        if r.organization_id in {a.id, b.id}
    ]
    resumed = [
        r
        for r in run_due(conn, now=later + timedelta(hours=2), schedules=[HOURLY], catch_up=WEEK)
        if r.organization_id in {a.id, b.id}
    ]
    assert {r.organization_id for r in resumed} == {b.id}  # a is still paused by its own row


def test_an_invalid_override_cron_skips_that_schedule_only(db: Session) -> None:
    a = make_org(db)
    db.add(ScheduleOverride(organization_id=a.id, schedule_name="test-hourly", cron="bogus"))
    db.flush()
    runs = run_due(db.connection(), now=T0, schedules=[HOURLY, PLATFORM], catch_up=WEEK)
    assert not [r for r in runs if r.organization_id == a.id]
    assert [r for r in runs if r.schedule == "test-platform"]


def _scheduler_jobs(engine: Engine) -> int:
    with engine.connect() as conn:
        query = "SELECT count(*) FROM task_runs WHERE idempotency_key LIKE 'schedule:%'"
        return int(conn.execute(text(query)).scalar_one())


def test_only_the_lock_holder_enqueues_and_a_lost_lock_is_noticed(
    owner_engine: Engine, runtime_engine: Engine
) -> None:
    with owner_engine.begin() as conn:
        conn.execute(text("INSERT INTO organizations (name, slug) VALUES ('A', 'a')"))
    first = Scheduler(runtime_engine, schedules=[PLATFORM], replica="one")
    second = Scheduler(runtime_engine, schedules=[PLATFORM], replica="two")
    assert first.try_lead() and not second.try_lead()
    assert second.run_once() is None  # --once while another replica leads: nothing done
    assert len(first.tick()) == 1
    assert first.tick() == []  # the same tick again: nothing
    # The leader's connection is killed (its lock goes with it): the next tick fails closed.
    with owner_engine.begin() as conn:
        conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_locks "
                "WHERE locktype = 'advisory' AND objsubid = 1 AND granted "
                "AND pid <> pg_backend_pid() AND database = "
                "(SELECT oid FROM pg_database WHERE datname = current_database())"
            )
        )
    with pytest.raises(LostLeadership):
        first.tick()
    assert not first.is_leader
    assert second.try_lead()
    second.step_down()
    assert _scheduler_jobs(owner_engine) == 1


def test_cli_once_enqueues_what_is_due_and_schedules_lists_it(
    runtime_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    import typer
    from typer.testing import CliRunner

    from are_workers.cli.scheduler import register
    from are_workers.config import get_settings
    from are_workers.models.engine import reset_engine

    app = typer.Typer()
    register(app)
    # structlog caches its output stream on first use; the runner closes it after each call.
    monkeypatch.setattr("are_workers.cli.scheduler._configure", lambda **_: None)
    monkeypatch.setenv("ARE_DATABASE_URL", runtime_url)
    get_settings.cache_clear()
    reset_engine()
    try:
        runner = CliRunner()
        result = runner.invoke(app, ["scheduler", "--once", "--only", "audit-seal"])
        assert result.exit_code == 0, result.output
        assert "1 run(s) enqueued" in result.output
        result = runner.invoke(app, ["scheduler", "--once", "--only", "audit-seal"])
        assert "0 run(s) enqueued" in result.output
        result = runner.invoke(app, ["schedules", "--json"])
        assert result.exit_code == 0, result.output
        rows = {row["name"]: row for row in json.loads(result.output)}
        assert rows["audit-seal"]["last_status"] == "queued"
        assert rows["audit-seal"]["next_run"] > rows["audit-seal"]["last_run"]
        assert rows["retention-sweep"]["last_run"] is None
        result = runner.invoke(app, ["scheduler", "--once", "--only", "nope"])
        assert result.exit_code == 1 and "No schedule named 'nope'" in result.output
        result = runner.invoke(app, ["schedules"])
        assert result.exit_code == 0 and "Schedules" in result.output
    finally:
        get_settings.cache_clear()
        reset_engine()
