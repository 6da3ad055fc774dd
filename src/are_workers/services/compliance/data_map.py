"""The data map: a GDPR Art. 30 record of processing, built from the metadata alone.

Why generated: a hand-written record drifts from the schema the day a column is added. This
one is derived from the column classifications and table policies, committed as
``docs/data-map.json``, and CI fails when the two differ.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import MetaData, Table

from are_workers.models.classification import classification_of, policy_of
from are_workers.models.security import GLOBAL_TABLES, encrypted_columns, is_tenant_table
from are_workers.services.compliance.registry import (
    RETENTION_PRECEDENCE,
    SubjectKind,
    retention_horizons,
    subject_tables,
)

DATA_MAP_VERSION = 1


def table_modules(metadata: MetaData) -> dict[str, str]:
    """Table name → the models module that defines it (``candidates``, ``audit``, ...)."""
    from are_workers.models.base import Base

    out: dict[str, str] = {}
    for mapper in Base.registry.mappers:
        for table in mapper.tables:
            if table.name in metadata.tables:
                out[table.name] = mapper.class_.__module__.rsplit(".", 1)[-1]
    return out


def table_descriptions(metadata: MetaData) -> dict[str, str]:
    """Table name → the first paragraph of its model's docstring."""
    from are_workers.models.base import Base

    out: dict[str, str] = {}
    for mapper in Base.registry.mappers:
        doc = (mapper.class_.__doc__ or "").strip()
        summary = " ".join(doc.split("\n\n", 1)[0].split())
        for table in mapper.tables:
            out[table.name] = summary
    return out


def _column_entry(table: Table, name: str) -> dict[str, Any]:
    cl = classification_of(table.c[name])
    assert cl is not None
    return {
        "column": name,
        "category": cl.category.value,
        "special_category": cl.category.special,
        "anonymize": cl.anonymize.value,
        "encrypted": cl.encrypted,
        "retention_days": cl.retention_days,
    }


def build_data_map(metadata: MetaData | None = None) -> dict[str, Any]:
    """The record of processing: per table, purpose, categories, subjects, retention and
    protection. Deterministic (sorted), so it can be committed and diffed."""
    if metadata is None:
        import are_workers.models  # noqa: F401 - registers every table
        from are_workers.models.base import Base

        metadata = Base.metadata
    modules = table_modules(metadata)
    descriptions = table_descriptions(metadata)
    horizons = retention_horizons(metadata)
    subjects: dict[str, dict[str, list[str]]] = {}
    kinds: tuple[SubjectKind, ...] = ("candidate", "user")
    for kind in kinds:
        for entry in subject_tables(kind, metadata):
            subjects.setdefault(entry.table.name, {})[kind] = entry.path
    encrypted = encrypted_columns(metadata)

    tables: list[dict[str, Any]] = []
    for table in sorted(metadata.sorted_tables, key=lambda t: t.name):
        policy = policy_of(table)
        assert policy is not None
        pii = [
            _column_entry(table, c.name)
            for c in table.columns
            if (cl := classification_of(c)) is not None and cl.pii
        ]
        categories = sorted({entry["category"] for entry in pii})
        horizon = horizons[table.name]
        tables.append(
            {
                "table": table.name,
                "module": modules.get(table.name, ""),
                "description": descriptions.get(table.name, ""),
                "purpose": policy.purpose,
                "scope": "tenant" if is_tenant_table(table) else "global",
                "global_reason": GLOBAL_TABLES.get(table.name),
                "controller": (
                    "organization (tenant)" if is_tenant_table(table) else "platform operator"
                ),
                "data_subjects": sorted(subjects.get(table.name, {})),
                "subject_paths": subjects.get(table.name, {}),
                "personal_data": bool(pii) or bool(subjects.get(table.name)),
                "categories": categories,
                "special_categories": sorted({e["category"] for e in pii if e["special_category"]}),
                "retention": {
                    "days": horizon.retention_days,
                    "clock": horizon.clock,
                    "source": horizon.source,
                    "follows": list(horizon.follows),
                    "columns": dict(sorted(horizon.column_days.items())),
                    "summary": horizon.describe(),
                },
                "protection": {
                    "encrypted_columns": [c for t, c in encrypted if t == table.name],
                    "tenant_isolation": (
                        "organization_id + composite tenant foreign keys"
                        if is_tenant_table(table)
                        else "none (global)"
                    ),
                },
                "pii_columns": pii,
                # What each other text/JSON column can hold, and so why it is not personal.
                "non_personal_text": {
                    c.name: cl.holds.value
                    for c in table.columns
                    if (cl := classification_of(c)) is not None and not cl.pii and cl.holds
                },
            }
        )
    return {
        "version": DATA_MAP_VERSION,
        "retention_precedence": list(RETENTION_PRECEDENCE),
        "table_count": len(tables),
        "tables": tables,
    }


def render_data_map_json(data_map: dict[str, Any] | None = None) -> str:
    """The committed form of the data map (stable key order, trailing newline)."""
    return json.dumps(data_map or build_data_map(), indent=2, sort_keys=False) + "\n"
