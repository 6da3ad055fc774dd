"""Proctoring of an assessment session from webcam snapshots: events for human review."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import cv2
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from are_workers.crypto import subject_ref
from are_workers.errors import PermanentError
from are_workers.job_context import as_job
from are_workers.models.ai_assessments_ext import (
    EventSeverity,
    ProctoringEvent,
    ProctoringEventKind,
    ProctoringSession,
    ProctoringStatus,
)
from are_workers.models.assessments import (
    Assessment,
    AssessmentKind,
    AssessmentSession,
    ItemBank,
)
from are_workers.models.candidates import ConsentPurpose, ConsentStatus
from are_workers.models.files import File, FilePurpose
from are_workers.models.subscription import UsageKind, UsageRecord
from are_workers.services.media.proctoring_store import (
    PROCTORING_AUDIT_ACTION,
    PROCTORING_MODEL_SUFFIX,
    proctor_session,
)
from are_workers.services.media.store import vision_detector
from are_workers.services.media.video_analysis import VideoAnalysisOptions
from tests.factories import Graph, make_graph, utcnow
from tests.media_db.conftest import assert_pseudonymous, audit_rows, give_consent, store_upload
from tests.media_db.media import FIXTURES


def _frame(at: float) -> bytes:
    """A JPEG of the labelled interview clip at ``at`` s (1 s: one face; 7 s: two faces)."""
    capture = cv2.VideoCapture(str(FIXTURES / "interview.mp4"))
    capture.set(cv2.CAP_PROP_POS_MSEC, at * 1000)
    ok, frame = capture.read()
    capture.release()
    assert ok
    ok, jpeg = cv2.imencode(".jpg", frame)
    assert ok
    return jpeg.tobytes()


def _proctored(db: Session, *, consent: bool = True) -> tuple[Graph, ProctoringSession]:
    graph = make_graph(db)
    bank = ItemBank(organization_id=graph.org.id, name="bank")
    db.add(bank)
    db.flush()
    assessment = Assessment(
        organization_id=graph.org.id, bank_id=bank.id, name="Python", kind=AssessmentKind.ADAPTIVE
    )
    db.add(assessment)
    db.flush()
    started = utcnow() - timedelta(minutes=5)
    sitting = AssessmentSession(
        organization_id=graph.org.id,
        assessment_id=assessment.id,
        candidate_id=graph.candidate.id,
        started_at=started,
        expires_at=started + timedelta(hours=1),
    )
    db.add(sitting)
    db.flush()
    proctoring = ProctoringSession(
        organization_id=graph.org.id, assessment_session_id=sitting.id, started_at=started
    )
    db.add(proctoring)
    db.flush()
    if consent:
        give_consent(db, graph, ConsentPurpose.BIOMETRIC_PROCESSING, ConsentStatus.GRANTED)
    return graph, proctoring


def _snapshots(
    db: Session, graph: Graph, proctoring: ProctoringSession, shots: list[tuple[float, bytes]]
) -> list[File]:
    return [
        store_upload(
            db,
            graph,
            data,
            purpose=FilePurpose.PROCTORING_SNAPSHOT,
            name=f"{t}.jpg",
            created_at=proctoring.started_at + timedelta(seconds=t),
        )
        for t, data in shots
    ]


def _run(
    db: Session,
    graph: Graph,
    proctoring: ProctoringSession,
    task_run_id: uuid.UUID | None = None,
    **kw: Any,
) -> Any:
    with as_job(db, task_run_id or uuid.uuid4()):
        return proctor_session(
            db, organization_id=graph.org.id, proctoring_session_id=proctoring.id, **kw
        )


def _events(db: Session, proctoring: ProctoringSession) -> list[ProctoringEvent]:
    return list(
        db.scalars(
            select(ProctoringEvent)
            .where(ProctoringEvent.proctoring_session_id == proctoring.id)
            .order_by(ProctoringEvent.occurred_at)
        )
    )


def test_snapshots_become_events_for_review_and_a_summary(db: Session) -> None:
    graph, proctoring = _proctored(db)
    one, two = _frame(1.0), _frame(7.0)
    files = _snapshots(db, graph, proctoring, [(0, one), (10, two), (20, _frame(7.5)), (30, one)])
    db.add(
        ProctoringEvent(  # reported by the assessment app: never touched by the camera job
            organization_id=graph.org.id,
            proctoring_session_id=proctoring.id,
            kind=ProctoringEventKind.TAB_SWITCH,
            severity=EventSeverity.INFO,
            occurred_at=proctoring.started_at + timedelta(seconds=5),
            details={"source": "app"},
        )
    )
    db.flush()
    job = uuid.uuid4()
    outcome = _run(db, graph, proctoring, task_run_id=job)
    assert outcome.as_result() == {
        "proctoring_session_id": str(proctoring.id),
        "snapshots": 4,
        "unreadable_snapshots": 0,
    }
    tab, faces = _events(db, proctoring)
    assert tab.kind is ProctoringEventKind.TAB_SWITCH
    assert (faces.kind, faces.severity) == (
        ProctoringEventKind.MULTIPLE_FACES,
        EventSeverity.WARNING,
    )
    assert faces.occurred_at == proctoring.started_at + timedelta(seconds=10)
    assert faces.offset_ms == 10_000 and faces.snapshot_file_id == files[1].id
    assert faces.details == {
        "source": "camera",
        "signal": "multiple_faces",
        "duration_seconds": 20.0,
        "detector": vision_detector(VideoAnalysisOptions()).name,
    }  # times and kinds only: no face boxes, no images
    db.refresh(proctoring)
    assert proctoring.status is ProctoringStatus.FLAGGED  # for a person to look at
    assert proctoring.risk_score == pytest.approx(0.5)  # 20 s of 40 s observed
    assert proctoring.decision is None  # never decided by the machine
    usage = db.scalars(select(UsageRecord).where(UsageRecord.task_run_id == job)).one()
    assert usage.kind is UsageKind.PROCTORING_ANALYSIS and float(usage.quantity) == 4

    _run(db, graph, proctoring, task_run_id=job)  # a redelivery replaces, never duplicates
    assert [e.kind for e in _events(db, proctoring)] == [
        ProctoringEventKind.TAB_SWITCH,
        ProctoringEventKind.MULTIPLE_FACES,
    ]


def test_a_clean_session_ends_completed(db: Session) -> None:
    graph, proctoring = _proctored(db)
    proctoring.ended_at = proctoring.started_at + timedelta(seconds=40)
    db.flush()
    one = _frame(1.0)
    _snapshots(db, graph, proctoring, [(t, one) for t in (0, 10, 20, 30)])
    _run(db, graph, proctoring)
    assert _events(db, proctoring) == []
    db.refresh(proctoring)
    assert proctoring.status is ProctoringStatus.COMPLETED and proctoring.risk_score == 0


def test_without_biometric_consent_nothing_is_analysed(db: Session) -> None:
    graph, proctoring = _proctored(db, consent=False)
    _snapshots(db, graph, proctoring, [(0, _frame(7.0))])
    outcome = _run(db, graph, proctoring)
    assert outcome.as_result()["skipped"] == "no_biometric_consent"
    assert _events(db, proctoring) == []
    give_consent(db, graph, ConsentPurpose.AUTOMATED_PROCESSING, ConsentStatus.OBJECTED)
    assert _run(db, graph, proctoring).skipped == "automated_processing_objected"


def test_unreadable_and_missing_snapshots(db: Session, tmp_path: Path) -> None:
    graph, proctoring = _proctored(db)
    _snapshots(db, graph, proctoring, [(0, _frame(1.0)), (10, b"not an image")])
    assert _run(db, graph, proctoring).unreadable == 1
    with pytest.raises(PermanentError) as caught:
        _run(db, graph, proctoring, file_ids=[_snapshots(db, graph, proctoring, [(20, b"")])[0].id])
    assert caught.value.code == "corrupt_image"
    empty_graph, empty = _proctored(db)
    with pytest.raises(PermanentError) as caught:
        _run(db, empty_graph, empty)
    assert caught.value.code == "no_snapshots"
    with pytest.raises(PermanentError) as caught:
        _run(db, graph, empty)
    assert caught.value.code == "proctoring_session_not_found"


def test_proctoring_is_audited_per_run_and_a_consent_skip_is_not(db: Session) -> None:
    graph, proctoring = _proctored(db)
    one, two = _frame(1.0), _frame(7.0)
    files = _snapshots(db, graph, proctoring, [(0, one), (10, two), (20, two), (30, one)])
    job = uuid.uuid4()
    _run(db, graph, proctoring, task_run_id=job)
    (row,) = audit_rows(db, graph.org.id, PROCTORING_AUDIT_ACTION)
    assert (row.entity_type, row.entity_id) == ("proctoring_sessions", proctoring.id)
    assert row.subject_ref == subject_ref(graph.candidate.id) and row.task_run_id == job
    detector = vision_detector(VideoAnalysisOptions())
    assert row.model_name == f"{detector.name}{PROCTORING_MODEL_SUFFIX}"
    assert row.model_version.startswith(f"{detector.version}/")
    assert row.input_refs["snapshots"] == len(files)
    assert row.input_refs["assessment_session_id"] == str(proctoring.assessment_session_id)
    assert row.output_refs["status"] == "flagged" and row.output_refs["events"] == 1
    assert row.output_refs["needs_human_review"] is True
    assert_pseudonymous(row, graph.candidate.full_name or "Jane Doe", "10.jpg", "20.jpg")

    later = _snapshots(db, graph, proctoring, [(40, one)])
    _run(db, graph, proctoring, task_run_id=job)  # new snapshots: a new decision, audited
    first, second = sorted(
        audit_rows(db, graph.org.id, PROCTORING_AUDIT_ACTION),
        key=lambda audited: audited.input_refs["snapshots"],
    )
    assert second.input_refs["snapshots"] == len(files) + len(later)
    assert second.input_refs["snapshots_sha256"] != first.input_refs["snapshots_sha256"]

    unconsented, session = _proctored(db, consent=False)
    _snapshots(db, unconsented, session, [(0, _frame(7.0))])
    assert _run(db, unconsented, session).skipped == "no_biometric_consent"
    assert audit_rows(db, unconsented.org.id) == []  # nothing written, nothing audited
