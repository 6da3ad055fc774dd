"""What the schema's tables and columns are, for compliance: tenancy and classifications.

Read from ``Base.metadata`` (the column ``info`` classifications and table policies of
``models/classification.py``), never from a hand-kept list. What is built on them (whose
data a table holds, how long it keeps it, the queries that erase, export and sweep) is the
compliance registry, ``services/compliance/registry.py``.

- :data:`GLOBAL_TABLES`: the tables without a tenant, and why.
- :func:`is_tenant_table`, :func:`pii_columns`, :func:`column_classifications`.
- :func:`encrypted_columns`: the columns the application encrypts (AES-GCM).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Column, MetaData, Table

from are_workers.models.base import Base
from are_workers.models.classification import ColumnClassification, DataCategory, classification_of

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
    "worker_registry": "Worker processes of the platform's pools; no tenant owns one.",
    "retention_runs": "Proof of retention enforcement: an organization's sweeps carry "
    "organization_id, the platform sweep's (the global tables) have none; kept by the "
    "platform sweep.",
}


def schema_metadata(metadata: MetaData | None = None) -> MetaData:
    """``metadata``, or the models' own with every table registered."""
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
    return sorted(t.name for t in schema_metadata(metadata).sorted_tables if not is_tenant_table(t))


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
        for table in schema_metadata(metadata).sorted_tables
        for column in table.columns
        if (cl := classification_of(column)) is not None and cl.encrypted
    )


def categories_of(columns: Iterable[Column[Any]]) -> list[DataCategory]:
    found = {cl.category for c in columns if (cl := classification_of(c)) is not None}
    return sorted(found, key=lambda c: c.value)
