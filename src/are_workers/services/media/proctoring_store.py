"""The ``media.proctor_snapshots`` job: camera events of an assessment session from its
webcam snapshots, and an integrity summary on the session.

Events are replaced as a set on every run; only times and kinds are stored: no face boxes, no
images, no per-frame data. The rules that turn face observations into events (no database)
are ``proctoring``. The result is audited in the transaction that stores it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from are_workers.config import Settings, get_settings
from are_workers.errors import InvalidInputError, NotFoundError
from are_workers.models.ai_assessments_ext import (
    EventSeverity,
    ProctoringEvent,
    ProctoringEventKind,
    ProctoringSession,
    ProctoringStatus,
)
from are_workers.models.assessments import AssessmentSession
from are_workers.models.files import File, FilePurpose, FileStatus
from are_workers.models.subscription import UsageKind, UsageUnit
from are_workers.services import consent, storage
from are_workers.services.compliance import audit
from are_workers.services.consent import Activity, load_consents
from are_workers.services.media.proctoring import (
    EventKind,
    ProctoringOptions,
    ProctoringReport,
    proctor_observations,
)
from are_workers.services.media.store import (
    digest_refs,
    gpu_memory_errors_as_transient,
    options_digest,
    vision_detector,
    vision_version,
)
from are_workers.services.media.video_analysis import VideoAnalysisOptions
from are_workers.services.model_registry import record_usage

PROCTORING_MODEL_SUFFIX = "+are-proctoring"
"""Camera events are the face detector's observations turned into events by the
proctoring rules (``ProctoringOptions``): the audit log names both, as
``<detector name>+are-proctoring``."""
PROCTORING_AUDIT_ACTION = "proctoring.analysed"


_EVENT_KINDS = {
    EventKind.NO_FACE: ProctoringEventKind.FACE_ABSENT,
    EventKind.CAMERA_BLOCKED: ProctoringEventKind.FACE_ABSENT,  # ``details.signal`` tells
    EventKind.MULTIPLE_FACES: ProctoringEventKind.MULTIPLE_FACES,
    EventKind.FACE_AWAY: ProctoringEventKind.GAZE_AWAY,
}
_SEVERITY = {
    EventKind.MULTIPLE_FACES: EventSeverity.WARNING,
    EventKind.CAMERA_BLOCKED: EventSeverity.WARNING,
    EventKind.NO_FACE: EventSeverity.INFO,
    EventKind.FACE_AWAY: EventSeverity.INFO,
}
"""Never ``critical``: these are indicators for a person, not findings (see proctoring)."""

CAMERA_SOURCE = "camera"
"""``details.source`` of the events this module writes; events from other sources (tab
switches, copy-paste, reported by the assessment app) are never touched."""


@dataclass(frozen=True, slots=True)
class ProctoringOutcome:
    proctoring_session_id: uuid.UUID
    snapshots: int = 0
    unreadable: int = 0
    skipped: str | None = None

    def as_result(self) -> dict[str, Any]:
        """For the ledger row: counts only. Events and the summary are biometric-derived
        and live on the session, under its retention; the ledger row outlives neither."""
        result: dict[str, Any] = {"proctoring_session_id": str(self.proctoring_session_id)}
        if self.skipped:
            return result | {"skipped": self.skipped}
        return result | {"snapshots": self.snapshots, "unreadable_snapshots": self.unreadable}


def proctor_session(
    session: Session,
    *,
    organization_id: uuid.UUID,
    proctoring_session_id: uuid.UUID,
    file_ids: Sequence[uuid.UUID] | None = None,
    settings: Settings | None = None,
    options: ProctoringOptions | None = None,
    video_options: VideoAnalysisOptions | None = None,
) -> ProctoringOutcome:
    """Camera events and an integrity summary from a session's webcam snapshots.

    ``file_ids``: the snapshots to use; ``None`` means every ``proctoring_snapshot`` file of
    the candidate uploaded during the session. A snapshot's time is its upload time relative
    to the session's start. Without a ``biometric_processing`` consent (or with an objection
    to automated processing) nothing is analysed and the reason is the job's result.
    """
    settings = settings or get_settings()
    video_options = video_options or VideoAnalysisOptions()
    row = session.execute(
        select(ProctoringSession, AssessmentSession.candidate_id)
        .join(AssessmentSession, AssessmentSession.id == ProctoringSession.assessment_session_id)
        .where(
            ProctoringSession.id == proctoring_session_id,
            ProctoringSession.organization_id == organization_id,
        )
    ).one_or_none()
    if row is None:
        raise NotFoundError(
            "This proctoring session does not exist in the organization.",
            code="proctoring_session_not_found",
        )
    proctoring, candidate_id = row
    refusal = consent.refusal(load_consents(session, candidate_id), Activity.BIOMETRIC)
    if refusal is not None:
        return ProctoringOutcome(proctoring_session_id, skipped=refusal.code)

    snapshots = _snapshot_files(session, proctoring, candidate_id, file_ids)
    observations = []
    file_at: dict[float, uuid.UUID] = {}
    unreadable = 0
    for file_id, storage_key, uploaded_at, _ in snapshots:
        seconds = round(max(0.0, (uploaded_at - proctoring.started_at).total_seconds()), 3)
        try:
            observation = _observe_snapshot(
                storage_key, organization_id, seconds, settings, video_options
            )
        except InvalidInputError:
            unreadable += 1
            continue
        observations.append(observation)
        file_at.setdefault(observation.timestamp, file_id)
    if not observations:
        raise InvalidInputError(
            f"None of the session's {len(snapshots)} webcam snapshots could be read (damaged "
            "or missing images), so the session could not be proctored.",
            code="corrupt_image",
        )
    with gpu_memory_errors_as_transient("proctoring"):
        report = proctor_observations(
            sorted(observations, key=lambda o: o.timestamp),
            options=options,
            video_options=video_options,
        )
    _replace_camera_events(
        session, proctoring, report, file_at, vision_detector(video_options).name
    )
    summary = report.summary
    if proctoring.status is not ProctoringStatus.REVIEWED:  # a person's review stands
        if summary.needs_human_review:
            proctoring.status = ProctoringStatus.FLAGGED
        elif proctoring.ended_at is not None:
            proctoring.status = ProctoringStatus.COMPLETED
    flagged = sum(summary.seconds.values())
    proctoring.risk_score = (
        round(min(1.0, flagged / summary.observed_seconds), 3)
        if summary.observed_seconds > 0
        else None
    )
    record_usage(
        session,
        organization_id=organization_id,
        kind=UsageKind.PROCTORING_ANALYSIS,
        quantity=len(observations),
        unit=UsageUnit.ITEM,
    )
    audit.record(
        session,
        organization_id=organization_id,
        action=PROCTORING_AUDIT_ACTION,
        entity_type="proctoring_sessions",
        entity_id=proctoring.id,
        subject_id=candidate_id,
        model_name=f"{vision_detector(video_options).name}{PROCTORING_MODEL_SUFFIX}",
        model_version=f"{vision_version(video_options)}+"
        f"{options_digest(options or ProctoringOptions())}",
        input_refs={
            "proctoring_session_id": str(proctoring.id),
            "assessment_session_id": str(proctoring.assessment_session_id),
            "snapshots": len(snapshots),
            "snapshots_sha256": digest_refs([(row.id, row.sha256) for row in snapshots]),
        },
        output_refs={
            "proctoring_session_id": str(proctoring.id),
            "status": proctoring.status.value,
            "events": len(report.events),
            "snapshots_read": len(observations),
            "unreadable_snapshots": unreadable,
            "needs_human_review": summary.needs_human_review,
        },
    )
    return ProctoringOutcome(
        proctoring_session_id, snapshots=len(observations), unreadable=unreadable
    )


def _snapshot_files(
    session: Session,
    proctoring: ProctoringSession,
    candidate_id: uuid.UUID,
    file_ids: Sequence[uuid.UUID] | None,
) -> list[Any]:
    query = select(File.id, File.storage_key, File.created_at, File.sha256).where(
        File.organization_id == proctoring.organization_id,
        File.candidate_id == candidate_id,
        File.purpose == FilePurpose.PROCTORING_SNAPSHOT,
        File.status != FileStatus.DELETED,
        File.deleted_at.is_(None),
    )
    if file_ids is not None:
        query = query.where(File.id.in_(list(file_ids)))
    else:
        query = query.where(File.created_at >= proctoring.started_at)
        if proctoring.ended_at is not None:
            query = query.where(File.created_at <= proctoring.ended_at)
    found = list(session.execute(query.order_by(File.created_at, File.id)))
    if file_ids is not None and len(found) < len(set(file_ids)):
        raise NotFoundError(
            f"{len(set(file_ids)) - len(found)} of the snapshots given are not proctoring "
            "snapshots of this candidate (or were deleted).",
            code="snapshot_not_found",
        )
    if not found:
        raise InvalidInputError(
            "No webcam snapshots were uploaded for this proctoring session, so there is "
            "nothing to analyse.",
            code="no_snapshots",
        )
    return found


def _observe_snapshot(
    storage_key: str,
    organization_id: uuid.UUID,
    seconds: float,
    settings: Settings,
    options: VideoAnalysisOptions,
) -> Any:
    from are_workers.ml.vision import observe_image

    path = storage.object_path(storage_key, organization_id, settings)
    if not path.is_file():
        raise InvalidInputError("The snapshot is missing from storage.", code="file_missing")
    return observe_image(path, timestamp=seconds, options=options.frame)


def _replace_camera_events(
    session: Session,
    proctoring: ProctoringSession,
    report: ProctoringReport,
    file_at: dict[float, uuid.UUID],
    detector: str,
) -> None:
    session.execute(
        delete(ProctoringEvent).where(
            ProctoringEvent.organization_id == proctoring.organization_id,
            ProctoringEvent.proctoring_session_id == proctoring.id,
            ProctoringEvent.details["source"].astext == CAMERA_SOURCE,
        )
    )
    rows = [
        {
            "organization_id": proctoring.organization_id,
            "proctoring_session_id": proctoring.id,
            "kind": _EVENT_KINDS[event.kind],
            "severity": _SEVERITY[event.kind],
            "occurred_at": proctoring.started_at + timedelta(seconds=event.start),
            "offset_ms": round(event.start * 1000),
            "confidence": None,  # neither detector gives a calibrated confidence
            "details": {
                "source": CAMERA_SOURCE,
                "signal": event.kind.value,
                "duration_seconds": event.duration,
                "detector": detector,
            },
            "snapshot_file_id": file_at.get(event.start),
        }
        for event in report.events
    ]
    if rows:
        session.execute(insert(ProctoringEvent), rows)
