"""No-op job throughput: our full stack vs bare Dramatiq, on the same Redis, in one run.

Full stack = enqueue as INSERTs in durable caller transactions (``--enqueue-batch`` jobs
each), the outbox relay, the claim, the ledger middleware and the completion commit, with
the real ``are-workers worker`` (supervisor + relay + one child of --threads threads).
Bare = ``actor.send`` per job to the ``dramatiq`` CLI worker (1 process, --threads threads,
default middleware). Same Redis. Worker start-up is not timed. Each mode runs in a fresh
subprocess; modes alternate; medians of --runs are compared.

Also prints the ledger's per-queue depth and the age of the oldest ready job (what an
autoscaler reads), measured with a backlog in place.

    python bench/queue_overhead.py --jobs 2000 --runs 5 --threads 8
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

HERE = os.path.dirname(os.path.abspath(__file__))


def run_bare(jobs: int, threads: int, broker_url: str, log) -> float:  # type: ignore[no-untyped-def]
    """Bare Dramatiq: its own CLI worker process, ``actor.send`` per job."""
    import redis

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

        started = time.perf_counter()
        for i in range(jobs):
            bare_actors.noop.send(i)
        while int(client.get("bench:done") or 0) < jobs:
            time.sleep(0.005)
        return jobs / (time.perf_counter() - started)
    finally:
        proc.terminate()
        proc.wait()


def run_ledger(jobs: int, threads: int, enqueue_batch: int, log) -> float:  # type: ignore[no-untyped-def]
    """Full stack: ``are-workers worker`` (supervisor + relay + one child), ledger enqueues."""
    from sqlalchemy import text

    from are_workers import ledger
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
        started = time.perf_counter()
        for first in range(0, jobs, enqueue_batch):
            with engine.begin() as conn:  # one durable caller transaction per batch
                for i in range(first, min(jobs, first + enqueue_batch)):
                    ledger.enqueue(conn, "system.noop", {"n": i})
        finished = 0
        while finished < jobs:
            finished += sum(1 for _ in listener.notifies(timeout=1.0))
        elapsed = time.perf_counter() - started
        with engine.connect() as conn:
            statuses = ledger.status_counts(conn)
        if statuses != {"succeeded": jobs}:
            raise RuntimeError(f"not every job succeeded: {statuses}")
        return jobs / elapsed
    finally:
        listener.close()
        proc.terminate()
        proc.wait()


def _listen(engine, channel: str):  # type: ignore[no-untyped-def]
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


def child(mode: str, jobs: int, threads: int, enqueue_batch: int) -> None:
    from are_workers.embedded import ensure_broker_url
    from are_workers.logs import configure_logging

    configure_logging("WARNING")  # the same quiet logging for both modes

    with open(os.path.join(tempfile.gettempdir(), f"bench-{mode}.log"), "ab") as log:
        if mode == "bare":
            rate = run_bare(jobs, threads, ensure_broker_url(), log)
        else:
            rate = run_ledger(jobs, threads, enqueue_batch, log)
    print(json.dumps({"mode": mode, "jobs_per_s": rate}))


def prepare_database() -> str:
    """A dedicated, migrated database on the embedded server."""
    import psycopg
    from alembic import command
    from alembic.config import Config
    from sqlalchemy.engine import make_url

    from are_workers.embedded import ensure_database_url

    url = make_url(ensure_database_url())
    with psycopg.connect(dbname="postgres", host=url.query["host"], user="postgres",
                         autocommit=True) as conn:  # fmt: skip
        conn.execute("DROP DATABASE IF EXISTS are_bench WITH (FORCE)")
        conn.execute("CREATE DATABASE are_bench")
    bench_url = url.set(database="are_bench").render_as_string(hide_password=False)
    config = Config(os.path.join(os.path.dirname(__file__), "..", "alembic.ini"))
    config.attributes["database_url"] = bench_url
    command.upgrade(config, "head")
    return bench_url


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument(
        "--enqueue-batch",
        type=int,
        default=1,
        help="Jobs per caller transaction (1: every enqueue commits on its own).",
    )
    parser.add_argument("--child", choices=["bare", "ledger"])
    args = parser.parse_args()
    os.environ.setdefault("ARE_LOG_LEVEL", "WARNING")
    if args.child:
        child(args.child, args.jobs, args.threads, args.enqueue_batch)
        return

    from are_workers.embedded import ensure_broker_url

    env = dict(
        os.environ,
        ARE_DATABASE_URL=prepare_database(),
        ARE_BROKER_URL=ensure_broker_url(),  # the same Redis for both modes
        ARE_LOG_LEVEL="WARNING",
        # URLs of the embedded services: development rules, said in the process environment
        ARE_ENVIRONMENT="development",
    )
    rates: dict[str, list[float]] = {"bare": [], "ledger": []}
    for run in range(args.runs):
        for mode in ("bare", "ledger"):
            out = subprocess.run(
                [sys.executable, __file__, "--child", mode, "--jobs", str(args.jobs),
                 "--threads", str(args.threads), "--enqueue-batch", str(args.enqueue_batch)],
                env=env, capture_output=True, text=True, check=True,
            )  # fmt: skip
            rate = json.loads(out.stdout.strip().splitlines()[-1])["jobs_per_s"]
            rates[mode].append(rate)
            print(f"run {run + 1} {mode:6} {rate:8.0f} jobs/s", flush=True)
    bare, ours = statistics.median(rates["bare"]), statistics.median(rates["ledger"])
    print(f"\nmedian bare dramatiq : {bare:8.0f} jobs/s")
    print(f"median full stack    : {ours:8.0f} jobs/s")
    print(
        f"ratio full/bare      : {ours / bare:8.2f}x  (goal >= 0.5x, durable commits; "
        f"{args.enqueue_batch} job(s) per enqueue transaction)"
    )
    from are_workers.config import get_settings
    from are_workers.models.engine import reset_engine

    os.environ["ARE_DATABASE_URL"] = env["ARE_DATABASE_URL"]
    os.environ["ARE_ENVIRONMENT"] = "development"  # the embedded services, by URL
    get_settings.cache_clear()  # read before the bench database existed
    reset_engine()
    print("\nautoscaler view with a 500-job backlog:")
    for row in autoscaler_figures(500):
        print(f"  queue={row['queue']} ready={row['ready']} oldest_age_s={row['oldest_age_s']:.2f}")


if __name__ == "__main__":
    main()
