"""Files on storage: resolve keys safely, delete objects idempotently.

Why deletion is eager (before the database transaction commits): erasure and retention
delete files whose rows are going anyway. If the transaction then rolls back, the rows are
left pointing at missing files, and the retried job deletes the rows. The other order (rows
first, files after commit) could lose track of files forever after a crash.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from are_workers.errors import InvalidInputError


def storage_root() -> Path:
    from are_workers.config import get_settings

    return get_settings().file_storage_dir


def storage_path(key: str, root: Path | None = None) -> Path:
    """The path of a storage key, refusing keys that escape the storage root."""
    base = (root or storage_root()).resolve()
    path = (base / key).resolve()
    if path != base and base not in path.parents:
        raise InvalidInputError(f"Storage key {key!r} points outside the storage root.")
    return path


def delete_objects(keys: Iterable[str | None], root: Path | None = None) -> int:
    """Unlink every object; missing ones are fine (a retry, or never uploaded)."""
    removed = 0
    for key in keys:
        if not key:
            continue
        path = storage_path(key, root)
        try:
            path.unlink()
            removed += 1
        except FileNotFoundError:
            continue
    return removed


def existing_objects(keys: Iterable[str | None], root: Path | None = None) -> list[str]:
    return [key for key in keys if key and storage_path(key, root).exists()]
