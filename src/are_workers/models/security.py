"""Compliance queries over the schema's own metadata (GDPR, SOC 2).

Everything here is derived from ``Base.metadata`` (the column ``info`` classifications and
table policies), never from a hand-kept list, so a table added tomorrow is covered by
erasure, export, retention and the data map as soon as its columns are classified.

- :func:`subject_tables`: every table holding a data subject's data, with the FK path that
  links its rows to the subject (a candidate or a user) and its PII columns;
  :func:`subject_pii_select` turns one into a query for one subject.
- :func:`retention_horizons`: each table's retention and the date its clock runs from
  (its own policy, or inherited from the parents whose deletion cascades to it);
  :func:`resolve_retention` applies the precedence — legal hold, then organization
  override, then column, then table default.
- :func:`encrypted_columns`: the columns the application encrypts (AES-GCM).
- :data:`GLOBAL_TABLES`: the tables without a tenant, and why.
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Column, ForeignKeyConstraint, MetaData, Select, Table, and_, select

from are_workers.models.base import Base
from are_workers.models.classification import (
    ColumnClassification,
    DataCategory,
    TablePolicy,
    classification_of,
    policy_of,
)

SubjectKind = Literal["candidate", "user"]

#: The root table and key of each kind of data subject.
SUBJECT_ROOTS: dict[SubjectKind, str] = {"candidate": "candidates", "user": "users"}

#: Tables without a (mandatory) tenant, and why. A test keeps this list exact.
GLOBAL_TABLES: dict[str, str] = {
    "organizations": "The tenant registry itself.",
    "users": "One login per person across tenants (an agency recruiter works for several); "
    "membership is tenant-owned (organization_members).",
    "user_sessions": "Belongs to a login, not to a tenant.",
    "mfa_factors": "Belongs to a login, not to a tenant.",
    "plans": "The price catalogue every tenant chooses from.",
    "skills": "A shared taxonomy, so resumes and jobs of every tenant map to the same ids; "
    "holds no tenant or personal data.",
    "skill_aliases": "Part of the shared skills taxonomy.",
    "ai_model_versions": "Models are platform components shared by all tenants; every AI "
    "output row points at the version that produced it.",
    "embedding_models": "Embedding models are platform components shared by all tenants.",
    "task_runs": "The job ledger: tenant jobs carry organization_id, platform jobs (retention "
    "sweeps, relay housekeeping) have none.",
    "schedule_overrides": "Per-tenant overrides carry organization_id; NULL is a "
    "platform-wide pause set by operations.",
    "retention_runs": "Proof of retention enforcement: an organization's sweeps carry "
    "organization_id, the platform sweep's (the global tables) have none; kept by the "
    "platform sweep.",
}

#: Precedence of retention rules, highest first.
RETENTION_PRECEDENCE = ("legal_hold", "organization_override", "column", "table_default")


def _metadata(metadata: MetaData | None) -> MetaData:
    if metadata is None:
        import are_workers.models  # noqa: F401 - registers every table

        return Base.metadata
    return metadata


# --- tenancy ---------------------------------------------------------------------------------


def is_tenant_table(table: Table) -> bool:
    """Tenant-owned: a NOT NULL ``organization_id``."""
    column = table.c.get("organization_id")
    return column is not None and not column.nullable


def global_tables(metadata: MetaData | None = None) -> list[str]:
    return sorted(t.name for t in _metadata(metadata).sorted_tables if not is_tenant_table(t))


# --- classification ------------------------------------------------------------------------


def column_classifications(table: Table) -> dict[str, ColumnClassification]:
    out: dict[str, ColumnClassification] = {}
    for column in table.columns:
        classification = classification_of(column)
        if classification is not None:
            out[column.name] = classification
    return out


def pii_columns(table: Table) -> list[Column[Any]]:
    return [c for c in table.columns if (cl := classification_of(c)) is not None and cl.pii]


def encrypted_columns(metadata: MetaData | None = None) -> list[tuple[str, str]]:
    """``(table, column)`` pairs the application encrypts before writing."""
    return sorted(
        (table.name, column.name)
        for table in _metadata(metadata).sorted_tables
        for column in table.columns
        if (cl := classification_of(column)) is not None and cl.encrypted
    )


# --- data subjects ---------------------------------------------------------------------------


def _referenced_table(fk: ForeignKeyConstraint) -> Table:
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


@dataclass(frozen=True)
class SubjectTable:
    """A table holding a subject's data: the FK hops from it up to the subject's root table."""

    table: Table
    hops: tuple[ForeignKeyConstraint, ...]  # hops[0] belongs to ``table``; the last one
    pii: tuple[Column[Any], ...] = field(default=())  # references the root table

    @property
    def path(self) -> list[str]:
        """Table names from this table to the root (``["transcripts", ..., "candidates"]``)."""
        names = [self.table.name]
        names.extend(_referenced_table(fk).name for fk in self.hops)
        return names

    @property
    def subject_column(self) -> str:
        """The column that names the subject on the last hop (or ``id`` on the root)."""
        if not self.hops:
            return "id"
        link = _link_column(self.hops[-1])
        assert link is not None
        return link.name


def subject_tables(
    subject: SubjectKind = "candidate", metadata: MetaData | None = None
) -> list[SubjectTable]:
    """Every table reachable from the subject's root through ownership FKs (shortest path).

    Breadth-first from the root, in sorted order, so paths are deterministic.
    """
    md = _metadata(metadata)
    root = md.tables[SUBJECT_ROOTS[subject]]
    found: dict[str, SubjectTable] = {root.name: SubjectTable(root, (), tuple(pii_columns(root)))}
    queue: deque[Table] = deque([root])
    children: dict[str, list[tuple[Table, ForeignKeyConstraint]]] = {}
    for table in sorted(md.sorted_tables, key=lambda t: t.name):
        for fk in sorted(table.foreign_key_constraints, key=lambda c: str(c.name)):
            if _is_ownership(fk, policy_of(table)):
                children.setdefault(_referenced_table(fk).name, []).append((table, fk))
    while queue:
        parent = queue.popleft()
        for child, fk in children.get(parent.name, []):
            if child.name in found:
                continue
            hops = (fk, *found[parent.name].hops)
            found[child.name] = SubjectTable(child, hops, tuple(pii_columns(child)))
            queue.append(child)
    return sorted(found.values(), key=lambda s: (len(s.hops), s.table.name))


def subject_pii_columns(
    subject: SubjectKind = "candidate", metadata: MetaData | None = None
) -> dict[str, list[str]]:
    """``{table: [pii column, ...]}`` of every table holding the subject's data."""
    return {
        entry.table.name: [c.name for c in entry.pii]
        for entry in subject_tables(subject, metadata)
        if entry.pii
    }


def subject_pii_select(entry: SubjectTable, subject_id: uuid.UUID) -> Select[Any]:
    """``SELECT id, <pii columns>`` of ``entry.table`` for one subject, joining up the path."""
    table = entry.table
    columns = [table.c.id, *entry.pii] if "id" in table.c else list(entry.pii)
    stmt = select(*columns).select_from(table)
    if not entry.hops:
        return stmt.where(table.c.id == subject_id)
    current = table
    for fk in entry.hops[:-1]:
        parent = _referenced_table(fk)
        stmt = stmt.join(
            parent, and_(*(element.column == element.parent for element in fk.elements))
        )
        current = parent
    link = _link_column(entry.hops[-1])
    assert link is not None
    return stmt.where(current.c[link.name] == subject_id)


# --- retention -----------------------------------------------------------------------------


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
                _referenced_table(fk).name
                for fk in table.foreign_key_constraints
                if (fk.ondelete or "").upper() == "CASCADE"
                and _referenced_table(fk).name not in {"organizations", table.name}
            }
        )
    )


def retention_horizons(metadata: MetaData | None = None) -> dict[str, RetentionHorizon]:
    """Each table's default retention: its own policy, or its cascade parents'."""
    out: dict[str, RetentionHorizon] = {}
    for table in _metadata(metadata).sorted_tables:
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


def load_retention_overrides(session: Any, organization_id: uuid.UUID) -> RetentionOverrides:
    """Read an organization's overrides and active (non-candidate) legal holds."""
    from are_workers.models.privacy import LegalHold, LegalHoldScope, RetentionPolicy

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


def categories_of(columns: Iterable[Column[Any]]) -> list[DataCategory]:
    found = {cl.category for c in columns if (cl := classification_of(c)) is not None}
    return sorted(found, key=lambda c: c.value)
