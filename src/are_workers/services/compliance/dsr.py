"""Data subject requests: route each to erasure or export, record the outcome on the request.

A request belongs to the organization that received it (the controller of its own data),
and every effect is scoped to that organization. Outcomes are clear and final: completed
with a verification report, or rejected with the reason (a legal hold); a request that is
already closed is returned as is, so a duplicate job changes nothing.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import text
from sqlalchemy.orm import Session

from are_workers import ledger
from are_workers.errors import InvalidInputError, NotFoundError
from are_workers.job_context import current_job_id
from are_workers.models.privacy import DataSubjectRequest, DsrKind, DsrStatus, SubjectType
from are_workers.services.compliance import audit
from are_workers.services.compliance.erasure import LegalHoldError, erase_subject, journal_erasure
from are_workers.services.compliance.export import build_export
from are_workers.services.compliance.registry import SubjectKind

log = structlog.get_logger(__name__)

HANDLED_BY_WORKERS = {DsrKind.ERASURE, DsrKind.ACCESS, DsrKind.PORTABILITY}
OPEN = (DsrStatus.RECEIVED, DsrStatus.IN_PROGRESS, DsrStatus.EXTENDED)


def _now(session: Session) -> datetime:
    return session.execute(text("SELECT now()")).scalar_one()


def _empty_report(now: datetime) -> dict[str, Any]:
    return {
        "version": 1,
        "verified_at": now.isoformat(),
        "deleted": {},
        "anonymized": {},
        "residual": {},
        "held": [],
    }


def process_request(
    session: Session,
    request_id: uuid.UUID,
    *,
    organization_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    """Carry out one request, in the caller's transaction. Returns the job's summary."""
    task_run_id = current_job_id()
    dsr = session.get(DataSubjectRequest, request_id, with_for_update=True)
    if dsr is None or (organization_id is not None and dsr.organization_id != organization_id):
        raise NotFoundError(
            f"Data subject request {request_id} does not exist in this organization."
        )
    summary: dict[str, Any] = {"request_id": str(dsr.id), "kind": dsr.kind.value}
    if dsr.status in (DsrStatus.COMPLETED, DsrStatus.REJECTED):
        return summary | {"status": dsr.status.value, "already_closed": True}
    if dsr.kind not in HANDLED_BY_WORKERS:
        raise InvalidInputError(
            f"{dsr.kind.value.capitalize()} requests are decided by people in the ATS; "
            "no worker carries them out."
        )
    if dsr.status is DsrStatus.VERIFYING_IDENTITY:
        raise InvalidInputError(
            "The requester's identity is not verified yet; the request is processed once "
            "it is marked received or in progress."
        )
    now = _now(session)
    due = dsr.extended_until or dsr.deadline_at
    summary["overdue"] = now > due
    if summary["overdue"]:
        log.warning("dsr_overdue", request_id=str(dsr.id), deadline=due.isoformat())
    kind: SubjectKind = "candidate" if dsr.subject_type is SubjectType.CANDIDATE else "user"
    subject_id = dsr.candidate_id if kind == "candidate" else dsr.user_id
    dsr.status = DsrStatus.IN_PROGRESS
    dsr.task_run_id = task_run_id
    if subject_id is None:
        # Nothing is held about this subject here (never was, or already deleted).
        _close(session, dsr, DsrStatus.COMPLETED, now, report=_empty_report(now))
        return summary | {"status": "completed", "subject_found": False}
    if dsr.kind is DsrKind.ERASURE:
        try:
            outcome = erase_subject(
                session,
                dsr.organization_id,
                subject_id,
                kind=kind,
                request_id=dsr.id,
            )
        except LegalHoldError as refused:
            dsr.rejection_reason = refused.user_message[:200]
            _close(session, dsr, DsrStatus.REJECTED, now)
            audit.record(
                session,
                organization_id=dsr.organization_id,
                action="dsr.erasure.refused",
                entity_type="data_subject_request",
                entity_id=dsr.id,
                subject_id=subject_id,
                output_refs={"reason": "legal_hold"},
            )
            return summary | {"status": "rejected", "reason": refused.user_message}
        report = outcome.verification_report()
        dsr.requester_email = None
        _close(session, dsr, DsrStatus.COMPLETED, now, report=report)
        journal_erasure(dsr.organization_id, kind, subject_id, dsr.id)
        return summary | {
            "status": "completed",
            "rows": outcome.rows,
            "files_deleted": outcome.files_deleted,
            "residual": report["residual"],
            "held": outcome.held,
        }
    export = build_export(
        session,
        dsr.organization_id,
        subject_id,
        kind=kind,
        request_id=dsr.id,
    )
    dsr.export_file_id = export.file_id
    _close(session, dsr, DsrStatus.COMPLETED, now, report=_empty_report(now))
    return summary | {"status": "completed", **export.as_dict()}


def _close(
    session: Session,
    dsr: DataSubjectRequest,
    status: DsrStatus,
    now: datetime,
    *,
    report: dict[str, Any] | None = None,
) -> None:
    dsr.status = status
    dsr.completed_at = now
    if report is not None:
        dsr.verification_report = report
    session.flush()


def enqueue_due(session: Session) -> list[uuid.UUID]:
    """Queue every open request a worker can handle, soonest deadline first (idempotent)."""
    rows = session.execute(
        text(
            """
            SELECT id, organization_id, coalesce(extended_until, deadline_at) < now() AS overdue
            FROM data_subject_requests
            WHERE status IN ('received', 'in_progress', 'extended')
              AND kind IN ('erasure', 'access', 'portability')
            ORDER BY coalesce(extended_until, deadline_at)
            """
        )
    ).all()
    return [
        ledger.enqueue(
            session,
            "compliance.process_dsr",
            {"request_id": str(r.id)},
            organization_id=r.organization_id,
            idempotency_key=f"dsr:{r.id}",
            priority=-10 if r.overdue else 0,
        )
        for r in rows
    ]
