"""Keys rotate in batches; a missing key is named.

(That the columns hold only envelopes, written by the workers and enforced by the database,
is ``test_encryption.py``.)"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from are_workers import crypto
from are_workers.services.compliance.keys import key_usage, rotate
from tests.compliance.seed import Seeder, seed_subject, unique_marker
from tests.factories import make_org

OLD, NEW = os.urandom(32), os.urandom(32)
EMAIL = "rotating.rita@example.com"


@pytest.fixture
def keys() -> Iterator[None]:
    crypto.set_key_provider(crypto.StaticKeyProvider({"2025": OLD}, "2025"))
    yield
    crypto.set_key_provider(None)


@pytest.fixture
def subject(db: Session, keys: None) -> Seeder:
    return seed_subject(db, make_org(db).id, marker=unique_marker(), email=EMAIL)


def test_rotation_reencrypts_everything_under_the_new_key_in_batches(
    db: Session, subject: Seeder
) -> None:
    both = crypto.StaticKeyProvider({"2025": OLD, "2026": NEW}, "2026")
    crypto.set_key_provider(both)
    before = key_usage(db)
    assert all(set(ids) == {"2025"} for ids in before.values())
    result = rotate(db, batch_size=2, provider=both)
    assert result.rotated["candidate_self_identifications.gender"] == 1
    assert sum(result.rotated.values()) == sum(n for ids in before.values() for n in ids.values())
    assert result.remaining == {}
    assert all(set(ids) == {"2026"} for ids in key_usage(db).values())
    only_new = crypto.StaticKeyProvider({"2026": NEW}, "2026")
    email = db.execute(
        text("SELECT email FROM candidates WHERE id = :i"), {"i": subject.rows["candidates"]["id"]}
    ).scalar_one()
    assert crypto.decrypt(email, table="candidates", column="email", provider=only_new) == EMAIL
    assert rotate(db, provider=both).rotated == {}  # nothing left to do


def test_a_missing_key_stops_rotation_before_anything_changes(db: Session, subject: Seeder) -> None:
    without_old = crypto.StaticKeyProvider({"2026": NEW}, "2026")
    with pytest.raises(crypto.MissingKeyError) as stopped:
        rotate(db, provider=without_old)
    assert "'2025' is not configured" in stopped.value.user_message
    assert "in candidates.email" in stopped.value.user_message
    assert "Nothing was rotated" in stopped.value.user_message
    assert all(set(ids) == {"2025"} for ids in key_usage(db).values())
