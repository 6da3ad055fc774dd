"""Interview answers on the database: a recorded answer to a question of a job's interview.

The services take a ``TransactionFactory`` for the short transactions a worker commits apart
from the job's session; here they are savepoints of the test's ``db`` session, so they see
the test's rows and are rolled back with them.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from are_workers.models.candidates import (
    CandidateConsent,
    ConsentPurpose,
    ConsentSource,
    ConsentStatus,
)
from are_workers.models.files import File, FilePurpose, FileStatus
from are_workers.models.video_interviews import (
    VideoInterview,
    VideoInterviewQuestion,
    VideoInterviewStatus,
    VideoResponse,
)
from are_workers.services.media.store import TransactionFactory
from are_workers.services.storage import write_file_bytes
from tests.factories import Graph, make_graph

QUESTION = "Tell us about a project you led and what you learned from it."


@dataclass
class Recorded:
    """One candidate's answer, ready for the media jobs."""

    graph: Graph
    interview: VideoInterview
    question: VideoInterviewQuestion
    response: VideoResponse
    file: File

    @property
    def org_id(self) -> uuid.UUID:
        return self.graph.org.id


def store_upload(
    db: Session,
    graph: Graph,
    data: bytes,
    *,
    purpose: FilePurpose,
    name: str,
    created_at: datetime | None = None,
) -> File:
    """The bytes in storage and their ``files`` row, as an upload would leave them."""
    key = f"{graph.org.id}/{uuid.uuid4()}-{name}"
    write_file_bytes(key, data)
    file = File(
        organization_id=graph.org.id,
        candidate_id=graph.candidate.id,
        storage_key=key,
        original_filename=name,
        purpose=purpose,
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        status=FileStatus.UPLOADED,
    )
    if created_at is not None:
        file.created_at = created_at
    db.add(file)
    db.flush()
    return file


def record_answer(
    db: Session,
    recording: Path | bytes,
    *,
    graph: Graph | None = None,
    prompt: str = QUESTION,
) -> Recorded:
    graph = graph or make_graph(db)
    org = graph.org
    data = recording if isinstance(recording, bytes) else recording.read_bytes()
    name = "answer.mp4" if isinstance(recording, bytes) else recording.name
    now = datetime.now(UTC)
    interview = VideoInterview(
        organization_id=org.id,
        application_id=graph.application.id,
        status=VideoInterviewStatus.SUBMITTED,
        invited_at=now - timedelta(days=1),
        expires_at=now + timedelta(days=6),
        submitted_at=now,
    )
    question = VideoInterviewQuestion(
        organization_id=org.id, job_id=graph.job.id, prompt=prompt, position=0
    )
    db.add_all([interview, question])
    db.flush()
    file = store_upload(db, graph, data, purpose=FilePurpose.VIDEO, name=name)
    response = VideoResponse(
        organization_id=org.id,
        video_interview_id=interview.id,
        question_id=question.id,
        file_id=file.id,
    )
    db.add(response)
    db.flush()
    return Recorded(graph, interview, question, response, file)


def give_consent(
    db: Session, graph: Graph, purpose: ConsentPurpose, status: ConsentStatus
) -> CandidateConsent:
    now = datetime.now(UTC)
    consent = CandidateConsent(
        organization_id=graph.org.id,
        candidate_id=graph.candidate.id,
        purpose=purpose,
        status=status,
        source=ConsentSource.CANDIDATE_PORTAL,
        policy_version="2026-01",
        granted_at=now,
        withdrawn_at=now if status is ConsentStatus.WITHDRAWN else None,
    )
    db.add(consent)
    db.flush()
    return consent


def consent_to_face_analysis(db: Session, graph: Graph) -> None:
    give_consent(db, graph, ConsentPurpose.BIOMETRIC_PROCESSING, ConsentStatus.GRANTED)
    give_consent(db, graph, ConsentPurpose.VIDEO_ANALYSIS, ConsentStatus.GRANTED)


@pytest.fixture
def savepoints(db: Session) -> TransactionFactory:
    """What a worker commits in separate transactions, as savepoints of the test's session."""

    @contextmanager
    def transaction() -> Iterator[Session]:
        with db.begin_nested():
            yield db

    return transaction


RecordFn = Callable[..., Recorded]


@pytest.fixture
def record(db: Session) -> RecordFn:
    def _record(recording: Path | bytes, **kwargs: object) -> Recorded:
        return record_answer(db, recording, **kwargs)  # type: ignore[arg-type]

    return _record
