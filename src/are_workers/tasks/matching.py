"""Matching actors: embed a job, and rank and explain candidates for it."""

from __future__ import annotations

import uuid
from typing import Any

from are_workers.middleware.ledger import current_job
from are_workers.services.matching import evaluation, postings
from are_workers.services.resumes.pipeline import default_embedding_context
from are_workers.tasks.base import job_actor


@job_actor("matching.embed_job")
def embed_job(job_id: str) -> dict[str, Any]:
    """Vectors for a job posting and its requirements (idempotent)."""
    job = current_job()
    return postings.embed_job(
        job.session,
        organization_id=current_job().require_organization(),
        job_id=uuid.UUID(job_id),
        embedding=default_embedding_context(),
        task_run_id=job.job_id,
    )


@job_actor("matching.match_job")
def match_job(job_id: str, top_k: int = 10) -> dict[str, Any]:
    """Retrieve, evaluate with evidence and rank the job's candidates (never rejects)."""
    job = current_job()
    results = evaluation.evaluate_job(
        job.session,
        organization_id=current_job().require_organization(),
        job_id=uuid.UUID(job_id),
        embedding=default_embedding_context(),
        top_k=int(top_k),
        task_run_id=job.job_id,
    )
    ranked = [r for r in results if r.rank_score is not None]
    return {
        "shortlist": [str(r.candidate_id) for r in ranked],
        "needs_review": sum(r.status.value == "needs_review" for r in ranked),
        "skipped": {str(r.candidate_id): r.skip_reason for r in results if r.skip_reason},
    }
