"""Erasure time for a subject with data in every module, among many other subjects.

A database of its own. ``--background`` subjects are seeded with a row in every table that
holds a candidate's data (the metadata-driven seeder of the erasure test), spread over two
organizations, then ``--subjects`` of them are erased one by one with the real erasure
(every ownership path, files on storage, erasure records, audit row, verification pass).
Prints the median and worst erasure time and the tables touched per subject.

    python bench/erasure.py --background 300 --subjects 10
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from retention_sweep import bench_database


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--background", type=int, default=300)
    parser.add_argument("--subjects", type=int, default=10)
    parser.add_argument("--server-url", default=None)
    args = parser.parse_args(argv)

    from sqlalchemy.orm import Session
    from tests.compliance.seed import seed_subject, unique_marker
    from tests.conftest import drop_database
    from tests.factories import make_org

    from are_workers.models.engine import make_engine
    from are_workers.services.compliance.erasure import erase_subject

    storage = Path(tempfile.mkdtemp(prefix="are-bench-storage-"))
    os.environ["ARE_STORAGE_DIR"] = str(storage)  # files are really deleted from here
    from are_workers.config import get_settings
    from are_workers.logs import configure_logging

    get_settings.cache_clear()
    configure_logging("WARNING", json=False)
    url = bench_database("are_bench_erasure", args.server_url)
    engine = make_engine(url, pool_size=2, application_name="are-bench")
    try:
        started = time.perf_counter()
        with Session(engine) as db:
            orgs = [make_org(db), make_org(db)]
            seeders = []
            for i in range(args.background):
                org = orgs[i % 2]
                previous = next((s for s in reversed(seeders) if s.organization_id == org.id), None)
                seeders.append(
                    seed_subject(
                        db,
                        org.id,
                        marker=unique_marker(),
                        email=f"person{i}@example.com",
                        storage_dir=storage,
                        context_from=previous,
                    )
                )
            db.commit()
        seeded_s = time.perf_counter() - started
        timings: list[float] = []
        tables: list[int] = []
        files: list[int] = []
        for seeder in seeders[: args.subjects]:
            with Session(engine) as db:
                started = time.perf_counter()
                outcome = erase_subject(db, seeder.organization_id, seeder.rows["candidates"]["id"])
                db.commit()
                timings.append(time.perf_counter() - started)
                assert outcome.residual == {}, outcome.residual
                tables.append(len(outcome.deleted) + len(outcome.anonymized))
                files.append(outcome.files_deleted)
        print(
            json.dumps(
                {
                    "background_subjects": args.background,
                    "tables_per_subject": len(seeders[0].rows),
                    "seed_s": round(seeded_s, 1),
                    "erased": len(timings),
                    "tables_erased_per_subject": statistics.median(tables),
                    "files_deleted_per_subject": statistics.median(files),
                    "erasure_median_ms": round(statistics.median(timings) * 1000),
                    "erasure_max_ms": round(max(timings) * 1000),
                },
                indent=2,
            )
        )
    finally:
        engine.dispose()
        drop_database(args.server_url or url, "are_bench_erasure")
    return 0


if __name__ == "__main__":
    sys.exit(main())
