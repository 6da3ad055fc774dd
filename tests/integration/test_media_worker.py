"""Media jobs in real worker processes: a worker SIGKILLed mid-transcription resumes after its
committed chunks, a recording that crashes the decoder stops at the crash cap, and every
outcome shows on the answer as well as on the ledger row.

The workers load ``tests.integration.media_actors`` (see its docstring for the test hooks).
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from are_workers import client
from are_workers.config import get_settings
from are_workers.models.video_interviews import (
    Transcript,
    TranscriptionCheckpoint,
    TranscriptSegment,
    VideoResponse,
    VideoResponseStatus,
)
from are_workers.services.media import checkpoints
from are_workers.services.media.transcription import transcribe_file
from tests.integration.conftest import Stack
from tests.media_db.conftest import record_answer
from tests.media_db.media import FIXTURES, long_answer
from tests.procs import ROOT, stop_worker, wait_status, wait_until

pytestmark = [pytest.mark.multiprocess, pytest.mark.slow]


def _start_media_worker(stack: Stack, **env: str) -> subprocess.Popen[bytes]:
    """One process, one thread on the media queue (the documented media pool shape)."""
    environment = dict(
        stack.env,
        ARE_STORAGE_DIR=str(get_settings().file_storage_dir),  # where record_answer writes
        ARE_EMBEDDING_MODEL_PATH=str(Path(stack.env["ARE_DATA_DIR"]) / "no-model"),
        **env,
    )
    argv = [sys.executable, "-m", "are_workers.cli.main", "worker", "--queues", "media",
            "--processes", "1", "--threads", "1", "--module", "tests.integration.actors",
            "--module", "tests.integration.media_actors"]  # fmt: skip
    log = open(stack.log, "ab")  # noqa: SIM115 - the worker writes to it until it stops
    proc = subprocess.Popen(argv, env=environment, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    ready = Path(environment["ARE_DATA_DIR"]) / "run" / "worker.ready"
    wait_until(lambda: ready.exists() or proc.poll() is not None, timeout=90, what="media worker")
    assert proc.poll() is None, stack.log.read_text()[-3000:]
    return proc


def _answer(stack: Stack, recording: Path) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    """(organization, answer, transcription job), committed as the ATS would."""
    with Session(stack.engine) as session:
        answer = record_answer(session, recording)
        job = client.transcribe_response(
            session, organization_id=answer.org_id, response_id=answer.response.id
        )
        session.commit()
        return answer.org_id, answer.response.id, job


def _response(engine: Engine, response_id: uuid.UUID) -> Any:
    with Session(engine) as session:
        return session.execute(
            select(VideoResponse.status, VideoResponse.error_code, VideoResponse.error_message)
            .where(VideoResponse.id == response_id)
        ).one()  # fmt: skip


def _chunk_log(engine: Engine) -> list[tuple[str, int]]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT key, pid FROM test_effects WHERE key LIKE 'chunk:%' "
                                 "ORDER BY key, pid"))  # fmt: skip
        return [(key, pid) for key, pid in rows]


def _analysis_job(engine: Engine, response_id: uuid.UUID) -> Any:
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT id FROM task_runs WHERE actor = 'media.analyze_response' "
                 "AND args->>'response_id' = :r"), {"r": str(response_id)},
        ).scalar_one_or_none()  # fmt: skip


def test_a_worker_killed_at_chunk_k_resumes_without_redoing_earlier_chunks(
    stack: Stack, tmp_path: Path
) -> None:
    recording = long_answer(tmp_path / "answer.mp4", repeats=2)  # 67 s: 4 chunks of speech
    _, response_id, job = _answer(stack, recording)
    worker = _start_media_worker(stack, ARE_TEST_KILL_AT_CHUNK="1", ARE_JOB_LEASE_SECONDS="5")
    try:
        row = wait_status(stack.engine, job, {"succeeded", "failed", "dead"}, timeout=180)
        assert row.status == "succeeded", (row, stack.log.read_text()[-3000:])
        assert (row.attempts, row.crashes) == (2, 1)  # killed once, recovered by its lease
        chunks = _chunk_log(stack.engine)
        assert [key for key, _ in chunks] == ["chunk:0", "chunk:1", "chunk:2", "chunk:3"]
        killed, successor = chunks[0][1], chunks[2][1]
        assert killed != successor  # the supervisor replaced the killed child
        assert [pid for _, pid in chunks] == [killed, killed, successor, successor]
        with stack.engine.connect() as conn:
            result = conn.execute(text("SELECT result FROM task_runs WHERE id = :i"),
                                  {"i": str(job)}).scalar_one()  # fmt: skip
        assert (result["chunks"], result["restored_chunks"]) == (4, 2)

        analysis = wait_until(lambda: _analysis_job(stack.engine, response_id), timeout=30,
                              what="the analysis job")  # fmt: skip
        assert wait_status(stack.engine, analysis, {"succeeded", "failed"}).status == "succeeded"
        status, code, _ = _response(stack.engine, response_id)
        assert (status, code) == (VideoResponseStatus.PROCESSED, None)
    finally:
        assert stop_worker(worker) == 0, stack.log.read_text()[-3000:]

    expected = transcribe_file(recording)  # an uninterrupted run of the same recording
    with Session(stack.engine) as session:
        transcript = session.scalars(
            select(Transcript).where(Transcript.video_response_id == response_id)
        ).one()
        assert transcript.text == expected.text
        stored = [
            (s.segment_index, s.start_ms, s.end_ms, s.text, s.words)
            for s in session.scalars(
                select(TranscriptSegment)
                .where(TranscriptSegment.transcript_id == transcript.id)
                .order_by(TranscriptSegment.segment_index)
            )
        ]
        assert session.scalars(select(TranscriptionCheckpoint)).all() == []
    rows = checkpoints.segment_rows(uuid.uuid4(), uuid.uuid4(), expected.segments, 0)
    assert stored == [
        (r["segment_index"], r["start_ms"], r["end_ms"], r["text"], r["words"]) for r in rows
    ]


def test_poison_media_is_dead_at_the_crash_cap_and_bad_media_fails_once(
    stack: Stack, tmp_path: Path
) -> None:
    poison = tmp_path / "poison.mp4"  # opening it kills the worker (media_actors)
    poison.write_bytes((FIXTURES / "interview.mp4").read_bytes())
    _, poison_id, poison_job = _answer(stack, poison)
    _, silent_video_id, no_audio_job = _answer(stack, FIXTURES / "no_audio.mp4")
    worker = _start_media_worker(stack, ARE_CRASH_CAP="2", ARE_JOB_LEASE_SECONDS="5")
    try:
        row = wait_status(stack.engine, no_audio_job, {"succeeded", "failed", "dead"}, timeout=90)
        assert (row.status, row.attempts) == ("failed", 1)
        assert row.error_message.startswith("The recording has no audio track")
        assert _response(stack.engine, silent_video_id) == (
            VideoResponseStatus.FAILED, "no_audio_track", row.error_message,
        )  # fmt: skip

        row = wait_status(stack.engine, poison_job, {"succeeded", "failed", "dead"}, timeout=120)
        assert (row.status, row.crashes) == ("dead", 2)
        assert "died 2 times" in row.error_message
        status, code, message = _response(stack.engine, poison_id)
        assert (status, code) == (VideoResponseStatus.FAILED, "worker_crashed")
        assert "stopped the worker 2 times" in message
    finally:
        assert stop_worker(worker) == 0, stack.log.read_text()[-3000:]
