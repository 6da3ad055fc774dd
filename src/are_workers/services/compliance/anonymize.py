"""What "anonymize this column" means in SQL, derived from each column's classification.

Why one module: retention (per column, per row) and erasure (per subject) must agree on what
an anonymized value is, and both must run as set-based ``UPDATE``s, so each strategy is an
SQL expression plus a predicate telling whether a row *still* holds data (which keeps
re-runs idempotent and gives exact counts).

A strategy the column cannot take is downgraded, never skipped: ``NULL`` on a NOT NULL
column (or one a CHECK constraint requires) becomes ``REDACT``; ``REDACT`` on a type that
cannot hold a marker becomes ``NULL`` if nullable, else deleting the row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Column,
    ColumnElement,
    Table,
    Text,
    and_,
    case,
    cast,
    false,
    func,
    literal,
    null,
    or_,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import JSONB

from are_workers.crypto import REDACTED
from are_workers.models.classification import (
    Anonymize,
    ColumnClassification,
    DataCategory,
    classification_of,
)

#: Columns erasure deliberately leaves in place, and why (a test keeps every entry justified).
ERASURE_EXEMPT: dict[tuple[str, str], str] = {
    ("email_suppressions", "email_blind_index"): (
        "A keyed hash kept to honour the person's objection to being contacted (Art. 21); "
        "it cannot be reversed to the address and is not linked to the erased candidate row."
    ),
}

_TEXT_TYPES = ("VARCHAR", "TEXT", "STRING")


def _is_text(column: Column[Any]) -> bool:
    return column.type.__class__.__name__.upper() in _TEXT_TYPES or (
        getattr(column.type, "python_type", None) is str
        and column.type.__class__.__name__ not in {"Enum", "UUID"}
    )


def _is_jsonb(column: Column[Any]) -> bool:
    return isinstance(column.type, JSONB) or column.type.__class__.__name__ == "JSONB"


def _null_is_refused(column: Column[Any]) -> bool:
    """NOT NULL, or a CHECK constraint that requires the value in some rows."""
    if not column.nullable:
        return True
    for constraint in column.table.constraints:
        if isinstance(constraint, CheckConstraint):
            sql = str(constraint.sqltext)
            if f"{column.name} IS NOT NULL" in sql or f"({column.name} IS NULL)" in sql:
                return True
    return False


def effective_strategy(column: Column[Any]) -> Anonymize:
    """The strategy actually applied to ``column`` (see the module docstring)."""
    cl = classification_of(column)
    assert cl is not None, f"{column} is not classified"
    assert cl.pii, f"{column} is not personal data"
    strategy = cl.anonymize
    if strategy is Anonymize.NULL and _null_is_refused(column):
        strategy = Anonymize.REDACT
    if strategy is Anonymize.REDACT and not (_is_text(column) or _is_jsonb(column)):
        strategy = Anonymize.DELETE_ROW if _null_is_refused(column) else Anonymize.NULL
    if strategy in {Anonymize.HASH, Anonymize.FAKE} and not _is_text(column):
        strategy = Anonymize.DELETE_ROW if _null_is_refused(column) else Anonymize.NULL
    return strategy


def _fake(column: Column[Any], cl: ColumnClassification) -> ColumnElement[Any]:
    if cl.category is DataCategory.CONTACT:
        return literal("erased+") + cast(column.table.c.id, Text) + literal("@invalid")
    return literal("Erased")


def _hash(column: Column[Any], salt: str) -> ColumnElement[Any]:
    return func.encode(
        func.sha256(func.convert_to(literal(salt) + cast(column, Text), "UTF8")), "hex"
    )


@dataclass(frozen=True)
class ColumnAnonymizer:
    """``value``: what to SET; ``holds_data``: rows where the column still holds data."""

    column: Column[Any]
    strategy: Anonymize
    value: ColumnElement[Any] | None  # None for DELETE_ROW
    holds_data: ColumnElement[bool]


def column_anonymizer(column: Column[Any], *, hash_salt: str = "") -> ColumnAnonymizer:
    cl = classification_of(column)
    assert cl is not None
    strategy = effective_strategy(column)
    value: ColumnElement[Any] | None
    holds: ColumnElement[bool]
    if strategy is Anonymize.NULL:
        value, holds = null(), column.is_not(None)
    elif strategy is Anonymize.REDACT and _is_jsonb(column):
        value = case(
            (column.is_(None), null()),  # an absent value stays absent (CHECKs may need it)
            (func.jsonb_typeof(column) == "array", cast(literal("[]"), JSONB)),
            else_=cast(literal("{}"), JSONB),
        )
        holds = and_(column.is_not(None), cast(column, Text).not_in(["{}", "[]"]))
    elif strategy is Anonymize.REDACT:
        # NULL stays NULL: a row updated for another column must not gain a value here
        # (``url`` of a portfolio item is set exactly when the item is a link).
        value = case((column.is_(None), null()), else_=type_coerce(literal(REDACTED), column.type))
        holds = and_(column.is_not(None), column != REDACTED)
    elif strategy is Anonymize.FAKE:
        value = _fake(column, cl)
        holds = column.is_distinct_from(value)
    elif strategy is Anonymize.HASH:
        value = _hash(column, hash_salt)
        holds = and_(column.is_not(None), ~column.regexp_match("^[0-9a-f]{64}$"))
    else:  # DELETE_ROW
        value = None
        holds = column.is_not(None) if column.nullable else literal(True)
    return ColumnAnonymizer(column, strategy, value, holds)


@dataclass(frozen=True)
class RowAnonymizer:
    """How to anonymize whole rows of a table: delete them, or SET these values."""

    table: Table
    columns: tuple[ColumnAnonymizer, ...]

    @property
    def deletes_rows(self) -> bool:
        return any(c.strategy is Anonymize.DELETE_ROW for c in self.columns)

    @property
    def values(self) -> dict[str, ColumnElement[Any]]:
        return {c.column.name: c.value for c in self.columns if c.value is not None}

    @property
    def holds_data(self) -> ColumnElement[bool]:
        if not self.columns:
            return false()
        return or_(*(c.holds_data for c in self.columns))


def row_anonymizer(
    table: Table, *, hash_salt: str = "", exempt: dict[tuple[str, str], str] | None = None
) -> RowAnonymizer:
    """Every PII column of ``table`` (minus exemptions), as one anonymization."""
    exempt = ERASURE_EXEMPT if exempt is None else exempt
    columns = tuple(
        column_anonymizer(column, hash_salt=hash_salt)
        for column in table.columns
        if (cl := classification_of(column)) is not None
        and cl.pii
        and (table.name, column.name) not in exempt
    )
    return RowAnonymizer(table, columns)


def file_reference_columns(table: Table) -> list[Column[Any]]:
    """Columns of ``table`` that point at ``files`` rows (their content is on storage)."""
    found: list[Column[Any]] = []
    for fk in table.foreign_key_constraints:
        if fk.elements[0].column.table.name != "files":
            continue
        found.extend(e.parent for e in fk.elements if e.parent.name != "organization_id")
    if table.name == "files":
        found.append(table.c.id)
    return found
