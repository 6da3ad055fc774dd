"""Encrypted columns accept only envelopes: existing plaintext is encrypted, then a CHECK each.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06

Why: a column classified ``encrypted`` was encrypted only if its writer remembered to, so a
plaintext value written by an upstream app or a worker went in silently. Now the models
write through ``EncryptedText`` and the database refuses anything that is not an envelope
(``docs/encryption.md``). NULL stays allowed, and ``messages.to_address`` also accepts the
erasure marker ``[redacted]``.

Upgrade, per column: the plaintext values (neither NULL, nor an envelope, nor the marker)
are encrypted in Python under the active key, the one the workers use
(``ARE_ENCRYPTION_KEYS`` / ``ARE_ENCRYPTION_KEY_ID``), in batches by id, each written back
with a compare-and-set; then the table is locked against writes (``SHARE ROW EXCLUSIVE``,
readers go on), what was written meanwhile is encrypted the same way, and the constraint is
added. With plaintext present and no key configured it stops before changing anything,
naming the columns and counts; with no plaintext it needs no key. Offline (``--sql``) it
emits the constraints only, which fail if plaintext is left.

Downgrade drops the constraints only: the values stay encrypted (the workers read them).

The envelope pattern and the column list are frozen here, as they were at this revision.

Later schema changes build on this revision (keep one Alembic head).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.runtime.migration")

ENVELOPE = (
    "^enc:v1:[A-Za-z0-9._-]{1,64}:([A-Za-z0-9_-]{4}){9,}"
    "([A-Za-z0-9_-]{2}==|[A-Za-z0-9_-]{3}=|[A-Za-z0-9_-]{4})$"
)
REDACTED = "[redacted]"
#: (table, column, accepts the erasure marker)
COLUMNS: tuple[tuple[str, str, bool], ...] = (
    ("candidates", "email", False),
    ("candidates", "phone", False),
    ("candidate_self_identifications", "gender", False),
    ("candidate_self_identifications", "ethnicity", False),
    ("candidate_self_identifications", "disability_status", False),
    ("candidate_self_identifications", "veteran_status", False),
    ("candidate_self_identifications", "age_band", False),
    ("data_subject_requests", "requester_email", False),
    ("messages", "to_address", True),
    ("mfa_factors", "secret", False),
)
BATCH = 1_000


def _check(column: str, redactable: bool) -> str:
    sql = f"{column} ~ '{ENVELOPE}'"
    return f"{sql} OR {column} = '{REDACTED}'" if redactable else sql


def _plaintext(column: str, redactable: bool) -> str:
    """Rows the constraint would refuse (a parameter ``:pattern`` holds ``ENVELOPE``)."""
    where = f'"{column}" IS NOT NULL AND "{column}" !~ :pattern'
    return f"{where} AND \"{column}\" <> '{REDACTED}'" if redactable else where


def _key_provider(counts: dict[str, int]) -> Any:
    from are_workers import crypto
    from are_workers.errors import ConfigurationError

    try:
        return crypto.get_key_provider()
    except ConfigurationError as exc:
        found = ", ".join(f"{n} in {col}" for col, n in counts.items())
        raise RuntimeError(
            f"0007 must encrypt plaintext values ({found}) before it can add the encrypted "
            "columns' CHECK constraints, and no encryption key is configured: set "
            "ARE_ENCRYPTION_KEYS and ARE_ENCRYPTION_KEY_ID (the keys the workers use) and "
            f"run the migration again. Nothing was changed. ({exc})"
        ) from None


def _encrypt_column(
    bind: sa.Connection, table: str, column: str, redactable: bool, provider: Any
) -> int:
    from are_workers import crypto

    select_sql = sa.text(
        f'SELECT id, "{column}" AS value FROM "{table}" '  # noqa: S608 - frozen names
        f"WHERE {_plaintext(column, redactable)} AND id > :after ORDER BY id LIMIT :n"
    )
    update_sql = sa.text(
        f'UPDATE "{table}" AS t SET "{column}" = v.new '  # noqa: S608 - frozen names
        "FROM unnest(CAST(:ids AS uuid[]), CAST(:old AS text[]), CAST(:new AS text[])) "
        f'AS v(id, old, new) WHERE t.id = v.id AND t."{column}" = v.old'
    )
    total, after = 0, uuid.UUID(int=0)
    while True:
        rows = bind.execute(select_sql, {"pattern": ENVELOPE, "after": after, "n": BATCH}).all()
        if not rows:
            return total
        new = [crypto.encrypt(r.value, table=table, column=column, provider=provider) for r in rows]
        total += bind.execute(
            update_sql,
            {"ids": [str(r.id) for r in rows], "old": [r.value for r in rows], "new": new},
        ).rowcount
        after = rows[-1].id


def _count_plaintext(bind: sa.Connection) -> dict[str, int]:
    counts = {}
    for table, column, redactable in COLUMNS:
        n = bind.execute(
            sa.text(
                f'SELECT count(*) FROM "{table}" '  # noqa: S608 - frozen names
                f"WHERE {_plaintext(column, redactable)}"
            ),
            {"pattern": ENVELOPE},
        ).scalar_one()
        if n:
            counts[f"{table}.{column}"] = int(n)
    return counts


def upgrade() -> None:
    if not op.get_context().as_sql:
        bind = op.get_bind()
        counts = _count_plaintext(bind)
        provider = _key_provider(counts) if counts else None
        started = time.perf_counter()
        encrypted = 0
        for table in dict.fromkeys(t for t, _, _ in COLUMNS):
            columns = [(c, r) for t, c, r in COLUMNS if t == table]
            if provider is not None:
                for column, redactable in columns:  # unlocked: the bulk of the work
                    encrypted += _encrypt_column(bind, table, column, redactable, provider)
            bind.execute(sa.text(f'LOCK TABLE "{table}" IN SHARE ROW EXCLUSIVE MODE'))
            late = {  # written while the bulk ran (or since the count)
                f"{table}.{c}": n
                for c, r in columns
                if (
                    n := bind.execute(
                        sa.text(f'SELECT count(*) FROM "{table}" WHERE {_plaintext(c, r)}'),  # noqa: S608
                        {"pattern": ENVELOPE},
                    ).scalar_one()
                )
            }
            if late:
                provider = provider or _key_provider(late)
                for column, redactable in columns:
                    encrypted += _encrypt_column(bind, table, column, redactable, provider)
            for column, redactable in columns:
                op.create_check_constraint(
                    op.f(f"ck_{table}_{column}_envelope"), table, _check(column, redactable)
                )
        if encrypted:
            seconds = time.perf_counter() - started
            log.info(
                "0007: encrypted %d plaintext values (%s) in %.1fs",
                encrypted,
                ", ".join(f"{n} in {col}" for col, n in counts.items()),
                seconds,
            )
        return
    for table, column, redactable in COLUMNS:
        op.create_check_constraint(
            op.f(f"ck_{table}_{column}_envelope"), table, _check(column, redactable)
        )


def downgrade() -> None:
    for table, column, _ in reversed(COLUMNS):
        op.drop_constraint(op.f(f"ck_{table}_{column}_envelope"), table, type_="check")
