"""No-op job throughput: our full stack vs bare Dramatiq, on the same Redis, in one run.

Full stack = enqueue as an INSERT in its own durable transaction (one per job, as an upstream
app does), the outbox relay, the claim UPDATE, the ledger middleware and its per-job
completion commit. Bare = ``actor.send`` per job and a plain Dramatiq worker with the
default middleware. Same process shape (1 process, --threads threads) for both. Each mode
runs in a fresh subprocess; modes alternate; medians of --runs are compared.

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
import threading
import time
import uuid


def run_bare(jobs: int, threads: int, broker_url: str) -> float:
    import dramatiq
    from dramatiq.brokers.redis import RedisBroker

    namespace = f"bench-{uuid.uuid4().hex[:8]}"
    broker = RedisBroker(url=broker_url, namespace=namespace)
    dramatiq.set_broker(broker)
    done = threading.Semaphore(0)

    @dramatiq.actor(broker=broker, queue_name="bench")
    def noop(n: int) -> None:
        done.release()

    worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=100)
    started = time.perf_counter()
    worker.start()
    for i in range(jobs):
        noop.send(i)
    for _ in range(jobs):
        done.acquire()
    elapsed = time.perf_counter() - started
    worker.stop()
    broker.flush_all()
    return jobs / elapsed


def run_ledger(jobs: int, threads: int, enqueue_batch: int) -> float:
    import dramatiq
    from sqlalchemy import text

    from are_workers import ledger
    from are_workers.broker import get_broker
    from are_workers.config import get_settings
    from are_workers.models.engine import get_engine
    from are_workers.relay import Relay
    from are_workers.tasks import system  # noqa: F401 - declares system.noop

    settings = get_settings()
    engine = get_engine()
    broker = get_broker()
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE task_runs"))
    broker.flush_all()
    relay = Relay(engine, broker, settings)
    worker = dramatiq.Worker(broker, queues={settings.queue_default}, worker_threads=threads,
                             worker_timeout=100)  # fmt: skip
    started = time.perf_counter()
    relay.start()
    worker.start()
    for first in range(0, jobs, enqueue_batch):
        with engine.begin() as conn:  # one durable caller transaction per batch
            for i in range(first, min(jobs, first + enqueue_batch)):
                ledger.enqueue(conn, "system.noop", {"n": i})
    while True:
        with engine.connect() as conn:
            left = conn.execute(
                text("SELECT count(*) FROM task_runs WHERE status <> 'succeeded'")
            ).scalar_one()
        if left == 0:
            break
        time.sleep(0.01)
    elapsed = time.perf_counter() - started
    worker.stop()
    relay.stop()
    return jobs / elapsed


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

    if mode == "bare":
        rate = run_bare(jobs, threads, ensure_broker_url())
    else:
        rate = run_ledger(jobs, threads, enqueue_batch)
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
        "--enqueue-batch", type=int, default=1,
        help="Jobs per caller transaction (1: every enqueue commits on its own).",
    )
    parser.add_argument("--child", choices=["bare", "ledger"])
    args = parser.parse_args()
    os.environ.setdefault("ARE_LOG_LEVEL", "WARNING")
    if args.child:
        child(args.child, args.jobs, args.threads, args.enqueue_batch)
        return

    env = dict(os.environ, ARE_DATABASE_URL=prepare_database(), ARE_LOG_LEVEL="WARNING")
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
    print(f"ratio full/bare      : {ours / bare:8.2f}x  (goal >= 0.5x, durable commits; "
          f"{args.enqueue_batch} job(s) per enqueue transaction)")
    os.environ["ARE_DATABASE_URL"] = env["ARE_DATABASE_URL"]
    print("\nautoscaler view with a 500-job backlog:")
    for row in autoscaler_figures(500):
        print(f"  queue={row['queue']} ready={row['ready']} oldest_age_s={row['oldest_age_s']:.2f}")


if __name__ == "__main__":
    main()
