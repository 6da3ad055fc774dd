"""What upstream apps import to enqueue jobs and read their status.

Light on purpose: no torch, transformers, CTranslate2, OpenCV, nor even the broker. An
enqueue is an INSERT into the job ledger inside *your* transaction: commit and the relay
publishes it; roll back and the job never existed. Pass IDs, never personal data.

    from are_workers import client
    with Session(engine) as session, session.begin():
        file = ...  # your upload row
        job_id = client.process_resume_file(session, organization_id=org.id, file_id=file.id)
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from are_workers import ledger
from are_workers.catalog import JOB_KINDS
from are_workers.ledger import JobView

Db = Session | Connection
ID = uuid.UUID | str

__all__ = [
    "JOB_KINDS",
    "JobView",
    "cancel",
    "enqueue",
    "evaluate_portfolio",
    "job_status",
    "match_job",
    "process_candidate",
    "process_resume_file",
    "score_assessment_response",
    "start_assessment_session",
    "transcribe_response",
    "wait_for",
]


def enqueue(
    db: Db,
    actor: str,
    args: dict[str, Any] | None = None,
    *,
    organization_id: ID | None = None,
    idempotency_key: str | None = None,
    priority: int = 0,
) -> uuid.UUID:
    """Any job kind from the catalogue, by name. Unknown names raise at once."""
    return ledger.enqueue(
        db,
        actor,
        args,
        organization_id=organization_id,
        idempotency_key=idempotency_key,
        priority=priority,
    )


def process_resume_file(db: Db, *, organization_id: ID, file_id: ID) -> uuid.UUID:
    """Extract, parse and embed one uploaded resume (idempotent per file)."""
    return enqueue(
        db, "resumes.process_file", {"file_id": str(file_id)},
        organization_id=organization_id, idempotency_key=f"file:{file_id}",
    )  # fmt: skip


def process_candidate(db: Db, *, organization_id: ID, candidate_id: ID) -> uuid.UUID:
    """Process every file of a candidate."""
    return enqueue(
        db, "resumes.process_candidate", {"candidate_id": str(candidate_id)},
        organization_id=organization_id,
    )  # fmt: skip


def match_job(db: Db, *, organization_id: ID, job_id: ID, top_k: int = 20) -> uuid.UUID:
    """Rank and evaluate candidates for a job posting."""
    return enqueue(
        db, "matching.match_job", {"job_id": str(job_id), "top_k": top_k},
        organization_id=organization_id,
    )  # fmt: skip


def transcribe_response(db: Db, *, organization_id: ID, response_id: ID) -> uuid.UUID:
    return enqueue(
        db, "media.transcribe_response", {"response_id": str(response_id)},
        organization_id=organization_id, idempotency_key=f"transcribe:{response_id}",
    )  # fmt: skip


def start_assessment_session(db: Db, *, organization_id: ID, session_id: ID) -> uuid.UUID:
    """Choose the first question of an adaptive session (idempotent per session)."""
    return enqueue(
        db, "assessments.start_session", {"session_id": str(session_id)},
        organization_id=organization_id, idempotency_key=f"start:{session_id}",
    )  # fmt: skip


def score_assessment_response(db: Db, *, organization_id: ID, response_id: ID) -> uuid.UUID:
    return enqueue(
        db, "assessments.score_response", {"response_id": str(response_id)},
        organization_id=organization_id, idempotency_key=f"response:{response_id}",
    )  # fmt: skip


def evaluate_portfolio(db: Db, *, organization_id: ID, portfolio_id: ID, job_id: ID) -> uuid.UUID:
    return enqueue(
        db, "portfolios.evaluate", {"portfolio_id": str(portfolio_id), "job_id": str(job_id)},
        organization_id=organization_id,
    )  # fmt: skip


def job_status(db: Db, job_id: ID) -> JobView | None:
    return ledger.get_job(db, job_id)


def cancel(db: Db, job_id: ID) -> bool:
    return ledger.cancel(db, job_id)


def wait_for(
    session_factory: Any, job_ids: Iterable[ID], *, timeout: float = 60.0, poll: float = 0.1
) -> list[JobView]:
    """Block until every job is terminal (or raise ``TimeoutError``); for scripts and tests.

    Apps that must not poll can ``LISTEN are_task_runs_done`` instead (docs/job-ledger.md).
    """
    ids = [str(j) for j in job_ids]
    pending = set(ids)
    done: dict[str, JobView] = {}
    deadline = time.monotonic() + timeout
    while pending:
        with session_factory() as session:
            for job_id in list(pending):
                view = ledger.get_job(session, job_id)
                if view is not None and view.status in {"succeeded", "failed", "dead", "cancelled"}:
                    done[job_id] = view
                    pending.discard(job_id)
        if pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(pending)} job(s) not finished after {timeout}s")
            time.sleep(poll)
    return [done[j] for j in ids]
