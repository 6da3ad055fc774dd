"""Resume actors: thin wrappers that take IDs and call ``services.resumes.pipeline``."""

from __future__ import annotations

import uuid
from typing import Any

from are_workers.job_context import current_job
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
    return pipeline.queue_candidate_files(job.session, job.require_organization(), candidate_id)


@warmup("ml")
def load_embedder() -> None:
    """Load the embedding model before the worker reports ready."""
    default_embedding_context().embed(["warm-up"])
