"""Multi-process guarantees: no job lost, no side effect applied twice.

Real worker processes (the supervisor and its children), a real Redis of the test's own
and a database of the test's own with committed data.
"""

from __future__ import annotations

import os
import signal
import time

import pytest
from sqlalchemy import text

from are_workers import ledger
from tests.integration.conftest import Stack
from tests.procs import job_row, start_worker, stop_worker, wait_status, wait_until

pytestmark = [pytest.mark.multiprocess, pytest.mark.slow]


def _enqueue(stack: Stack, actor: str, **args: object) -> object:
    with stack.engine.begin() as conn:
        return ledger.enqueue(conn, actor, args, queue="default")


def _log_tail(stack: Stack) -> str:
    return stack.log.read_text()[-3000:] if stack.log.exists() else ""


def test_outcomes_are_recorded_and_the_worker_keeps_serving(stack: Stack) -> None:
    worker = start_worker(stack.env, log=stack.log)
    try:
        ok = _enqueue(stack, "test.effect", key="ok")
        flaky = _enqueue(stack, "test.flaky", key="flaky", fail_times=2)
        corrupt = _enqueue(stack, "test.corrupt")
        missing = _enqueue(stack, "test.missing", file_id="0000")
        unknown = _enqueue(stack, "test.no_such_actor")
        # A malformed message straight into the broker must not stop the worker.
        stack.redis.client().rpush("dramatiq:default", b"not a message")
        assert wait_status(stack.engine, ok, {"succeeded"}).attempts == 1
        row = wait_status(stack.engine, flaky, {"succeeded"})
        assert row.attempts == 3 and stack.effects("flaky") == 1
        row = wait_status(stack.engine, corrupt, {"failed"})
        assert (
            row.attempts == 1 and row.error_message == "This PDF is corrupt. Upload the file again."
        )
        row = wait_status(stack.engine, missing, {"failed"})
        assert "does not exist" in row.error_message
        row = wait_status(stack.engine, unknown, {"failed"})
        assert "No worker knows the job type 'test.no_such_actor'" in row.error_message
        after = _enqueue(stack, "test.effect", key="after")
        wait_status(stack.engine, after, {"succeeded"})
    finally:
        assert stop_worker(worker) == 0, _log_tail(stack)


def test_sigkill_mid_job_is_redelivered_without_duplicate_effects(stack: Stack) -> None:
    worker = start_worker(stack.env, log=stack.log)
    try:
        job = _enqueue(stack, "test.effect", key="k", sleep=4)
        row = wait_status(stack.engine, job, {"running"})
        child_pid = int(row.worker_id.rsplit("/", 1)[1])
        os.kill(child_pid, signal.SIGKILL)  # dies before its transaction commits
        row = wait_status(stack.engine, job, {"succeeded"}, timeout=60)
        assert row.attempts == 2 and row.crashes == 1
        assert stack.effects("k") == 1
        assert int(row.worker_id.rsplit("/", 1)[1]) != child_pid  # the supervisor restarted it
    finally:
        stop_worker(worker)


def test_poison_job_stops_at_the_crash_cap(stack: Stack) -> None:
    worker = start_worker(stack.env, log=stack.log)
    try:
        poison = _enqueue(stack, "test.crash")
        row = wait_status(stack.engine, poison, {"dead"}, timeout=90)
        assert row.crashes == 3 and "died 3 times" in row.error_message
        healthy = _enqueue(stack, "test.effect", key="after-poison")
        wait_status(stack.engine, healthy, {"succeeded"}, timeout=30)
    finally:
        stop_worker(worker)


def test_redis_restart_with_nothing_persisted_loses_no_job(stack: Stack) -> None:
    jobs = [_enqueue(stack, "test.effect", key=f"j{i}", sleep=0.05) for i in range(30)]
    worker = start_worker(stack.env, log=stack.log, threads=2)
    try:
        wait_until(lambda: job_row(stack.engine, jobs[3]).status == "succeeded", timeout=30,
                   what="first jobs")  # fmt: skip
        stack.redis.kill()  # every queued message is gone
        time.sleep(1)
        stack.redis.start()
        for job in jobs:
            wait_status(stack.engine, job, {"succeeded"}, timeout=90)
        assert all(stack.effects(f"j{i}") == 1 for i in range(30))
    finally:
        stop_worker(worker)


def test_database_outage_during_a_job_retries_then_succeeds(stack: Stack, server_url: str) -> None:
    from tests.conftest import _admin_connect

    dbname = stack.engine.url.database
    worker = start_worker(stack.env, log=stack.log)
    try:
        job = _enqueue(stack, "test.effect_then_sleep_then_commit", key="outage", sleep=3)
        wait_status(stack.engine, job, {"running"})
        stack.engine.dispose()
        with _admin_connect(server_url) as admin:
            admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS false')
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (dbname,),
            )
            time.sleep(5)  # the job's commit fails and the outcome cannot be recorded yet
            admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS true')
        row = wait_status(stack.engine, job, {"succeeded"}, timeout=90)
        assert row.attempts >= 2
        assert stack.effects("outage") == 1
    finally:
        stop_worker(worker)


def test_sigterm_drains_running_jobs(stack: Stack) -> None:
    worker = start_worker(stack.env, log=stack.log)
    job = _enqueue(stack, "test.effect", key="drain", sleep=2)
    wait_status(stack.engine, job, {"running"})
    assert stop_worker(worker) == 0
    assert job_row(stack.engine, job).status == "succeeded"
    assert stack.effects("drain") == 1


def test_children_recycle_after_max_jobs_one_at_a_time(stack: Stack) -> None:
    env = dict(stack.env, ARE_WORKER_MAX_JOBS="3")
    worker = start_worker(env, log=stack.log, processes=2)
    try:
        jobs = [_enqueue(stack, "test.effect", key=f"r{i}", sleep=0.3) for i in range(20)]
        for job in jobs:
            wait_status(stack.engine, job, {"succeeded"}, timeout=90)
        with stack.engine.connect() as conn:
            pids = conn.execute(text("SELECT count(DISTINCT pid) FROM test_effects")).scalar_one()
        assert pids >= 3  # more processes than the pool size: children were replaced
        assert all(stack.effects(f"r{i}") == 1 for i in range(20))
    finally:
        stop_worker(worker)
