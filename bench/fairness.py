"""Fair sharing: how long a small organization waits behind another's bulk upload.

Organization A enqueues ``--a-jobs`` (5,000) fixed-cost jobs (``system.sleep`` of
``--job-ms``), in caller transactions of 500; one second later B enqueues ``--b-jobs`` (20).
The real ``are-workers worker`` (supervisor + relay + one child of ``--threads`` threads)
runs them, once with the fair relay (round-robin across organizations, a capped broker
backlog: the defaults) and once with the relay before it (``ARE_RELAY_FAIR=false``: one
global order, no cap), alternating, in fresh worker processes. Worker start-up is not timed.

Every figure comes from the ledger's own timestamps (one clock, the database's): a job's
wait is ``started_at - created_at``; A's drain time runs from A's first enqueue to A's last
completion; throughput is all jobs over the time from the first enqueue to the last
completion. Goal: B's p95 wait under 5 % of A's drain time, throughput within 5 %.

    python bench/fairness.py --a-jobs 5000 --b-jobs 20 --job-ms 10 --threads 8 --runs 1
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

MODES = {
    "fair": {"ARE_RELAY_FAIR": "true"},  # the defaults: fair, broker backlog capped
    "fifo": {"ARE_RELAY_FAIR": "false"},  # the relay before fair sharing
}


def run_mode(mode: str, args: argparse.Namespace, base_env: dict[str, str], log: Any) -> dict:
    from sqlalchemy import text

    from are_workers import ledger
    from are_workers.models.engine import get_engine

    engine = get_engine()
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE task_runs"))
        a, b = (_organization(conn, name) for name in ("bulk-a", "small-b"))
    _flush_broker(base_env["ARE_BROKER_URL"])
    data_dir = tempfile.mkdtemp(prefix="are-bench-fair-")
    env = dict(base_env, ARE_DATA_DIR=data_dir, **MODES[mode])
    if mode == "fair" and args.backlog is not None:
        env["ARE_RELAY_BACKLOG"] = str(args.backlog)
    proc = subprocess.Popen(
        [sys.executable, "-m", "are_workers.cli.main", "worker", "--queues", "default",
         "--processes", "1", "--threads", str(args.threads)],
        env=env, stdout=log, stderr=log,
    )  # fmt: skip
    try:
        ready = os.path.join(data_dir, "run", "worker.ready")
        while not os.path.exists(ready):
            time.sleep(0.1)
        seconds = args.job_ms / 1000
        started = time.monotonic()
        for first in range(0, args.a_jobs, 500):
            with engine.begin() as conn:  # a bulk upload: one caller transaction per 500
                for _ in range(first, min(args.a_jobs, first + 500)):
                    ledger.enqueue(conn, "system.sleep", {"seconds": seconds}, organization_id=a)
        time.sleep(max(0.0, started + 1.0 - time.monotonic()))
        with engine.begin() as conn:
            for _ in range(args.b_jobs):
                ledger.enqueue(conn, "system.sleep", {"seconds": seconds}, organization_id=b)
        total = args.a_jobs + args.b_jobs
        while True:
            with engine.connect() as conn:
                counts = ledger.status_counts(conn)
            if (
                counts.get("succeeded", 0) + counts.get("failed", 0) + counts.get("dead", 0)
                >= total
            ):
                break
            time.sleep(0.25)
        if counts != {"succeeded": total}:
            raise RuntimeError(f"not every job succeeded: {counts}")
        with engine.connect() as conn:
            return _figures(conn, a, b)
    finally:
        proc.terminate()
        proc.wait()


def _organization(conn: Any, name: str) -> uuid.UUID:
    from sqlalchemy import text

    slug = f"{name}-{uuid.uuid4().hex[:8]}"
    return conn.execute(
        text("INSERT INTO organizations (name, slug) VALUES (:n, :s) RETURNING id"),
        {"n": name, "s": slug},
    ).scalar_one()


def _flush_broker(url: str) -> None:
    """Drop messages an earlier run left in the broker (their jobs were truncated)."""
    import redis

    client = redis.Redis.from_url(url)
    for key in client.scan_iter("dramatiq*"):
        client.delete(key)


def _figures(conn: Any, a: uuid.UUID, b: uuid.UUID) -> dict[str, float]:
    from sqlalchemy import text

    def waits(org: uuid.UUID) -> list[float]:
        return [
            float(w)
            for (w,) in conn.execute(
                text(
                    "SELECT EXTRACT(EPOCH FROM started_at - created_at) FROM task_runs "
                    "WHERE organization_id = :o"
                ),
                {"o": org},
            )
        ]

    span = conn.execute(
        text(
            """
            SELECT EXTRACT(EPOCH FROM max(finished_at) FILTER (WHERE organization_id = :a)
                                      - min(created_at) FILTER (WHERE organization_id = :a)),
                   EXTRACT(EPOCH FROM max(finished_at) - min(created_at)), count(*)
            FROM task_runs
            """
        ),
        {"a": a},
    ).one()
    b_waits = sorted(waits(b))
    return {
        "b_p50_s": statistics.median(b_waits),
        "b_p95_s": b_waits[max(0, round(0.95 * len(b_waits)) - 1)],
        "a_p50_s": statistics.median(waits(a)),
        "a_drain_s": float(span[0]),
        "jobs_per_s": int(span[2]) / float(span[1]),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--a-jobs", type=int, default=5000)
    parser.add_argument("--b-jobs", type=int, default=20)
    parser.add_argument("--job-ms", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--backlog", type=int, help="ARE_RELAY_BACKLOG of the fair mode.")
    parser.add_argument("--modes", default=",".join(MODES))
    args = parser.parse_args()

    from queue_overhead import bench_environment

    from are_workers.logs import configure_logging

    configure_logging("WARNING")
    env = bench_environment("are_bench_fairness")
    modes = args.modes.split(",")
    results: dict[str, list[dict[str, float]]] = {mode: [] for mode in modes}
    with open(os.path.join(tempfile.gettempdir(), "bench-fairness.log"), "ab") as log:
        for run in range(args.runs):
            for mode in modes:
                figures = run_mode(mode, args, env, log)
                results[mode].append(figures)
                print(
                    f"run {run + 1} {mode}: B p50 {figures['b_p50_s']:.3f}s "
                    f"p95 {figures['b_p95_s']:.3f}s; A p50 {figures['a_p50_s']:.2f}s, "
                    f"drain {figures['a_drain_s']:.2f}s; {figures['jobs_per_s']:.0f} jobs/s",
                    flush=True,
                )
    median = {
        mode: {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        for mode, runs in results.items()
    }
    print(f"\nmedians of {args.runs} run(s); {args.a_jobs} + {args.b_jobs} jobs of "
          f"{args.job_ms:g} ms, {args.threads} threads")  # fmt: skip
    for mode, m in median.items():
        print(
            f"  {mode:4}  B wait p50 {m['b_p50_s']:7.3f}s  p95 {m['b_p95_s']:7.3f}s   "
            f"A drain {m['a_drain_s']:6.2f}s   {m['jobs_per_s']:6.0f} jobs/s"
        )
    if set(median) != set(MODES):
        return
    fair, fifo = median["fair"], median["fifo"]
    share = fair["b_p95_s"] / fair["a_drain_s"]
    kept = fair["jobs_per_s"] / fifo["jobs_per_s"]
    print(f"fair: B's p95 wait = {share:.1%} of A's drain time (goal < 5%)")
    print(f"fair: throughput = {kept:.2f}x the FIFO relay's (goal >= 0.95x)")


if __name__ == "__main__":
    main()
