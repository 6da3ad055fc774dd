"""Where uploaded files live, and reading them safely.

Why a module: ``files.storage_key`` is written by upstream apps, so a key must never
escape the storage root (``../../etc/passwd``); and a file deleted between enqueue and
processing must become a clear, permanent outcome rather than a crash.
"""

from __future__ import annotations

from pathlib import Path

from are_workers.config import Settings, get_settings
from are_workers.errors import InvalidInputError


def storage_path(storage_key: str, settings: Settings | None = None) -> Path:
    root = (settings or get_settings()).file_storage_dir.resolve()
    path = (root / storage_key).resolve()
    if not path.is_relative_to(root):
        raise InvalidInputError(
            "The file's storage location is invalid. Upload the file again.",
            code="invalid_storage_key",
        )
    return path


def read_file_bytes(storage_key: str, *, max_bytes: int, settings: Settings | None = None) -> bytes:
    path = storage_path(storage_key, settings)
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


def write_file_bytes(storage_key: str, data: bytes, settings: Settings | None = None) -> Path:
    """Store bytes under a key (used by the CLI's ingest and by tests, as an upload would)."""
    path = storage_path(storage_key, settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path
