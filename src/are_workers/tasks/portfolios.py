"""Portfolio actors: thin wrappers that take IDs and call ``services.portfolios.store``.

The evaluation's own writes and the job's completion commit together; a permanent failure
is rolled back and ``on_permanent_failure`` records its reason on a ``failed`` evaluation.
"""

from __future__ import annotations

import uuid
from typing import Any

from are_workers.job_context import current_job
from are_workers.services.embeddings import default_embedding_context
from are_workers.services.portfolios import store
from are_workers.tasks.base import job_actor, warmup


@job_actor("portfolios.evaluate", on_permanent_failure=store.record_evaluation_failure)
def evaluate(portfolio_id: uuid.UUID, job_id: uuid.UUID) -> dict[str, Any]:
    """Deep-evaluate a portfolio against a job's requirements (idempotent per fingerprint)."""
    job = current_job()
    outcome = store.evaluate_portfolio_for_job(
        job.session,
        organization_id=current_job().require_organization(),
        portfolio_id=portfolio_id,
        job_id=job_id,
        embedding=default_embedding_context(),
    )
    return outcome.as_result()


@warmup("ml")
def load_portfolio_readers() -> None:
    """Import the readers (lizard, pypdf, Pillow) and the skills taxonomy before the first job."""
    from are_workers.services.portfolios.code_signals import complexity_tool_version
    from are_workers.services.portfolios.images import image_tool_version
    from are_workers.services.skills import get_taxonomy

    get_taxonomy()
    complexity_tool_version()
    image_tool_version()
