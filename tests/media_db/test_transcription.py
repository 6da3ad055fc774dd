"""Transcription of interview answers on the real database, with the real tiny.en model."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from are_workers import ledger
from are_workers.config import get_settings
from are_workers.errors import InvalidInputError, PermanentError, TransientError
from are_workers.models.ai_evaluations import AIModelVersion, ModelKind
from are_workers.models.candidates import ConsentPurpose, ConsentStatus
from are_workers.models.subscription import UsageKind, UsageRecord, UsageUnit
from are_workers.models.video_interviews import (
    Transcript,
    TranscriptionCheckpoint,
    TranscriptSegment,
    TranscriptStatus,
    VideoInterview,
    VideoInterviewStatus,
    VideoResponse,
    VideoResponseStatus,
)
from are_workers.services.media import answer_transcription, answers, checkpoints, store
from are_workers.services.media.checkpoints import CHUNK_SEGMENT_STRIDE
from are_workers.services.media.store import JobRef, TransactionFactory
from are_workers.services.media.transcription import (
    ChunkingOptions,
    ChunkResult,
    TranscriptionOptions,
    transcribe_file,
    word_error_rate,
)
from tests.media_db.conftest import Recorded, RecordFn, give_consent, run_answer_job
from tests.media_db.media import (
    FIXTURES,
    GERMAN_ANSWER,
    long_answer,
    with_out_of_memory,
    write_answer,
)

LABELS = json.loads((FIXTURES / "labels.json").read_text())
SHORT_CHUNKS = TranscriptionOptions(
    chunking=ChunkingOptions(max_chunk_seconds=10.0, split_search_seconds=4.0)
)
"""The 33 s answer in four chunks, so that a run can stop in the middle."""


class WorkerKilled(Exception):
    """Stands in for a SIGKILL (the multi-process test sends the real one)."""


def _transcribe(db: Session, answer: Recorded, savepoints: TransactionFactory, **kw: Any) -> Any:
    return run_answer_job(db, answer_transcription.transcribe_response, answer, savepoints, **kw)


def _stored_segments(db: Session, transcript_id: uuid.UUID) -> list[tuple[Any, ...]]:
    rows = db.scalars(
        select(TranscriptSegment)
        .where(TranscriptSegment.transcript_id == transcript_id)
        .order_by(TranscriptSegment.segment_index)
    )
    return [(r.segment_index, r.start_ms, r.end_ms, r.text, r.words) for r in rows]


def _as_rows(transcript: Any) -> list[tuple[Any, ...]]:
    """A transcript as its stored rows would read (the comparison ignores ids)."""
    rows = checkpoints.segment_rows(uuid.uuid4(), uuid.uuid4(), transcript.segments, 0)
    return [(r["segment_index"], r["start_ms"], r["end_ms"], r["text"], r["words"]) for r in rows]


def _running_job(db: Session, answer: Recorded, *, attempt: int = 1, crashes: int = 0) -> JobRef:
    """A ledger row claimed by this attempt, as the worker's middleware leaves it."""
    job = ledger.enqueue(db, "media.transcribe_response", {"response_id": str(answer.response.id)})
    db.execute(
        text("UPDATE task_runs SET status = 'running', attempts = :a, crashes = :c WHERE id = :id"),
        {"a": attempt, "c": crashes, "id": job},
    )
    return JobRef(job, attempt)


def _count(db: Session, model: type, *where: Any) -> int:
    return int(db.scalar(select(func.count()).select_from(model).where(*where)) or 0)


@pytest.fixture(scope="module")
def long_recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 33 s speech fixture with a video track (4 chunks with ``SHORT_CHUNKS``)."""
    return long_answer(tmp_path_factory.mktemp("media") / "answer.mp4", repeats=1)


@pytest.fixture(scope="module")
def uninterrupted(long_recording: Path) -> Any:
    return transcribe_file(long_recording, options=SHORT_CHUNKS)


def test_an_answer_becomes_a_transcript_with_timed_words_once(
    db: Session, record: RecordFn, savepoints: TransactionFactory
) -> None:
    answer = record(FIXTURES / "interview.mp4")
    job = _running_job(db, answer)
    outcome = _transcribe(db, answer, savepoints, job=job)
    assert (outcome.chunks, outcome.restored_chunks, outcome.reused) == (1, 0, False)
    assert outcome.as_result()["speech_detected"] is True
    assert "text" not in outcome.as_result()  # the ledger row never holds the words

    transcript = db.get_one(Transcript, outcome.transcript_id)
    db.refresh(transcript)
    assert transcript.status is TranscriptStatus.COMPLETE and transcript.language == "en"
    assert word_error_rate(LABELS["interview.mp4"]["text"], transcript.text or "") <= 0.15
    assert transcript.duration_seconds == pytest.approx(14.0, abs=0.1)
    segments = _stored_segments(db, transcript.id)
    assert [s[0] for s in segments] == list(range(len(segments)))  # renumbered 0..n-1
    words = [w for s in segments for w in s[4]]
    assert transcript.word_count == len(words) > 15
    assert all(0 <= w["start_ms"] <= w["end_ms"] <= 14_100 for w in words)
    assert [w["start_ms"] for w in words] == sorted(w["start_ms"] for w in words)
    assert all(0 < w["probability"] <= 1 for w in words)
    model = db.get_one(AIModelVersion, transcript.model_version_id)
    assert (model.kind, model.name) == (ModelKind.ASR, "tiny.en")
    assert "/plan" in model.version and model.params["options"]["decoding"]["beam_size"] == 5

    response = db.get_one(VideoResponse, answer.response.id)
    db.refresh(response)
    assert response.status is VideoResponseStatus.ANALYZING
    assert response.duration_seconds == pytest.approx(14.0, abs=0.1)
    assert response.error_code is None
    interview = db.get_one(VideoInterview, answer.interview.id)
    db.refresh(interview)
    assert interview.status is VideoInterviewStatus.PROCESSING
    assert (
        _count(
            db,
            TranscriptionCheckpoint,
            TranscriptionCheckpoint.video_response_id == answer.response.id,
        )
        == 0
    )
    usage = db.scalars(select(UsageRecord).where(UsageRecord.task_run_id == job.id)).one()
    assert (usage.kind, usage.unit) == (UsageKind.TRANSCRIPTION, UsageUnit.SECOND)
    assert float(usage.quantity) == pytest.approx(14.0, abs=0.1)
    assert usage.model_version_id == transcript.model_version_id

    again = _transcribe(db, answer, savepoints, job=job)  # a redelivery
    assert again.reused and again.transcript_id == transcript.id
    assert _stored_segments(db, transcript.id) == segments
    assert _count(db, Transcript, Transcript.video_response_id == answer.response.id) == 1
    assert _count(db, UsageRecord, UsageRecord.task_run_id == job.id) == 1


def test_a_killed_transcription_resumes_after_its_committed_chunks(
    db: Session,
    record: RecordFn,
    savepoints: TransactionFactory,
    long_recording: Path,
    uninterrupted: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answer = record(long_recording)
    done: list[tuple[int, str]] = []
    run = "first"

    def note_then_die(event: checkpoints.ChunkCommitted) -> None:
        done.append((event.index, run))
        if run == "first" and event.index == 1:
            raise WorkerKilled

    monkeypatch.setattr(checkpoints, "chunk_committed_hooks", [note_then_die])
    with pytest.raises(WorkerKilled):
        _transcribe(db, answer, savepoints, options=SHORT_CHUNKS)

    partial = db.scalars(
        select(Transcript).where(Transcript.video_response_id == answer.response.id)
    ).one()
    assert partial.status is TranscriptStatus.PARTIAL and partial.text is None
    checkpoint = db.scalars(select(TranscriptionCheckpoint)).one()
    assert (checkpoint.chunk_index_done, checkpoint.total_chunks) == (1, 4)
    assert checkpoint.chunk_seconds == 10.0
    assert checkpoint.chunk_languages == [{"language": "en", "probability": 1.0}] * 2
    indexes = [s[0] for s in _stored_segments(db, partial.id)]
    assert {i // CHUNK_SEGMENT_STRIDE for i in indexes} == {0, 1}

    run = "second"
    outcome = _transcribe(db, answer, savepoints, options=SHORT_CHUNKS)
    assert done == [(0, "first"), (1, "first"), (2, "second"), (3, "second")]  # none redone
    assert (outcome.chunks, outcome.restored_chunks) == (4, 2)
    transcript = db.get_one(Transcript, outcome.transcript_id)
    db.refresh(transcript)
    assert transcript.id == partial.id and transcript.status is TranscriptStatus.COMPLETE
    assert transcript.text == uninterrupted.text
    assert _stored_segments(db, transcript.id) == _as_rows(uninterrupted)
    assert _count(db, TranscriptionCheckpoint) == 0


@pytest.mark.parametrize(
    "tampered",
    [{"total_chunks": 7}, {"chunk_languages": []}],
    ids=["another-recording", "no-chunk-languages"],
)
def test_checkpoints_that_cannot_be_restored_exactly_are_discarded(
    db: Session,
    record: RecordFn,
    savepoints: TransactionFactory,
    monkeypatch: pytest.MonkeyPatch,
    tampered: dict[str, Any],
) -> None:
    """A checkpoint of another recording, or one written before chunk languages were kept
    (which could not give each restored chunk its language), is started over."""
    answer = record(FIXTURES / "interview.mp4")

    def die_after_first(event: checkpoints.ChunkCommitted) -> None:
        raise WorkerKilled

    monkeypatch.setattr(checkpoints, "chunk_committed_hooks", [die_after_first])
    with pytest.raises(WorkerKilled):
        _transcribe(db, answer, savepoints)
    db.execute(update(TranscriptionCheckpoint).values(**tampered))
    monkeypatch.setattr(checkpoints, "chunk_committed_hooks", [])
    outcome = _transcribe(db, answer, savepoints)
    assert (outcome.chunks, outcome.restored_chunks) == (1, 0)
    segments = _stored_segments(db, outcome.transcript_id)
    assert [s[0] for s in segments] == list(range(len(segments))) and segments


def test_a_superseded_attempt_commits_no_chunk(
    db: Session, record: RecordFn, savepoints: TransactionFactory
) -> None:
    answer = record(FIXTURES / "interview.mp4")
    job = _running_job(db, answer, attempt=2).id
    model_id, _ = store.asr_model_version(savepoints, get_settings(), SHORT_CHUNKS)
    chunk = ChunkResult(0, 1, 0.0, 1.0, "en", 1.0, (), "plan")
    stale = checkpoints.ChunkCheckpoints(
        savepoints, answer.org_id, answer.response.id, model_id, 10.0, job=JobRef(job, 1)
    )
    with pytest.raises(checkpoints.JobSupersededError):
        stale.save(chunk, language="en", languages=[("en", 1.0)])
    assert _count(db, TranscriptionCheckpoint) == 0
    current = checkpoints.ChunkCheckpoints(
        savepoints, answer.org_id, answer.response.id, model_id, 10.0, job=JobRef(job, 2)
    )
    current.save(chunk, language="en", languages=[("en", 1.0)])
    current.save(chunk, language="en", languages=[("en", 1.0)])  # saved twice: saved once
    stored = current.load()
    assert stored is not None and (stored.done, stored.total, stored.segments) == (0, 1, {})


def test_a_silent_answer_is_an_empty_transcript_not_a_failure(
    db: Session, record: RecordFn, savepoints: TransactionFactory, tmp_path: Path
) -> None:
    silent = write_answer(tmp_path / "silent.mp4", np.zeros(4 * 16_000, dtype=np.float32))
    answer = record(silent)
    outcome = _transcribe(db, answer, savepoints)
    assert outcome.words == 0 and outcome.as_result()["speech_detected"] is False
    transcript = db.get_one(Transcript, outcome.transcript_id)
    db.refresh(transcript)
    assert (transcript.status, transcript.text, transcript.word_count) == (
        TranscriptStatus.COMPLETE,
        "",
        0,
    )
    response = db.get_one(VideoResponse, answer.response.id)
    db.refresh(response)
    assert response.status is VideoResponseStatus.ANALYZING
    assert response.error_code == "no_speech" and "No speech" in (response.error_message or "")


class _Ctx:
    def __init__(self, organization_id: uuid.UUID) -> None:
        self.organization_id = organization_id


def _fails_with(
    db: Session, answer: Recorded, savepoints: TransactionFactory, code: str, **kw: Any
) -> VideoResponse:
    """The service refuses the answer; the ledger's failure hook records it on the answer."""
    with pytest.raises(PermanentError) as caught:
        _transcribe(db, answer, savepoints, **kw)
    assert caught.value.code == code, caught.value.user_message
    answers.record_response_failure(
        db, caught.value, {"response_id": str(answer.response.id)}, _Ctx(answer.org_id)
    )
    response = db.get_one(VideoResponse, answer.response.id)
    db.refresh(response)
    assert response.status is VideoResponseStatus.FAILED
    assert response.error_code == code
    assert response.error_message == caught.value.user_message
    assert _count(db, Transcript, Transcript.video_response_id == answer.response.id) == 0
    return response


def _truncated() -> bytes:
    data = (FIXTURES / "interview.mp4").read_bytes()
    return data[: len(data) // 2]


def _zero_length() -> bytes:
    import io
    import wave

    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16_000)
        wav.writeframes(b"")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("recording", "code"),
    [
        ((FIXTURES / "no_audio.mp4").read_bytes, "no_audio_track"),
        ((FIXTURES / "speech.m4a").read_bytes, "no_video_track"),
        (
            lambda: np.random.default_rng(0).integers(0, 256, 50_000, np.uint8).tobytes(),
            "corrupt_media",
        ),
        (_truncated, "truncated_media"),
        (lambda: b"", "empty_file"),
        (_zero_length, "empty_media"),
        (
            lambda: (FIXTURES / "interview.mp4").read_bytes().replace(b"avc1", b"zzzz"),
            "unsupported_codec",
        ),
    ],
    ids=[
        "no-audio",
        "no-video",
        "corrupt",
        "truncated",
        "zero-bytes",
        "zero-length",
        "unsupported-codec",
    ],
)
def test_unusable_recordings_fail_once_with_the_reason_on_the_answer(
    db: Session, record: RecordFn, savepoints: TransactionFactory, recording: Any, code: str
) -> None:
    _fails_with(db, record(recording()), savepoints, code)


def test_a_recording_above_the_duration_limit(
    db: Session, record: RecordFn, savepoints: TransactionFactory
) -> None:
    limited = get_settings().model_copy(update={"max_media_seconds": 10.0})
    response = _fails_with(
        db, record(FIXTURES / "interview.mp4"), savepoints, "media_too_long", settings=limited
    )
    assert "the limit is 10.0 seconds" in (response.error_message or "")


def test_a_non_english_answer_to_an_english_model_stores_no_transcript(
    db: Session, record: RecordFn, savepoints: TransactionFactory
) -> None:
    answer = record(GERMAN_ANSWER)
    response = _fails_with(db, answer, savepoints, "unsupported_language")
    assert "does not seem to be in English" in (response.error_message or "")
    assert _count(db, TranscriptionCheckpoint) == 0  # its checkpoint went with it


def test_a_deleted_recording(db: Session, record: RecordFn, savepoints: TransactionFactory) -> None:
    answer = record(FIXTURES / "interview.mp4")
    answer.response.file_id = None  # the 90-day retention dropped the raw video
    db.flush()
    _fails_with(db, answer, savepoints, "recording_deleted")


def test_an_objection_to_automated_processing_stops_transcription(
    db: Session, record: RecordFn, savepoints: TransactionFactory
) -> None:
    answer = record(FIXTURES / "interview.mp4")
    give_consent(db, answer.graph, ConsentPurpose.AUTOMATED_PROCESSING, ConsentStatus.OBJECTED)
    response = _fails_with(db, answer, savepoints, "automated_processing_objected")
    assert "objected" in (response.error_message or "")


@pytest.mark.parametrize(
    ("crashes", "status", "code"),
    [
        (0, VideoResponseStatus.TRANSCRIBING, None),
        (1, VideoResponseStatus.TRANSCRIBING, "worker_crashed"),
        (2, VideoResponseStatus.FAILED, "worker_crashed"),  # the ledger's last chance (cap 3)
    ],
)
def test_an_attempt_after_worker_crashes_says_so_on_the_answer(
    db: Session,
    record: RecordFn,
    savepoints: TransactionFactory,
    crashes: int,
    status: VideoResponseStatus,
    code: str | None,
) -> None:
    answer = record(FIXTURES / "interview.mp4")
    job = _running_job(db, answer, attempt=crashes + 1, crashes=crashes)
    target = answers.load_answer(db, answer.org_id, answer.response.id)
    answers.begin_attempt(
        savepoints,
        target,
        status=VideoResponseStatus.TRANSCRIBING,
        job=job,
        crash_cap=3,
    )
    response = db.get_one(VideoResponse, answer.response.id)
    db.refresh(response)
    assert (response.status, response.error_code) == (status, code)
    if status is VideoResponseStatus.FAILED:
        assert "3 times" in (response.error_message or "")


def test_unknown_answer(db: Session, savepoints: TransactionFactory) -> None:
    from tests.factories import make_org

    with pytest.raises(PermanentError) as caught:
        answer_transcription.transcribe_response(
            db, organization_id=make_org(db).id, response_id=uuid.uuid4(), transactions=savepoints
        )
    assert caught.value.code == "response_not_found"
    assert isinstance(caught.value, PermanentError) and not isinstance(
        caught.value, InvalidInputError
    )


def test_gpu_out_of_memory_is_a_delayed_retry_not_a_failure(
    db: Session, record: RecordFn, savepoints: TransactionFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The error is injected into the loaded model (where CTranslate2 raises it), so it
    travels the real path: ``WhisperTranscriber.recognize`` retries the chunk once, then
    asks for a delayed retry; the answer waits instead of failing."""
    answer = record(FIXTURES / "interview.mp4")
    injected = with_out_of_memory(monkeypatch, failures=2)
    with pytest.raises(TransientError, match="while transcribing") as caught:
        _transcribe(db, answer, savepoints)
    assert caught.value.delay_seconds == 120
    assert injected.calls == 2
    response = db.get_one(VideoResponse, answer.response.id)
    db.refresh(response)
    assert response.status is VideoResponseStatus.TRANSCRIBING  # waiting, not failed
