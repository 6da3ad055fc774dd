"""Matching actors: embed a job, rank and explain candidates for it, and keep a tenant's
vector indexes fitting its size."""

from __future__ import annotations

import uuid
from typing import Any

from are_workers.job_context import current_job
from are_workers.services.embeddings import default_embedding_context
from are_workers.services.matching import evaluation, postings, retrieval
from are_workers.tasks.base import job_actor


@job_actor("matching.embed_job")
def embed_job(job_id: uuid.UUID) -> dict[str, Any]:
    """Vectors for a job posting and its requirements (idempotent)."""
    job = current_job()
    return postings.embed_job(
        job.session,
        organization_id=current_job().require_organization(),
        job_id=job_id,
        embedding=default_embedding_context(),
    )


@job_actor("matching.match_job")
def match_job(job_id: uuid.UUID, top_k: int = 10) -> dict[str, Any]:
    """Retrieve, evaluate with evidence and rank the job's candidates (never rejects)."""
    job = current_job()
    results = evaluation.evaluate_job(
        job.session,
        organization_id=current_job().require_organization(),
        job_id=job_id,
        embedding=default_embedding_context(),
        top_k=int(top_k),
    )
    ranked = [r for r in results if r.rank_score is not None]
    return {
        "shortlist": [str(r.candidate_id) for r in ranked],
        "needs_review": sum(r.status.value == "needs_review" for r in ranked),
        "skipped": {str(r.candidate_id): r.skip_reason for r in results if r.skip_reason},
    }


@job_actor("matching.sync_tenant_index")
def sync_tenant_index(min_vectors: int | None = None, **_schedule: Any) -> dict[str, Any]:
    """Give the tenant a partial HNSW index per embedding model once it is large, drop it
    once small, and drop a retired model's; idempotent (a second run changes nothing).

    Works on an autocommit connection of its own and never opens the job's session:
    ``CREATE INDEX CONCURRENTLY`` waits for every older transaction, the job's included.
    """
    job = current_job()
    return retrieval.sync_tenant_indexes(
        job.session, job.require_organization(), min_vectors=min_vectors
    )
