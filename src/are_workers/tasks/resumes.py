"""Resume actors: thin wrappers that take IDs and call ``services.resumes.pipeline``."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from are_workers import ledger
from are_workers.errors import NotFoundError
from are_workers.job_context import current_job
from are_workers.models.candidates import Candidate
from are_workers.models.files import File, FilePurpose, FileStatus
from are_workers.services.embeddings import default_embedding_context
from are_workers.services.resumes import pipeline
from are_workers.tasks.base import job_actor, warmup


@job_actor("resumes.process_file", on_permanent_failure=pipeline.record_file_failure)
def process_file(file_id: uuid.UUID) -> dict[str, Any]:
    """Extract, parse and embed one resume file; the outcome goes on the file and candidate."""
    job = current_job()
    outcome = pipeline.process_resume_file(
        job.session,
        organization_id=current_job().require_organization(),
        file_id=file_id,
        embedding=default_embedding_context(),
    )
    return outcome.as_result()


@job_actor("resumes.process_candidate")
def process_candidate(candidate_id: uuid.UUID) -> dict[str, Any]:
    """Queue every resume of a candidate (follow-up jobs commit with this one)."""
    job = current_job()
    org = current_job().require_organization()
    candidate = job.session.scalar(
        select(Candidate.id).where(Candidate.id == candidate_id, Candidate.organization_id == org)
    )
    if candidate is None:
        raise NotFoundError("This candidate does not exist in the organization.")
    files = job.session.scalars(
        select(File.id).where(
            File.organization_id == org,
            File.candidate_id == candidate,
            File.purpose == FilePurpose.RESUME,
            File.status != FileStatus.DELETED,
        )
    ).all()
    for file_id in files:
        ledger.enqueue(
            job.session,
            "resumes.process_file",
            {"file_id": str(file_id)},
            organization_id=org,
            idempotency_key=f"file:{file_id}",
        )
    if not files:
        return {"files": 0, "note": "The candidate has no resume files to process."}
    return {"files": len(files)}


@warmup("ml")
def load_embedder() -> None:
    """Load the embedding model before the worker reports ready."""
    default_embedding_context().embed(["warm-up"])
