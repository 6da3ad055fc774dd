"""Audit chain throughput: sealing and verification rows per second.

A database of its own; ``--rows`` audit rows (worker actions with refs, as the actors write
them) spread over ``--orgs`` organizations are inserted unsealed, then sealed by the real
sealer (per-organization lock, batched UPDATE through the append-only trigger) and verified
by the real verifier (recomputes every hash in seq order). Prints rows/s for both.

    python bench/audit_chain.py --rows 1000000 --orgs 4
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
    args = parser.parse_args(argv)

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
            for org in orgs:
                conn.execute(
                    text(
                        "INSERT INTO audit_log (organization_id, occurred_at, actor_type, action,"
                        " entity_type, entity_id, subject_ref, model_name, model_version,"
                        " input_refs, output_refs, task_run_id)"
                        " SELECT :o, now() - g * interval '1 millisecond', 'worker',"
                        " 'candidate.evaluated', 'ai_evaluation', gen_random_uuid(),"
                        " md5(g::text) || md5(g::text), 'scorer', '1.2',"
                        " jsonb_build_object('resume_sha256', md5(g::text)),"
                        " jsonb_build_object('score', g % 100), gen_random_uuid()"
                        " FROM generate_series(1, :n) AS g"
                    ),
                    {"o": org, "n": per_org},
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
        print(
            json.dumps(
                {
                    "rows": args.rows,
                    "organizations": args.orgs,
                    "seal_s": round(seal_s, 1),
                    "seal_rows_per_s": round(sealed / seal_s),
                    "verify_s": round(verify_s, 1),
                    "verify_rows_per_s": round(checked / verify_s),
                },
                indent=2,
            )
        )
    finally:
        engine.dispose()
        drop_database(args.server_url or url, "are_bench_audit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
