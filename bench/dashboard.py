"""Dashboard page times on a million-row ledger, against the same pages on a small one.

Two databases of their own on the embedded Postgres (or ``--server-url``), migrated by
Alembic and filled by ``tests/dashboard/seed.py`` (``generate_series``): ``--rows`` ledger
rows (default 1,000,000) and a reference of ``--reference-rows`` (default 10,000). The real
app runs under Uvicorn in this process; each page is requested ``--repeat`` times after a
warm-up, with the viewer token, and the server's own time is read from the
``Server-Timing`` header the app sets (the request's time inside the app: queries and
rendering, not the HTTP client). Printed per page: median and p95 server milliseconds at
both sizes and the ratio large/small. Goal: every page under 200 ms at a million rows.

    python bench/dashboard.py --rows 1000000 --repeat 20
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("ARE_LOG_JSON", "false")
os.environ.setdefault("ARE_LOG_LEVEL", "WARNING")
os.environ.setdefault("ARE_ENVIRONMENT", "test")

TOKEN = "bench-viewer-" + "v" * 24


def _database(name: str, rows: int, server_url: str | None) -> tuple[str, list[uuid.UUID]]:
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text
    from tests.conftest import create_database
    from tests.dashboard.seed import seed_ledger

    from are_workers.embedded import ensure_database_url
    from are_workers.models.engine import make_engine

    url = create_database(server_url or ensure_database_url(), name)
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = url
    command.upgrade(config, "head")
    engine = make_engine(url, pool_size=1, application_name="bench-dashboard-seed")
    started = time.perf_counter()
    with engine.begin() as conn:
        orgs = seed_ledger(conn, rows)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    print(f"seeded {rows:,} ledger rows in {time.perf_counter() - started:.0f}s", file=sys.stderr)
    engine.dispose()
    return url, orgs


def _pages(url: str, orgs: list[uuid.UUID]) -> dict[str, str]:
    from sqlalchemy import text

    from are_workers.models.engine import make_engine

    engine = make_engine(url, pool_size=1, application_name="bench-dashboard-pick")
    with engine.connect() as conn:
        job = conn.execute(
            text("SELECT id FROM task_runs WHERE status = 'dead' ORDER BY created_at DESC LIMIT 1")
        ).scalar_one()
        cursor = conn.execute(
            text("SELECT created_at, id FROM task_runs ORDER BY created_at DESC, id DESC "
                 "OFFSET 500 LIMIT 1")
        ).one()  # fmt: skip
    engine.dispose()
    after = urllib.parse.quote(f"{cursor.created_at.isoformat()}|{cursor.id}")
    return {
        "queues": "/queues",
        "workers": "/workers",
        "jobs": "/jobs",
        "jobs, page 11 (keyset)": f"/jobs?after={after}",
        "jobs by status=dead": "/jobs?status=dead",
        "jobs by actor": "/jobs?actor=matching.match_job",
        "jobs by organization": f"/jobs?org={orgs[0]}",
        "jobs by org + status + day": f"/jobs?org={orgs[1]}&status=failed&since="
        + urllib.parse.quote(
            time.strftime("%Y-%m-%dT00:00:00+00:00", time.gmtime(time.time() - 86400 * 7))
        ),
        "job": f"/jobs/{job}",
        "bulk replay preview (all)": "/jobs/bulk-replay",
        "schedules": "/schedules",
        "compliance": "/compliance",
    }


def _time_pages(url: str, orgs: list[uuid.UUID], repeat: int) -> dict[str, dict[str, float]]:
    from tests.dashboard.conftest import KEY, free_port, serve

    from are_workers.config import get_settings
    from are_workers.dashboard.access import Access
    from are_workers.dashboard.app import create_app
    from are_workers.models.engine import make_engine

    engine = make_engine(url, pool_size=4, application_name="bench-dashboard")
    access = Access(key=KEY, viewer_token=TOKEN, operator_token="bench-operator-" + "o" * 24)
    port = free_port()
    server, thread = serve(create_app(get_settings(), engine, access), port)
    out: dict[str, dict[str, float]] = {}
    try:
        for name, path in _pages(url, orgs).items():
            samples = []
            for i in range(repeat + 2):
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {TOKEN}"}
                )
                with urllib.request.urlopen(request, timeout=60) as response:
                    assert response.status == 200, (name, response.status)
                    response.read()
                    timing = response.headers["server-timing"]
                if i >= 2:  # warm-up: connections, plans, template compilation
                    samples.append(float(timing.split("dur=")[1]))
            samples.sort()
            out[name] = {
                "median_ms": statistics.median(samples),
                "p95_ms": samples[max(0, int(len(samples) * 0.95) - 1)],
            }
    finally:
        server.should_exit = True  # type: ignore[attr-defined]
        thread.join(timeout=10)
        engine.dispose()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--reference-rows", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--server-url", default=None)
    parser.add_argument("--keep", action="store_true", help="Keep the databases afterwards.")
    parser.add_argument("--json", action="store_true", help="Print one JSON document.")
    args = parser.parse_args()

    from tests.conftest import drop_database

    from are_workers.embedded import ensure_database_url

    server = args.server_url or ensure_database_url()
    names = {
        "large": f"bench_dashboard_{args.rows}",
        "small": f"bench_dashboard_{args.reference_rows}",
    }
    results: dict[str, dict[str, dict[str, float]]] = {}
    try:
        for size, rows in (("small", args.reference_rows), ("large", args.rows)):
            url, orgs = _database(names[size], rows, server)
            results[size] = _time_pages(url, orgs, args.repeat)
    finally:
        if not args.keep:
            for name in names.values():
                drop_database(server, name)

    report: dict[str, Any] = {
        "rows": args.rows,
        "reference_rows": args.reference_rows,
        "repeat": args.repeat,
        "cpus": os.cpu_count(),
        "pages": {},
    }
    for page, large in results["large"].items():
        small = results["small"][page]
        report["pages"][page] = {
            "large": large,
            "small": small,
            "ratio": large["median_ms"] / small["median_ms"] if small["median_ms"] else None,
        }
    worst = max(p["large"]["p95_ms"] for p in report["pages"].values())
    report["goal_met"] = worst < 200.0
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(
        f"Server time per page (ms, median / p95 of {args.repeat}); "
        f"{args.rows:,} vs {args.reference_rows:,} ledger rows; {os.cpu_count()} CPUs"
    )
    print(f"{'page':32} {'large':>16} {'small':>16} {'ratio':>7}")
    for page, p in report["pages"].items():
        large, small = p["large"], p["small"]
        print(f"{page:32} {large['median_ms']:7.1f} / {large['p95_ms']:6.1f} "
              f"{small['median_ms']:7.1f} / {small['p95_ms']:6.1f} {p['ratio']:7.2f}")  # fmt: skip
    print(f"worst p95 at {args.rows:,} rows: {worst:.1f} ms "
          f"({'under' if report['goal_met'] else 'OVER'} the 200 ms goal)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
