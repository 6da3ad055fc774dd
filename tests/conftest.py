"""Shared fixtures: a real Postgres (embedded pgserver unless ARE_TEST_DATABASE_URL is set),
migrated with Alembic, and a real Redis (embedded unless ARE_TEST_BROKER_URL is set).

Two tiers:
- in-process tests take ``db``: a Session inside a transaction, each test in a savepoint
  that is rolled back, so tests never see each other's rows;
- multi-process tests take ``isolated_database``: a database of their own, cloned from the
  migrated template, holding committed data that real worker processes can see.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ARE_ENVIRONMENT", "test")
os.environ.setdefault("ARE_DATA_DIR", f"/var/tmp/are-workers-test-{os.getuid()}")
os.environ.setdefault("ARE_LOG_JSON", "false")
#: Tests run on tiny.en for speed; one smoke test loads the default, base.
os.environ.setdefault("ARE_WHISPER_MODEL_PATH", "tiny.en")

import psycopg
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from are_workers.config import Settings, get_settings

ROOT = Path(__file__).resolve().parent.parent
#: Per test process, so concurrent runs (two developers, a helper and CI) never collide.
TEMPLATE_DB = f"are_test_template_{os.getpid()}"


def _admin_connect(url: str) -> psycopg.Connection:
    sa_url = make_url(url)
    kwargs: dict[str, object] = {"dbname": "postgres", "autocommit": True}
    if sa_url.host:
        kwargs["host"] = sa_url.host
    elif "host" in sa_url.query:
        kwargs["host"] = sa_url.query["host"]
    if sa_url.port:
        kwargs["port"] = sa_url.port
    kwargs["user"] = sa_url.username or "postgres"
    if sa_url.password:
        kwargs["password"] = sa_url.password
    return psycopg.connect(**kwargs)  # type: ignore[arg-type]


def create_database(server_url: str, name: str, *, template: str | None = None) -> str:
    """(Re)create database ``name`` on the server of ``server_url``; returns its URL."""
    with _admin_connect(server_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        suffix = f' TEMPLATE "{template}"' if template else ""
        conn.execute(f'CREATE DATABASE "{name}"{suffix}')
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_database(server_url: str, name: str) -> None:
    with _admin_connect(server_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def migrate(url: str) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = url
    command.upgrade(config, "head")


@pytest.fixture(scope="session")
def settings() -> Settings:
    return get_settings()


@pytest.fixture(scope="session")
def server_url(settings: Settings) -> str:
    """Any database URL on the test server (used to create per-test databases)."""
    from are_workers.embedded import ensure_database_url

    return os.environ.get("ARE_TEST_DATABASE_URL") or ensure_database_url(settings)


@pytest.fixture(scope="session")
def template_database_url(server_url: str) -> Iterator[str]:
    """A database migrated by Alembic (never create_all), cloned for multi-process tests."""
    url = create_database(server_url, TEMPLATE_DB)
    migrate(url)
    yield url
    drop_database(server_url, TEMPLATE_DB)


@pytest.fixture(scope="session")
def database_url(server_url: str, template_database_url: str) -> Iterator[str]:
    name = f"are_test_{os.getpid()}"
    url = create_database(server_url, name, template=TEMPLATE_DB)
    yield url
    drop_database(server_url, name)


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    from are_workers.models.engine import make_engine

    eng = make_engine(database_url, pool_size=2, application_name="are-tests")
    yield eng
    eng.dispose()


@pytest.fixture
def db(engine: Engine) -> Iterator[Session]:
    """A session whose every commit lands in a savepoint rolled back after the test."""
    connection = engine.connect()
    transaction = connection.begin()
    session = Session(bind=connection, join_transaction_mode="create_savepoint")
    try:
        yield session
    finally:
        session.close()
        transaction.rollback()
        connection.close()


@pytest.fixture
def isolated_database(server_url: str, template_database_url: str) -> Iterator[str]:
    """A fresh migrated database of its own, for tests that run real processes."""
    name = f"are_mp_{uuid.uuid4().hex[:12]}"
    url = create_database(server_url, name, template=TEMPLATE_DB)
    yield url
    drop_database(server_url, name)


@pytest.fixture(scope="session")
def broker_url(settings: Settings) -> str:
    from are_workers.embedded import ensure_broker_url

    return os.environ.get("ARE_TEST_BROKER_URL") or ensure_broker_url(settings)


@pytest.fixture
def clean_sql(engine: Engine) -> Iterator[None]:
    """For tests that must commit for real in the shared test database: truncate after."""
    yield
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE task_runs"))


@pytest.fixture(scope="session")
def embedding():  # type: ignore[no-untyped-def]
    """The real MiniLM embedder behind this process's micro-batcher (loaded once)."""
    from are_workers.services.embeddings import default_embedding_context

    return default_embedding_context()


UploadFn = Callable[..., Any]


@pytest.fixture
def upload(db: Session) -> UploadFn:
    """Store bytes as an upload would, and create the ``files`` row for a candidate."""
    import hashlib

    from are_workers.models.files import File, FilePurpose, FileStatus
    from are_workers.services import storage
    from tests.factories import make_candidate

    def _upload(org: Any, data: bytes | str | Path, *, candidate: Any = None,
                name: str | None = None) -> File:  # fmt: skip
        if isinstance(data, Path):
            name = name or data.name
            data = data.read_bytes()
        elif isinstance(data, str):
            data = data.encode()
        candidate = candidate or make_candidate(db, org)
        key = f"{org.id}/{uuid.uuid4()}"
        storage.write_bytes(key, data, org.id)
        file = File(
            organization_id=org.id,
            candidate_id=candidate.id,
            storage_key=key,
            original_filename=name or "resume.txt",
            purpose=FilePurpose.RESUME,
            size_bytes=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            status=FileStatus.UPLOADED,
        )
        db.add(file)
        db.flush()
        return file

    return _upload
