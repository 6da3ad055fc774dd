"""CI: on an empty database: ``upgrade head``, ``check``, ``downgrade base``, ``upgrade head``.

Why a script: it creates a throw-away database on the embedded server (or ARE_DATABASE_URL's
server), so the check never touches data.
"""

from __future__ import annotations

import sys
from pathlib import Path

import psycopg
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url

from are_workers.embedded import ensure_database_url

ROOT = Path(__file__).resolve().parent.parent
NAME = "are_migration_check"


def main() -> int:
    url = make_url(ensure_database_url())
    params = {"host": url.host or url.query.get("host"), "user": url.username or "postgres"}
    if url.port:
        params["port"] = url.port
    if url.password:
        params["password"] = url.password
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as conn:  # type: ignore[arg-type]
        conn.execute(f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{NAME}"')
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = url.set(database=NAME).render_as_string(hide_password=False)
    try:
        command.upgrade(config, "head")
        command.check(config)
        command.downgrade(config, "base")
        command.upgrade(config, "head")
    finally:
        with psycopg.connect(dbname="postgres", autocommit=True, **params) as conn:  # type: ignore[arg-type]
            conn.execute(f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)')
    print("migrations: upgrade head, check, downgrade base, upgrade head: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
