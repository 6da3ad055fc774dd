"""Look for a subject's values anywhere in one organization's data: the erasure oracle.

Independent of the erasure code on purpose: it does not ask the PII registry which rows
belong to the subject, it searches every text and JSONB column of every tenant table for
the subject's values (decrypting encrypted columns), plus the files and vectors.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Column, Table, Text, cast, func, select, text
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeDecorator

from are_workers.models.base import Base
from are_workers.models.classification import classification_of


def _searchable(column: Column[Any]) -> str | None:
    type_ = column.type
    if isinstance(type_, TypeDecorator):  # EncryptedText: searched decrypted
        type_ = type_.impl_instance
    name = type_.__class__.__name__.upper()
    if name == "JSONB":
        return "jsonb"
    if name in {"VARCHAR", "TEXT", "STRING"}:
        return "text"
    return None


def find_values(db: Session, organization_id: uuid.UUID, needles: list[str]) -> dict[str, int]:
    """``{"table.column": rows}`` where any needle appears (case-insensitive)."""
    import are_workers.models  # noqa: F401

    lowered = [n.lower() for n in needles]
    patterns = [f"%{n}%" for n in lowered]
    found: dict[str, int] = {}
    for table in Base.metadata.sorted_tables:
        if "organization_id" not in table.c:
            continue
        for column in table.columns:
            kind = _searchable(column)
            if kind is None:
                continue
            cl = classification_of(column)
            if cl is not None and cl.encrypted:
                count = _encrypted_matches(db, table, column, organization_id, lowered)
            else:
                text_value = cast(column, Text) if kind == "jsonb" else column
                count = db.execute(
                    select(func.count())
                    .select_from(table)
                    .where(
                        table.c.organization_id == organization_id,
                        text_value.ilike(func.any(patterns)),
                    )
                ).scalar_one()
            if count:
                found[f"{table.name}.{column.name}"] = int(count)
    return found


def _encrypted_matches(
    db: Session, table: Table, column: Column[Any], organization_id: uuid.UUID, needles: list[str]
) -> int:
    values = db.execute(
        select(column).where(table.c.organization_id == organization_id, column.is_not(None))
    ).scalars()
    count = 0
    for value in values:
        plain = value or ""  # decrypted by the column's type
        if any(n in plain.lower() for n in needles):
            count += 1
    return count


def vectors_equal(db: Session, organization_id: uuid.UUID, vector: list[float]) -> int:
    return int(
        db.execute(
            text(
                "SELECT count(*) FROM embeddings WHERE organization_id = :o "
                "AND embedding = CAST(:v AS vector)"
            ),
            {"o": organization_id, "v": str(vector)},
        ).scalar_one()
    )


def row_counts(db: Session, organization_id: uuid.UUID) -> dict[str, int]:
    """Rows per tenant table in one organization (for exact before/after comparisons)."""
    out = {}
    for table in Base.metadata.sorted_tables:
        if "organization_id" in table.c:
            out[table.name] = int(
                db.execute(
                    select(func.count())
                    .select_from(table)
                    .where(table.c.organization_id == organization_id)
                ).scalar_one()
            )
    return out
