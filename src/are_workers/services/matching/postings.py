"""Job postings: reading a posting written in Markdown, and embedding a job for matching.

Why requirements are typed here: the evaluator scores each requirement by its kind (a skill
must be evidenced in the work history, an experience requirement also needs the years, an
education requirement looks at education), so a posting's bullet list is turned into
``job_requirements`` rows with a kind, a must-have flag and minimum years.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from are_workers.errors import NotFoundError
from are_workers.models.embeddings import EmbeddingEntity
from are_workers.models.jobs import JobPosting, JobRequirement, JobStatus, RequirementKind
from are_workers.models.subscription import UsageKind, UsageUnit
from are_workers.services.embeddings import EmbeddingContext, upsert_chunk_embeddings
from are_workers.services.model_registry import record_usage
from are_workers.services.skills import SkillTaxonomy, get_taxonomy

_YEARS = re.compile(r"(\d{1,2})\s*\+?\s*(?:years?|yrs?)\b", re.IGNORECASE)
_MUST = re.compile(r"^\s*[-*]\s*\[(must|nice|required|preferred)\]\s*", re.IGNORECASE)
_BULLET = re.compile(r"^\s*[-*]\s+")
_EDUCATION = re.compile(r"\b(degree|bachelor|master|bsc|msc|ba|ph\.?d|diploma|adn|bsn)\b", re.I)
_CERTIFICATION = re.compile(r"\b(licen[cs]e|certif\w*|registered)\b", re.I)
_LANGUAGE = re.compile(
    r"\b(fluent|native|proficien\w+)\b.*\b(english|german|french|spanish)\b", re.I
)
_REQUIREMENT_HEADINGS = ("requirement", "qualification", "must have", "what you bring")


@dataclass(frozen=True)
class RequirementSpec:
    text: str
    kind: RequirementKind
    must_have: bool
    min_years: float | None = None


@dataclass(frozen=True)
class JobSpec:
    title: str
    description: str
    requirements: list[RequirementSpec] = field(default_factory=list)


def classify_requirement(text: str, taxonomy: SkillTaxonomy | None = None) -> RequirementKind:
    """A requirement's kind from its wording (years → experience, degree → education …)."""
    taxonomy = taxonomy or get_taxonomy()
    if _YEARS.search(text):
        return RequirementKind.EXPERIENCE
    if _EDUCATION.search(text):
        return RequirementKind.EDUCATION
    if _LANGUAGE.search(text):
        return RequirementKind.LANGUAGE
    if _CERTIFICATION.search(text):
        return RequirementKind.CERTIFICATION
    if taxonomy.find(text):
        return RequirementKind.SKILL
    return RequirementKind.OTHER


def min_years(text: str) -> float | None:
    match = _YEARS.search(text)
    return float(match.group(1)) if match else None


def parse_job_markdown(markdown: str) -> JobSpec:
    """A posting as Markdown: ``# Title``, prose, and a requirements list.

    Bullets under a "Requirements"/"Qualifications" heading become requirements;
    ``[must]``/``[nice]`` mark must-haves (unmarked requirements are must-haves).
    """
    lines = markdown.splitlines()
    title = next((ln.lstrip("# ").strip() for ln in lines if ln.startswith("# ")), "Untitled job")
    requirements: list[RequirementSpec] = []
    in_requirements = False
    for line in lines:
        if line.startswith("#"):
            heading = line.lstrip("# ").strip().lower()
            in_requirements = any(word in heading for word in _REQUIREMENT_HEADINGS)
            continue
        if not in_requirements or not _BULLET.match(line):
            continue
        marker = _MUST.match(line)
        text = (_MUST.sub("", line) if marker else _BULLET.sub("", line)).strip()
        if not text:
            continue
        must = marker is None or marker.group(1).lower() in {"must", "required"}
        requirements.append(
            RequirementSpec(text, classify_requirement(text), must, min_years(text))
        )
    return JobSpec(title=title, description=markdown.strip(), requirements=requirements)


def create_job(session: Session, organization_id: uuid.UUID, spec: JobSpec) -> JobPosting:
    """Insert a job and its requirements (what the ATS does; used by the CLI and demo)."""
    job = JobPosting(
        organization_id=organization_id,
        title=spec.title[:300],
        description=spec.description,
        status=JobStatus.OPEN,
        evaluation_criteria={},
    )
    session.add(job)
    session.flush()
    for position, requirement in enumerate(spec.requirements):
        session.add(
            JobRequirement(
                organization_id=organization_id,
                job_id=job.id,
                text=requirement.text,
                kind=requirement.kind,
                must_have=requirement.must_have,
                weight=1.0,
                min_years=Decimal(str(requirement.min_years))
                if requirement.min_years is not None
                else None,
                position=position,
            )
        )
    session.flush()
    return job


def load_job(
    session: Session, organization_id: uuid.UUID, job_id: uuid.UUID
) -> tuple[JobPosting, list[JobRequirement]]:
    job = session.scalar(
        select(JobPosting).where(
            JobPosting.id == job_id, JobPosting.organization_id == organization_id
        )
    )
    if job is None:
        raise NotFoundError("This job does not exist in the organization.", code="job_not_found")
    requirements = list(
        session.scalars(
            select(JobRequirement)
            .where(
                JobRequirement.job_id == job.id,
                JobRequirement.organization_id == organization_id,
            )
            .order_by(JobRequirement.position)
        )
    )
    return job, requirements


def job_query_text(job: JobPosting, requirements: list[JobRequirement]) -> str:
    """What a job's retrieval vector encodes: its title and what it asks for."""
    if requirements:
        return f"{job.title}. " + "; ".join(r.text for r in requirements)
    return f"{job.title}. {job.description}"


def embed_job(
    session: Session,
    *,
    organization_id: uuid.UUID,
    job_id: uuid.UUID,
    embedding: EmbeddingContext,
) -> dict[str, Any]:
    """Vectors for the job (retrieval query) and each requirement (evidence), idempotent."""
    job, requirements = load_job(session, organization_id, job_id)
    model_id = embedding.ensure_model(session)
    embedded, _ = upsert_chunk_embeddings(
        session,
        organization_id=organization_id,
        entity_type=EmbeddingEntity.JOB,
        entity_id=job.id,
        owner={"job_id": job.id},
        chunks=[(0, "job", job_query_text(job, requirements), None, None)],
        model_id=model_id,
        embedding=embedding,
    )
    for requirement in requirements:
        done, _ = upsert_chunk_embeddings(
            session,
            organization_id=organization_id,
            entity_type=EmbeddingEntity.JOB_REQUIREMENT,
            entity_id=requirement.id,
            owner={"job_id": job.id},
            chunks=[(0, requirement.kind.value, requirement.text, None, None)],
            model_id=model_id,
            embedding=embedding,
        )
        embedded += done
    record_usage(
        session,
        organization_id=organization_id,
        kind=UsageKind.JOB_EMBEDDING,
        quantity=embedded,
        unit=UsageUnit.ITEM,
    )
    return {"job_id": str(job.id), "model_id": str(model_id), "embedded": embedded,
            "requirements": len(requirements)}  # fmt: skip
