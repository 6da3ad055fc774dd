from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from are_workers.models.files import File, FilePurpose, FileStatus
from are_workers.models.organizations import Organization
from are_workers.services.storage import write_file_bytes
from tests.factories import make_candidate

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


UploadFn = Callable[..., File]


@pytest.fixture
def upload(db: Session) -> UploadFn:
    """Store bytes as an upload would, and create the ``files`` row for a candidate."""

    def _upload(org: Organization, data: bytes | str | Path, *, candidate=None, name=None) -> File:  # type: ignore[no-untyped-def]
        if isinstance(data, Path):
            name = name or data.name
            data = data.read_bytes()
        elif isinstance(data, str):
            data = data.encode()
        candidate = candidate or make_candidate(db, org)
        key = f"{org.id}/{uuid.uuid4()}"
        write_file_bytes(key, data)
        file = File(
            organization_id=org.id,
            candidate_id=candidate.id,
            storage_key=key,
            original_filename=name or "resume.txt",
            purpose=FilePurpose.RESUME,
            size_bytes=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            status=FileStatus.UPLOADED,
        )
        db.add(file)
        db.flush()
        return file

    return _upload
