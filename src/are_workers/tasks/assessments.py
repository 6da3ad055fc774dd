"""Adaptive assessment jobs: score one answer (CAT step), re-calibrate item banks.

Thin on purpose: the actors take IDs, read their organization from the ledger claim and call
``services.assessments.sessions`` / ``recalibration`` with the job's session, whose commit
is the job's completion. A rejected answer fails the job with the reason for people, and
``on_permanent_failure`` notes that reason on the session after the rollback.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from are_workers.errors import PermanentError
from are_workers.job_context import JobContext, current_job
from are_workers.services.assessments import recalibration, sessions
from are_workers.tasks.base import job_actor


def record_rejection(
    session: Session, error: PermanentError, kwargs: dict[str, Any], ctx: JobContext
) -> None:
    """``on_permanent_failure``: keep the rejection on the session (the ledger has it too)."""
    sessions.record_rejection(session, ctx.organization_id, kwargs.get("response_id"), error)


@job_actor("assessments.start_session")
def start_session(session_id: uuid.UUID) -> dict[str, Any]:
    """Choose the first item of an open adaptive session (idempotent)."""
    job = current_job()
    return sessions.begin_session(job.session, job.require_organization(), session_id)


@job_actor("assessments.score_response", on_permanent_failure=record_rejection)
def score_response(response_id: uuid.UUID) -> dict[str, Any]:
    """Score an answer, update theta/SE, present the next item or store the final result."""
    job = current_job()
    outcome = sessions.score_response(job.session, job.require_organization(), response_id)
    return sessions.ledger_summary(outcome)


@job_actor("assessments.calibrate_items")
def calibrate_items(bank_id: uuid.UUID | None = None) -> dict[str, Any]:
    """Re-estimate item parameters of one bank (or all of the organization's banks)."""
    job = current_job()
    banks = recalibration.calibrate_banks(job.session, job.require_organization(), bank_id)
    return {"banks": banks}
