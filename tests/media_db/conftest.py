"""Interview answers on the database: a recorded answer to a question of a job's interview.

The services take a ``TransactionFactory`` for the short transactions a worker commits apart
from the job's session; here they are savepoints of the test's ``db`` session, so they see
the test's rows and are rolled back with them.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from are_workers.job_context import as_job
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
from are_workers.services import storage
from are_workers.services.media.store import TransactionFactory
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
    storage.write_bytes(key, data, graph.org.id)
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


# --- audit rows (also used by the portfolio and assessment tests) ---------------------------

_REF_VALUE = re.compile(r"[0-9a-f]{8}-[0-9a-f-]{27}|[0-9a-f]{64}|[A-Za-z0-9][A-Za-z0-9_.-]*")
"""What a string in ``input_refs``/``output_refs`` may be: a UUID, a SHA-256 or a code (one
token: no spaces, no ``@``, so no sentence, name or address)."""


def run_answer_job(
    db: Session, job_fn: Callable[..., Any], answer: Any, savepoints: TransactionFactory, **kw: Any
) -> Any:
    """Run a media job function on a recorded answer as a job would: inside a job context
    (the one ``kw["job"]`` names, else a fresh one), so its rows carry the job's id."""
    job = kw.get("job")
    with as_job(db, job.id if job is not None else uuid.uuid4()):
        return job_fn(
            db,
            organization_id=answer.org_id,
            response_id=answer.response.id,
            transactions=savepoints,
            **kw,
        )


def audit_rows(db: Session, organization_id: uuid.UUID, action: str | None = None) -> list[Any]:
    """The organization's audit rows (of one action). Rows of one transaction share their
    ``occurred_at``, so their order is arbitrary: tell them apart by their refs."""
    return list(
        db.execute(
            text(
                "SELECT action, actor_type::text AS actor_type, entity_type, entity_id, "
                "subject_ref, model_name, model_version, input_refs, output_refs, task_run_id "
                "FROM audit_log WHERE organization_id = :o "
                "AND (CAST(:a AS text) IS NULL OR action = :a) ORDER BY occurred_at, id"
            ),
            {"o": organization_id, "a": action},
        )
    )


def assert_pseudonymous(row: Any, *secrets: str, allowed: Sequence[str] = ()) -> None:
    """Refs hold ids, hashes, counts and codes (and the ``allowed`` strings, such as a model
    key) only: none of ``secrets``, no free text."""
    refs = json.dumps([row.input_refs, row.output_refs])
    for secret in secrets:
        assert secret and secret.lower() not in refs.lower(), (secret, refs)

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, str):
            assert value in allowed or _REF_VALUE.fullmatch(value), (value, refs)
        else:
            assert value is None or isinstance(value, bool | int | float), (value, refs)

    walk([row.input_refs, row.output_refs])
