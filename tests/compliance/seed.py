"""Seed one data subject in *every* table that holds their data, from the metadata.

Why generic: the erasure test must cover every module, including tables added after it was
written. The seeder walks ``subject_tables("candidate")`` and inserts one row per table,
linked up the subject's FK path, filling every PII column with a value that carries the
subject's marker (so a scan can find any leftover) and every other required column with a
type-appropriate default. Tables whose CHECK constraints need specific values get an entry
in ``OVERRIDES``; a new table that needs one fails loudly here, naming the constraint.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Column, Enum, Table, insert
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from are_workers import crypto
from are_workers.models.base import Base
from are_workers.models.classification import classification_of
from are_workers.services.compliance.registry import subject_tables

NOW = datetime.now(UTC)
VECTOR_DIM = 8

#: Per-table values that satisfy CHECK constraints a generic value cannot.
OVERRIDES: dict[str, dict[str, Any]] = {
    "candidate_consents": {"status": "granted", "granted_at": NOW},
    "portfolio_items": {"kind": "link", "file_id": None},
    "applications": {"status": "active"},
    "ai_evaluations": {"status": "completed", "overall_score": 81.0, "skip_reason": None},
    "assessment_sessions": {"status": "open", "expires_at": NOW + timedelta(days=1)},
    "interviews": {"scheduled_start": NOW, "scheduled_end": NOW + timedelta(hours=1)},
    "evaluation_reviews": {"decision": "confirmed", "override_score": None},
    "transcripts": {"status": "complete"},
    "transcription_checkpoints": {"chunk_index_done": 0, "total_chunks": 3},
    "video_interviews": {"expires_at": NOW + timedelta(days=7)},
    "candidate_experience": {"is_current": False},
    "embeddings": {"entity_type": "resume_chunk", "dimension": VECTOR_DIM},
    "match_results": {"score": 0.5},
    "offers": {"salary_amount": Decimal("98765.43")},
    "proctoring_sessions": {"risk_score": 0.42},
    "deep_evaluation_findings": {"evidence_char_start": None, "evidence_char_end": None},
    "evaluation_criteria_scores": {"evidence_char_start": None, "evidence_char_end": None},
    "files": {"status": "processed"},
    # context (non-subject) rows
    "job_postings": {"status": "open"},
    "assessment_items": {"thresholds": [-1.0, 0.0, 1.0], "model": "GRM"},
}


def _tables() -> dict[str, Table]:
    import are_workers.models  # noqa: F401

    return dict(Base.metadata.tables)


def _type_name(column: Column[Any]) -> str:
    return column.type.__class__.__name__.upper()


@dataclass
class Seeder:
    """Inserts one subject's rows (and the context rows they need) in one organization."""

    db: Session
    organization_id: uuid.UUID
    marker: str  # a unique token carried by every PII value of this subject
    email: str
    full_name: str
    storage_dir: Path | None = None
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    context: dict[str, dict[str, Any]] = field(default_factory=dict)
    storage_keys: list[str] = field(default_factory=list)
    vector: list[float] = field(default_factory=list)

    # --- values ----------------------------------------------------------------------

    def pii_value(self, table: Table, column: Column[Any]) -> Any:
        cl = classification_of(column)
        assert cl is not None
        name = _type_name(column)
        if table.name == "candidates" and column.name == "full_name":
            return self.full_name
        if column.name == "email_blind_index":
            return crypto.blind_index(self.email)
        if column.name in {"email", "to_address", "requester_email"}:
            plain = self.email
        elif column.name == "phone":
            plain = f"+44 20 7946 {abs(hash(self.marker)) % 10_000:04d}"
        else:
            plain = f"{self.marker} {column.name}"
        if cl.encrypted:
            return plain  # the column's type encrypts it (EncryptedText)
        if name == "VECTOR":
            return self.vector
        if isinstance(column.type, JSONB) or name == "JSONB":
            if table.name == "parsed_resumes" or column.name in {"words", "tool_calls"}:
                return [{"text": plain, "note": self.marker}]
            return {"text": plain, "nested": {"note": self.marker}}
        if name in {"FLOAT", "DOUBLE", "REAL", "DOUBLE_PRECISION"}:
            return 0.42
        if name == "NUMERIC":
            return Decimal("98765.43")
        if name == "UUID":
            return None  # an FK; set by the FK logic
        if column.type.python_type is str:
            length = getattr(column.type, "length", None)
            return plain[:length] if length else plain
        raise AssertionError(f"no PII value for {table.name}.{column.name} ({name})")

    def default_value(self, table: Table, column: Column[Any]) -> Any:
        name = _type_name(column)
        if isinstance(column.type, Enum):
            return column.type.enums[0]
        if column.name == "sha256" or column.name.endswith("_hash"):
            return hashlib.sha256(uuid.uuid4().bytes).hexdigest()
        if column.name == "storage_key":
            return f"{self.organization_id}/{uuid.uuid4()}"
        if name == "VECTOR":
            return self.vector
        if isinstance(column.type, JSONB) or name == "JSONB":
            return {}
        python_type = column.type.python_type
        if python_type is bool:
            return False
        if python_type is int:
            return 1
        if python_type is float:
            return 0.5
        if python_type is Decimal:
            return Decimal(1)
        if python_type is datetime:
            return NOW
        if python_type is date:
            return NOW.date()
        if python_type is uuid.UUID:
            return uuid.uuid4()
        if python_type is str:
            length = getattr(column.type, "length", None) or 40
            return f"v{uuid.uuid4().hex}"[: max(1, min(length, 40))]
        if python_type is list:
            return []
        raise AssertionError(f"no default for {table.name}.{column.name} ({name})")

    # --- rows --------------------------------------------------------------------------

    def _insert(self, table: Table, values: dict[str, Any]) -> dict[str, Any]:
        values = {k: v for k, v in values.items() if k in table.c}
        try:
            with self.db.begin_nested():
                self.db.execute(insert(table).values(values))
        except Exception as exc:
            raise AssertionError(
                f"seeding {table.name} failed; add an entry to OVERRIDES: {exc}"
            ) from exc
        return values

    def _values(self, table: Table, *, subject: bool, linked: dict[str, Any]) -> dict[str, Any]:
        values: dict[str, Any] = {"id": uuid.uuid4()}
        if "organization_id" in table.c:
            values["organization_id"] = self.organization_id
        overrides = OVERRIDES.get(table.name, {})
        for column in table.columns:
            if column.name in values or column.name in linked or column.foreign_keys:
                continue
            if column.name in overrides:
                continue
            cl = classification_of(column)
            if subject and cl is not None and cl.pii:
                values[column.name] = self.pii_value(table, column)
            elif cl is not None and cl.pii and not column.nullable:
                values[column.name] = f"context-{uuid.uuid4().hex[:12]}-{column.name}"
            elif not column.nullable and column.server_default is None:
                values[column.name] = self.default_value(table, column)
        values.update(linked)
        values.update({k: (v() if callable(v) else v) for k, v in overrides.items()})
        return values

    def _resolve_fks(
        self, table: Table, values: dict[str, Any], prefer: dict[str, dict[str, Any]]
    ) -> None:
        for fk in sorted(table.foreign_key_constraints, key=lambda c: str(c.name)):
            parent = fk.elements[0].column.table
            locals_ = [e.parent.name for e in fk.elements]
            links = [n for n in locals_ if n != "organization_id"]
            if all(values.get(n) is not None for n in links) or parent.name == "organizations":
                continue
            if all(n in OVERRIDES.get(table.name, {}) for n in links):
                continue
            required = any(not table.c[n].nullable for n in links)
            source = prefer.get(parent.name)
            if source is None and not required:
                continue
            if source is None:
                source = self.context_row(parent.name)
            for element in fk.elements:
                if element.parent.name != "organization_id":
                    values[element.parent.name] = source[element.column.name]

    def context_row(self, name: str) -> dict[str, Any]:
        """One non-subject row of ``name`` (a job, a member, a model version ...)."""
        if name in self.context:
            return self.context[name]
        table = _tables()[name]
        values = self._values(table, subject=False, linked={})
        if name == "embedding_models":
            values.update(dimension=VECTOR_DIM, name=f"seed-{uuid.uuid4().hex[:8]}")
        self._resolve_fks(table, values, {})
        self.context[name] = self._insert(table, values)
        return self.context[name]

    def seed(self) -> Seeder:
        """Every table of the candidate's data, parents first."""
        self.vector = [round(0.1 + (abs(hash(self.marker)) % 1000) / 10_000, 4)] * VECTOR_DIM
        for entry in subject_tables("candidate"):
            table = entry.table
            linked: dict[str, Any] = {}
            if entry.hops:
                fk = entry.hops[0]
                parent_row = self.rows[fk.elements[0].column.table.name]
                for element in fk.elements:
                    linked[element.parent.name] = parent_row[element.column.name]
            values = self._values(table, subject=True, linked=linked)
            self._resolve_fks(table, values, self.rows)
            self.rows[table.name] = self._insert(table, values)
            if "storage_key" in table.c:
                self._write_object(values["storage_key"])
        return self

    def _write_object(self, key: str) -> None:
        self.storage_keys.append(key)
        if self.storage_dir is not None:
            path = self.storage_dir / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"{self.full_name} <{self.email}> {self.marker}\n")


def seed_subject(
    db: Session,
    organization_id: uuid.UUID,
    *,
    marker: str,
    email: str,
    full_name: str = "Zelda Quartermaine",
    storage_dir: Path | None = None,
    context_from: Seeder | None = None,
) -> Seeder:
    seeder = Seeder(db, organization_id, marker, email, full_name, storage_dir)
    if context_from is not None and context_from.organization_id == organization_id:
        seeder.context = context_from.context
    return seeder.seed()


def unique_marker() -> str:
    return "zq" + uuid.uuid4().hex[:10]


Factory = Callable[..., Seeder]
