"""Which rows belong to a data subject: every ownership path, not only the shortest.

Why not just ``subject_tables``: it gives each table its *shortest* FK path to the subject,
but a row may belong to the subject through another one. A portfolio link item has no file,
so it reaches its candidate through ``portfolios``, not ``files``; following one path would
leave it behind. Erasure, export and the retention sweep's hold filter therefore take the
union over every ownership path (the same ownership rule as ``models/security.py``).
"""

from __future__ import annotations

import uuid
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, ForeignKeyConstraint, Select, Table, and_, select, union

from are_workers.models.classification import policy_of
from are_workers.models.security import (
    SUBJECT_ROOTS,
    SubjectKind,
    SubjectTable,
    _is_ownership,
    pii_columns,
    subject_tables,
)

#: More paths than this to one table would mean a cycle-like schema; stop there.
MAX_PATHS_PER_TABLE = 16


def _referenced(fk: ForeignKeyConstraint) -> Table:
    return fk.elements[0].column.table


def _ownership_parents(table: Table) -> list[ForeignKeyConstraint]:
    return sorted(
        (fk for fk in table.foreign_key_constraints if _is_ownership(fk, policy_of(table))),
        key=lambda fk: str(fk.name),
    )


@cache
def ownership_paths(kind: SubjectKind) -> dict[str, tuple[SubjectTable, ...]]:
    """Every table holding the subject's data → all its FK paths up to the subject's root."""
    entries = subject_tables(kind)
    root = SUBJECT_ROOTS[kind]
    out: dict[str, tuple[SubjectTable, ...]] = {}
    for entry in entries:
        paths = _paths_to(entry.table, root)
        pii = tuple(pii_columns(entry.table))
        out[entry.table.name] = tuple(
            SubjectTable(entry.table, hops, pii) for hops in sorted(paths, key=len)
        ) or (entry,)
    return out


def _paths_to(table: Table, root: str) -> list[tuple[ForeignKeyConstraint, ...]]:
    """Every simple ownership path from ``table`` up to ``root`` (depth-first)."""
    paths: list[tuple[ForeignKeyConstraint, ...]] = []
    stack: list[tuple[Table, tuple[ForeignKeyConstraint, ...], frozenset[str]]] = [
        (table, (), frozenset({table.name}))
    ]
    while stack and len(paths) < MAX_PATHS_PER_TABLE:
        current, hops, seen = stack.pop()
        if current.name == root:
            paths.append(hops)
            continue
        for fk in _ownership_parents(current):
            parent = _referenced(fk)
            if parent.name not in seen and parent.name != "organizations":
                stack.append((parent, (*hops, fk), seen | {parent.name}))
    return paths


def joined_path(entry: SubjectTable) -> tuple[Any, Any]:
    """``entry.table`` joined up its FK path, and the column naming the subject."""
    from_clause: Any = entry.table
    current = entry.table
    for fk in entry.hops[:-1]:
        parent = _referenced(fk)
        from_clause = from_clause.join(
            parent, and_(*(element.column == element.parent for element in fk.elements))
        )
        current = parent
    if not entry.hops:
        return from_clause, entry.table.c.id
    return from_clause, current.c[entry.subject_column]


def subject_rows(
    kind: SubjectKind,
    table_name: str,
    organization_id: uuid.UUID,
    subjects: uuid.UUID | Select[Any],
) -> Select[Any]:
    """``SELECT id`` of ``table_name`` rows belonging to the subject(s), over every path.

    ``subjects`` is one subject id, or a SELECT of several (the candidates under a hold).
    """
    selects = []
    for entry in ownership_paths(kind)[table_name]:
        from_clause, subject_column = joined_path(entry)
        condition: ColumnElement[bool] = (
            subject_column.in_(subjects)
            if isinstance(subjects, Select)
            else subject_column == subjects
        )
        selects.append(
            select(entry.table.c.id)
            .select_from(from_clause)
            .where(entry.table.c.organization_id == organization_id, condition)
        )
    if len(selects) == 1:
        return selects[0]
    return select(union(*selects).subquery().c[0])
