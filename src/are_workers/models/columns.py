"""Column and constraint shapes shared by the domain modules.

Why a module of its own: tenant integrity is enforced the same way on ~70 tables, so the
composite keys are built by one function instead of being hand-written (and mistyped) in
each module. ``base.py`` stays the frozen foundation; this is the schema's own toolbox.

Tenant integrity, in one paragraph: every tenant-owned parent carries a unique key on
``(organization_id, id)`` (:func:`tenant_key`). A child references it with a composite
foreign key on ``(organization_id, parent_id)`` (:func:`tenant_fk`), so a row can never
point at another organization's row, whoever writes it (our workers, the ATS, psql). A
nullable reference uses ``ON DELETE SET NULL (parent_id)`` (PostgreSQL 15+), which clears
the reference but never the row's own ``organization_id``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import Enum as PyEnum
from functools import cache
from typing import Annotated, Any, Literal

from sqlalchemy import (
    CheckConstraint,
    Dialect,
    Enum,
    ForeignKeyConstraint,
    Text,
    TextClause,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import MappedColumn, mapped_column
from sqlalchemy.types import TypeDecorator

from are_workers import crypto
from are_workers.models.classification import Anonymize, DataCategory, not_pii, pii

#: ``NO ACTION`` (PostgreSQL's default) rather than ``RESTRICT`` for "must not be deleted
#: while referenced": it is checked at the end of the statement, so an organization's
#: cascading delete (which removes both rows, in any order) still succeeds.
OnDelete = Literal["CASCADE", "SET NULL", "NO ACTION"]

#: A reference to another row (indexed: every FK column is also a lookup or cascade path).
ref_id = Annotated[uuid.UUID, mapped_column(index=True, info=not_pii(DataCategory.TECHNICAL))]
opt_ref_id = Annotated[
    uuid.UUID | None, mapped_column(index=True, info=not_pii(DataCategory.TECHNICAL))
]
#: A reference whose lookups are served by a composite index that leads with it.
covered_ref_id = Annotated[uuid.UUID, mapped_column(info=not_pii(DataCategory.TECHNICAL))]
covered_opt_ref_id = Annotated[
    uuid.UUID | None, mapped_column(info=not_pii(DataCategory.TECHNICAL))
]
#: A soft reference to ``task_runs``: the ledger is pruned after 90 days, long before the
#: rows that point at it, and ``TRUNCATE task_runs`` must keep working, so no FK.
task_run_ref = Annotated[uuid.UUID | None, mapped_column(info=not_pii(DataCategory.TECHNICAL))]
#: A technical timestamp (processing milestones, not facts about a person).
opt_ts = Annotated[datetime | None, mapped_column(info=not_pii(DataCategory.TECHNICAL))]


@cache
def pg_enum(enum_cls: type[PyEnum], name: str) -> Enum:
    """A named PostgreSQL ENUM storing the members' *values* (what other languages write).

    Cached: every column using one enum shares one type object, so it is created once.
    """
    return Enum(
        enum_cls,
        name=name,
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )


def tenant_key() -> UniqueConstraint:
    """``UNIQUE (organization_id, id)``: the target of children's composite tenant FKs."""
    return UniqueConstraint("organization_id", "id")


def tenant_fk(column: str, parent: str, *, ondelete: OnDelete = "CASCADE") -> ForeignKeyConstraint:
    """``(organization_id, column) → parent (organization_id, id)``.

    ``SET NULL`` clears only ``column`` (never ``organization_id``, which is NOT NULL).
    """
    return ForeignKeyConstraint(
        ["organization_id", column],
        [f"{parent}.organization_id", f"{parent}.id"],
        ondelete=_action(column, ondelete),
    )


def member_fk(column: str, *, ondelete: OnDelete = "CASCADE") -> ForeignKeyConstraint:
    """``(organization_id, column) → organization_members (organization_id, user_id)``.

    For users acting inside a tenant (interviewers, note authors, hiring team): they must be
    members of *that* organization, not merely users of the platform.
    """
    return ForeignKeyConstraint(
        ["organization_id", column],
        ["organization_members.organization_id", "organization_members.user_id"],
        ondelete=_action(column, ondelete),
    )


def _action(column: str, ondelete: OnDelete) -> str | None:
    if ondelete == "SET NULL":
        return f"SET NULL ({column})"
    if ondelete == "NO ACTION":
        return None  # the default; spelled out it would differ from what PostgreSQL reflects
    return ondelete


def json_default(value: str = "{}") -> TextClause:
    """Server default for a JSONB column (``'{}'::jsonb`` / ``'[]'::jsonb``)."""
    return text(f"'{value}'::jsonb")


# --- encrypted columns -----------------------------------------------------------------------


class EncryptedText(TypeDecorator[str]):
    """``TEXT`` holding an AES-GCM envelope (``crypto.py``): what is bound is encrypted, what
    is read is decrypted.

    Why a type: it is the one write path of an ``encrypted`` column. Every ORM or Core
    statement that writes one (an object's attribute, ``insert().values()``, ``update()``)
    encrypts under the active key with ``table.column`` as associated data, whichever worker
    runs it; what bypasses it (raw SQL, another app writing plaintext) is refused by the
    column's CHECK (:func:`envelope_check`). The erasure marker passes as is, so set-based
    erasure can compare with it. A value that already is an envelope is refused rather than
    wrapped twice (key rotation rewrites envelopes with raw SQL, not through this type).

    Never compare the column with a value in SQL: random nonces make equal plaintexts
    differ (look candidates up by the blind index).
    """

    impl = Text
    cache_ok = True

    def __init__(self, table: str, column: str) -> None:
        super().__init__()
        self.table = table
        self.column = column

    @property
    def python_type(self) -> type[str]:
        return str

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None or value == crypto.REDACTED:
            return value
        if crypto.is_wellformed_envelope(value):
            raise ValueError(
                f"{self.table}.{self.column}: this value is already an encryption envelope; "
                "write the plaintext (the column encrypts it)"
            )
        return crypto.encrypt(value, table=self.table, column=self.column)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        return crypto.decrypt(value, table=self.table, column=self.column)


def encrypted_column(
    table: str,
    column: str,
    category: DataCategory,
    *,
    anonymize: Anonymize = Anonymize.NULL,
) -> MappedColumn[Any]:
    """A personal-data column stored encrypted; pair it with :func:`envelope_check`.

    Deferred: loading a row does not decrypt it, so a job that never reads the value neither
    holds the plaintext nor fails on a retired key.
    """
    return mapped_column(
        EncryptedText(table, column),
        deferred=True,
        info=pii(category, anonymize=anonymize, encrypted=True),
    )


def envelope_check_sql(column: str, *, redactable: bool = False) -> str:
    """The CHECK expression: an envelope, or (``redactable``) the erasure marker, or NULL."""
    sql = f"{column} ~ '{crypto.ENVELOPE_SQL_PATTERN}'"
    if redactable:
        sql = f"{sql} OR {column} = '{crypto.REDACTED}'"
    return sql


def envelope_check(column: str, *, redactable: bool = False) -> CheckConstraint:
    """``ck_<table>_<column>_envelope``: the column accepts only envelopes (and NULL).

    ``redactable`` for a column anonymized by REDACT, which erasure sets to the marker.
    """
    return CheckConstraint(
        envelope_check_sql(column, redactable=redactable), name=f"{column}_envelope"
    )
