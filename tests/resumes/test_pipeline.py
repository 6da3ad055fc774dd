"""The resume pipeline on the real database, the real model and the shipped sample files."""

from __future__ import annotations

import io
import uuid

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from are_workers.errors import ConsentError, InvalidInputError, NotFoundError
from are_workers.job_context import as_job
from are_workers.models.candidates import (
    Candidate,
    CandidateConsent,
    CandidateSkill,
    ConsentPurpose,
    ConsentSource,
    ConsentStatus,
    ParsedResume,
    ProcessingStatus,
)
from are_workers.models.embeddings import Embedding, EmbeddingEntity
from are_workers.models.files import File, FileStatus
from are_workers.models.subscription import UsageRecord
from are_workers.services import storage
from are_workers.services.resumes.pipeline import (
    EmbeddingContext,
    process_resume_file,
    record_file_failure,
)
from tests.conftest import UploadFn
from tests.factories import make_org
from tests.resumes.conftest import SAMPLES


def _count(db: Session, model: type, **where: object) -> int:
    stmt = select(func.count()).select_from(model)
    for key, value in where.items():
        stmt = stmt.where(getattr(model, key) == value)
    return int(db.scalar(stmt) or 0)


def test_a_resume_becomes_a_profile_and_vectors_once(
    db: Session, upload: UploadFn, embedding: EmbeddingContext
) -> None:
    org = make_org(db)
    file = upload(org, SAMPLES / "resumes" / "alex_chen_backend.pdf")
    job_id = uuid.uuid4()
    with as_job(db, job_id):
        first = process_resume_file(
            db, organization_id=org.id, file_id=file.id, embedding=embedding
        )
    assert first.embedded == first.chunks > 0 and first.reused == 0
    assert {"experience", "skills"} <= set(first.sections)
    assert first.years_of_experience >= 5
    candidate = db.get_one(Candidate, file.candidate_id)
    db.refresh(candidate)
    db.refresh(file)
    assert candidate.processing_status is ProcessingStatus.PROCESSED
    assert file.status is FileStatus.PROCESSED and file.content_type == "application/pdf"
    skills = _count(db, CandidateSkill, candidate_id=candidate.id)
    assert skills >= 5
    vectors = _count(db, Embedding, entity_id=first.parsed_resume_id)
    assert vectors == first.chunks
    # Running again (a redelivery) changes nothing more.
    with as_job(db, job_id):
        again = process_resume_file(
            db, organization_id=org.id, file_id=file.id, embedding=embedding
        )
    assert again.parsed_resume_id == first.parsed_resume_id
    assert again.embedded == 0 and again.reused == first.chunks
    assert _count(db, Embedding, entity_id=first.parsed_resume_id) == vectors
    assert _count(db, CandidateSkill, candidate_id=candidate.id) == skills
    assert _count(db, ParsedResume, file_id=file.id) == 1
    assert _count(db, UsageRecord, task_run_id=job_id) == 2  # parsing + embedding, once each
    row = db.scalars(
        select(Embedding).where(Embedding.entity_id == first.parsed_resume_id).limit(1)
    ).one()
    assert row.entity_type is EmbeddingEntity.RESUME_CHUNK and row.candidate_id == candidate.id
    parsed = db.get_one(ParsedResume, first.parsed_resume_id)
    assert parsed.raw_text is not None
    assert parsed.raw_text[row.char_start : row.char_end] in (row.chunk_text or "")


def test_other_languages_and_sectionless_resumes_are_still_embedded(
    db: Session, upload: UploadFn, embedding: EmbeddingContext
) -> None:
    org = make_org(db)
    german = upload(org, SAMPLES / "resumes" / "anna_schmidt_de.pdf")
    outcome = process_resume_file(
        db, organization_id=org.id, file_id=german.id, embedding=embedding
    )
    assert outcome.language == "de" and outcome.embedded > 0
    plain = upload(org, SAMPLES / "resumes" / "chris_taylor_no_sections.txt")
    outcome = process_resume_file(db, organization_id=org.id, file_id=plain.id, embedding=embedding)
    assert outcome.sections == ["body"] and outcome.embedded > 0
    candidate = db.get_one(Candidate, plain.candidate_id)
    db.refresh(candidate)
    assert "No resume sections were recognised" in (candidate.status_message or "")


def _encrypted_pdf() -> bytes:
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    writer.encrypt("secret")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "empty_file"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "unsupported_file_type"),
        (_encrypted_pdf(), "pdf_encrypted"),
        (b"%PDF-1.7\n garbage without structure", "corrupt_file"),
    ],
    ids=["empty", "png-posing-as-resume", "encrypted-pdf", "corrupt-pdf"],
)
def test_bad_files_fail_permanently_with_a_clear_reason_on_file_and_candidate(
    db: Session, upload: UploadFn, embedding: EmbeddingContext, data: bytes, code: str
) -> None:
    org = make_org(db)
    file = upload(org, data, name="resume.pdf")
    attempt = db.begin_nested()
    with pytest.raises(InvalidInputError) as caught:
        process_resume_file(db, organization_id=org.id, file_id=file.id, embedding=embedding)
    assert caught.value.code == code
    attempt.rollback()  # what the ledger middleware does before recording the failure
    ctx = type("Ctx", (), {"organization_id": org.id})()
    record_file_failure(db, caught.value, {"file_id": str(file.id)}, ctx)
    db.flush()
    db.refresh(file)
    candidate = db.get_one(Candidate, file.candidate_id)
    db.refresh(candidate)
    assert file.status is FileStatus.FAILED and file.error_code == code
    assert file.error_message == caught.value.user_message
    assert candidate.processing_status is ProcessingStatus.FAILED
    assert caught.value.user_message in (candidate.status_message or "")


def test_file_deleted_between_enqueue_and_processing(
    db: Session, upload: UploadFn, embedding: EmbeddingContext
) -> None:
    org = make_org(db)
    file = upload(org, SAMPLES / "resumes" / "tom_baker_accountant.txt")
    storage.object_path(file.storage_key, file.organization_id).unlink()
    with pytest.raises(InvalidInputError, match="no longer in storage"):
        process_resume_file(db, organization_id=org.id, file_id=file.id, embedding=embedding)
    file.status = FileStatus.DELETED
    db.flush()
    with pytest.raises(InvalidInputError, match="deleted before it could be processed"):
        process_resume_file(db, organization_id=org.id, file_id=file.id, embedding=embedding)


def test_another_organizations_file_is_not_found(
    db: Session, upload: UploadFn, embedding: EmbeddingContext
) -> None:
    owner, other = make_org(db), make_org(db)
    file = upload(owner, SAMPLES / "resumes" / "tom_baker_accountant.txt")
    with pytest.raises(NotFoundError):
        process_resume_file(db, organization_id=other.id, file_id=file.id, embedding=embedding)


def test_an_objection_to_automated_processing_stops_parsing(
    db: Session, upload: UploadFn, embedding: EmbeddingContext
) -> None:
    org = make_org(db)
    file = upload(org, SAMPLES / "resumes" / "tom_baker_accountant.txt")
    db.add(
        CandidateConsent(
            organization_id=org.id,
            candidate_id=file.candidate_id,
            purpose=ConsentPurpose.AUTOMATED_PROCESSING,
            status=ConsentStatus.OBJECTED,
            source=ConsentSource.CANDIDATE_PORTAL,
            policy_version="2026-01",
        )
    )
    db.flush()
    with pytest.raises(ConsentError, match="objected"):
        process_resume_file(db, organization_id=org.id, file_id=file.id, embedding=embedding)
    assert _count(db, File, id=file.id) == 1


def test_a_file_row_keyed_under_another_organization_never_reads_that_object(
    db: Session, upload: UploadFn, embedding: EmbeddingContext
) -> None:
    """The storage key contract: a mis-keyed row cannot reach another tenant's object."""
    victim, intruder = make_org(db), make_org(db)
    secret = upload(victim, SAMPLES / "resumes" / "tom_baker_accountant.txt")
    mine = upload(intruder, SAMPLES / "resumes" / "alex_chen_backend.pdf")
    key = secret.storage_key  # e.g. an earlier version's object, whose row is not a File
    db.delete(secret)
    db.flush()
    mine.storage_key = key  # an upstream bug (or attack) mis-keys the row
    db.flush()
    with pytest.raises(InvalidInputError) as caught:
        process_resume_file(db, organization_id=intruder.id, file_id=mine.id, embedding=embedding)
    assert caught.value.code == "invalid_storage_key"
    assert "invalid for this organization" in caught.value.user_message
    assert db.scalar(select(func.count()).select_from(ParsedResume).where(
        ParsedResume.file_id == mine.id)) == 0  # fmt: skip
