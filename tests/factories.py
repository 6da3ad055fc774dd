"""Test factories: a consistent organization → job → candidate → application graph.

Plain functions rather than factory_boy classes: every tenant-owned row must carry its
parent's ``organization_id`` (the composite tenant FKs reject anything else), and explicit
arguments make that visible. Each helper adds its rows to the given session and flushes, so
ids are available at once; the ``db`` fixture rolls everything back after the test.

    graph = make_graph(db)                     # org, member, job (+requirements, stages),
    graph.candidate, graph.application         # candidate with a parsed resume, application
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from are_workers.models.ai_evaluations import AIModelVersion, ModelKind
from are_workers.models.applications import Application
from are_workers.models.candidates import Candidate, ParsedResume
from are_workers.models.embeddings import EmbeddingModel, EmbeddingModelStatus
from are_workers.models.files import File, FilePurpose, FileStatus
from are_workers.models.jobs import (
    JobPosting,
    JobRequirement,
    JobStatus,
    PipelineStage,
    RequirementKind,
    StageKind,
)
from are_workers.models.organizations import MemberRole, Organization, OrganizationMember
from are_workers.models.users import User

#: Key of the test blind index (the real key comes from the compliance settings).
TEST_BLIND_INDEX_KEY = b"test-blind-index-key"
T = TypeVar("T")

RESUME_TEXT = (
    "Jane Doe\njane@example.com\n\nExperience\nSenior Python Engineer at Acme, 2019-2024. "
    "Built data pipelines with PostgreSQL and Dramatiq.\n\nSkills\nPython, SQL, Docker\n"
)


def _suffix() -> str:
    return uuid.uuid4().hex[:10]


def blind_index(email: str) -> str:
    """The keyed hash used for exact-match lookup of encrypted emails."""
    return hmac.new(
        TEST_BLIND_INDEX_KEY, email.strip().lower().encode(), hashlib.sha256
    ).hexdigest()


def _add(db: Session, obj: T) -> T:
    db.add(obj)
    db.flush()
    return obj


def make_org(db: Session, **kw: Any) -> Organization:
    suffix = _suffix()
    kw.setdefault("name", f"Org {suffix}")
    kw.setdefault("slug", f"org-{suffix}")
    return _add(db, Organization(**kw))


def make_user(db: Session, **kw: Any) -> User:
    suffix = _suffix()
    kw.setdefault("email", f"user-{suffix}@example.com")
    kw.setdefault("full_name", f"User {suffix}")
    return _add(db, User(**kw))


def make_member(
    db: Session,
    org: Organization,
    user: User | None = None,
    role: MemberRole = MemberRole.RECRUITER,
) -> OrganizationMember:
    user = user or make_user(db)
    return _add(db, OrganizationMember(organization_id=org.id, user_id=user.id, role=role))


def make_job(
    db: Session, org: Organization, *, requirements: int = 2, stages: bool = True, **kw: Any
) -> JobPosting:
    kw.setdefault("title", "Senior Python Engineer")
    kw.setdefault("description", "Build data pipelines with Python and PostgreSQL.")
    kw.setdefault("status", JobStatus.OPEN)
    kw.setdefault("evaluation_criteria", {"kind_weights": {"skill": 0.6, "experience": 0.4}})
    job = _add(db, JobPosting(organization_id=org.id, **kw))
    texts = ["5+ years of Python", "PostgreSQL in production", "Docker", "Team leadership"]
    for position in range(requirements):
        db.add(
            JobRequirement(
                organization_id=org.id,
                job_id=job.id,
                text=texts[position % len(texts)],
                kind=RequirementKind.SKILL if position else RequirementKind.EXPERIENCE,
                must_have=position == 0,
                weight=1.0,
                position=position,
            )
        )
    if stages:
        for position, (name, kind) in enumerate(
            [("Applied", StageKind.APPLIED), ("Screening", StageKind.SCREENING)]
        ):
            db.add(
                PipelineStage(
                    organization_id=org.id, job_id=job.id, name=name, kind=kind, position=position
                )
            )
    db.flush()
    return job


def make_candidate(
    db: Session, org: Organization, *, email: str | None = None, **kw: Any
) -> Candidate:
    email = email or f"candidate-{_suffix()}@example.com"
    kw.setdefault("full_name", "Jane Doe")
    return _add(
        db,
        Candidate(
            organization_id=org.id,
            email=email,
            email_blind_index=blind_index(email),
            **kw,
        ),
    )


def make_file(
    db: Session,
    org: Organization,
    *,
    candidate: Candidate | None = None,
    purpose: FilePurpose = FilePurpose.RESUME,
    content: bytes = RESUME_TEXT.encode(),
    **kw: Any,
) -> File:
    kw.setdefault("original_filename", "Jane_Doe_CV.txt")
    kw.setdefault("content_type", "text/plain")
    kw.setdefault("status", FileStatus.PROCESSED)
    return _add(
        db,
        File(
            organization_id=org.id,
            candidate_id=candidate.id if candidate else None,
            storage_key=f"{org.id}/{uuid.uuid4()}",
            purpose=purpose,
            size_bytes=len(content),
            sha256=hashlib.sha256(content).hexdigest(),
            **kw,
        ),
    )


def make_parsed_resume(
    db: Session, candidate: Candidate, file: File | None = None, text: str = RESUME_TEXT
) -> ParsedResume:
    org_id = candidate.organization_id
    if file is None:
        file = make_file(db, db.get_one(Organization, org_id), candidate=candidate)
    start = text.index("Experience")
    return _add(
        db,
        ParsedResume(
            organization_id=org_id,
            candidate_id=candidate.id,
            file_id=file.id,
            parser_version="test-1",
            language="en",
            raw_text=text,
            sections=[
                {
                    "name": "experience",
                    "text": text[start:],
                    "char_start": start,
                    "char_end": len(text),
                }
            ],
            char_count=len(text),
        ),
    )


def make_application(db: Session, candidate: Candidate, job: JobPosting, **kw: Any) -> Application:
    stage = job.pipeline_stages[0] if job.pipeline_stages else None
    return _add(
        db,
        Application(
            organization_id=job.organization_id,
            candidate_id=candidate.id,
            job_id=job.id,
            current_stage_id=stage.id if stage else None,
            **kw,
        ),
    )


def make_model_version(
    db: Session, kind: ModelKind = ModelKind.LLM, name: str = "test-model", **kw: Any
) -> AIModelVersion:
    kw.setdefault("version", _suffix())
    return _add(db, AIModelVersion(kind=kind, name=name, **kw))


def make_embedding_model(
    db: Session, dimension: int = 384, *, default: bool = False, **kw: Any
) -> EmbeddingModel:
    kw.setdefault("name", f"test-embedder-{dimension}")
    kw.setdefault("version", _suffix())
    return _add(
        db,
        EmbeddingModel(
            dimension=dimension,
            status=EmbeddingModelStatus.ACTIVE,
            is_default=default,
            **kw,
        ),
    )


@dataclass
class Graph:
    """One consistent tenant: what most pipeline tests start from."""

    org: Organization
    member: OrganizationMember
    job: JobPosting
    candidate: Candidate
    resume_file: File
    parsed_resume: ParsedResume
    application: Application
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def requirements(self) -> list[JobRequirement]:
        return list(self.job.requirements)


def make_graph(db: Session, org: Organization | None = None) -> Graph:
    """org → member, job (2 requirements, 2 stages) → candidate (resume) → application."""
    org = org or make_org(db)
    member = make_member(db, org)
    job = make_job(db, org, created_by_user_id=member.user_id)
    candidate = make_candidate(db, org)
    resume_file = make_file(db, org, candidate=candidate)
    parsed = make_parsed_resume(db, candidate, resume_file)
    application = make_application(db, candidate, job)
    db.refresh(job)
    return Graph(org, member, job, candidate, resume_file, parsed, application)


def utcnow() -> datetime:
    return datetime.now(UTC)


def days(n: float) -> timedelta:
    return timedelta(days=n)
