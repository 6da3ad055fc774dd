"""The storage key contract, as pure logic: keys begin with their organization's id."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from are_workers.config import Settings
from are_workers.services import storage

ORG = uuid.UUID("11111111-1111-1111-1111-111111111111")
OTHER = uuid.UUID("22222222-2222-2222-2222-222222222222")


@pytest.mark.parametrize(
    ("key", "org", "problem"),
    [
        (f"{ORG}/a.pdf", ORG, None),
        (f"{ORG}/exports/b.zip", str(ORG), None),
        (f"{OTHER}/a.pdf", ORG, "does not begin with its organization's id"),
        ("a.pdf", ORG, "does not begin with its organization's id"),
        (f"{ORG}", ORG, "does not begin with its organization's id"),
        (f"{ORG}/../{OTHER}/a.pdf", ORG, "has an empty, '.' or '..' segment"),
        (f"/{ORG}/a.pdf", ORG, "not a relative path"),
        (f"{ORG}/a.pdf", None, "belongs to no organization"),
    ],
)
def test_key_problems(key: str, org: uuid.UUID | None, problem: str | None) -> None:
    assert storage.key_problem(key, org) == problem


def test_another_organizations_object_is_refused_even_when_it_exists(tmp_path: Path) -> None:
    settings = Settings(storage_dir=tmp_path)
    theirs = storage.new_key(OTHER, "cv.pdf")
    storage.write_bytes(theirs, b"their data", OTHER, settings)
    assert storage.read_bytes(theirs, OTHER, max_bytes=100, settings=settings) == b"their data"
    with pytest.raises(storage.StorageKeyError) as caught:
        storage.read_bytes(theirs, ORG, max_bytes=100, settings=settings)
    assert caught.value.code == "invalid_storage_key"
    with pytest.raises(storage.StorageKeyError):
        storage.write_bytes(theirs, b"overwrite", ORG, settings)
    assert (tmp_path / theirs).read_bytes() == b"their data"


def test_a_symlink_out_of_the_organizations_folder_is_refused(tmp_path: Path) -> None:
    settings = Settings(storage_dir=tmp_path)
    storage.write_bytes(storage.new_key(OTHER, "cv.pdf"), b"x", OTHER, settings)
    (tmp_path / str(ORG)).mkdir()
    (tmp_path / str(ORG) / "link").symlink_to(tmp_path / str(OTHER))
    with pytest.raises(storage.StorageKeyError, match="outside its organization"):
        storage.object_path(f"{ORG}/link/cv.pdf", ORG, settings)
