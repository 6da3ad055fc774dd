"""Access and portability (GDPR Arts. 15 and 20): a bundle of everything held about a subject.

The bundle is a zip: ``manifest.json`` (what each table is for, its data categories and
retention, from the data map), ``data/<module>.json`` (every row of every table holding the
subject's data in this organization, encrypted columns decrypted, grouped by the schema's
modules) and ``files/`` (the original uploads). It is stored like any upload (a ``files``
row of purpose ``export``) and deleted after ``ARE_EXPORT_EXPIRY_DAYS``: an export is
itself personal data and should not outlive its purpose.

Driven by the same ownership paths as erasure, so what erasure removes is exactly what the
subject can see.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import os
import re
import tempfile
import uuid
import zipfile
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import structlog
from sqlalchemy import Table, select, text
from sqlalchemy.orm import Session

from are_workers.config import get_settings
from are_workers.crypto import subject_ref as make_subject_ref
from are_workers.job_context import active_job
from are_workers.models.security import is_tenant_table
from are_workers.services import storage
from are_workers.services.compliance import audit
from are_workers.services.compliance.keys import SPECIAL_CATEGORY_TABLES, special_category_access
from are_workers.services.compliance.registry import SubjectKind, ownership_paths, subject_rows

log = structlog.get_logger(__name__)

BUNDLE_VERSION = 1


def _json_value(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if hasattr(value, "tolist"):  # a pgvector array
        return [float(x) for x in value.tolist()]
    if hasattr(value, "value") and not isinstance(value, dict | list | str):  # an enum
        return value.value
    return value


def _rows(
    session: Session, table: Table, kind: SubjectKind, org: uuid.UUID, subject: uuid.UUID
) -> list[dict[str, Any]]:
    ids = subject_rows(kind, table.name, org, subject)
    stmt = select(table).where(table.c.id.in_(ids)).order_by(table.c.id)
    if table.name in SPECIAL_CATEGORY_TABLES:
        with special_category_access(session):
            rows = session.execute(stmt).all()
    else:
        rows = session.execute(stmt).all()
    # Encrypted columns are decrypted by their type (models/columns.py: EncryptedText).
    return [{key: _json_value(value) for key, value in row._mapping.items()} for row in rows]


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:120] or "file"


@dataclass(frozen=True)
class ExportResult:
    file_id: uuid.UUID
    storage_key: str
    sha256: str
    size_bytes: int
    tables: dict[str, int]
    files: int
    expires_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "file_id": str(self.file_id),
            "sha256": self.sha256,
            "size_bytes": self.size_bytes,
            "rows": sum(self.tables.values()),
            "tables": self.tables,
            "files": self.files,
            "expires_at": self.expires_at.isoformat(),
        }


def build_export(
    session: Session,
    organization_id: uuid.UUID,
    subject_id: uuid.UUID,
    *,
    kind: SubjectKind = "candidate",
    request_id: uuid.UUID | None = None,
) -> ExportResult:
    """Write the bundle to storage, register it as a file, and audit the disclosure."""
    from are_workers.models.files import File, FilePurpose, FileStatus
    from are_workers.services.compliance.data_map import build_data_map, table_modules

    data_map = {entry["table"]: entry for entry in build_data_map()["tables"]}
    now = datetime.now(UTC)
    expires_at = now + timedelta(days=get_settings().export_expiry_days)
    by_module: dict[str, dict[str, list[dict[str, Any]]]] = {}
    counts: dict[str, int] = {}
    paths = ownership_paths(kind)
    modules = table_modules(next(iter(paths.values()))[0].table.metadata)
    for table_name in sorted(paths):
        table = paths[table_name][0].table
        if not is_tenant_table(table):
            continue
        rows = _rows(session, table, kind, organization_id, subject_id)
        if rows:
            by_module.setdefault(modules.get(table_name, "other"), {})[table_name] = rows
            counts[table_name] = len(rows)
    originals = [
        (r["id"], r["original_filename"], r["storage_key"])
        for r in by_module.get("files", {}).get("files", [])
        if r.get("deleted_at") is None and r.get("purpose") != FilePurpose.EXPORT.value
    ]
    manifest = {
        "version": BUNDLE_VERSION,
        "organization_id": str(organization_id),
        "subject_type": kind,
        "subject_ref": make_subject_ref(subject_id),
        "generated_at": now.isoformat(),
        "expires_at": expires_at.isoformat(),
        "controller": "The organization named above is the controller of this data.",
        "tables": {
            name: {
                "module": modules.get(name, "other"),
                "rows": n,
                "purpose": data_map[name]["purpose"],
                "categories": data_map[name]["categories"],
                "retention": data_map[name]["retention"]["summary"],
            }
            for name, n in sorted(counts.items())
        },
    }
    key = storage.new_key(organization_id, f"exports/{uuid.uuid4()}.zip")
    target = storage.object_path(key, organization_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    included = 0
    with tempfile.NamedTemporaryFile(dir=target.parent, suffix=".part", delete=False) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
            bundle.writestr("manifest.json", json.dumps(manifest, indent=2, sort_keys=True))
            for module, tables in sorted(by_module.items()):
                bundle.writestr(
                    f"data/{module}.json", json.dumps(tables, indent=2, sort_keys=True, default=str)
                )
            for file_id, name, storage_key in originals:
                source = storage.object_path(storage_key, organization_id)
                if source.exists():
                    bundle.write(source, f"files/{file_id}-{_safe_name(name)}")
                    included += 1
        tmp_name = tmp.name
    os.replace(tmp_name, target)
    # The bundle is written before the job's transaction commits: if it rolls back (or the
    # job is retried), no row will ever point at this file, so remove it then.
    job = active_job()
    if job is not None:
        job.after_rollback(functools.partial(target.unlink, missing_ok=True))
    payload = target.read_bytes()
    digest = hashlib.sha256(payload).hexdigest()
    file = File(
        organization_id=organization_id,
        candidate_id=subject_id if kind == "candidate" else None,
        storage_key=key,
        original_filename=f"data-export-{now:%Y-%m-%d}.zip",
        purpose=FilePurpose.EXPORT,
        content_type="application/zip",
        size_bytes=len(payload),
        sha256=digest,
        status=FileStatus.PROCESSED,
    )
    session.add(file)
    session.flush()
    audit.record(
        session,
        organization_id=organization_id,
        action="dsr.export.completed",
        entity_type="file",
        entity_id=file.id,
        subject_id=subject_id,
        input_refs={"request_id": str(request_id) if request_id else None},
        output_refs={"sha256": digest, "tables": counts, "files": included},
    )
    _log_access(session, organization_id, kind, subject_id, counts)
    return ExportResult(file.id, key, digest, len(payload), counts, included, expires_at)


def _log_access(
    session: Session, org: uuid.UUID, kind: SubjectKind, subject: uuid.UUID, counts: dict[str, int]
) -> None:
    session.execute(
        text(
            "INSERT INTO data_access_log (organization_id, actor_type, subject_type, subject_ref,"
            " table_name, columns, purpose) VALUES (:o, 'worker', CAST(:k AS subject_type), :s,"
            " '*', CAST(:c AS jsonb), 'data subject export')"
        ),
        {"o": org, "k": kind, "s": make_subject_ref(subject), "c": json.dumps(sorted(counts))},
    )


def expire_exports(session: Session, *, days: int | None = None) -> int:
    """Delete export bundles older than the configured time: rows and objects (set-based)."""
    days = days if days is not None else get_settings().export_expiry_days
    rows = session.execute(
        text(
            "DELETE FROM files WHERE purpose = 'export' "
            "AND created_at < now() - make_interval(days => :d) "
            "RETURNING organization_id, storage_key"
        ),
        {"d": days},
    ).all()
    keys = [key for _, key in rows]
    for organization_id, key in rows:
        storage.delete([key], organization_id)
    if keys:
        log.info("exports_expired", count=len(keys))
    return len(keys)
