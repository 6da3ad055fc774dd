"""Erasure (Art. 17): the subject is seeded in every module, erased, then searched for
everywhere (every text/JSONB column of every table, decrypted, plus files and vectors).
Other subjects, and the same person in another organization, are untouched, exactly."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from are_workers.errors import NotFoundError
from are_workers.models.privacy import LegalHold, LegalHoldScope
from are_workers.models.schemas import VerificationReport
from are_workers.services import storage
from are_workers.services.compliance.anonymize import ERASURE_EXEMPT, row_anonymizer
from are_workers.services.compliance.erasure import (
    LegalHoldError,
    erase_subject,
    journal_erasure,
    reapply_erasures,
)
from are_workers.services.compliance.registry import subject_tables
from tests.compliance.scan import _searchable, find_values, row_counts, vectors_equal
from tests.compliance.seed import Seeder, seed_subject, unique_marker
from tests.factories import make_org

EMAIL = "zelda.quartermaine@example.com"
NAME = "Zelda Quartermaine"


def _needles(seeder: Seeder) -> list[str]:
    return [seeder.marker, seeder.email, seeder.full_name]


def _pii_tables() -> set[str]:
    return {e.table.name for e in subject_tables("candidate") if row_anonymizer(e.table).columns}


@pytest.fixture
def world(db: Session, storage_dir: Path) -> dict[str, Seeder]:
    """Zelda and Bob in one organization; Zelda again (same person) in another."""
    home, elsewhere = make_org(db), make_org(db)
    zelda = seed_subject(
        db, home.id, marker=unique_marker(), email=EMAIL, full_name=NAME, storage_dir=storage_dir
    )
    bob = seed_subject(
        db,
        home.id,
        marker=unique_marker(),
        email="bob@example.com",
        full_name="Bob Brightwater",
        storage_dir=storage_dir,
        context_from=zelda,
    )
    zelda_elsewhere = seed_subject(
        db, elsewhere.id, marker=zelda.marker, email=EMAIL, full_name=NAME, storage_dir=storage_dir
    )
    return {"zelda": zelda, "bob": bob, "zelda_elsewhere": zelda_elsewhere}


def test_the_subject_is_seeded_in_every_table_that_holds_their_data(
    db: Session, world: dict[str, Seeder]
) -> None:
    zelda = world["zelda"]
    assert set(zelda.rows) == {e.table.name for e in subject_tables("candidate")}
    found = find_values(db, zelda.organization_id, [zelda.marker, EMAIL, NAME])
    tables_found = {key.split(".")[0] for key in found}
    searchable = {
        e.table.name
        for e in subject_tables("candidate")
        if any(_searchable(c.column) for c in row_anonymizer(e.table).columns)
    }
    assert searchable <= tables_found
    assert _pii_tables() - searchable == set()  # video_responses: its error message
    assert vectors_equal(db, zelda.organization_id, zelda.vector) == 1
    assert (
        len(storage.existing(zelda.storage_keys, zelda.organization_id)) == 2
    )  # the file and its version


def test_erasure_leaves_nothing_of_the_subject_and_touches_nobody_else(
    db: Session, world: dict[str, Seeder]
) -> None:
    zelda, bob, elsewhere = world["zelda"], world["bob"], world["zelda_elsewhere"]
    home = zelda.organization_id
    bob_before = find_values(db, home, _needles(bob))
    elsewhere_before = find_values(db, elsewhere.organization_id, _needles(elsewhere))
    home_rows, elsewhere_rows = row_counts(db, home), row_counts(db, elsewhere.organization_id)

    outcome = erase_subject(db, home, zelda.rows["candidates"]["id"])

    assert find_values(db, home, _needles(zelda)) == {}
    assert vectors_equal(db, home, zelda.vector) == 0
    assert storage.existing(zelda.storage_keys, zelda.organization_id) == []
    # Exact counts: one seeded row per table, each deleted or anonymized exactly once.
    assert {**outcome.deleted, **outcome.anonymized} == dict.fromkeys(_pii_tables(), 1)
    assert set(outcome.deleted) == {"embeddings", "video_analysis_results"}
    assert outcome.files_deleted == 2 and outcome.residual == {} and outcome.held == []
    report = VerificationReport.model_validate(outcome.verification_report())
    assert report.residual == {} and sum(report.anonymized.values()) == len(_pii_tables()) - 2
    # Bob (same organization) and Zelda's copy in the other organization: untouched.
    assert find_values(db, home, _needles(bob)) == bob_before
    assert find_values(db, elsewhere.organization_id, _needles(elsewhere)) == elsewhere_before
    assert vectors_equal(db, home, bob.vector) == 1
    assert vectors_equal(db, elsewhere.organization_id, elsewhere.vector) == 1
    assert len(storage.existing(bob.storage_keys, bob.organization_id)) == 2
    assert len(storage.existing(elsewhere.storage_keys, elsewhere.organization_id)) == 2
    assert row_counts(db, elsewhere.organization_id) == elsewhere_rows
    after = row_counts(db, home)
    changed = {t: (home_rows[t], after[t]) for t in after if after[t] != home_rows[t]}
    assert changed == {
        "embeddings": (home_rows["embeddings"], home_rows["embeddings"] - 1),
        "video_analysis_results": (
            home_rows["video_analysis_results"],
            home_rows["video_analysis_results"] - 1,
        ),
        "erasure_records": (0, len(_pii_tables())),
        "audit_log": (0, 1),
    }
    candidate = db.execute(
        text("SELECT status::text, anonymized_at FROM candidates WHERE id = :i"),
        {"i": zelda.rows["candidates"]["id"]},
    ).one()
    assert candidate.status == "anonymized" and candidate.anonymized_at is not None
    # The audit row names the subject only by pseudonym.
    audit = db.execute(
        text(
            "SELECT subject_ref, output_refs::text AS refs FROM audit_log "
            "WHERE organization_id = :o"
        ),
        {"o": home},
    ).one()
    assert audit.subject_ref == outcome.subject_ref and zelda.marker not in audit.refs


def test_a_second_erasure_changes_nothing_and_still_verifies(
    db: Session, world: dict[str, Seeder]
) -> None:
    zelda = world["zelda"]
    candidate_id = zelda.rows["candidates"]["id"]
    erase_subject(db, zelda.organization_id, candidate_id)
    again = erase_subject(db, zelda.organization_id, candidate_id)
    assert again.rows == 0 and again.files_deleted == 0 and again.residual == {}


def test_a_legal_hold_refuses_the_erasure_with_its_reason(
    db: Session, world: dict[str, Seeder]
) -> None:
    zelda = world["zelda"]
    candidate_id = zelda.rows["candidates"]["id"]
    db.add(
        LegalHold(
            organization_id=zelda.organization_id,
            scope=LegalHoldScope.CANDIDATE,
            candidate_id=candidate_id,
            reason="Employment tribunal claim",
            reference="ET/2026/0042",
        )
    )
    db.flush()
    before = find_values(db, zelda.organization_id, _needles(zelda))
    with pytest.raises(LegalHoldError) as refused:
        erase_subject(db, zelda.organization_id, candidate_id)
    assert "Employment tribunal claim" in refused.value.user_message
    assert "ET/2026/0042" in refused.value.user_message
    assert find_values(db, zelda.organization_id, _needles(zelda)) == before


def test_a_table_hold_keeps_that_table_and_says_so(db: Session, world: dict[str, Seeder]) -> None:
    zelda = world["zelda"]
    db.add(
        LegalHold(
            organization_id=zelda.organization_id,
            scope=LegalHoldScope.TABLE,
            table_name="messages",
            reason="Discovery request",
        )
    )
    db.flush()
    outcome = erase_subject(db, zelda.organization_id, zelda.rows["candidates"]["id"])
    assert outcome.held == ["messages"] and "messages" not in outcome.anonymized
    left = find_values(db, zelda.organization_id, _needles(zelda))
    assert set(left) == {
        "messages.subject",
        "messages.body",
        "messages.to_address",
        "messages.error_message",
    }


def test_an_unknown_subject_is_not_found(db: Session) -> None:
    org = make_org(db)
    with pytest.raises(NotFoundError, match="nothing to erase"):
        erase_subject(db, org.id, uuid.uuid4())


def test_erasures_are_reapplied_after_a_restore(
    db: Session, world: dict[str, Seeder], tmp_path: Path
) -> None:
    zelda = world["zelda"]
    journal = tmp_path / "journal"
    # The journal (outside the database) remembers an erasure the restored database lost,
    # and one of a subject the restored database never had.
    journal_erasure(
        zelda.organization_id, "candidate", zelda.rows["candidates"]["id"], None, directory=journal
    )
    journal_erasure(zelda.organization_id, "candidate", uuid.uuid4(), None, directory=journal)
    report = reapply_erasures(db, directory=journal, organization_id=zelda.organization_id)
    assert sorted(r["status"] for r in report) == ["absent", "erased"]
    assert find_values(db, zelda.organization_id, _needles(zelda)) == {}
    again = reapply_erasures(db, directory=journal, organization_id=zelda.organization_id)
    assert sorted(r["status"] for r in again) == ["absent", "already_erased"]


def test_every_exemption_is_justified() -> None:
    for (table, column), reason in ERASURE_EXEMPT.items():
        assert len(reason) > 40, f"{table}.{column}: say why it is kept"


def test_a_member_is_erased_in_one_organization_and_kept_in_another(db: Session) -> None:
    """A user subject (a recruiter): tenant rows only; the global login is not the tenant's."""
    from tests.factories import make_member, make_user

    home, other = make_org(db), make_org(db)
    user = make_user(db)
    for org in (home, other):
        make_member(db, org, user)
        db.execute(
            text(
                "UPDATE organization_members SET job_title = 'Head of Talent' "
                "WHERE organization_id = :o AND user_id = :u"
            ),
            {"o": org.id, "u": user.id},
        )
        db.execute(
            text(
                "INSERT INTO notifications (organization_id, user_id, kind, title, body)"
                " VALUES (:o, :u, 'digest', 'Hello Ursula', 'Your 3 candidates')"
            ),
            {"o": org.id, "u": user.id},
        )
    outcome = erase_subject(db, home.id, user.id, kind="user")
    assert outcome.anonymized == {"notifications": 1, "organization_members": 1}
    assert find_values(db, home.id, ["Ursula", "Head of Talent"]) == {}
    assert set(find_values(db, other.id, ["Ursula", "Head of Talent"])) == {
        "notifications.title",
        "organization_members.job_title",
    }
    email = db.execute(text("SELECT email FROM users WHERE id = :u"), {"u": user.id}).scalar_one()
    assert email == user.email  # the login is global: not one tenant's to erase
