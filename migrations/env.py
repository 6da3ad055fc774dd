"""Alembic environment.

Why these settings: migrations run while workers are live, so we take an advisory lock (two
deployers never migrate at once), set lock and statement timeouts (a blocked ALTER fails
fast instead of queueing every query behind it), and compare types and server defaults so
``alembic check`` catches any drift between models and migrations. Run-time indexes (the
reserved ``rt_`` prefix) and the monthly partitions of ``audit_log`` are skipped.
"""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import text

from are_workers.models import Base
from are_workers.models.audit import is_audit_partition
from are_workers.models.base import RUNTIME_INDEX_PREFIX
from are_workers.models.engine import make_engine

MIGRATION_LOCK_ID = 0x4152_4557  # "AREW"

config = context.config
target_metadata = Base.metadata


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    if type_ == "index" and name and name.startswith(RUNTIME_INDEX_PREFIX):
        return False
    return not (
        type_ == "table"
        and name
        and (name.startswith(RUNTIME_INDEX_PREFIX) or is_audit_partition(name))
    )


def strip_compliance_info(context: Any, revision: Any, directives: list[Any]) -> None:
    """Compliance metadata lives on the models (``info``), not in migration files."""
    from alembic.operations import ops

    def walk(op: Any) -> None:
        if isinstance(op, ops.CreateTableOp):
            op.kw.pop("info", None)
            op.info = {}
            for column in op.columns:
                if hasattr(column, "info"):
                    column.info = {}
        for child in getattr(op, "ops", []) or []:
            walk(child)

    for directive in directives:
        walk(directive.upgrade_ops)


def database_url() -> str:
    url = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url")
    if url:
        return str(url)
    from are_workers.embedded import ensure_database_url

    return ensure_database_url()


def run_migrations_offline() -> None:
    context.configure(
        url=database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        compare_type=True,
        compare_server_default=True,
        include_object=include_object,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    engine = None
    if connection is None:
        engine = make_engine(database_url(), pool_size=1, application_name="are-migrations")
        connection = engine.connect()
    try:
        connection.execute(text("SET lock_timeout = '10s'"))
        connection.execute(text("SET statement_timeout = '10min'"))
        connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": MIGRATION_LOCK_ID})
        connection.commit()
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            compare_type=True,
            compare_server_default=True,
            include_object=include_object,
            process_revision_directives=strip_compliance_info,
            transaction_per_migration=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()
        connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": MIGRATION_LOCK_ID})
        connection.commit()
    finally:
        if engine is not None:
            connection.close()
            engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
