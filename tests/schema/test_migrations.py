"""The migration round trip CI relies on: upgrade head on an empty database, no drift
(``alembic check``, even with run-time ``rt_`` indexes present), downgrade base leaves
nothing behind, and upgrade head works again."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text

from tests.conftest import ROOT, create_database, drop_database


@pytest.fixture
def empty_database(server_url: str) -> Iterator[str]:
    name = f"are_mig_{uuid.uuid4().hex[:10]}"
    url = create_database(server_url, name)
    yield url
    drop_database(server_url, name)


def _config(url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = url
    return config


def _leftovers(url: str) -> dict[str, list[str]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            queries = {
                "tables": "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename <> 'alembic_version'",
                "types": "SELECT t.typname FROM pg_type t JOIN pg_namespace n ON "
                "n.oid = t.typnamespace WHERE n.nspname = 'public' AND t.typtype = 'e'",
                "functions": "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON "
                "n.oid = p.pronamespace WHERE n.nspname = 'public' AND p.proname LIKE 'are_%'",
            }
            return {key: list(conn.execute(text(sql)).scalars()) for key, sql in queries.items()}
    finally:
        engine.dispose()


def test_upgrade_check_downgrade_upgrade(empty_database: str) -> None:
    config = _config(empty_database)
    command.upgrade(config, "head")
    command.check(config)

    engine = create_engine(empty_database)
    try:
        with engine.begin() as conn:
            model_id = conn.execute(
                text(
                    "INSERT INTO embedding_models (name, version, dimension) "
                    "VALUES ('m', '1', 8) RETURNING id"
                )
            ).scalar_one()
            from are_workers.models.embeddings import runtime_index_ddl

            conn.execute(text(runtime_index_ddl(model_id, 8, concurrently=False)))
    finally:
        engine.dispose()
    command.check(config)  # run-time indexes are not drift

    command.downgrade(config, "base")
    assert _leftovers(empty_database) == {"tables": [], "types": [], "functions": []}
    command.upgrade(config, "head")
    assert len(_leftovers(empty_database)["tables"]) >= 68


def test_partitioning_the_audit_log_keeps_its_rows_and_their_chain(empty_database: str) -> None:
    """0004 moves existing audit rows into monthly partitions, and back on downgrade."""
    from sqlalchemy.orm import Session

    from are_workers.services.compliance import audit, audit_chain

    config = _config(empty_database)
    command.upgrade(config, "0003")
    engine = create_engine(empty_database)
    try:
        with Session(engine) as session:
            org = session.execute(
                text("INSERT INTO organizations (name, slug) VALUES ('o', 'o') RETURNING id")
            ).scalar_one()
            for i in range(3):
                audit.record(session, organization_id=org, action="a", output_refs={"i": i})
            session.execute(text("SET LOCAL session_replication_role = replica"))
            session.execute(  # one row of an old month, as if written long ago (owner bypass)
                text(
                    "UPDATE audit_log SET occurred_at = now() - interval '400 days' "
                    "WHERE output_refs->>'i' = '0'"
                )
            )
            session.commit()
            assert audit_chain.seal(session, org) == 3
        command.upgrade(config, "0004")
        with Session(engine) as session:
            partitions = session.execute(
                text("SELECT DISTINCT tableoid::regclass::text FROM audit_log")
            ).scalars()
            assert len(set(partitions) - {"audit_log_default"}) == 2  # old month, this month
            report = audit_chain.verify(session, org)
            assert report.ok and report.rows_checked == 3
        command.downgrade(config, "0003")
        with Session(engine) as session:
            assert audit_chain.verify(session, org).rows_checked == 3
    finally:
        engine.dispose()
