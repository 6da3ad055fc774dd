"""The compliance registry: whose data each table holds, and how long each table keeps it.

Everything here is derived from ``Base.metadata`` (the classifications and table policies of
``models/classification.py``, and the foreign keys), never from a hand-kept list, so a table
added tomorrow is erased, exported, swept and mapped as soon as its columns are classified.

- :func:`subject_registry`: every table holding a data subject's data (a candidate's or a
  user's), each a :class:`SubjectTable` carrying *every* ownership path up to the subject's
  root row. Why every path, not only the shortest: a row may belong to the subject through
  another one. A portfolio link item has no file, so it reaches its candidate through
  ``portfolios``, not ``files``; following one path would leave it behind. Erasure, export
  and the retention sweep's hold filter therefore take the union over every path
  (:meth:`SubjectTable.row_ids`).
- :func:`retention_horizons`: each table's retention and the date its clock runs from (its
  own policy, or inherited from the parents whose deletion cascades to it);
  :func:`resolve_retention` applies the precedence (legal hold, then organization override,
  then column, then table default) to what :func:`load_retention_overrides` reads.
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache, cached_property
from types import MappingProxyType
from typing import Any, Literal

from sqlalchemy import (
    Column,
    ColumnElement,
    ForeignKeyConstraint,
    FromClause,
    MetaData,
    Select,
    Table,
    and_,
    select,
    union,
)
from sqlalchemy.orm import Session

from are_workers.models.classification import TablePolicy, classification_of, policy_of
from are_workers.models.privacy import LegalHold, LegalHoldScope, RetentionPolicy
from are_workers.models.security import column_classifications, pii_columns, schema_metadata

SubjectKind = Literal["candidate", "user"]

#: The root table and key of each kind of data subject.
SUBJECT_ROOTS: dict[SubjectKind, str] = {"candidate": "candidates", "user": "users"}

#: More paths than this to one table would mean a cycle-like schema; stop there.
MAX_PATHS_PER_TABLE = 16

#: Precedence of retention rules, highest first.
RETENTION_PRECEDENCE = ("legal_hold", "organization_override", "column", "table_default")

Hops = tuple[ForeignKeyConstraint, ...]


# --- ownership -------------------------------------------------------------------------------


def _referenced(fk: ForeignKeyConstraint) -> Table:
    return fk.elements[0].column.table


def _link_column(fk: ForeignKeyConstraint) -> Column[Any] | None:
    """The column of ``fk``'s table naming the parent row (not the tenant column).

    ``candidate_id`` in ``(organization_id, candidate_id) → candidates``, ``user_id`` in
    ``(organization_id, user_id) → organization_members``.
    """
    links = [e.parent for e in fk.elements if e.parent.name != "organization_id"]
    if len(fk.elements) == 1:
        return fk.elements[0].parent
    return links[0] if len(links) == 1 else None


def _is_ownership(fk: ForeignKeyConstraint, policy: TablePolicy | None) -> bool:
    """Does ``fk`` make the row part of the parent's data?

    Yes when deleting the parent deletes the row (CASCADE: the row cannot outlive its
    owner), or when the table names the FK's column as its subject. ``created_by``-style
    references (SET NULL) are attribution, not ownership.
    """
    link = _link_column(fk)
    if link is None:
        return False
    if policy is not None and policy.subject == link.name:
        return True
    return (fk.ondelete or "").upper() == "CASCADE"


def _ownership_parents(table: Table) -> list[ForeignKeyConstraint]:
    return sorted(
        (fk for fk in table.foreign_key_constraints if _is_ownership(fk, policy_of(table))),
        key=lambda fk: str(fk.name),
    )


@dataclass(frozen=True)
class OwnershipPath:
    """One chain of ownership FKs from ``table`` up to the subject's root table."""

    table: Table
    hops: Hops  # hops[0] belongs to ``table``; the last one references the root table

    @property
    def path(self) -> list[str]:
        """Table names from this table to the root (``["transcripts", ..., "candidates"]``)."""
        return [self.table.name, *(_referenced(fk).name for fk in self.hops)]

    @property
    def subject_column(self) -> str:
        """The column that names the subject on the last hop (or ``id`` on the root)."""
        if not self.hops:
            return "id"
        link = _link_column(self.hops[-1])
        assert link is not None
        return link.name

    @cached_property
    def joined(self) -> tuple[FromClause, ColumnElement[Any]]:
        """``table`` joined up the path, and the column naming the subject (built once)."""
        from_clause: FromClause = self.table
        current = self.table
        for fk in self.hops[:-1]:
            parent = _referenced(fk)
            from_clause = from_clause.join(
                parent, and_(*(element.column == element.parent for element in fk.elements))
            )
            current = parent
        return from_clause, current.c[self.subject_column]


@dataclass(frozen=True)
class SubjectTable:
    """A table holding a subject's data, with every ownership path up to the subject's root.

    ``paths[0]`` is the shortest (breadth-first, deterministic); ``hops``, ``path`` and
    ``subject_column`` describe it.
    """

    kind: SubjectKind
    table: Table
    paths: tuple[OwnershipPath, ...]
    pii: tuple[Column[Any], ...] = field(default=())

    @property
    def hops(self) -> Hops:
        return self.paths[0].hops

    @property
    def path(self) -> list[str]:
        return self.paths[0].path

    @property
    def subject_column(self) -> str:
        return self.paths[0].subject_column

    def row_ids(self, organization_id: uuid.UUID, subjects: uuid.UUID | Select[Any]) -> Select[Any]:
        """``SELECT id`` of this table's rows belonging to the subject(s), over every path.

        ``subjects`` is one subject id, or a SELECT of several (the candidates under a hold).
        """
        selects = []
        for path in self.paths:
            from_clause, subject_column = path.joined
            condition: ColumnElement[bool] = (
                subject_column.in_(subjects)
                if isinstance(subjects, Select)
                else subject_column == subjects
            )
            selects.append(
                select(self.table.c.id)
                .select_from(from_clause)
                .where(self.table.c.organization_id == organization_id, condition)
            )
        if len(selects) == 1:
            return selects[0]
        return select(union(*selects).subquery().c[0])


def _shortest_paths(root: Table, md: MetaData) -> dict[str, tuple[Table, Hops]]:
    """Every table reachable from ``root`` through ownership FKs, with its shortest path.

    Breadth-first from the root, in sorted order, so paths are deterministic.
    """
    found: dict[str, tuple[Table, Hops]] = {root.name: (root, ())}
    queue: deque[Table] = deque([root])
    children: dict[str, list[tuple[Table, ForeignKeyConstraint]]] = {}
    for table in sorted(md.sorted_tables, key=lambda t: t.name):
        for fk in sorted(table.foreign_key_constraints, key=lambda c: str(c.name)):
            if _is_ownership(fk, policy_of(table)):
                children.setdefault(_referenced(fk).name, []).append((table, fk))
    while queue:
        parent = queue.popleft()
        for child, fk in children.get(parent.name, []):
            if child.name in found:
                continue
            found[child.name] = (child, (fk, *found[parent.name][1]))
            queue.append(child)
    return found


def _paths_to(table: Table, root: str) -> list[Hops]:
    """Every simple ownership path from ``table`` up to ``root`` (depth-first)."""
    paths: list[Hops] = []
    stack: list[tuple[Table, Hops, frozenset[str]]] = [(table, (), frozenset({table.name}))]
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


def _subject_tables(kind: SubjectKind, md: MetaData) -> list[SubjectTable]:
    root = md.tables[SUBJECT_ROOTS[kind]]
    entries = []
    for table, shortest in _shortest_paths(root, md).values():
        others = [hops for hops in sorted(_paths_to(table, root.name), key=len) if hops != shortest]
        paths = tuple(OwnershipPath(table, hops) for hops in (shortest, *others))
        entries.append(SubjectTable(kind, table, paths, tuple(pii_columns(table))))
    return sorted(entries, key=lambda e: (len(e.hops), e.table.name))


@cache
def subject_registry(kind: SubjectKind) -> Mapping[str, SubjectTable]:
    """Every table holding the subject's data (of the models' metadata), by name, shortest
    path first."""
    return MappingProxyType({e.table.name: e for e in _subject_tables(kind, schema_metadata())})


def subject_tables(
    kind: SubjectKind = "candidate", metadata: MetaData | None = None
) -> list[SubjectTable]:
    """Every table holding the subject's data, shortest path first, then by name."""
    if metadata is None:
        return list(subject_registry(kind).values())
    return _subject_tables(kind, metadata)


def ownership_paths(kind: SubjectKind) -> dict[str, tuple[OwnershipPath, ...]]:
    """Every table holding the subject's data → all its FK paths up to the subject's root."""
    return {name: entry.paths for name, entry in subject_registry(kind).items()}


def subject_rows(
    kind: SubjectKind,
    table_name: str,
    organization_id: uuid.UUID,
    subjects: uuid.UUID | Select[Any],
) -> Select[Any]:
    """:meth:`SubjectTable.row_ids` for a caller holding a table name, not its entry."""
    return subject_registry(kind)[table_name].row_ids(organization_id, subjects)


def subject_pii_columns(
    kind: SubjectKind = "candidate", metadata: MetaData | None = None
) -> dict[str, list[str]]:
    """``{table: [pii column, ...]}`` of every table holding the subject's data."""
    return {
        entry.table.name: [c.name for c in entry.pii]
        for entry in subject_tables(kind, metadata)
        if entry.pii
    }


def subject_pii_select(entry: SubjectTable, subject_id: uuid.UUID) -> Select[Any]:
    """``SELECT id, <pii columns>`` of ``entry.table`` for one subject, up its shortest path."""
    table = entry.table
    columns = [table.c.id, *entry.pii] if "id" in table.c else list(entry.pii)
    from_clause, subject_column = entry.paths[0].joined
    return select(*columns).select_from(from_clause).where(subject_column == subject_id)


# --- retention -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetentionHorizon:
    """How long a table's rows live by default, and from which date."""

    table: str
    retention_days: int | None
    clock: str
    source: Literal["table", "inherited", "indefinite"]
    follows: tuple[str, ...] = ()  # cascade parents whose deletion ends this row
    column_days: Mapping[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        if self.source == "table":
            return f"{self.retention_days} days from {self.clock}"
        if self.source == "inherited":
            return "deleted with " + " / ".join(self.follows)
        return "kept until deleted by its owner"


def _cascade_parents(table: Table) -> tuple[str, ...]:
    return tuple(
        sorted(
            {
                _referenced(fk).name
                for fk in table.foreign_key_constraints
                if (fk.ondelete or "").upper() == "CASCADE"
                and _referenced(fk).name not in {"organizations", table.name}
            }
        )
    )


def retention_horizons(metadata: MetaData | None = None) -> dict[str, RetentionHorizon]:
    """Each table's default retention: its own policy, or its cascade parents'."""
    out: dict[str, RetentionHorizon] = {}
    for table in schema_metadata(metadata).sorted_tables:
        policy = policy_of(table)
        if policy is None:
            raise LookupError(f"table {table.name} has no retention policy")
        column_days = {
            name: cl.retention_days
            for name, cl in column_classifications(table).items()
            if cl.retention_days is not None
        }
        parents = _cascade_parents(table)
        if policy.retention_days is not None:
            source: Literal["table", "inherited", "indefinite"] = "table"
        elif parents:
            source = "inherited"
        else:
            source = "indefinite"
        out[table.name] = RetentionHorizon(
            table=table.name,
            retention_days=policy.retention_days,
            clock=policy.clock,
            source=source,
            follows=parents if source == "inherited" else (),
            column_days=column_days,
        )
    return out


@dataclass(frozen=True)
class RetentionOverrides:
    """An organization's retention context: its overrides and active legal holds."""

    by_table: Mapping[str, int] = field(default_factory=dict)
    by_category: Mapping[str, int] = field(default_factory=dict)
    held_tables: frozenset[str] = frozenset()
    organization_held: bool = False


@dataclass(frozen=True)
class ResolvedRetention:
    days: int | None  # None: nothing is deleted (held, or no retention)
    rule: str  # which rule of RETENTION_PRECEDENCE decided


def resolve_retention(
    table: Table, column: str | None, overrides: RetentionOverrides
) -> ResolvedRetention:
    """Apply the precedence: legal hold > organization override > column > table default.

    ``column=None`` resolves the row's retention (when the whole row is deleted).
    Candidate-scoped holds are per row and are applied by the sweep's query, not here.
    """
    if overrides.organization_held or table.name in overrides.held_tables:
        return ResolvedRetention(None, "legal_hold")
    if table.name in overrides.by_table:
        return ResolvedRetention(overrides.by_table[table.name], "organization_override")
    classification = classification_of(table.c[column]) if column is not None else None
    if classification is not None and classification.category.value in overrides.by_category:
        return ResolvedRetention(
            overrides.by_category[classification.category.value], "organization_override"
        )
    if classification is not None and classification.retention_days is not None:
        return ResolvedRetention(classification.retention_days, "column")
    policy = policy_of(table)
    return ResolvedRetention(policy.retention_days if policy else None, "table_default")


def load_retention_overrides(session: Session, organization_id: uuid.UUID) -> RetentionOverrides:
    """Read an organization's overrides and active (non-candidate) legal holds."""
    policies = session.scalars(
        select(RetentionPolicy).where(RetentionPolicy.organization_id == organization_id)
    ).all()
    holds = session.scalars(
        select(LegalHold).where(
            LegalHold.organization_id == organization_id, LegalHold.released_at.is_(None)
        )
    ).all()
    return RetentionOverrides(
        by_table={p.table_name: p.retention_days for p in policies if p.table_name},
        by_category={
            p.data_category: p.retention_days
            for p in policies
            if p.data_category and not p.table_name
        },
        held_tables=frozenset(
            h.table_name for h in holds if h.scope is LegalHoldScope.TABLE and h.table_name
        ),
        organization_held=any(h.scope is LegalHoldScope.ORGANIZATION for h in holds),
    )
