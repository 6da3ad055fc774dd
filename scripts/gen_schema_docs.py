"""Generate docs/schema.md (Mermaid ER diagrams per module) and docs/data-map.json.

Why generated: documentation written by hand drifts from the schema; this is derived from
``Base.metadata`` (tables, FKs, classifications, policies, docstrings). CI runs it with
``--check`` and fails when the committed files differ from what the models say.

    python scripts/gen_schema_docs.py          # write both files
    python scripts/gen_schema_docs.py --check  # exit 1 if either is stale
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import sys
from pathlib import Path

from sqlalchemy import Column, ForeignKeyConstraint, Table, UniqueConstraint
from sqlalchemy.dialects.postgresql import ENUM
from sqlalchemy.types import Enum as SAEnum
from sqlalchemy.types import TypeDecorator, TypeEngine

import are_workers.models as models_pkg
from are_workers.models import MODULE_GROUPS
from are_workers.models.base import Base
from are_workers.models.classification import classification_of
from are_workers.models.security import GLOBAL_TABLES, is_tenant_table
from are_workers.services.compliance.data_map import (
    render_data_map_json,
    table_descriptions,
    table_modules,
)
from are_workers.services.compliance.registry import RETENTION_PRECEDENCE, retention_horizons

ROOT = Path(__file__).resolve().parent.parent
UTILITY_MODULES = (
    "security",
    "relationships",
    "engine",
    "columns",
    "schemas",
    "classification",
    "base",
)
SCHEMA_MD = ROOT / "docs" / "schema.md"
DATA_MAP_JSON = ROOT / "docs" / "data-map.json"

_TYPE_NAMES = {
    "UUID": "uuid",
    "VARCHAR": "varchar",
    "TEXT": "text",
    "INTEGER": "int",
    "SMALLINT": "smallint",
    "SMALLINTEGER": "smallint",
    "BIGINTEGER": "bigint",
    "STRING": "varchar",
    "BIGINT": "bigint",
    "FLOAT": "float",
    "NUMERIC": "numeric",
    "BOOLEAN": "bool",
    "DATETIME": "timestamptz",
    "TIMESTAMP": "timestamptz",
    "DATE": "date",
    "JSONB": "jsonb",
    "VECTOR": "vector",
}


def _type_name(type_: TypeEngine[object]) -> str:
    if isinstance(type_, TypeDecorator):  # e.g. EncryptedText: what the database holds
        type_ = type_.impl_instance
    if isinstance(type_, SAEnum | ENUM) and type_.name:
        return f"enum_{type_.name}"
    visit = getattr(type_, "__visit_name__", type(type_).__name__).upper()
    name = type(type_).__name__.upper()
    return _TYPE_NAMES.get(name) or _TYPE_NAMES.get(visit) or visit.lower()


def _column_keys(column: Column[object], table: Table) -> str:
    keys = []
    if column.primary_key:
        keys.append("PK")
    if any(column in fk.columns.values() for fk in table.foreign_key_constraints):
        keys.append("FK")
    if column.unique:
        keys.append("UK")
    return ",".join(keys)


def _column_comment(column: Column[object]) -> str:
    cl = classification_of(column)
    if cl is None or not cl.pii:
        return ""
    parts = [f"PII {cl.category.value}", cl.anonymize.value]
    if cl.encrypted:
        parts.append("encrypted")
    if cl.retention_days is not None:
        parts.append(f"{cl.retention_days}d")
    return " ".join(parts)


def _referenced(fk: ForeignKeyConstraint) -> Table:
    return fk.elements[0].column.table


def _link(fk: ForeignKeyConstraint) -> Column[object]:
    """The column naming the parent (``candidate_id``), not the tenant column."""
    for element in fk.elements:
        if element.parent.name != "organization_id":
            return element.parent
    return fk.elements[0].parent


def _ordered_columns(table: Table) -> list[Column[object]]:
    """Keys first (id, organization_id), then the table's own columns as declared."""
    first = [table.c[name] for name in ("id", "organization_id") if name in table.c]
    return first + [c for c in table.columns if c.name not in {"id", "organization_id"}]


def _mermaid(tables: list[Table]) -> list[str]:
    lines = ["```mermaid", "erDiagram"]
    for table in tables:
        lines.append(f"    {table.name} {{")
        for column in _ordered_columns(table):
            keys = _column_keys(column, table)
            comment = _column_comment(column)
            row = f"        {_type_name(column.type)} {column.name}"
            if keys:
                row += f" {keys}"
            if comment:
                row += f' "{comment}"'
            lines.append(row)
        lines.append("    }")
    for table in tables:
        for fk in sorted(table.foreign_key_constraints, key=lambda c: str(c.name)):
            parent = _referenced(fk)
            if parent.name == "organizations" and table.name != "organization_members":
                continue  # every tenant table has it; drawn once, in prose
            link = _link(fk)
            unique = link.unique or any(
                isinstance(uq, UniqueConstraint) and {c.name for c in uq.columns} == {link.name}
                for uq in table.constraints
            )
            left = "|o" if link.nullable else "||"
            right = "o|" if unique else "o{"
            lines.append(f'    {parent.name} {left}--{right} {table.name} : "{link.name}"')
    lines.append("```")
    return lines


def _first_paragraph(text: str | None) -> str:
    return " ".join((text or "").strip().split("\n\n", 1)[0].split())


def _module_doc(module_name: str) -> str:
    module = getattr(models_pkg, module_name)
    return inspect.cleandoc(module.__doc__ or "")


def render_schema_md() -> str:
    metadata = Base.metadata
    modules = table_modules(metadata)
    descriptions = table_descriptions(metadata)
    horizons = retention_horizons(metadata)
    by_module: dict[str, list[Table]] = {}
    for table in sorted(metadata.sorted_tables, key=lambda t: t.name):
        by_module.setdefault(modules[table.name], []).append(table)

    out = [
        "# Schema",
        "",
        "<!-- Generated by scripts/gen_schema_docs.py from the models. Do not edit by hand;",
        "     CI runs `python scripts/gen_schema_docs.py --check`. -->",
        "",
        f"{len(metadata.tables)} tables in {len(by_module)} modules "
        "(`src/are_workers/models/`). Every column is classified for compliance "
        "(see [data-map.json](data-map.json)); in the diagrams, PII columns carry their "
        "category, anonymization strategy, `encrypted` and column retention.",
        "",
        "## Conventions",
        "",
        "- UUID primary keys generated by the database; timestamps are `timestamptz` (UTC).",
        "- Constraint names follow one naming convention (`pk_`, `fk_`, `uq_`, `ck_`, `ix_`).",
        "- Tenant-owned tables carry `organization_id` (ON DELETE CASCADE from "
        "`organizations`, not drawn in the diagrams). A child references its parent with a "
        "composite foreign key `(organization_id, parent_id) → parent (organization_id, id)`, "
        "so a row can never point at another tenant's row; optional references use "
        "`ON DELETE SET NULL (parent_id)`, which never clears `organization_id`. Users acting "
        "inside a tenant reference `organization_members (organization_id, user_id)`.",
        "- Indexes named with the reserved prefix `rt_` are created at run time (per-model "
        "vector indexes) and ignored by Alembic.",
        "- Retention precedence: " + " > ".join(RETENTION_PRECEDENCE) + ".",
        "- Columns marked `encrypted` are written through `EncryptedText` (encrypted on bind, "
        "decrypted on read) and accept only AES-GCM envelopes: each has a CHECK "
        "`ck_<table>_<column>_envelope` ([encryption.md](encryption.md) specifies the "
        "envelope, with test vectors, for apps that write these columns).",
        "",
        "## Global tables",
        "",
        "| table | why it has no tenant |",
        "|---|---|",
    ]
    out += [f"| `{name}` | {reason} |" for name, reason in sorted(GLOBAL_TABLES.items())]
    out.append("")

    groups: dict[str, list[str]] = {}
    for module_name, group in MODULE_GROUPS.items():
        groups.setdefault(group, []).append(module_name)
    for group, module_names in groups.items():
        out += [f"## {group}", ""]
        for module_name in module_names:
            tables = by_module.get(module_name, [])
            out += [f"### {module_name}", "", _module_doc(module_name), ""]
            out += _mermaid(tables)
            out += ["", "| table | purpose | scope | retention |", "|---|---|---|---|"]
            for table in tables:
                scope = "tenant" if is_tenant_table(table) else "**global**"
                horizon = horizons[table.name]
                retention = horizon.describe()
                if horizon.column_days:
                    retention += "; " + ", ".join(
                        f"`{c}` {d} days" for c, d in sorted(horizon.column_days.items())
                    )
                out.append(
                    f"| `{table.name}` | {descriptions.get(table.name, '')} | {scope} | "
                    f"{retention} |"
                )
            out.append("")
    out += ["## Utilities", "", "| module | role |", "|---|---|"]
    for module_name in UTILITY_MODULES:
        module = importlib.import_module(f"are_workers.models.{module_name}")
        out.append(f"| `{module_name}.py` | {_first_paragraph(module.__doc__)} |")
    return "\n".join(out).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if the files are stale")
    args = parser.parse_args(argv)
    expected = {SCHEMA_MD: render_schema_md(), DATA_MAP_JSON: render_data_map_json()}
    if args.check:
        stale = [
            path
            for path, content in expected.items()
            if not path.exists() or path.read_text(encoding="utf-8") != content
        ]
        for path in stale:
            print(f"stale: {path.relative_to(ROOT)} (run python scripts/gen_schema_docs.py)")
        return 1 if stale else 0
    for path, content in expected.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
