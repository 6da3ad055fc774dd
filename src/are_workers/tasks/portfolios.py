"""Portfolio actors: thin wrappers that take IDs and call ``services.portfolios.store``.

The evaluation's own writes and the job's completion commit together; a permanent failure
is rolled back and ``on_permanent_failure`` records its reason on a ``failed`` evaluation.
"""

from __future__ import annotations

import uuid
from typing import Any

from are_workers.errors import InvalidInputError
from are_workers.job_context import current_job
from are_workers.services.embeddings import default_embedding_context
from are_workers.services.portfolios import store
from are_workers.tasks.base import job_actor, warmup


def _id(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise InvalidInputError(f"{value!r} is not a {what} id.", code="invalid_id") from None


@job_actor("portfolios.evaluate", on_permanent_failure=store.record_evaluation_failure)
def evaluate(portfolio_id: str, job_id: str) -> dict[str, Any]:
    """Deep-evaluate a portfolio against a job's requirements (idempotent per fingerprint)."""
    job = current_job()
    outcome = store.evaluate_portfolio_for_job(
        job.session,
        organization_id=current_job().require_organization(),
        portfolio_id=_id(portfolio_id, "portfolio"),
        job_id=_id(job_id, "job"),
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
