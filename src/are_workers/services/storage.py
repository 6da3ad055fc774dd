"""Stored objects (uploads, exports): one module reads, writes, deletes and checks them.

**The storage key contract** (for upstream apps, see ``docs/job-ledger.md``): a
``storage_key`` is a relative path that begins with the owning organization's id, then a
slash (``<organization_id>/<anything>``), and never leaves the storage root. Every access
here names the organization of the row the key came from and is refused when the key's
prefix is another organization's: a mis-keyed ``files`` row can never reach another
tenant's object. ``are-workers storage check-keys`` reports existing rows that break it.

Why deletion is eager (before the database transaction commits): erasure and retention
delete objects whose rows are going anyway. If the transaction then rolls back, the rows
point at missing objects and the retried job deletes the rows. The other order (rows first,
objects after commit) could lose track of objects forever after a crash.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

from are_workers.config import Settings, get_settings
from are_workers.errors import InvalidInputError


class StorageKeyError(InvalidInputError):
    """A key outside the storage root, or outside its organization's prefix."""

    code = "invalid_storage_key"


def key_prefix(organization_id: uuid.UUID | str) -> str:
    return f"{organization_id}/"


def new_key(organization_id: uuid.UUID | str, name: str) -> str:
    """A key that fits the contract: ``<organization_id>/<name>``."""
    return key_prefix(organization_id) + name.lstrip("/")


def key_problem(key: str, organization_id: uuid.UUID | str | None) -> str | None:
    """Why ``key`` breaks the contract for ``organization_id``, or None when it fits."""
    if not key or key.startswith("/") or "\\" in key:
        return "not a relative path"
    parts = key.split("/")
    if any(part in {"", ".", ".."} for part in parts):
        return "has an empty, '.' or '..' segment"
    if organization_id is None:
        return "belongs to no organization"
    if parts[0] != str(organization_id) or len(parts) < 2:
        return "does not begin with its organization's id"
    return None


def object_path(
    key: str, organization_id: uuid.UUID | str | None, settings: Settings | None = None
) -> Path:
    """The path of an organization's object; refuses keys that break the contract."""
    problem = key_problem(key, organization_id)
    root = (settings or get_settings()).file_storage_dir.resolve()
    path = (root / key).resolve()
    if problem is None and not path.is_relative_to(root / str(organization_id)):
        problem = "resolves outside its organization's folder"
    if problem is not None:
        raise StorageKeyError(
            "The file's storage location is invalid for this organization "
            f"(its key {problem}). Upload the file again.",
        )
    return path


def read_bytes(
    key: str,
    organization_id: uuid.UUID | str | None,
    *,
    max_bytes: int,
    settings: Settings | None = None,
) -> bytes:
    path = object_path(key, organization_id, settings)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise InvalidInputError(
            "The uploaded file is no longer in storage (it was deleted before it could be "
            "processed). Upload it again.",
            code="file_missing",
        ) from None
    if size > max_bytes:
        raise InvalidInputError(
            f"The file is {size / 2**20:.1f} MB; the limit is {max_bytes / 2**20:.0f} MB. "
            "Upload a smaller file.",
            code="file_too_large",
        )
    return path.read_bytes()


def write_bytes(
    key: str, data: bytes, organization_id: uuid.UUID | str, settings: Settings | None = None
) -> Path:
    """Store bytes under a key (the CLI's ingest and tests, as an upload would)."""
    path = object_path(key, organization_id, settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def delete(keys: Iterable[str | None], organization_id: uuid.UUID | str | None) -> int:
    """Unlink every object of the organization; missing ones are fine (a retry)."""
    removed = 0
    for key in keys:
        if not key:
            continue
        try:
            object_path(key, organization_id).unlink()
            removed += 1
        except FileNotFoundError:
            continue
    return removed


def existing(keys: Iterable[str | None], organization_id: uuid.UUID | str | None) -> list[str]:
    return [key for key in keys if key and object_path(key, organization_id).exists()]


# --- the report for existing rows -----------------------------------------------------------


@dataclass(frozen=True)
class KeyProblem:
    table: str
    row_id: str
    organization_id: str | None
    storage_key: str
    problem: str


#: Every table that holds a ``storage_key``, with the column naming the organization.
KEYED_TABLES = (
    ("files", "organization_id"),
    ("file_versions", "organization_id"),
)


def misfit_keys(db: Session | Connection, *, batch: int = 5000) -> Iterator[KeyProblem]:
    """Rows whose key breaks the contract (read in keyset batches, by primary key)."""
    for table, org_column in _keyed_tables(db):
        after = "00000000-0000-0000-0000-000000000000"
        while True:
            rows = db.execute(
                text(
                    f"SELECT id::text, {org_column}::text, storage_key FROM {table} "  # noqa: S608 - names from the schema
                    "WHERE id > CAST(:after AS uuid) AND storage_key IS NOT NULL "
                    "ORDER BY id LIMIT :n"
                ),
                {"after": after, "n": batch},
            ).all()
            for row_id, org, key in rows:
                problem = key_problem(key, org)
                if problem is not None:
                    yield KeyProblem(table, row_id, org, key, problem)
            if len(rows) < batch:
                break
            after = rows[-1][0]


def _keyed_tables(db: Session | Connection) -> list[tuple[str, str]]:
    found = {
        row[0]
        for row in db.execute(
            text(
                "SELECT table_name FROM information_schema.columns WHERE column_name = "
                "'storage_key' AND table_schema = current_schema()"
            )
        )
    }
    return [(t, c) for t, c in KEYED_TABLES if t in found]
