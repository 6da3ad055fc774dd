"""The resume pipeline against the database: file → text → parsed profile → vectors.

Why each step writes by natural key: the actor may run twice (a redelivery, a replay), and
running it twice must change nothing more. The parsed resume is keyed by (file, parser
version), the profile rows are replaced for that parsed resume, the vectors are upserted by
(organization, entity, chunk, model) and skipped when their text did not change, and usage
is recorded once per job.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import numpy as np
import structlog
from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from are_workers import crypto
from are_workers.config import Settings, get_settings
from are_workers.errors import InvalidInputError, NotFoundError, PermanentError
from are_workers.models.candidates import (
    Candidate,
    CandidateEducation,
    CandidateExperience,
    CandidateSkill,
    EntrySource,
    ParsedResume,
    ProcessingStatus,
    SkillSource,
)
from are_workers.models.embeddings import EmbeddingEntity
from are_workers.models.files import File, FilePurpose, FileStatus
from are_workers.models.subscription import UsageKind, UsageUnit
from are_workers.services import consent, storage
from are_workers.services.compliance import audit
from are_workers.services.consent import Activity
from are_workers.services.documents import ExtractionLimits, extract_text
from are_workers.services.embeddings import EmbeddingContext, upsert_chunk_embeddings
from are_workers.services.model_registry import record_usage
from are_workers.services.resumes.chunking import Chunk, chunk_resume
from are_workers.services.resumes.parsing import ContactInfo, find_contact, parse_resume
from are_workers.services.resumes.parsing import ParsedResume as ParsedText
from are_workers.services.resumes.redaction import RedactedText, redact_contact_details
from are_workers.services.skills import SkillTaxonomy, get_taxonomy, skill_ids

log = structlog.get_logger(__name__)

#: Bump when extraction or parsing rules change: a new version re-parses into a new row.
PARSER_VERSION = "rules-2026.11"

EmbedFn = Callable[[Sequence[str]], np.ndarray]

_MIME = {
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "rtf": "application/rtf",
    "text": "text/plain",
    "markdown": "text/markdown",
}


# --- loading, consent, failure ---------------------------------------------------------------


def load_file(session: Session, organization_id: uuid.UUID, file_id: uuid.UUID) -> File:
    file = session.scalar(
        select(File).where(File.id == file_id, File.organization_id == organization_id)
    )
    if file is None:
        raise NotFoundError(
            "This file does not exist in the organization (it may have been deleted).",
            code="file_not_found",
        )
    if file.status is FileStatus.DELETED or file.deleted_at is not None:
        raise InvalidInputError(
            "The file was deleted before it could be processed.", code="file_deleted"
        )
    if file.candidate_id is None:
        raise InvalidInputError(
            "The file is not attached to a candidate, so there is no profile to fill.",
            code="no_candidate",
        )
    return file


def check_processing_allowed(session: Session, candidate_id: uuid.UUID) -> None:
    """Parsing and embedding are extraction: only an objection to automated processing
    stops them (``services.consent``)."""
    consent.ensure_allowed(
        consent.load_consents(session, candidate_id), Activity.EXTRACTION, what="the resume"
    )


def record_file_failure(
    session: Session, error: PermanentError, kwargs: dict[str, Any], ctx: Any
) -> None:
    """``on_permanent_failure`` hook: the user-facing reason on the file and the candidate."""
    organization_id = ctx.organization_id
    file_id = uuid.UUID(str(kwargs["file_id"]))
    file = session.scalar(
        select(File).where(File.id == file_id, File.organization_id == organization_id)
    )
    if file is None:
        return
    if file.status is not FileStatus.DELETED:
        file.status = FileStatus.FAILED
    file.error_code = (error.code or "invalid_input")[:64]
    file.error_message = error.user_message
    if file.candidate_id is not None:
        session.execute(
            update(Candidate)
            .where(Candidate.id == file.candidate_id, Candidate.organization_id == organization_id)
            .values(
                processing_status=ProcessingStatus.FAILED,
                # The file's name often is the person's: it stays in files.original_filename.
                status_message=f"A resume could not be processed: {error.user_message}",
            )
        )


# --- the pipeline ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ResumeOutcome:
    parsed_resume_id: uuid.UUID
    language: str
    sections: list[str]
    skills: int
    years_of_experience: float
    chunks: int
    embedded: int
    reused: int

    def as_result(self) -> dict[str, Any]:
        return {
            "parsed_resume_id": str(self.parsed_resume_id),
            "language": self.language,
            "sections": self.sections,
            "skills": self.skills,
            "years_of_experience": self.years_of_experience,
            "chunks": self.chunks,
            "embedded": self.embedded,
            "reused": self.reused,
        }


def process_resume_file(
    session: Session,
    *,
    organization_id: uuid.UUID,
    file_id: uuid.UUID,
    embedding: EmbeddingContext,
    settings: Settings | None = None,
    today: date | None = None,
) -> ResumeOutcome:
    """Extract, parse, store the profile and embed one resume file (idempotent)."""
    settings = settings or get_settings()
    file = load_file(session, organization_id, file_id)
    assert file.candidate_id is not None
    candidate_id = file.candidate_id
    check_processing_allowed(session, candidate_id)

    data = storage.read_bytes(
        file.storage_key, organization_id, max_bytes=settings.max_file_bytes, settings=settings
    )
    extracted = extract_text(data, limits=ExtractionLimits.from_settings(settings))
    # Contact details never reach the stored text, its chunks, vectors or the judge.
    redacted = redact_contact_details(extracted.text)
    taxonomy = get_taxonomy()
    parsed = parse_resume(
        redacted.text, language=extracted.language, taxonomy=taxonomy, today=today
    )

    parsed_id = _store_parsed_resume(
        session, organization_id, candidate_id, file, extracted, parsed, redacted
    )
    _replace_profile(session, organization_id, candidate_id, parsed_id, parsed, taxonomy)
    # The contact details go to the encrypted columns, read from the text before masking.
    _fill_contact(session, organization_id, candidate_id, find_contact(extracted.text))

    chunks = chunk_resume(
        parsed, max_tokens=embedding.max_tokens, count_tokens=embedding.count_tokens
    )
    model_id = embedding.ensure_model(session)
    embedded, reused = upsert_chunk_embeddings(
        session,
        organization_id=organization_id,
        entity_type=EmbeddingEntity.RESUME_CHUNK,
        entity_id=parsed_id,
        owner={"candidate_id": candidate_id},
        chunks=[(c.index, c.section, c.text, c.start, c.end) for c in chunks],
        model_id=model_id,
        embedding=embedding,
    )

    session.execute(
        update(Candidate)
        .where(Candidate.id == candidate_id, Candidate.organization_id == organization_id)
        .values(
            language=extracted.language,
            years_of_experience=Decimal(str(min(80.0, parsed.years_of_experience))),
            processing_status=ProcessingStatus.PROCESSED,
            status_message=_status_message(parsed, chunks),
            last_activity_at=func.now(),
        )
    )
    audit.record(
        session,
        organization_id=organization_id,
        action="resume.processed",
        entity_type="parsed_resumes",
        entity_id=parsed_id,
        subject_id=candidate_id,
        model_name=f"are-resume-parser+{embedding.name}",
        model_version=f"{PARSER_VERSION}+{embedding.version}",
        input_refs={"file_id": str(file.id), "sha256": file.sha256},
        output_refs={"chunks": len(chunks), "embedding_model_id": str(model_id)},
    )
    file.status = FileStatus.PROCESSED
    file.content_type = _MIME.get(extracted.document_type.value, extracted.document_type.value)
    file.error_code = None
    file.error_message = None
    file.processed_at = datetime.now(UTC)
    record_usage(
        session,
        organization_id=organization_id,
        kind=UsageKind.RESUME_EMBEDDING,
        quantity=embedded,
        unit=UsageUnit.ITEM,
    )
    record_usage(
        session,
        organization_id=organization_id,
        kind=UsageKind.RESUME_PARSING,
        quantity=extracted.page_count or 1,
        unit=UsageUnit.PAGE,
    )
    return ResumeOutcome(
        parsed_resume_id=parsed_id,
        language=extracted.language,
        sections=parsed.section_names,
        skills=len(parsed.skill_names),
        years_of_experience=parsed.years_of_experience,
        chunks=len(chunks),
        embedded=embedded,
        reused=reused,
    )


def _status_message(parsed: ParsedText, chunks: list[Chunk]) -> str | None:
    if parsed.section_names == ["body"]:
        return (
            "No resume sections were recognised; the whole text was used as one section. "
            "Matching still works, but evidence may be less precise."
        )
    if not chunks:
        return "The resume has no text that could be matched."
    return None


def _masked_warning(redacted: RedactedText) -> list[str]:
    if not redacted.redactions:
        return []
    counts = ", ".join(f"{kind} {count}" for kind, count in redacted.counts.items())
    return [f"contact details masked before storage: {counts}"]


def _store_parsed_resume(
    session: Session,
    organization_id: uuid.UUID,
    candidate_id: uuid.UUID,
    file: File,
    extracted: Any,
    parsed: ParsedText,
    redacted: RedactedText,
) -> uuid.UUID:
    sections = [
        {"name": s.name, "text": parsed.text[s.start : s.end], "char_start": s.start,
         "char_end": s.end}
        for s in parsed.sections
    ]  # fmt: skip
    values = {
        "organization_id": organization_id,
        "candidate_id": candidate_id,
        "file_id": file.id,
        "parser_version": PARSER_VERSION,
        "language": extracted.language,
        "raw_text": parsed.text,
        "sections": sections,
        "page_count": extracted.page_count,
        "char_count": extracted.char_count,
        "warnings": [*extracted.warnings, *_masked_warning(redacted)],
    }
    stmt = insert(ParsedResume).values(**values)
    upsert = stmt.on_conflict_do_update(
        index_elements=["file_id", "parser_version"],
        set_={
            k: stmt.excluded[k]
            for k in ("language", "raw_text", "sections", "page_count", "char_count", "warnings")
        },
    ).returning(ParsedResume.id)
    return session.scalars(upsert).one()


def _replace_profile(
    session: Session,
    organization_id: uuid.UUID,
    candidate_id: uuid.UUID,
    parsed_id: uuid.UUID,
    parsed: ParsedText,
    taxonomy: SkillTaxonomy,
) -> None:
    """Experience, education and skills derived from this parsed resume, replaced as a set."""
    for model in (CandidateExperience, CandidateEducation):
        session.execute(
            delete(model).where(
                model.organization_id == organization_id,
                model.parsed_resume_id == parsed_id,
                model.source == EntrySource.PARSED,
            )
        )
    experience = [
        {
            "organization_id": organization_id,
            "candidate_id": candidate_id,
            "parsed_resume_id": parsed_id,
            "title": period.line[:300] or None,
            "start_date": period.start_date,
            "end_date": None if period.is_current else period.end_date,
            "is_current": period.is_current,
            "source": EntrySource.PARSED,
            "position": position,
        }
        for position, period in enumerate(p for p in parsed.employment_periods if p.section in
                                          {"experience", "body", "projects", "volunteering"})
    ]  # fmt: skip
    if experience:
        session.execute(insert(CandidateExperience).values(experience))
    education = [
        {
            "organization_id": organization_id,
            "candidate_id": candidate_id,
            "parsed_resume_id": parsed_id,
            "institution": (entry.institution or None) and entry.institution[:300],
            "degree": (entry.degree or None) and entry.degree[:200],
            "field_of_study": entry.level[:200] if entry.level else None,
            "description": f"Year: {entry.year}" if entry.year else None,
            "source": EntrySource.PARSED,
            "position": position,
        }
        for position, entry in enumerate(parsed.education)
    ]
    if education:
        session.execute(insert(CandidateEducation).values(education))
    ids = skill_ids(session, taxonomy, parsed.skill_names)
    session.execute(
        delete(CandidateSkill).where(
            CandidateSkill.organization_id == organization_id,
            CandidateSkill.candidate_id == candidate_id,
            CandidateSkill.source == SkillSource.PARSED,
        )
    )
    skills = [
        {
            "organization_id": organization_id,
            "candidate_id": candidate_id,
            "skill_id": ids[name],
            "source": SkillSource.PARSED,
        }
        for name in parsed.skill_names
        if name in ids
    ]
    if skills:
        session.execute(insert(CandidateSkill).values(skills).on_conflict_do_nothing())


_EMAIL_RE = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]+")


def _fill_contact(
    session: Session, organization_id: uuid.UUID, candidate_id: uuid.UUID, contact: ContactInfo
) -> None:
    """The email and phone the resume gives, for a candidate who has none (a sourced
    candidate, an upload without a form); never over what the ATS recorded.

    Written through the encrypted columns (``EncryptedText``), with the email's blind index.
    An email that another candidate of the organization already has is left out: the blind
    index is unique per organization, and merging two records is for people to decide.
    """
    if contact.phone and sum(c.isdigit() for c in contact.phone) >= 7:
        session.execute(
            update(Candidate)
            .where(
                Candidate.id == candidate_id,
                Candidate.organization_id == organization_id,
                Candidate.phone.is_(None),
            )
            .values(phone=contact.phone.strip())
        )
    email = (contact.email or "").strip()
    if not _EMAIL_RE.fullmatch(email):
        return
    index = crypto.blind_index(email)
    taken = select(Candidate.id).where(
        Candidate.organization_id == organization_id, Candidate.email_blind_index == index
    )
    try:
        with session.begin_nested():
            session.execute(
                update(Candidate)
                .where(
                    Candidate.id == candidate_id,
                    Candidate.organization_id == organization_id,
                    Candidate.email.is_(None),
                    Candidate.email_blind_index.is_(None),
                    ~taken.exists(),
                )
                .values(email=email, email_blind_index=index)
            )
    except IntegrityError:  # another candidate took the address meanwhile
        log.info("resume_email_not_filled", candidate_id=str(candidate_id), reason="taken")


def queue_candidate_files(
    session: Session, organization_id: uuid.UUID, candidate_id: uuid.UUID
) -> dict[str, Any]:
    """Enqueue ``resumes.process_file`` for each live resume of the candidate, in the
    caller's transaction (idempotent per file)."""
    from are_workers import ledger

    candidate = session.scalar(
        select(Candidate.id).where(
            Candidate.id == candidate_id, Candidate.organization_id == organization_id
        )
    )
    if candidate is None:
        raise NotFoundError("This candidate does not exist in the organization.")
    files = session.scalars(
        select(File.id).where(
            File.organization_id == organization_id,
            File.candidate_id == candidate,
            File.purpose == FilePurpose.RESUME,
            File.status != FileStatus.DELETED,
        )
    ).all()
    for file_id in files:
        ledger.enqueue(
            session,
            "resumes.process_file",
            {"file_id": str(file_id)},
            organization_id=organization_id,
            idempotency_key=f"file:{file_id}",
        )
    if not files:
        return {"files": 0, "note": "The candidate has no resume files to process."}
    return {"files": len(files)}
