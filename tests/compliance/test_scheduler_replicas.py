"""Three scheduler replicas, as real processes under the runtime role: each run once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from are_workers.scheduler import DEFAULT_SCHEDULES, Schedule, run_id, tick_of_key
from tests.procs import ROOT, wait_until

pytestmark = [pytest.mark.multiprocess, pytest.mark.slow]

#: The CLI entry point with only the scheduler commands (what cli/main.py registers).
LAUNCHER = (
    "import typer; from are_workers.cli.scheduler import register; "
    "app = typer.Typer(); register(app); app()"
)
EVERY_SECOND = Schedule("audit-seal", "compliance.seal_audit_chain", "* * * * * *", "platform", "")


def _start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, "scheduler", "--tick-seconds", "0.2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(log, "wb"),
        cwd=ROOT,
    )


def _events(log: Path, event: str) -> list[dict[str, object]]:
    out = []
    for line in log.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("event") == event:
            out.append(record)
    return out


def _lock_holder(engine: Engine) -> int | None:
    with engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT l.pid FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
                "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
                "AND a.datname = current_database()"
            )
        ).scalar_one_or_none()


def test_three_replicas_enqueue_each_run_exactly_once(
    owner_engine: Engine, runtime_url: str, tmp_path: Path
) -> None:
    with owner_engine.begin() as conn:
        # Only the test's schedule runs, every second; the others are paused platform-wide.
        conn.execute(
            text(
                "INSERT INTO schedule_overrides (organization_id, schedule_name, cron, paused) "
                "VALUES (NULL, 'audit-seal', '* * * * * *', false)"
            )
        )
        for name in (s.name for s in DEFAULT_SCHEDULES if s.name != EVERY_SECOND.name):
            conn.execute(
                text("INSERT INTO schedule_overrides (schedule_name, paused) VALUES (:n, true)"),
                {"n": name},
            )
    env = dict(
        os.environ,
        ARE_DATABASE_URL=runtime_url,
        ARE_RUNTIME_DATABASE_URL=runtime_url,
        ARE_DATA_DIR=str(tmp_path / "data"),
        ARE_LOG_JSON="true",
        PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT)]),  # this tree's code
    )
    logs = [tmp_path / f"replica{i}.log" for i in range(3)]
    replicas = [_start(env, log) for log in logs]
    try:
        first_holder = wait_until(lambda: _lock_holder(owner_engine), timeout=30, what="a leader")
        time.sleep(2)
        # The leader loses its lock mid-run (its connection is killed by the database) ...
        with owner_engine.begin() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": first_holder})
        wait_until(
            lambda: (h := _lock_holder(owner_engine)) and h != first_holder,
            timeout=30,
            what="a new leader",
        )
        time.sleep(2)
        # ... then the leading process is killed outright; another replica takes over.
        holder = _lock_holder(owner_engine)
        newest = max(
            (e for log in logs for e in _events(log, "scheduler_became_leader")),
            key=lambda e: str(e["timestamp"]),
        )
        os.kill(int(str(newest["replica"]).rsplit("/", 1)[1]), signal.SIGKILL)
        wait_until(
            lambda: (h := _lock_holder(owner_engine)) and h != holder,
            timeout=30,
            what="a leader after SIGKILL",
        )
        time.sleep(2)
    finally:
        for proc in replicas:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in replicas:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
    with owner_engine.connect() as conn:
        jobs = conn.execute(
            text(
                "SELECT id, idempotency_key, organization_id FROM task_runs "
                "WHERE actor = 'compliance.seal_audit_chain' ORDER BY idempotency_key"
            )
        ).all()
        other = conn.execute(
            text("SELECT count(*) FROM task_runs WHERE actor <> 'compliance.seal_audit_chain'")
        ).scalar_one()
    enqueued = [e for log in logs for e in _events(log, "schedule_enqueued")]
    assert len(jobs) >= 5 and other == 0
    # Exactly once: every enqueue any replica made is a distinct job (no replica ever enqueued
    # a run another one had enqueued), and each job id is the run's deterministic id.
    assert len(enqueued) == len(jobs) == len({e["job_id"] for e in enqueued})
    for job in jobs:
        assert job.organization_id is None
        assert job.id == run_id(EVERY_SECOND, None, tick_of_key(job.idempotency_key, EVERY_SECOND))
    assert sum(len(_events(log, "scheduler_lost_leadership")) for log in logs) >= 1
    assert len({e["replica"] for e in enqueued}) >= 2  # leadership moved
    ticks = [tick_of_key(j.idempotency_key, EVERY_SECOND) for j in jobs]
    assert ticks == sorted(set(ticks))
