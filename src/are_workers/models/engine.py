"""Database engine and session configuration.

Why a module of its own: every process builds its engine once, after fork, from the one
``Settings``; sessions are short and explicit (``session_scope``) so a job's writes commit
or roll back together.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from are_workers.embedded import ensure_database_url


def make_engine(url: str, *, pool_size: int = 5, application_name: str = "are-workers") -> Engine:
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args={"application_name": application_name, "connect_timeout": 10},
    )

    @event.listens_for(engine, "connect")
    def _set_utc(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET TIME ZONE 'UTC'")
        dbapi_connection.commit()

    return engine


@lru_cache(maxsize=1)
def get_engine() -> Engine:
    """The process-wide engine (runtime role when configured). Created lazily, after fork."""
    from are_workers.config import get_settings

    settings = get_settings()
    return make_engine(
        settings.runtime_database_url or ensure_database_url(settings),
        pool_size=settings.db_pool_size,
    )


def session_factory(engine: Engine | None = None) -> sessionmaker[Session]:
    return sessionmaker(bind=engine or get_engine(), expire_on_commit=False)


@contextmanager
def session_scope(engine: Engine | None = None) -> Iterator[Session]:
    """One transaction: commit on success, roll back on error, always close."""
    session = session_factory(engine)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def reset_engine() -> None:
    """Forget the cached engine (after fork, or when tests switch databases)."""
    if get_engine.cache_info().currsize:
        get_engine().dispose(close=False)
    get_engine.cache_clear()
