"""No-op job throughput: our full stack vs bare Dramatiq, on the same Redis, in one run.

Full stack = enqueue as INSERTs in durable caller transactions, the outbox relay, the claim,
the ledger middleware and the completion commit, with the real ``are-workers worker``
(supervisor + relay + one child of --threads threads), default settings (the fair relay
with its broker backlog cap included). Bare = ``actor.send`` per job to the ``dramatiq`` CLI
worker (1 process, --threads threads, default middleware, an actor that does nothing).
Same Redis. Worker start-up is not timed. Each mode runs in a fresh subprocess; modes
alternate; medians of --runs are compared.

The clocks stop when the last job is done, as each side can tell at no cost per job: the
full stack at the last ``are_task_runs_done`` notification (LISTEN, stopping after exactly
that many), bare Dramatiq when ``broker.join`` finds its queue empty (every message acked).

Scenarios (--scenarios, all by default):

* ``queue``: the queue alone. Bare sends each job; the full stack INSERTs --batch jobs per
  caller transaction.
* ``caller``: what real use looks like. In both modes the caller commits a row of its own
  per job, --batch rows per transaction; bare Dramatiq sends the jobs after that commit (the
  only safe order without an outbox), our enqueue INSERTs ride in the caller's transaction.
* ``caller1``: the same at one job per caller transaction (a request that saves one thing
  and enqueues one job).

With ``--lone N``, also the latency of a lone job on the idle full stack (N jobs one at a
time): from its caller's commit to its claim (``started_at``), on the database's clock.

Also prints the ledger's per-queue depth and the age of the oldest ready job (what an
autoscaler reads), measured with a backlog in place.

    python bench/queue_overhead.py --jobs 2000 --runs 3 --threads 8 --batch 100
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))

#: scenario → (caller commits a row per job, jobs per caller transaction or None: --batch)
SCENARIOS: dict[str, tuple[bool, int | None]] = {
    "queue": (False, None),
    "caller": (True, None),
    "caller1": (True, 1),
}
_CALLER_ROW = "INSERT INTO bench_caller_rows (n) VALUES (:n)"


def run_bare(jobs: int, threads: int, batch: int, caller_rows: bool, log: Any) -> float:
    """Bare Dramatiq: its own CLI worker process, ``actor.send`` per job."""
    import redis
    from sqlalchemy import text

    from are_workers.embedded import ensure_broker_url
    from are_workers.models.engine import get_engine

    broker_url = ensure_broker_url()
    engine = get_engine()
    env = dict(os.environ, BENCH_REDIS_URL=broker_url, PYTHONPATH=HERE)
    client = redis.Redis.from_url(broker_url)
    for key in client.scan_iter("bench*"):
        client.delete(key)
    proc = subprocess.Popen(
        [sys.executable, "-m", "dramatiq", "bare_actors", "--processes", "1",
         "--threads", str(threads), "--queues", "bench"],
        env=env, cwd=HERE, stdout=log, stderr=log,
    )  # fmt: skip
    try:
        time.sleep(3)  # worker boot (not timed)
        os.environ["BENCH_REDIS_URL"] = broker_url
        sys.path.insert(0, HERE)
        import bare_actors

        insert = text(_CALLER_ROW)
        started = time.perf_counter()
        for first in range(0, jobs, batch):
            numbers = range(first, min(jobs, first + batch))
            if caller_rows:
                with engine.begin() as conn:  # the caller's own rows, committed first
                    for i in numbers:
                        conn.execute(insert, {"n": i})
            for i in numbers:
                bare_actors.noop.send(i)
        bare_actors.broker.join("bench", interval=2)
        return jobs / (time.perf_counter() - started)
    finally:
        proc.terminate()
        proc.wait()


def run_ledger(jobs: int, threads: int, batch: int, caller_rows: bool, log: Any) -> float:
    """Full stack: ``are-workers worker`` (supervisor + relay + one child), ledger enqueues."""
    from sqlalchemy import text

    from are_workers import ledger

    with _full_stack(threads, log) as (engine, listener):
        insert = text(_CALLER_ROW)
        started = time.perf_counter()
        for first in range(0, jobs, batch):
            with engine.begin() as conn:  # one durable caller transaction per batch
                for i in range(first, min(jobs, first + batch)):
                    if caller_rows:
                        conn.execute(insert, {"n": i})
                    ledger.enqueue(conn, "system.noop", {"n": i})
        # Stop at the last completion, not at a timeout after it.
        finished = sum(1 for _ in listener.notifies(timeout=300, stop_after=jobs))
        elapsed = time.perf_counter() - started
        with engine.connect() as conn:
            statuses = ledger.status_counts(conn)
        if finished != jobs or statuses != {"succeeded": jobs}:
            raise RuntimeError(f"not every job succeeded: {finished} notified, {statuses}")
        return jobs / elapsed


def run_lone(count: int, threads: int, log: Any) -> list[float]:
    """Latency of a lone job with the stack idle: from its caller's commit to the moment its
    worker claimed it (``started_at``), both on the database's clock; ``count`` jobs, one at
    a time, 0.3 to 0.8 s apart so that the relay has gone back to sleep."""
    import random

    from sqlalchemy import text

    from are_workers import ledger

    latencies = []
    with _full_stack(threads, log) as (engine, listener):
        rng = random.Random(15)
        for i in range(count):
            time.sleep(rng.uniform(0.3, 0.8))
            with engine.connect() as conn:
                with conn.begin():
                    job = ledger.enqueue(conn, "system.noop", {"n": i})
                committed = conn.execute(text("SELECT clock_timestamp()")).scalar_one()
            assert sum(1 for _ in listener.notifies(timeout=10, stop_after=1)) == 1
            with engine.connect() as conn:
                started = conn.execute(
                    text("SELECT started_at FROM task_runs WHERE id = :id"), {"id": job}
                ).scalar_one()
            latencies.append((started - committed).total_seconds() * 1000)
        return latencies


@contextmanager
def _full_stack(threads: int, log: Any) -> Iterator[tuple[Any, Any]]:
    """An empty ledger, ``are-workers worker`` (supervisor + relay + one child) started and
    ready, and a connection listening for completions: (engine, listener)."""
    from sqlalchemy import text

    from are_workers.models.engine import get_engine
    from are_workers.models.task_runs import LEDGER_NOTIFY_CHANNEL

    engine = get_engine()
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE task_runs"))
    data_dir = tempfile.mkdtemp(prefix="are-bench-")
    env = dict(os.environ, ARE_DATA_DIR=data_dir, ARE_LOG_LEVEL="WARNING")
    proc = subprocess.Popen(
        [sys.executable, "-m", "are_workers.cli.main", "worker", "--queues", "default",
         "--processes", "1", "--threads", str(threads)],
        env=env, stdout=log, stderr=log,
    )  # fmt: skip
    # Follow completions the way the ledger contract tells apps to: LISTEN, not polling
    # (polling the table every 5 ms cost the database more than the jobs did).
    listener = _listen(engine, LEDGER_NOTIFY_CHANNEL)
    try:
        ready = os.path.join(data_dir, "run", "worker.ready")
        while not os.path.exists(ready):
            time.sleep(0.1)
        yield engine, listener
    finally:
        listener.close()
        proc.terminate()
        proc.wait()


def _listen(engine: Any, channel: str) -> Any:
    import psycopg

    dsn = engine.url.render_as_string(hide_password=False).replace(
        "postgresql+psycopg://", "postgresql://", 1
    )
    conn = psycopg.connect(dsn, autocommit=True)
    conn.execute(f"LISTEN {channel}")
    return conn


def autoscaler_figures(backlog: int) -> list[dict[str, object]]:
    from sqlalchemy import text

    from are_workers import ledger
    from are_workers.models.engine import get_engine

    engine = get_engine()
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE task_runs"))
        for i in range(backlog):
            ledger.enqueue(conn, "system.noop", {"n": i})
    time.sleep(1.0)
    with engine.connect() as conn:
        figures = ledger.queue_depths(conn)
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE task_runs"))
    return figures


def child(mode: str, jobs: int, threads: int, batch: int, caller_rows: bool) -> None:
    from are_workers.logs import configure_logging

    configure_logging("WARNING")  # the same quiet logging for both modes
    with open(os.path.join(tempfile.gettempdir(), f"bench-{mode}.log"), "ab") as log:
        if mode == "lone":
            print(json.dumps({"mode": mode, "latencies_ms": run_lone(jobs, threads, log)}))
            return
        run = run_bare if mode == "bare" else run_ledger
        rate = run(jobs, threads, batch, caller_rows, log)
    print(json.dumps({"mode": mode, "jobs_per_s": rate}))


def prepare_database(name: str = "are_bench") -> str:
    """A dedicated, migrated database on the embedded server, with the callers' table."""
    import psycopg
    from alembic import command
    from alembic.config import Config
    from sqlalchemy.engine import make_url

    from are_workers.embedded import ensure_database_url

    url = make_url(ensure_database_url())
    with psycopg.connect(dbname="postgres", host=url.query["host"], user="postgres",
                         autocommit=True) as conn:  # fmt: skip
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    bench_url = url.set(database=name).render_as_string(hide_password=False)
    config = Config(os.path.join(os.path.dirname(__file__), "..", "alembic.ini"))
    config.attributes["database_url"] = bench_url
    command.upgrade(config, "head")
    with psycopg.connect(dbname=name, host=url.query["host"], user="postgres",
                         autocommit=True) as conn:  # fmt: skip
        # The upstream app's own table: not part of our schema, only the bench's.
        conn.execute("CREATE TABLE bench_caller_rows (id bigserial PRIMARY KEY, n int NOT NULL)")
    return bench_url


def bench_environment(database: str) -> dict[str, str]:
    """Point this process (and the environment returned for children) at a fresh bench
    database on the embedded server and at the embedded Redis."""
    from are_workers.config import get_settings
    from are_workers.embedded import ensure_broker_url
    from are_workers.models.engine import reset_engine

    env = dict(
        os.environ,
        ARE_DATABASE_URL=prepare_database(database),
        ARE_BROKER_URL=ensure_broker_url(),  # the same Redis for both modes
        ARE_LOG_LEVEL="WARNING",
        # URLs of the embedded services: development rules, said in the process environment
        ARE_ENVIRONMENT="development",
    )
    os.environ.update(env)
    get_settings.cache_clear()  # read before the bench database existed
    reset_engine()
    return env


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--batch", type=int, default=100, help="Jobs per caller transaction.")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument(
        "--lone", type=int, default=0, help="Also time this many lone jobs (commit to start)."
    )
    parser.add_argument("--child", choices=["bare", "ledger", "lone"])
    parser.add_argument("--caller-rows", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("ARE_LOG_LEVEL", "WARNING")
    if args.child:
        child(args.child, args.jobs, args.threads, args.batch, args.caller_rows)
        return

    env = bench_environment("are_bench")
    summary = []
    for scenario in args.scenarios.split(","):
        caller_rows, fixed_batch = SCENARIOS[scenario]
        batch = fixed_batch or args.batch
        rates: dict[str, list[float]] = {"bare": [], "ledger": []}
        for run in range(args.runs):
            for mode in ("bare", "ledger"):
                command = [
                    sys.executable, __file__, "--child", mode, "--jobs", str(args.jobs),
                    "--threads", str(args.threads), "--batch", str(batch),
                ]  # fmt: skip
                if caller_rows:
                    command.append("--caller-rows")
                out = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
                rate = json.loads(out.stdout.strip().splitlines()[-1])["jobs_per_s"]
                rates[mode].append(rate)
                print(f"{scenario:8} run {run + 1} {mode:6} {rate:8.0f} jobs/s", flush=True)
        bare, ours = statistics.median(rates["bare"]), statistics.median(rates["ledger"])
        summary.append((scenario, caller_rows, batch, bare, ours))
    print(f"\nmedians of {args.runs} runs, {args.jobs} jobs, {args.threads} threads:")
    for scenario, caller_rows, batch, bare, ours in summary:
        what = "caller row per job" if caller_rows else "queue only"
        print(
            f"  {scenario:8} {what:18} {batch:4} job(s)/txn  bare {bare:6.0f}  "
            f"full stack {ours:6.0f} jobs/s  ratio {ours / bare:5.2f}x"
        )
    print("goals: >= 0.8x batched, >= 0.7x at one job per caller transaction (caller1)")
    if args.lone:
        command = [sys.executable, __file__, "--child", "lone", "--jobs", str(args.lone),
                   "--threads", str(args.threads)]  # fmt: skip
        out = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
        lat = sorted(json.loads(out.stdout.strip().splitlines()[-1])["latencies_ms"])
        print(
            f"\nlone job, commit to start, idle stack ({len(lat)} jobs): median "
            f"{statistics.median(lat):.1f} ms, p95 {lat[int(0.95 * (len(lat) - 1))]:.1f} ms, "
            f"max {lat[-1]:.1f} ms"
        )

    print("\nautoscaler view with a 500-job backlog:")
    for row in autoscaler_figures(500):
        print(f"  queue={row['queue']} ready={row['ready']} oldest_age_s={row['oldest_age_s']:.2f}")


if __name__ == "__main__":
    main()
