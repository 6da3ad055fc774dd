"""Retention sweep throughput: rows removed per second on a table of 1M expired rows.

A database of its own on the embedded Postgres (or ``--server-url``), migrated by Alembic.
One organization's ``file_access_log`` gets ``--rows`` rows past the table's 365-day
retention plus ``--keep`` recent ones; the real sweep (``services.compliance.retention``)
then deletes them in its set-based batches, one commit and one audit row per batch.
A second scenario times column retention: ``--rows`` rows 100 days old whose IP address
(90-day column retention) is anonymized in place. Printed: the plan (dry-run count) time,
the sweep time and rows/s, batches, and audit rows written.

    python bench/retention_sweep.py --rows 1000000 --batch 10000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("ARE_LOG_JSON", "false")
os.environ.setdefault("ARE_LOG_LEVEL", "WARNING")


def bench_database(name: str, server_url: str | None = None) -> str:
    """A fresh database migrated by Alembic on the embedded (or given) server; its URL."""
    from alembic import command
    from alembic.config import Config
    from tests.conftest import create_database

    from are_workers.embedded import ensure_database_url

    url = create_database(server_url or ensure_database_url(), name)
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = url
    command.upgrade(config, "head")
    return url


def _seed(engine, org_id: uuid.UUID, rows: int, days_ago: int) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import text

    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO file_access_log (organization_id, actor, action, ip_address, "
                "accessed_at) SELECT :o, 'worker', 'view', '203.0.113.7', "
                "now() - make_interval(days => :d) - g * interval '1 millisecond' "
                "FROM generate_series(1, :n) AS g"
            ),
            {"o": org_id, "n": rows, "d": days_ago},
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE file_access_log"))


def _timed_sweep(engine, org_id: uuid.UUID, batch: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    from sqlalchemy import text
    from sqlalchemy.orm import Session

    from are_workers.config import Settings
    from are_workers.services.compliance.retention import plan, sweep

    settings = Settings(retention_batch_size=batch, retention_breaker_min_rows=10**9)
    with Session(engine) as session:
        started = time.perf_counter()
        planned = plan(session, org_id)
        plan_s = time.perf_counter() - started
        session.rollback()
        started = time.perf_counter()
        result = sweep(session, org_id, settings=settings)
        sweep_s = time.perf_counter() - started
        audits = session.execute(
            text("SELECT count(*) FROM audit_log WHERE action LIKE 'retention.%'")
        ).scalar_one()
    rows = sum(result.counts.values())
    return {
        "planned": sum(planned.counts.values()),
        "plan_s": round(plan_s, 2),
        "rows": rows,
        "sweep_s": round(sweep_s, 2),
        "rows_per_s": round(rows / sweep_s),
        "batches": result.batches,
        "audit_rows": int(audits),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--keep", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--server-url", default=None)
    args = parser.parse_args(argv)

    from sqlalchemy import text
    from tests.conftest import drop_database

    from are_workers.models.engine import make_engine

    url = bench_database("are_bench_retention", args.server_url)
    engine = make_engine(url, pool_size=2, application_name="are-bench")
    try:
        with engine.begin() as conn:
            org_id = conn.execute(
                text(
                    "INSERT INTO organizations (name, slug) VALUES ('Bench', 'bench') RETURNING id"
                )
            ).scalar_one()
        started = time.perf_counter()
        _seed(engine, org_id, args.rows, 400)
        _seed(engine, org_id, args.keep, 10)
        seeded = time.perf_counter() - started
        delete = _timed_sweep(engine, org_id, args.batch)
        _seed(engine, org_id, args.rows, 100)
        anonymize = _timed_sweep(engine, org_id, args.batch)
        report = {
            "rows_seeded_s": round(seeded, 1),
            "delete_expired_rows": delete,
            "anonymize_expired_column": anonymize,
            "batch": args.batch,
        }
        print(json.dumps(report, indent=2))
    finally:
        engine.dispose()
        drop_database(args.server_url or url, "are_bench_retention")
    return 0


if __name__ == "__main__":
    sys.exit(main())
