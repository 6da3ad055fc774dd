"""Audit chain throughput: sealing and verification rows per second.

A database of its own; ``--rows`` audit rows (worker actions with refs, as the actors write
them) spread over ``--orgs`` organizations are inserted unsealed, then sealed by the real
sealer (per-organization lock, batched UPDATE through the append-only trigger) and verified
by the real verifier (recomputes every hash in seq order). Prints rows/s for both.

With ``--prune`` the rows are written into one month two years back, and the script then
times pruning them: the real ``audit_partitions.prune`` (policy checks, anchors, DETACH and
DROP of the month's partition) against the ``DELETE`` of the same rows through the guard
trigger, as ``are_audit_prune`` did before the table was partitioned (rolled back; the
VACUUM that a real DELETE leaves behind is not counted, so the ratio is conservative).

    python bench/audit_chain.py --rows 1000000 --orgs 4 [--prune]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from retention_sweep import bench_database


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--orgs", type=int, default=4)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--server-url", default=None)
    parser.add_argument("--prune", action="store_true", help="also time pruning the rows")
    args = parser.parse_args(argv)
    days_ago = 800 if args.prune else 0

    from sqlalchemy import text
    from sqlalchemy.orm import Session
    from tests.conftest import drop_database

    from are_workers.models.engine import make_engine
    from are_workers.services.compliance import audit_chain

    url = bench_database("are_bench_audit", args.server_url)
    engine = make_engine(url, pool_size=2, application_name="are-bench")
    try:
        with engine.begin() as conn:
            orgs = [
                conn.execute(
                    text("INSERT INTO organizations (name, slug) VALUES (:n, :n) RETURNING id"),
                    {"n": f"bench-{i}"},
                ).scalar_one()
                for i in range(args.orgs)
            ]
            per_org = args.rows // args.orgs
            conn.execute(  # the old month's partition, so rows don't wait in the default one
                text(
                    "SELECT are_audit_create_partition("
                    "((now() - make_interval(days => :d)) AT TIME ZONE 'UTC')::date)"
                ),
                {"d": days_ago},
            )
            for org in orgs:
                conn.execute(
                    text(
                        "INSERT INTO audit_log (organization_id, occurred_at, actor_type, action,"
                        " entity_type, entity_id, subject_ref, model_name, model_version,"
                        " input_refs, output_refs, task_run_id)"
                        " SELECT :o, date_trunc('month', now() - make_interval(days => :d))"
                        " + g * interval '1 millisecond', 'worker',"
                        " 'candidate.evaluated', 'ai_evaluation', gen_random_uuid(),"
                        " md5(g::text) || md5(g::text), 'scorer', '1.2',"
                        " jsonb_build_object('resume_sha256', md5(g::text)),"
                        " jsonb_build_object('score', g % 100), gen_random_uuid()"
                        " FROM generate_series(1, :n) AS g"
                    ),
                    {"o": org, "n": per_org, "d": days_ago},
                )
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE audit_log"))
        with Session(engine) as session:
            started = time.perf_counter()
            sealed = sum(audit_chain.seal_all(session, batch_size=args.batch).values())
            seal_s = time.perf_counter() - started
        with Session(engine) as session:
            started = time.perf_counter()
            checked = 0
            for org in orgs:
                report = audit_chain.verify(session, org)
                assert report.ok, report.first_broken
                checked += report.rows_checked
            verify_s = time.perf_counter() - started
        figures = {
            "rows": args.rows,
            "organizations": args.orgs,
            "seal_s": round(seal_s, 1),
            "seal_rows_per_s": round(sealed / seal_s),
            "verify_s": round(verify_s, 1),
            "verify_rows_per_s": round(checked / verify_s),
        }
        if args.prune:
            figures |= _time_pruning(engine, orgs, args.rows)
        print(json.dumps(figures, indent=2))
    finally:
        engine.dispose()
        drop_database(args.server_url or url, "are_bench_audit")
    return 0


def _time_pruning(engine, orgs: list, rows: int) -> dict[str, float]:  # type: ignore[no-untyped-def, type-arg]
    """Row DELETE (rolled back) vs dropping the partition, on the same rows."""
    from sqlalchemy import text
    from sqlalchemy.orm import Session

    from are_workers.services.compliance import audit_chain, audit_partitions

    with engine.connect() as conn:
        conn.execute(text("SET LOCAL are.audit_retention = 'on'"))  # as are_audit_prune did
        started = time.perf_counter()
        deleted = conn.execute(
            text("DELETE FROM audit_log WHERE occurred_at < now() - interval '400 days'")
        ).rowcount
        delete_s = time.perf_counter() - started
        conn.rollback()
    with Session(engine) as session:
        for org in orgs:  # let every organization's rows expire after 400 days
            session.execute(
                text(
                    "INSERT INTO retention_policies (organization_id, table_name, "
                    "retention_days) VALUES (:o, 'audit_log', 400)"
                ),
                {"o": org},
            )
        session.commit()
        started = time.perf_counter()
        result = audit_partitions.prune(session)
        drop_s = time.perf_counter() - started
        dropped = sum(sum(v.values()) for v in result.dropped.values())
        assert dropped == deleted == rows, (dropped, deleted, rows)
        audit_chain.seal_all(session)
        assert all(audit_chain.verify(session, org).ok for org in orgs)
    return {
        "delete_rows_s": round(delete_s, 2),
        "drop_partition_s": round(drop_s, 3),
        "drop_speedup": round(delete_s / drop_s, 1),
    }


if __name__ == "__main__":
    sys.exit(main())
