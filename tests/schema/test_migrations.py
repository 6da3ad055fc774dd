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


ENCRYPTED_AT_0007 = (
    ("candidates", "email"),
    ("candidates", "phone"),
    ("candidate_self_identifications", "gender"),
    ("candidate_self_identifications", "ethnicity"),
    ("candidate_self_identifications", "disability_status"),
    ("candidate_self_identifications", "veteran_status"),
    ("candidate_self_identifications", "age_band"),
    ("data_subject_requests", "requester_email"),
    ("messages", "to_address"),
    ("mfa_factors", "secret"),
)
PLAINTEXT_ROWS = 2_500  # more than two of the migration's batches


def _seed_plaintext_at_0006(url: str) -> dict[str, object]:
    """What an upstream app could write before 0007: plaintext in every encrypted column,
    next to an envelope, NULLs and the erasure marker that must be left as they are."""
    from are_workers import crypto

    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            org = conn.execute(
                text("INSERT INTO organizations (name, slug) VALUES ('o', 'o') RETURNING id")
            ).scalar_one()
            conn.execute(
                text(
                    "INSERT INTO candidates (organization_id, full_name, email, phone) "
                    "SELECT :o, 'C ' || i, 'c' || i || '@example.com', "
                    "CASE WHEN i % 2 = 0 THEN '+44 20 7946 ' || i END "
                    "FROM generate_series(1, :n) AS i"
                ),
                {"o": org, "n": PLAINTEXT_ROWS},
            )
            first = conn.execute(
                text("SELECT id FROM candidates WHERE email = 'c1@example.com'")
            ).scalar_one()
            envelope = crypto.encrypt("kept@example.com", table="candidates", column="email")
            kept = conn.execute(
                text(
                    "INSERT INTO candidates (organization_id, full_name, email) "
                    "VALUES (:o, 'Kept', :e) RETURNING id"
                ),
                {"o": org, "e": envelope},
            ).scalar_one()
            conn.execute(
                text(
                    "INSERT INTO candidate_self_identifications (organization_id, candidate_id, "
                    "gender, ethnicity, disability_status, veteran_status, age_band) "
                    "VALUES (:o, :c, 'female', 'white', 'no', 'no', '25-34')"
                ),
                {"o": org, "c": first},
            )
            conn.execute(
                text(
                    "INSERT INTO messages (organization_id, channel, direction, candidate_id, "
                    "to_address) VALUES (:o, 'email', 'outbound', :c, 'c1@example.com'), "
                    "(:o, 'email', 'outbound', :c, '[redacted]')"
                ),
                {"o": org, "c": first},
            )
            conn.execute(
                text(
                    "INSERT INTO data_subject_requests (organization_id, kind, subject_type, "
                    "candidate_id, subject_ref, deadline_at, requester_email) VALUES "
                    "(:o, 'access', 'candidate', :c, 'ref', now() + interval '30 days', "
                    "'c1@example.com')"
                ),
                {"o": org, "c": first},
            )
            user = conn.execute(
                text(
                    "INSERT INTO users (email, full_name) VALUES ('u@example.com', 'U') "
                    "RETURNING id"
                )
            ).scalar_one()
            conn.execute(
                text("INSERT INTO mfa_factors (user_id, kind, secret) VALUES (:u, 'totp', 'S3CR')"),
                {"u": user},
            )
    finally:
        engine.dispose()
    return {"first": first, "kept": kept, "envelope": envelope}


def _constraints(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return set(
                conn.execute(
                    text("SELECT conname FROM pg_constraint WHERE conname LIKE 'ck_%_envelope'")
                ).scalars()
            )
    finally:
        engine.dispose()


def test_0007_encrypts_existing_plaintext_in_batches_then_enforces_envelopes(
    empty_database: str,
) -> None:
    from sqlalchemy.exc import IntegrityError

    from are_workers import crypto

    config = _config(empty_database)
    command.upgrade(config, "0006")
    seeded = _seed_plaintext_at_0006(empty_database)
    command.upgrade(config, "0007")
    names = {f"ck_{t}_{c}_envelope" for t, c in ENCRYPTED_AT_0007}
    assert _constraints(empty_database) == names
    engine = create_engine(empty_database)
    try:
        with engine.connect() as conn:
            for table, column in ENCRYPTED_AT_0007:
                values = conn.execute(
                    text(f'SELECT "{column}" FROM "{table}" WHERE "{column}" IS NOT NULL')
                ).scalars()
                plain = [
                    crypto.decrypt(v, table=table, column=column) for v in values
                ]  # every one decrypts under the active key (the marker passes as is)
                assert plain and all(p for p in plain), f"{table}.{column}"
            emails = dict(
                conn.execute(  # type: ignore[arg-type]
                    text(
                        "SELECT full_name, email FROM candidates WHERE full_name IN ('C 7', 'Kept')"
                    )
                ).all()
            )
            assert crypto.decrypt(emails["C 7"], table="candidates", column="email") == (
                "c7@example.com"
            )
            assert emails["Kept"] == seeded["envelope"]  # an envelope is left untouched
            phones = conn.execute(
                text("SELECT count(phone) FROM candidates WHERE phone LIKE 'enc:v1:%'")
            ).scalar_one()
            assert phones == PLAINTEXT_ROWS // 2  # NULLs stay NULL
            marker = conn.execute(
                text("SELECT count(*) FROM messages WHERE to_address = '[redacted]'")
            ).scalar_one()
            assert marker == 1
            with pytest.raises(IntegrityError, match="ck_candidates_email_envelope"):
                conn.execute(text("UPDATE candidates SET email = 'x@example.com'"))
    finally:
        engine.dispose()

    command.downgrade(config, "0006")  # drops the constraints only
    assert _constraints(empty_database) == set()
    engine = create_engine(empty_database)
    try:
        with engine.connect() as conn:
            email = conn.execute(
                text("SELECT email FROM candidates WHERE id = :i"), {"i": seeded["first"]}
            ).scalar_one()
            assert crypto.decrypt(email, table="candidates", column="email") == "c1@example.com"
    finally:
        engine.dispose()
    command.upgrade(config, "head")  # nothing left to encrypt: no key needed, just the checks
    assert _constraints(empty_database) == names


def test_0007_without_a_key_refuses_and_changes_nothing(
    empty_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from are_workers import crypto
    from are_workers.config import get_settings

    config = _config(empty_database)
    command.upgrade(config, "0006")
    _seed_plaintext_at_0006(empty_database)
    monkeypatch.setenv("ARE_ENVIRONMENT", "production")  # production: no development key
    monkeypatch.delenv("ARE_ENCRYPTION_KEYS", raising=False)
    get_settings.cache_clear()
    crypto.set_key_provider(None)
    try:
        with pytest.raises(RuntimeError) as refused:
            command.upgrade(config, "0007")
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
        crypto.set_key_provider(None)
    message = str(refused.value)
    assert "no encryption key is configured" in message and "ARE_ENCRYPTION_KEYS" in message
    assert f"{PLAINTEXT_ROWS} in candidates.email" in message
    assert "Nothing was changed" in message
    engine = create_engine(empty_database)
    try:
        with engine.connect() as conn:
            version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
            plain = conn.execute(
                text("SELECT count(*) FROM candidates WHERE email LIKE '%@example.com'")
            ).scalar_one()
    finally:
        engine.dispose()
    assert version == "0006" and plain == PLAINTEXT_ROWS
    assert _constraints(empty_database) == set()
