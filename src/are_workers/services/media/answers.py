"""Video interview answers on the database: loading one with what its analysis needs, and
what an attempt leaves on it.

Every outcome a recruiter should know about is on the answer (``status``, ``error_code``,
``error_message``): a permanent failure through :func:`record_response_failure`, a job that gave
up (its ``on_dead``) through :func:`record_gave_up`, a worker that keeps dying through
:func:`begin_attempt`, an answer with no speech as ``no_speech`` (:data:`NO_SPEECH_MESSAGE`)
on a processed answer. The jobs themselves are ``answer_transcription`` and ``answer_analysis``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from are_workers.config import Settings
from are_workers.errors import InvalidInputError, NotFoundError, PermanentError
from are_workers.models.applications import Application
from are_workers.models.files import File, FileStatus
from are_workers.models.task_runs import TaskRun
from are_workers.models.video_interviews import (
    Transcript,
    TranscriptionCheckpoint,
    TranscriptStatus,
    VideoInterview,
    VideoInterviewQuestion,
    VideoInterviewStatus,
    VideoResponse,
    VideoResponseStatus,
)
from are_workers.services import storage
from are_workers.services.media.store import (
    JobRef,
    TransactionFactory,
)

PENDING_RESPONSE_STATUSES = (
    VideoResponseStatus.UPLOADED,
    VideoResponseStatus.TRANSCRIBING,
    VideoResponseStatus.ANALYZING,
)


NO_SPEECH_MESSAGE = (
    "No speech was detected in this answer: the recording is silent, or the microphone was "
    "muted or too far away. The video can still be watched."
)

LANGUAGE_MIN_PROBABILITY = 0.5
"""Below this the answer's language was not identified with confidence (see
``answer_notice``). Checked on the blind speech set's dev split (72 clips, base,
``bench/transcription_quality.py --languages``): the 71 right detections ranged from 0.515
(Spanish under babble at 10 dB) to 0.993, with medians 0.92 (en), 0.97 (de), 0.86 (fr) and
0.81 (es), so clear speech is not always at 0.9; the one wrong detection (German under
babble, heard as Latin) was at 0.296. 0.5 flags none of the right ones and the wrong one;
0.6 would flag 4 right ones, 0.7 nine. Kept at 0.5, on only one wrong detection to set it by.
Below the same bound the transcriber picks the chunk's language by decoding it in the token's
three most probable languages (``DecodingOptions.uncertain_language_below``), which put that
German clip right; the probability stored stays the token's, so the answer is still flagged."""


def answer_notice(
    *, silent: bool, language: str | None, language_probability: float | None
) -> tuple[str | None, str | None]:
    """(error_code, error_message) an answer keeps once transcribed: no speech, a language
    identified without confidence (the transcript is kept, and the reviewer told to check
    it against the recording), or nothing to say."""
    if silent:
        return "no_speech", NO_SPEECH_MESSAGE
    if language_probability is not None and language_probability < LANGUAGE_MIN_PROBABILITY:
        return "language_uncertain", (
            f"The spoken language could not be identified with confidence (best guess "
            f"'{language}', {language_probability:.0%}): the answer may mix languages or be "
            "too short, noisy or unclear, so the transcript may be wrong. Please check it "
            "against the recording."
        )
    return None, None


# --- loading -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Answer:
    """A video response with what its analysis needs from around it."""

    id: uuid.UUID
    organization_id: uuid.UUID
    interview_id: uuid.UUID
    candidate_id: uuid.UUID
    file_id: uuid.UUID | None
    question: str


def load_answer(session: Session, organization_id: uuid.UUID, response_id: uuid.UUID) -> Answer:
    row = session.execute(
        select(
            VideoResponse.id,
            VideoResponse.video_interview_id,
            VideoResponse.file_id,
            VideoInterviewQuestion.prompt,
            Application.candidate_id,
        )
        .join(VideoInterview, VideoInterview.id == VideoResponse.video_interview_id)
        .join(VideoInterviewQuestion, VideoInterviewQuestion.id == VideoResponse.question_id)
        .join(Application, Application.id == VideoInterview.application_id)
        .where(VideoResponse.id == response_id, VideoResponse.organization_id == organization_id)
    ).one_or_none()
    if row is None:
        raise NotFoundError(
            "This interview answer does not exist in the organization (it may have been deleted).",
            code="response_not_found",
        )
    return Answer(
        id=row.id,
        organization_id=organization_id,
        interview_id=row.video_interview_id,
        candidate_id=row.candidate_id,
        file_id=row.file_id,
        question=row.prompt,
    )


def recording_path(session: Session, answer: Answer, settings: Settings) -> Path:
    """The local path of the answer's recording, or a clear error when it is gone."""
    file = None
    if answer.file_id is not None:
        file = session.execute(
            select(File.storage_key, File.status, File.deleted_at).where(
                File.id == answer.file_id, File.organization_id == answer.organization_id
            )
        ).one_or_none()
    if file is None or file.status is FileStatus.DELETED or file.deleted_at is not None:
        raise InvalidInputError(
            "The recording of this answer is no longer stored (recordings are deleted 90 "
            "days after they are made, or on request), so it cannot be analysed.",
            code="recording_deleted",
        )
    path = storage.object_path(file.storage_key, answer.organization_id, settings)
    if not path.is_file():
        raise InvalidInputError(
            "The recording is missing from storage: the upload did not complete or the file "
            "was removed. Ask the candidate to record the answer again.",
            code="file_missing",
        )
    return path


# --- what an attempt leaves behind -------------------------------------------------------


def begin_attempt(
    transactions: TransactionFactory,
    answer: Answer,
    *,
    status: VideoResponseStatus,
    job: JobRef | None,
    crash_cap: int,
) -> None:
    """Commit the answer's status before native work starts, with what earlier crashes say.

    An attempt that follows ``crash_cap - 1`` worker deaths is the ledger's last: if it dies
    too the job is ``dead`` with no worker left to say so, so the answer is marked failed
    *now*, and the attempt's success or failure overwrites that.
    """
    crashes = 0
    with transactions() as session:
        if job is not None:
            crashes = session.scalar(select(TaskRun.crashes).where(TaskRun.id == job.id)) or 0
        values: dict[str, Any] = {"status": status, "error_code": None, "error_message": None}
        if crashes + 1 >= crash_cap and crashes > 0:
            values = {
                "status": VideoResponseStatus.FAILED,
                "error_code": "worker_crashed",
                "error_message": (
                    f"Processing this recording stopped the worker {crash_cap} times (killed, "
                    "out of memory, or a crash while decoding the file), so it will not be "
                    "retried automatically: the file may be damaged. Ask the candidate to "
                    "record the answer again, or an operator can replay the job."
                ),
            }
        elif crashes:
            values |= {
                "error_code": "worker_crashed",
                "error_message": (
                    f"Processing stopped unexpectedly {crashes} time(s) (the worker was killed "
                    "or crashed); it is being retried from its last checkpoint."
                ),
            }
        session.execute(
            update(VideoResponse)
            .where(
                VideoResponse.id == answer.id,
                VideoResponse.organization_id == answer.organization_id,
            )
            .values(**values)
        )
        if status is VideoResponseStatus.TRANSCRIBING:
            session.execute(
                update(VideoInterview)
                .where(
                    VideoInterview.id == answer.interview_id,
                    VideoInterview.organization_id == answer.organization_id,
                    VideoInterview.status == VideoInterviewStatus.SUBMITTED,
                )
                .values(status=VideoInterviewStatus.PROCESSING)
            )


def record_gave_up(
    session: Session, error: PermanentError, kwargs: dict[str, Any], ctx: Any
) -> None:
    """``on_dead`` hook: the job gave up (retries spent, or its worker kept dying). Say so
    on the answer, unless an attempt already recorded a more specific reason (a recording
    that crashes the decoder is ``worker_crashed``). Checkpoints are kept: a replay resumes.
    """
    organization_id = ctx.organization_id
    if organization_id is None:
        return
    session.execute(
        update(VideoResponse)
        .where(
            VideoResponse.id == kwargs["response_id"],
            VideoResponse.organization_id == organization_id,
            VideoResponse.status != VideoResponseStatus.FAILED,
        )
        .values(
            status=VideoResponseStatus.FAILED,
            error_code=(error.code or "gave_up")[:64],
            error_message=error.user_message,
        )
    )


def record_response_failure(
    session: Session, error: PermanentError, kwargs: dict[str, Any], ctx: Any
) -> None:
    """``on_permanent_failure`` hook: the reason on the answer; partial work is dropped."""
    organization_id = ctx.organization_id
    if organization_id is None:
        return
    response_id = uuid.UUID(str(kwargs["response_id"]))
    interview_id = session.scalar(
        update(VideoResponse)
        .where(VideoResponse.id == response_id, VideoResponse.organization_id == organization_id)
        .values(
            status=VideoResponseStatus.FAILED,
            error_code=(error.code or "invalid_input")[:64],
            error_message=error.user_message,
        )
        .returning(VideoResponse.video_interview_id)
    )
    if interview_id is None:
        return
    drop_partial_transcripts(session, organization_id, response_id)
    settle_interview(session, organization_id, interview_id)


def drop_partial_transcripts(
    session: Session, organization_id: uuid.UUID, response_id: uuid.UUID
) -> None:
    """Unfinished transcripts and their checkpoints (e.g. words of an unsupported language)."""
    session.execute(
        delete(TranscriptionCheckpoint).where(
            TranscriptionCheckpoint.organization_id == organization_id,
            TranscriptionCheckpoint.video_response_id == response_id,
        )
    )
    session.execute(
        delete(Transcript).where(
            Transcript.organization_id == organization_id,
            Transcript.video_response_id == response_id,
            Transcript.status == TranscriptStatus.PARTIAL,
        )
    )


def settle_interview(session: Session, organization_id: uuid.UUID, interview_id: uuid.UUID) -> None:
    """Mark the interview processed once none of its answers is still pending.

    The interview row is locked first, so of two answers finishing at once the second to
    commit sees the first's status.
    """
    session.execute(
        select(VideoInterview.id)
        .where(VideoInterview.id == interview_id, VideoInterview.organization_id == organization_id)
        .with_for_update()
    )
    pending = session.scalar(
        select(func.count())
        .select_from(VideoResponse)
        .where(
            VideoResponse.organization_id == organization_id,
            VideoResponse.video_interview_id == interview_id,
            VideoResponse.status.in_(PENDING_RESPONSE_STATUSES),
        )
    )
    if not pending:
        session.execute(
            update(VideoInterview)
            .where(
                VideoInterview.id == interview_id,
                VideoInterview.organization_id == organization_id,
                VideoInterview.status.in_(
                    [VideoInterviewStatus.SUBMITTED, VideoInterviewStatus.PROCESSING]
                ),
            )
            .values(status=VideoInterviewStatus.PROCESSED, processed_at=func.now())
        )
