"""Key rotation: re-encrypt every ``encrypted`` column under the active key, in batches.

Why it can be set-based in SQL and safe to re-run: the key id is in clear in each envelope,
so ``split_part(value, ':', 3)`` finds what still uses an old key without decrypting; each
batch is re-encrypted in Python (only the application holds keys) and written back with a
compare-and-set (``WHERE value = old value``), so a value changed meanwhile is left for the
next run rather than overwritten. Before anything is touched, every key id in use must be
configured: a missing key stops the job with the key named, instead of failing halfway.

Self-identification columns are read under ``are_special_category_reader`` (the runtime
role has no SELECT on them), as the bias audit and exports do.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy import text
from sqlalchemy.orm import Session

from are_workers import crypto
from are_workers.crypto import ENVELOPE_PREFIX, KeyProvider, MissingKeyError
from are_workers.models.security import encrypted_columns

log = structlog.get_logger(__name__)

SPECIAL_CATEGORY_ROLE = "are_special_category_reader"
SPECIAL_CATEGORY_TABLES = frozenset({"candidate_self_identifications"})


@contextlib.contextmanager
def special_category_access(session: Session) -> Iterator[None]:
    """Read self-identification data: ``SET LOCAL ROLE`` for this transaction's reads only.

    The runtime role is a member of the reader role *without inheritance*, so no other
    code path can read these columns by accident; this one says so explicitly.
    """
    session.execute(text(f"SET LOCAL ROLE {SPECIAL_CATEGORY_ROLE}"))
    try:
        yield
    finally:
        session.execute(text("SET LOCAL ROLE NONE"))


def table_access(session: Session, table: str) -> contextlib.AbstractContextManager[None]:
    """Special-category access for the tables that need it, nothing for the others."""
    if table in SPECIAL_CATEGORY_TABLES:
        return special_category_access(session)
    return contextlib.nullcontext()


def key_usage(session: Session) -> dict[str, dict[str, int]]:
    """``{"table.column": {key id: values}}`` for every encrypted column."""
    usage: dict[str, dict[str, int]] = {}
    for table, column in encrypted_columns():
        with table_access(session, table):
            rows = session.execute(
                text(
                    f"SELECT split_part(\"{column}\", ':', 3) AS key_id, count(*) AS n "  # noqa: S608 - names from the metadata
                    f'FROM "{table}" WHERE "{column}" LIKE :prefix GROUP BY 1'
                ),
                {"prefix": ENVELOPE_PREFIX + "%"},
            ).all()
        if rows:
            usage[f"{table}.{column}"] = {r.key_id: int(r.n) for r in rows}
    return usage


@dataclass
class RotationResult:
    active_key_id: str
    rotated: dict[str, int] = field(default_factory=dict)
    skipped_changed: int = 0
    remaining: dict[str, dict[str, int]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "active_key_id": self.active_key_id,
            "rotated": self.rotated,
            "rows": sum(self.rotated.values()),
            "skipped_changed": self.skipped_changed,
            "remaining": self.remaining,
        }


def rotate(
    session: Session, *, batch_size: int | None = None, provider: KeyProvider | None = None
) -> RotationResult:
    """Re-encrypt everything not under the active key. Commits per batch."""
    from are_workers.config import get_settings

    provider = provider or crypto.get_key_provider()
    batch_size = batch_size or get_settings().key_rotation_batch_size
    active = provider.active_key_id
    usage = key_usage(session)
    known = set(provider.key_ids())
    missing = {
        kid: {col: n for col, ids in usage.items() for k, n in ids.items() if k == kid}
        for ids in usage.values()
        for kid in ids
        if kid not in known
    }
    if missing:
        kid, where = sorted(missing.items())[0]
        error = MissingKeyError(kid)
        detail = ", ".join(f"{n} in {col}" for col, n in sorted(where.items()))
        error.user_message = f"{error.user_message} Values under it: {detail}. Nothing was rotated."
        raise error
    result = RotationResult(active)
    for table, column in encrypted_columns():
        if not any(k != active for k in usage.get(f"{table}.{column}", {})):
            continue
        rotated = _rotate_column(session, table, column, provider, batch_size, result)
        if rotated:
            result.rotated[f"{table}.{column}"] = rotated
    result.remaining = {
        col: {k: n for k, n in ids.items() if k != active}
        for col, ids in key_usage(session).items()
        if any(k != active for k in ids)
    }
    session.commit()
    log.info("keys_rotated", **result.as_dict())
    return result


def _rotate_column(
    session: Session,
    table: str,
    column: str,
    provider: KeyProvider,
    batch_size: int,
    result: RotationResult,
) -> int:
    total = 0
    after = uuid.UUID(int=0)
    select_sql = text(
        f'SELECT id, "{column}" AS value FROM "{table}" '  # noqa: S608 - names from the metadata
        f'WHERE "{column}" LIKE :prefix AND split_part("{column}", \':\', 3) <> :active '
        "AND id > :after ORDER BY id LIMIT :n"
    )
    update_sql = text(
        f'UPDATE "{table}" AS t SET "{column}" = v.new '  # noqa: S608 - names from the metadata
        "FROM unnest(CAST(:ids AS uuid[]), CAST(:old AS text[]), CAST(:new AS text[])) "
        f'AS v(id, old, new) WHERE t.id = v.id AND t."{column}" = v.old'
    )
    while True:
        with table_access(session, table):
            rows = session.execute(
                select_sql,
                {
                    "prefix": ENVELOPE_PREFIX + "%",
                    "active": provider.active_key_id,
                    "after": after,
                    "n": batch_size,
                },
            ).all()
            if not rows:
                session.commit()
                return total
            new = [
                crypto.reencrypt(r.value, table=table, column=column, provider=provider)
                for r in rows
            ]
            changed = session.execute(
                update_sql,
                {"ids": [str(r.id) for r in rows], "old": [r.value for r in rows], "new": new},
            ).rowcount  # type: ignore[attr-defined]
        session.commit()
        total += int(changed)
        result.skipped_changed += len(rows) - int(changed)
        after = rows[-1].id
        if len(rows) < batch_size:
            return total
