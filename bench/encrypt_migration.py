"""Migration 0007 throughput: plaintext values encrypted per second, against key rotation.

A database of its own on the embedded Postgres (or ``--server-url``), migrated by Alembic to
0006. ``--rows`` candidates get a plaintext email and phone (what an upstream app could
have written before 0007); ``alembic upgrade 0007`` then encrypts them in its batches and
adds the CHECK constraints. The reference, measured in the same run on the same rows: key
rotation (``services.compliance.keys.rotate``), which re-encrypts the same values under a
new key with the same batch size. Printed: values, seconds and values/s of each, and the
ratio migration / rotation.

    python bench/encrypt_migration.py --rows 100000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("ARE_LOG_JSON", "false")
os.environ.setdefault("ARE_LOG_LEVEL", "WARNING")

NAME = "are_bench_encrypt_migration"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--server-url", default=None)
    args = parser.parse_args(argv)

    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text
    from sqlalchemy.orm import Session
    from tests.conftest import create_database, drop_database

    from are_workers import crypto
    from are_workers.embedded import ensure_database_url
    from are_workers.models.engine import make_engine
    from are_workers.services.compliance.keys import rotate

    server = args.server_url or ensure_database_url()
    url = create_database(server, NAME)
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = url
    engine = make_engine(url, pool_size=2, application_name="are-bench")
    try:
        command.upgrade(config, "0006")
        with engine.begin() as conn:
            org = conn.execute(
                text("INSERT INTO organizations (name, slug) VALUES ('B', 'b') RETURNING id")
            ).scalar_one()
            conn.execute(
                text(
                    "INSERT INTO candidates (organization_id, full_name, email, phone) "
                    "SELECT :o, 'C ' || g, 'c' || g || '@example.com', '+44 20 7946 ' || g "
                    "FROM generate_series(1, :n) AS g"
                ),
                {"o": org, "n": args.rows},
            )
        values = 2 * args.rows
        started = time.perf_counter()
        command.upgrade(config, "0007")
        migration_s = time.perf_counter() - started

        current = crypto.get_key_provider()
        old_id = current.active_key_id
        both = crypto.StaticKeyProvider(
            {old_id: current.key(old_id), "bench-next": os.urandom(crypto.KEY_BYTES)},
            "bench-next",
        )
        with Session(engine) as session:
            started = time.perf_counter()
            result = rotate(session, batch_size=1_000, provider=both)
            rotation_s = time.perf_counter() - started
        assert sum(result.rotated.values()) == values, result.as_dict()
        report = {
            "values": values,
            "migration_0007": {
                "s": round(migration_s, 2),
                "values_per_s": round(values / migration_s),
            },
            "reference_key_rotation": {
                "s": round(rotation_s, 2),
                "values_per_s": round(values / rotation_s),
            },
            "ratio_migration_over_rotation_time": round(migration_s / rotation_s, 2),
        }
        print(json.dumps(report, indent=2))
    finally:
        engine.dispose()
        drop_database(server, NAME)
    return 0


if __name__ == "__main__":
    sys.exit(main())
