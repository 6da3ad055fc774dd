"""Data subject requests: erasure and export through the request, with clear outcomes."""

from __future__ import annotations

import json
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from are_workers.config import get_settings
from are_workers.crypto import subject_ref
from are_workers.errors import InvalidInputError, NotFoundError
from are_workers.job_context import running_job
from are_workers.models.privacy import (
    DataSubjectRequest,
    DsrKind,
    DsrStatus,
    LegalHold,
    LegalHoldScope,
    SubjectType,
)
from are_workers.services import storage
from are_workers.services.compliance.dsr import enqueue_due, process_request
from are_workers.services.compliance.erasure import read_journal
from are_workers.services.compliance.export import expire_exports
from tests.compliance.scan import find_values
from tests.compliance.seed import Seeder, seed_subject, unique_marker
from tests.factories import days, make_org, utcnow

EMAIL = "dora.subject@example.com"


@pytest.fixture
def journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "journal"
    monkeypatch.setenv("ARE_ERASURE_JOURNAL_DIR", str(path))
    get_settings.cache_clear()
    yield path
    get_settings.cache_clear()


@pytest.fixture
def subject(db: Session, storage_dir: Path) -> Seeder:
    return seed_subject(
        db,
        make_org(db).id,
        marker=unique_marker(),
        email=EMAIL,
        full_name="Dora Subject",
        storage_dir=storage_dir,
    )


def _request(db: Session, subject: Seeder, kind: DsrKind, **kw: object) -> DataSubjectRequest:
    candidate_id = subject.rows["candidates"]["id"]
    values: dict[str, object] = {
        "organization_id": subject.organization_id,
        "kind": kind,
        "subject_type": SubjectType.CANDIDATE,
        "candidate_id": candidate_id,
        "subject_ref": subject_ref(candidate_id),
        "deadline_at": utcnow() + days(30),
    }
    dsr = DataSubjectRequest(**(values | kw))
    db.add(dsr)
    db.flush()
    return dsr


def test_an_erasure_request_is_carried_out_verified_and_journaled(
    db: Session, subject: Seeder, journal: Path
) -> None:
    dsr = _request(db, subject, DsrKind.ERASURE)
    result = process_request(db, dsr.id, organization_id=subject.organization_id)
    assert result["status"] == "completed" and result["residual"] == {}
    assert result["overdue"] is False and result["files_deleted"] == 2
    db.refresh(dsr)
    assert dsr.status is DsrStatus.COMPLETED and dsr.completed_at is not None
    assert dsr.verification_report is not None and dsr.verification_report["residual"] == {}
    assert find_values(db, subject.organization_id, [subject.marker, EMAIL]) == {}
    assert [e.subject_id for e in read_journal(journal)] == [subject.rows["candidates"]["id"]]
    records = db.execute(
        text("SELECT count(*) FROM erasure_records WHERE request_id = :r"), {"r": dsr.id}
    ).scalar_one()
    assert records == sum(
        len(v) for k, v in dsr.verification_report.items() if k in {"deleted", "anonymized"}
    )
    again = process_request(db, dsr.id)
    assert again["already_closed"] is True and again["status"] == "completed"


def test_erasure_under_a_legal_hold_is_rejected_with_the_reason(
    db: Session, subject: Seeder, journal: Path
) -> None:
    db.add(
        LegalHold(
            organization_id=subject.organization_id,
            scope=LegalHoldScope.ORGANIZATION,
            reason="Pending audit by the labour inspectorate",
        )
    )
    dsr = _request(db, subject, DsrKind.ERASURE)
    result = process_request(db, dsr.id)
    assert result["status"] == "rejected" and "labour inspectorate" in result["reason"]
    db.refresh(dsr)
    assert dsr.status is DsrStatus.REJECTED and "legal hold" in (dsr.rejection_reason or "")
    assert find_values(db, subject.organization_id, [subject.marker])  # nothing erased
    assert read_journal(journal) == []


def test_unknown_requests_and_subjects_have_clear_outcomes(db: Session, subject: Seeder) -> None:
    with pytest.raises(NotFoundError, match="does not exist in this organization"):
        process_request(db, uuid.uuid4())
    other_org = make_org(db)
    dsr = _request(db, subject, DsrKind.ERASURE)
    with pytest.raises(NotFoundError):
        process_request(db, dsr.id, organization_id=other_org.id)  # another tenant's request
    no_subject = _request(db, subject, DsrKind.ACCESS, candidate_id=None)
    assert process_request(db, no_subject.id)["subject_found"] is False
    rectify = _request(db, subject, DsrKind.RECTIFICATION)
    with pytest.raises(InvalidInputError, match="decided by people"):
        process_request(db, rectify.id)
    unverified = _request(db, subject, DsrKind.ERASURE, status=DsrStatus.VERIFYING_IDENTITY)
    with pytest.raises(InvalidInputError, match="identity is not verified"):
        process_request(db, unverified.id)


def test_an_access_request_gets_a_bundle_with_the_data_map_and_the_files(
    db: Session, subject: Seeder
) -> None:
    dsr = _request(db, subject, DsrKind.ACCESS)
    result = process_request(db, dsr.id)
    assert result["status"] == "completed" and result["files"] == 1
    db.refresh(dsr)
    assert dsr.export_file_id is not None
    key = db.execute(
        text("SELECT storage_key FROM files WHERE id = :i"), {"i": dsr.export_file_id}
    ).scalar_one()
    with zipfile.ZipFile(storage.object_path(key, key.split("/")[0])) as bundle:
        names = bundle.namelist()
        manifest = json.loads(bundle.read("manifest.json"))
        candidates = json.loads(bundle.read("data/candidates.json"))
        self_id = json.loads(bundle.read("data/fairness.json"))["candidate_self_identifications"]
        original = next(n for n in names if n.startswith("files/"))
        assert subject.marker.encode() in bundle.read(original)
    assert manifest["tables"]["candidates"]["retention"] == "730 days from last_activity_at"
    assert "contact" in manifest["tables"]["candidates"]["categories"]
    assert set(manifest["tables"]) == set(subject.rows)  # every table, by module
    assert candidates["candidates"][0]["email"] == EMAIL  # decrypted for the subject
    assert self_id[0]["gender"] == f"{subject.marker} gender"
    assert any(n.startswith("data/video_interviews") for n in names)
    # The bundle expires.
    db.execute(
        text("UPDATE files SET created_at = now() - interval '31 days' WHERE id = :i"),
        {"i": dsr.export_file_id},
    )
    assert expire_exports(db, days=30) == 1
    assert not storage.object_path(key, key.split("/")[0]).exists()
    db.refresh(dsr)
    assert dsr.export_file_id is None


def test_open_requests_are_queued_once_soonest_deadline_first(db: Session, subject: Seeder) -> None:
    late = _request(
        db,
        subject,
        DsrKind.ERASURE,
        received_at=utcnow() - days(40),
        deadline_at=utcnow() - days(10),
    )
    soon = _request(db, subject, DsrKind.ACCESS)
    _request(db, subject, DsrKind.OBJECTION)  # for people, not workers
    first = enqueue_due(db)
    assert len(first) >= 2 and enqueue_due(db) == first
    jobs = db.execute(
        text(
            "SELECT args->>'request_id' AS r, priority FROM task_runs "
            "WHERE actor = 'compliance.process_dsr' AND id = ANY(:ids)"
        ),
        {"ids": first},
    ).all()
    priorities = {r.r: r.priority for r in jobs}
    assert priorities[str(late.id)] < priorities[str(soon.id)]


def test_an_export_whose_job_rolls_back_leaves_no_bundle_behind(
    db: Session, subject: Seeder, storage_dir: Path
) -> None:
    """Fix: the bundle was written before its transaction committed, so a rollback (or a
    retry) left an orphaned file of personal data that no row, and no expiry, would find."""
    dsr = _request(db, subject, DsrKind.ACCESS)
    exports = storage_dir / str(subject.organization_id) / "exports"

    def run_and_fail() -> None:
        nested = db.begin_nested()
        with running_job(db, "compliance.process_dsr", {"request_id": str(dsr.id)},
                         subject.organization_id, commit_hooks=True):  # fmt: skip
            process_request(db, dsr.id)
            assert len(list(exports.glob("*.zip"))) == 1  # written before the commit
            nested.rollback()
            raise RuntimeError("the commit failed")

    with pytest.raises(RuntimeError, match="the commit failed"):
        run_and_fail()
    assert list(exports.glob("*")) == []
