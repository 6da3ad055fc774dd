"""Fixtures of the compliance tests: the least-privilege runtime role, and a file store.

Workers and the scheduler must run as a role that is neither the owner nor a superuser
(migration 0003 creates ``are_runtime``). The tests log in as ``are_test_runtime``, a
member of it, exactly as a deployment's worker login would be.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from tests.conftest import _admin_connect

RUNTIME_LOGIN = "are_test_runtime"


@pytest.fixture(scope="session")
def runtime_login(server_url: str, template_database_url: str) -> str:
    """A LOGIN role in ``are_runtime`` (created once per server; roles are cluster-wide)."""
    with _admin_connect(server_url) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_roles WHERE rolname = %s", (RUNTIME_LOGIN,)
        ).fetchone()
        if not exists:
            # A concurrent test session may create it at the same moment.
            with contextlib.suppress(
                psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation
            ):
                conn.execute(f"CREATE ROLE {RUNTIME_LOGIN} LOGIN IN ROLE are_runtime")
    return RUNTIME_LOGIN


def as_runtime(url: str, login: str = RUNTIME_LOGIN) -> str:
    return make_url(url).set(username=login).render_as_string(hide_password=False)


@pytest.fixture
def runtime_url(isolated_database: str, runtime_login: str) -> str:
    return as_runtime(isolated_database, runtime_login)


@pytest.fixture
def owner_engine(isolated_database: str) -> Iterator[Engine]:
    from are_workers.models.engine import make_engine

    engine = make_engine(isolated_database, pool_size=2, application_name="are-compliance-owner")
    yield engine
    engine.dispose()


@pytest.fixture
def runtime_engine(runtime_url: str) -> Iterator[Engine]:
    from are_workers.models.engine import make_engine

    engine = make_engine(runtime_url, pool_size=2, application_name="are-compliance-runtime")
    yield engine
    engine.dispose()


@pytest.fixture
def storage_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Files on storage go to the test's own directory."""
    from are_workers.config import get_settings

    path = tmp_path / "storage"
    path.mkdir()
    monkeypatch.setenv("ARE_STORAGE_DIR", str(path))
    get_settings.cache_clear()
    yield path
    get_settings.cache_clear()
