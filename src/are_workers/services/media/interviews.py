"""Video interview answers on the database: the transcript (resumable, one chunk at a time),
then speech analytics and, with consent, face analysis.

Two jobs, in order: ``media.transcribe_response`` (long: Whisper, checkpointed per chunk,
see ``store``) leaves the answer ``analyzing`` and queues ``media.analyze_response`` (speech
signals from the stored words, relevance to the question, face and picture signals), which
leaves it ``processed``. Every outcome a recruiter should know about is on the answer
(``status``, ``error_code``, ``error_message``): a permanent failure through
:func:`record_response_failure`, a worker that keeps dying through :func:`begin_attempt`, an
answer with no speech as ``no_speech`` on a processed answer, a skipped face analysis as a
``video_analysis_results`` row that says why.

Each stored result (transcript, speech signals, face signals or the skip) writes one audit
row in the transaction that stores it: the model that made it, the recording by file id and
content hash, the rows written by id, and counts; never words or face data. A transcript
already complete is returned without writing anything, so a redelivered job audits nothing
twice. (Chunk checkpoints are not audited one by one: the complete transcript's row names
the same transcript and counts the chunks.)
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import structlog
from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from are_workers.config import Settings, get_settings
from are_workers.errors import ConfigurationError, InvalidInputError, NotFoundError, PermanentError
from are_workers.ml.transcriber import Word
from are_workers.models.applications import Application
from are_workers.models.files import File, FileStatus
from are_workers.models.subscription import UsageKind, UsageUnit
from are_workers.models.task_runs import TaskRun
from are_workers.models.video_interviews import (
    SpeechAnalytics,
    Transcript,
    TranscriptionCheckpoint,
    TranscriptSegment,
    TranscriptStatus,
    VideoAnalysisResult,
    VideoInterview,
    VideoInterviewQuestion,
    VideoInterviewStatus,
    VideoResponse,
    VideoResponseStatus,
)
from are_workers.services import consent, storage
from are_workers.services.compliance import audit
from are_workers.services.consent import Activity, load_consents
from are_workers.services.media import signals_to_dict
from are_workers.services.media.probe import MediaInfo, probe_media
from are_workers.services.media.proctoring import REVIEW_NOTICE, proctor_observations
from are_workers.services.media.speech_analytics import (
    Similarity,
    SpeechAnalyticsOptions,
    analyze_words,
)
from are_workers.services.media.speech_analytics import (
    SpeechAnalytics as SpeechSignals,
)
from are_workers.services.media.store import (
    ChunkCheckpoints,
    JobRef,
    TransactionFactory,
    asr_model_version,
    audit_recording_decision,
    digest,
    gpu_memory_errors_as_transient,
    options_digest,
    segment_from_row,
    segment_rows,
    vision_model_version,
)
from are_workers.services.media.transcription import (
    ChunkResult,
    StaleCheckpointError,
    TranscriptionOptions,
    plan_transcription,
    transcribe_chunks,
)
from are_workers.services.media.transcription import Transcript as SpokenTranscript
from are_workers.services.media.video_analysis import VideoAnalysisOptions, analyze_video
from are_workers.services.model_registry import record_usage

log = structlog.get_logger(__name__)

UNDERSTOOD_MIN_AVG_LOGPROB = -0.75
UNDERSTOOD_MIN_WORD_PROBABILITY = 0.55
UNDERSTOOD_SUSPECT_AVG_LOGPROB = -0.5
UNDERSTOOD_MIN_COVERAGE = 0.7
"""An English-only model given another language still writes English words: with low
confidence, or covering only part of the speech. A transcript is not stored when its
speech-weighted mean ``avg_logprob`` and mean word probability are both at or below -0.75 and
0.55, or when its ``avg_logprob`` is at or below -0.5 and its phrases span at most 70% of
the speech the VAD found. Measured with tiny.en on espeak-ng voices (``docs/media.md``):
clean English -0.10 to -0.23 / 0.84-0.94 / coverage 0.85-0.97; English with noise at 3-10 dB
SNR -0.53 to -0.69 / 0.60-0.67 / 0.96 (kept); seven other languages -0.72 to -1.44 /
0.20-0.58, each caught by one rule or the other. It is a heuristic: heavily accented or very
noisy English can be refused too, and the message says so."""

TRANSCRIPT_AUDIT_ACTION = "transcript.completed"
SPEECH_AUDIT_ACTION = "speech_analytics.analysed"
VIDEO_AUDIT_ACTION = "video_analysis.analysed"
VIDEO_SKIPPED_AUDIT_ACTION = "video_analysis.skipped"
SPEECH_MODEL_NAME = "are-speech-analytics"
SPEECH_METRICS_VERSION = 1
"""Bump when what ``speech_analytics.metrics`` holds, or how it is computed, changes."""

PENDING_RESPONSE_STATUSES = (
    VideoResponseStatus.UPLOADED,
    VideoResponseStatus.TRANSCRIBING,
    VideoResponseStatus.ANALYZING,
)


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
    transactions: TransactionFactory,
    *,
    organization_id: uuid.UUID,
    response_id: uuid.UUID,
    error: BaseException,
    attempts: int,
) -> None:
    """The last attempt failed with a retryable error: the ledger marks the job ``dead``."""
    with transactions() as session:
        session.execute(
            update(VideoResponse)
            .where(
                VideoResponse.id == response_id, VideoResponse.organization_id == organization_id
            )
            .values(
                status=VideoResponseStatus.FAILED,
                error_code="processing_failed",
                error_message=(
                    f"Processing failed {attempts} times ({type(error).__name__}) and will not "
                    "be retried automatically. An operator can replay the job once the cause "
                    "is fixed."
                ),
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


# --- transcription ---------------------------------------------------------------------------


@dataclass
class _LanguageTally:
    """Speech seconds per language, as ``assemble_transcript`` weighs them."""

    seconds: dict[str, float] = field(default_factory=dict)
    probabilities: list[tuple[float, float]] = field(default_factory=list)
    new_chunks: int = 0

    def add(self, chunk: ChunkResult, *, new: bool) -> None:
        self.new_chunks += new
        spoken = sum(s.end - s.start for s in chunk.segments)
        if spoken > 0:
            self.seconds[chunk.language] = self.seconds.get(chunk.language, 0.0) + spoken
            if new:
                self.probabilities.append((chunk.language_probability, spoken))

    @property
    def language(self) -> str:
        if not self.seconds:
            return "und"
        return max(sorted(self.seconds), key=lambda code: self.seconds[code])


def _transcribe_resumably(
    path: Path,
    media: MediaInfo,
    checkpoints: ChunkCheckpoints,
    options: TranscriptionOptions,
    settings: Settings,
) -> tuple[SpokenTranscript, int, _LanguageTally]:
    """The transcript, how many chunks were restored, and the languages heard."""
    completed: list[ChunkResult] = []
    stored = checkpoints.load()
    if stored is not None:
        plan = plan_transcription(path, options=options, settings=settings)
        completed = stored.restore(plan, options) or []
        if not completed:
            log.warning("transcription_checkpoint_discarded", stored_chunks=stored.done + 1)
            checkpoints.reset()
    for attempt in (1, 2):
        tally = _LanguageTally()
        for chunk in completed:
            tally.add(chunk, new=False)

        def on_chunk_done(chunk: ChunkResult, tally: _LanguageTally = tally) -> None:
            tally.add(chunk, new=True)
            checkpoints.save(chunk, language=tally.language)

        try:
            with gpu_memory_errors_as_transient("transcription"):
                transcript = transcribe_chunks(
                    path,
                    completed=completed,
                    on_chunk_done=on_chunk_done,
                    options=options,
                    settings=settings,
                    media=media,
                )
            return transcript, len(completed), tally
        except StaleCheckpointError:
            if attempt == 2:
                raise
            log.warning("transcription_checkpoint_stale", stored_chunks=len(completed))
            checkpoints.reset()
            completed = []
    raise AssertionError("unreachable")


def check_understood(
    transcript: SpokenTranscript, *, english_only: bool, speech_seconds: Callable[[], float]
) -> None:
    """Refuse to store what an English-only model made of another language (see the
    ``UNDERSTOOD_*`` bounds): plausible-looking wrong words are worse than no transcript.

    ``speech_seconds`` (how much speech the VAD found) is only asked for a transcript whose
    confidence is already suspect, since it decodes the audio again.
    """
    if not english_only or transcript.is_empty:
        return
    durations = [s.end - s.start for s in transcript.segments]
    spoken = sum(durations)
    avg_logprob = (
        sum(s.avg_logprob * d for s, d in zip(transcript.segments, durations, strict=True)) / spoken
        if spoken > 0
        else float(np.mean([s.avg_logprob for s in transcript.segments]))
    )
    if avg_logprob > UNDERSTOOD_SUSPECT_AVG_LOGPROB:
        return
    word_probability = float(np.mean([w.probability for w in transcript.words]))
    low_confidence = (
        avg_logprob <= UNDERSTOOD_MIN_AVG_LOGPROB
        and word_probability <= UNDERSTOOD_MIN_WORD_PROBABILITY
    )
    speech = speech_seconds() if not low_confidence else 0.0
    coverage = spoken / speech if speech > 0 else 1.0
    if low_confidence or coverage <= UNDERSTOOD_MIN_COVERAGE:
        log.info(
            "transcript_not_understood",
            avg_logprob=round(avg_logprob, 3),
            word_probability=round(word_probability, 3),
            coverage=round(coverage, 3) if speech else None,
        )
        raise InvalidInputError(
            "The answer could not be transcribed reliably: it does not seem to be in English "
            "(the only language the transcription model understands), or the audio is too "
            "noisy or unclear. No transcript was saved; please watch the recording instead.",
            code="unsupported_language",
        )


@dataclass(frozen=True, slots=True)
class TranscriptionOutcome:
    transcript_id: uuid.UUID
    model: str
    language: str
    duration_seconds: float
    words: int
    chunks: int
    restored_chunks: int
    reused: bool = False

    def as_result(self) -> dict[str, Any]:
        """For the ledger row: identifiers and counts, never the words themselves."""
        return {
            "transcript_id": str(self.transcript_id),
            "model": self.model,
            "language": self.language,
            "duration_seconds": self.duration_seconds,
            "words": self.words,
            "chunks": self.chunks,
            "restored_chunks": self.restored_chunks,
            "speech_detected": self.words > 0,
            "reused": self.reused,
        }


def transcribe_response(
    session: Session,
    *,
    organization_id: uuid.UUID,
    response_id: uuid.UUID,
    transactions: TransactionFactory,
    job: JobRef | None = None,
    settings: Settings | None = None,
    options: TranscriptionOptions | None = None,
) -> TranscriptionOutcome:
    """Transcribe one answer, resuming after the chunks earlier attempts committed.

    ``session`` is the job's own (committed with the ledger's "succeeded"); ``transactions``
    opens the short, separately committed transactions of the checkpoints. Raises
    ``InvalidInputError`` for unusable recordings and ``ConsentError`` on an objection.
    """
    settings = settings or get_settings()
    options = options or TranscriptionOptions()
    answer = load_answer(session, organization_id, response_id)
    consent.ensure_allowed(
        load_consents(session, answer.candidate_id), Activity.EXTRACTION, what="the answer"
    )
    path = recording_path(session, answer, settings)
    model_version_id, model_name = asr_model_version(transactions, settings, options)
    done = session.execute(
        select(Transcript.id, Transcript.language, Transcript.duration_seconds,
               Transcript.word_count)
        .where(Transcript.video_response_id == response_id,
               Transcript.organization_id == organization_id,
               Transcript.model_version_id == model_version_id,
               Transcript.status == TranscriptStatus.COMPLETE)
    ).one_or_none()  # fmt: skip
    if done is not None:
        return TranscriptionOutcome(
            transcript_id=done.id,
            model=model_name,
            language=done.language or "und",
            duration_seconds=done.duration_seconds or 0.0,
            words=done.word_count or 0,
            chunks=0,
            restored_chunks=0,
            reused=True,
        )
    begin_attempt(
        transactions,
        answer,
        status=VideoResponseStatus.TRANSCRIBING,
        job=job,
        crash_cap=settings.crash_cap,
    )
    # Nothing is written yet: end the read transaction rather than hold it open (and its
    # connection) through minutes of native work. Later writes open a new one.
    session.commit()

    media = probe_media(path, settings=settings)
    media.require_audio()
    media.require_video()  # a video interview answer needs both; fail before the long part
    checkpoints = ChunkCheckpoints(
        transactions,
        organization_id,
        response_id,
        model_version_id,
        chunk_seconds=options.chunking.max_speech_seconds,
        job=job,
    )
    transcript, restored, tally = _transcribe_resumably(path, media, checkpoints, options, settings)
    from are_workers.ml.transcriber import get_transcriber

    multilingual = get_transcriber(settings).is_multilingual
    check_understood(
        transcript,
        english_only=not multilingual,
        speech_seconds=lambda: sum(
            chunk.speech_seconds
            for chunk in plan_transcription(path, options=options, settings=settings).chunks
        ),
    )

    transcript_id = _store_transcript(
        session,
        answer,
        model_version_id,
        transcript,
        language_probability=_weighted(tally.probabilities) if multilingual else None,
    )
    silent = transcript.is_empty
    session.execute(
        update(VideoResponse)
        .where(VideoResponse.id == response_id, VideoResponse.organization_id == organization_id)
        .values(
            status=VideoResponseStatus.ANALYZING,
            duration_seconds=media.duration,
            error_code="no_speech" if silent else None,
            error_message=_NO_SPEECH if silent else None,
        )
    )
    record_usage(
        session,
        organization_id=organization_id,
        kind=UsageKind.TRANSCRIPTION,
        quantity=media.duration,
        unit=UsageUnit.SECOND,
        model_version_id=model_version_id,
    )
    audit_recording_decision(
        session,
        answer,
        action=TRANSCRIPT_AUDIT_ACTION,
        entity_type="transcripts",
        entity_id=transcript_id,
        model_version_id=model_version_id,
        output_refs={
            "transcript_id": str(transcript_id),
            "segments": len(transcript.segments),
            "words": len(transcript.words),
            "chunks": restored + tally.new_chunks,
            "restored_chunks": restored,
        },
        task_run_id=job.id if job else None,
    )
    return TranscriptionOutcome(
        transcript_id=transcript_id,
        model=model_name,
        language=transcript.language,
        duration_seconds=transcript.duration,
        words=len(transcript.words),
        chunks=restored + tally.new_chunks,
        restored_chunks=restored,
    )


_NO_SPEECH = (
    "No speech was detected in this answer: the recording is silent, or the microphone was "
    "muted or too far away. The video can still be watched."
)


def _weighted(pairs: Sequence[tuple[float, float]]) -> float | None:
    total = sum(weight for _, weight in pairs)
    if total <= 0:
        return None
    return round(min(1.0, max(0.0, sum(v * w for v, w in pairs) / total)), 4)


def _store_transcript(
    session: Session,
    answer: Answer,
    model_version_id: uuid.UUID,
    transcript: SpokenTranscript,
    *,
    language_probability: float | None,
) -> uuid.UUID:
    """The complete transcript, its segments renumbered 0..n-1, and no checkpoints left."""
    values: dict[str, Any] = {
        "status": TranscriptStatus.COMPLETE,
        "text": transcript.text,
        "language": transcript.language,
        "language_probability": language_probability,
        "duration_seconds": transcript.duration,
        "word_count": len(transcript.words),
    }
    stmt = insert(Transcript).values(
        organization_id=answer.organization_id,
        video_response_id=answer.id,
        model_version_id=model_version_id,
        **values,
    )
    transcript_id: uuid.UUID = session.scalars(
        stmt.on_conflict_do_update(
            index_elements=["video_response_id", "model_version_id"],
            set_={**values, "updated_at": func.now()},
        ).returning(Transcript.id)
    ).one()
    session.execute(
        delete(TranscriptSegment).where(TranscriptSegment.transcript_id == transcript_id)
    )
    if transcript.segments:
        session.execute(
            insert(TranscriptSegment),
            segment_rows(answer.organization_id, transcript_id, transcript.segments, 0),
        )
    drop_partial_transcripts(session, answer.organization_id, answer.id)
    return transcript_id


# --- analysis --------------------------------------------------------------------------------


def embedding_similarity(embed: Callable[[Sequence[str]], Any]) -> Similarity:
    """``similarity(question, answer)``: the cosine of the two texts' sentence embeddings.

    ``embed`` is called only when there is something to compare, so a worker whose answers
    are all silent never loads the embedding model.
    """

    def similarity(question: str, answer: str) -> float:
        vectors = np.asarray(embed([question, answer]), dtype=np.float64)
        norms = np.linalg.norm(vectors, axis=1)
        if not norms.all():
            return 0.0
        return float(vectors[0] @ vectors[1] / (norms[0] * norms[1]))

    return similarity


@dataclass(frozen=True, slots=True)
class AnalysisOutcome:
    transcript_id: uuid.UUID
    speech_detected: bool
    relevance: str
    """``scored``, or why not: ``no_question``, ``no_speech``, ``no_embedder``,
    ``embedder_unavailable``."""
    video: str
    """``analysed``, or the consent it lacked: ``no_biometric_consent``,
    ``no_video_analysis_consent``."""

    def as_result(self) -> dict[str, Any]:
        return {
            "transcript_id": str(self.transcript_id),
            "speech_detected": self.speech_detected,
            "relevance": self.relevance,
            "video": self.video,
        }


def analyze_response(
    session: Session,
    *,
    organization_id: uuid.UUID,
    response_id: uuid.UUID,
    transactions: TransactionFactory,
    job: JobRef | None = None,
    similarity: Similarity | None = None,
    similarity_model: str | None = None,
    settings: Settings | None = None,
    speech_options: SpeechAnalyticsOptions | None = None,
    video_options: VideoAnalysisOptions | None = None,
) -> AnalysisOutcome:
    """Speech signals of the answer's transcript and, with consent, its video signals.

    Needs a complete transcript (``media.transcribe_response`` queues this job when it has
    written one). ``similarity`` scores the answer's relevance to the question; without it
    the relevance signal is empty and says why. ``similarity_model`` names its embedding
    model (``name@version``) in the audit log.
    """
    settings = settings or get_settings()
    speech_options = speech_options or SpeechAnalyticsOptions()
    video_options = video_options or VideoAnalysisOptions()
    answer = load_answer(session, organization_id, response_id)
    consents = load_consents(session, answer.candidate_id)
    consent.ensure_allowed(consents, Activity.JUDGMENT, what="the answer")
    transcript = session.execute(
        select(
            Transcript.id,
            Transcript.text,
            Transcript.duration_seconds,
            Transcript.model_version_id,
        )
        .where(
            Transcript.organization_id == organization_id,
            Transcript.video_response_id == response_id,
            Transcript.status == TranscriptStatus.COMPLETE,
        )
        .order_by(Transcript.updated_at.desc())
        .limit(1)
    ).one_or_none()
    if transcript is None:
        raise InvalidInputError(
            "The answer has no transcript yet, so it cannot be analysed: transcribe it first.",
            code="not_transcribed",
        )
    biometric = consent.refusal(consents, Activity.BIOMETRIC, video=True)
    refusal = (biometric.code, biometric.message) if biometric is not None else None
    path = recording_path(session, answer, settings) if refusal is None else None
    vision_version_id = vision_model_version(transactions, video_options)
    begin_attempt(
        transactions,
        answer,
        status=VideoResponseStatus.ANALYZING,
        job=job,
        crash_cap=settings.crash_cap,
    )
    session.commit()  # read-only so far; see transcribe_response

    rows = session.scalars(
        select(TranscriptSegment)
        .where(TranscriptSegment.transcript_id == transcript.id)
        .order_by(TranscriptSegment.segment_index)
    )
    words = [word for row in rows for word in segment_from_row(row).words]
    duration = transcript.duration_seconds or 0.0
    speech, relevance = _speech_signals(
        words,
        duration=duration,
        text=transcript.text or "",
        question=answer.question,
        similarity=similarity,
        options=speech_options,
    )
    speech_id = _store_speech(
        session, answer, transcript.id, speech, relevance, words, speech_options
    )
    task_run_id = job.id if job else None
    _audit_speech(
        session,
        answer,
        transcript,
        speech_id,
        relevance=relevance,
        similarity_model=similarity_model if relevance == "scored" else None,
        words=len(words),
        options=speech_options,
        task_run_id=task_run_id,
    )
    if refusal is None:
        assert path is not None
        _store_video(session, answer, vision_version_id, path, settings, video_options, task_run_id)
        video = "analysed"
    else:
        _store_video_skipped(session, answer, vision_version_id, refusal, task_run_id)
        video = refusal[0]

    record_usage(
        session,
        organization_id=organization_id,
        kind=UsageKind.VIDEO_ANALYSIS,
        quantity=duration,
        unit=UsageUnit.SECOND,
        model_version_id=vision_version_id if refusal is None else None,
    )
    silent = not words
    session.execute(
        update(VideoResponse)
        .where(VideoResponse.id == response_id, VideoResponse.organization_id == organization_id)
        .values(
            status=VideoResponseStatus.PROCESSED,
            error_code="no_speech" if silent else None,
            error_message=_NO_SPEECH if silent else None,
        )
    )
    settle_interview(session, organization_id, answer.interview_id)
    return AnalysisOutcome(
        transcript_id=transcript.id,
        speech_detected=not silent,
        relevance=relevance,
        video=video,
    )


def _speech_signals(
    words: Sequence[Word],
    *,
    duration: float,
    text: str,
    question: str,
    similarity: Similarity | None,
    options: SpeechAnalyticsOptions,
) -> tuple[SpeechSignals, str]:
    """Signals, and whether relevance was scored (or why not)."""
    reason = None
    if similarity is None:
        reason = "no_embedder"
    elif not question.strip():
        reason = "no_question"
    elif not words:
        reason = "no_speech"
    if reason is None:
        try:
            with gpu_memory_errors_as_transient("answer relevance"):
                scored = analyze_words(
                    words,
                    duration=duration,
                    answer_text=text,
                    question=question,
                    similarity=similarity,
                    options=options,
                )
            return scored, "scored"
        except ConfigurationError as exc:
            log.warning("answer_relevance_unavailable", error=str(exc))
            reason = "embedder_unavailable"
    plain = analyze_words(words, duration=duration, answer_text=text, options=options)
    return plain, reason


def _mean_pause_ms(words: Sequence[Word], options: SpeechAnalyticsOptions) -> float | None:
    ordered = sorted(words, key=lambda w: (w.start, w.end))
    pauses = [
        gap
        for prev, nxt in itertools.pairwise(ordered)
        if (gap := round(nxt.start - prev.end, 3)) >= options.pause_min_seconds
    ]
    return round(1000 * sum(pauses) / len(pauses), 1) if pauses else None


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _store_speech(
    session: Session,
    answer: Answer,
    transcript_id: uuid.UUID,
    speech: SpeechSignals,
    relevance: str,
    words: Sequence[Word],
    options: SpeechAnalyticsOptions,
) -> uuid.UUID:
    """One row per transcript; every signal stored with its unit and definition."""
    signals = speech.signals
    mean_pause = _mean_pause_ms(words, options)
    metrics = speech.to_dict()
    metrics["signals"]["mean_pause_ms"] = {
        "value": mean_pause,
        "unit": "milliseconds",
        "definition": f"Mean length of the pauses of {options.pause_min_seconds:g} s or more "
        "between two words.",
    }
    metrics |= {
        "version": SPEECH_METRICS_VERSION,
        "relevance": relevance,
        "columns": {
            "words_per_minute": "speaking_rate_wpm",
            "filler_word_rate": "filler_words_per_minute",
            "pause_ratio": "pause_ratio",
            "mean_pause_ms": "mean_pause_ms",
        },
    }
    values: dict[str, Any] = {
        "words_per_minute": _number(signals["speaking_rate_wpm"].value),
        "filler_word_rate": _number(signals["filler_words_per_minute"].value),
        "pause_ratio": _number(signals["pause_ratio"].value),
        "mean_pause_ms": mean_pause,
        "metrics": metrics,
    }
    stmt = insert(SpeechAnalytics).values(
        organization_id=answer.organization_id, transcript_id=transcript_id, **values
    )
    speech_id: uuid.UUID = session.scalars(
        stmt.on_conflict_do_update(index_elements=["transcript_id"], set_=values).returning(
            SpeechAnalytics.id
        )
    ).one()
    return speech_id


def _audit_speech(
    session: Session,
    answer: Answer,
    transcript: Any,
    speech_id: uuid.UUID,
    *,
    relevance: str,
    similarity_model: str | None,
    words: int,
    options: SpeechAnalyticsOptions,
    task_run_id: uuid.UUID | None,
) -> None:
    """The speech signals as an AI decision: from which transcript (and ASR model), by which
    rules and, when relevance was scored, which embedding model. Counts, never words."""
    name = f"{SPEECH_MODEL_NAME}+{similarity_model}" if similarity_model else SPEECH_MODEL_NAME
    audit.record(
        session,
        organization_id=answer.organization_id,
        action=SPEECH_AUDIT_ACTION,
        entity_type="speech_analytics",
        entity_id=speech_id,
        subject_id=answer.candidate_id,
        model_name=name,
        model_version=f"{SPEECH_METRICS_VERSION}/{options_digest(options)}",
        input_refs={
            "video_response_id": str(answer.id),
            "transcript_id": str(transcript.id),
            "asr_model_version_id": str(transcript.model_version_id),
            "words": words,
        },
        output_refs={"speech_analytics_id": str(speech_id), "relevance": relevance},
    )


def _store_video(
    session: Session,
    answer: Answer,
    model_version_id: uuid.UUID,
    path: Path,
    settings: Settings,
    options: VideoAnalysisOptions,
    task_run_id: uuid.UUID | None,
) -> None:
    """Signals and intervals, and whether a person should look: no frames, no face boxes."""
    media = probe_media(path, settings=settings)
    with gpu_memory_errors_as_transient("video analysis"):
        video = analyze_video(path, options=options, settings=settings, media=media)
    review = proctor_observations(
        video.observations, duration=video.duration, video_options=options
    ).summary
    signals = {
        "version": 1,
        "data_category": video.data_category.value,
        "duration": video.duration,
        "sample_fps": video.sample_fps,
        "signals": signals_to_dict(video.signals),
        "intervals": {
            "multiple_faces": [i.to_dict() for i in video.multiple_faces_intervals],
            "no_face": [i.to_dict() for i in video.no_face_intervals],
            "face_away": [i.to_dict() for i in video.face_away_intervals],
        },
    }
    summary = {
        "status": "analysed",
        "data_category": video.data_category.value,
        "needs_human_review": review.needs_human_review,
        "review_reasons": list(review.review_reasons),
        "notice": REVIEW_NOTICE,
    }
    stmt = insert(VideoAnalysisResult).values(
        organization_id=answer.organization_id,
        video_response_id=answer.id,
        model_version_id=model_version_id,
        signals=signals,
        summary=summary,
    )
    result_id: uuid.UUID = session.scalars(
        stmt.on_conflict_do_update(
            index_elements=["video_response_id", "model_version_id"],
            set_={"signals": signals, "summary": summary},
        ).returning(VideoAnalysisResult.id)
    ).one()
    audit_recording_decision(
        session,
        answer,
        action=VIDEO_AUDIT_ACTION,
        entity_type="video_analysis_results",
        entity_id=result_id,
        model_version_id=model_version_id,
        output_refs={
            "video_analysis_result_id": str(result_id),
            "needs_human_review": review.needs_human_review,
            "result_sha256": digest([signals, summary]),
        },
        task_run_id=task_run_id,
    )


def _store_video_skipped(
    session: Session,
    answer: Answer,
    model_version_id: uuid.UUID,
    refusal: tuple[str, str],
    task_run_id: uuid.UUID | None,
) -> None:
    """Why there is no face analysis, as a row the UI shows; and no biometric data left
    from earlier runs, since the consent they relied on is gone."""
    session.execute(
        delete(VideoAnalysisResult).where(
            VideoAnalysisResult.organization_id == answer.organization_id,
            VideoAnalysisResult.video_response_id == answer.id,
        )
    )
    code, reason = refusal
    result_id = session.scalars(
        insert(VideoAnalysisResult)
        .values(
            organization_id=answer.organization_id,
            video_response_id=answer.id,
            model_version_id=model_version_id,
            signals={},
            summary={"status": "skipped", "reason_code": code, "reason": reason},
        )
        .returning(VideoAnalysisResult.id)
    ).one()
    audit.record(
        session,
        organization_id=answer.organization_id,
        action=VIDEO_SKIPPED_AUDIT_ACTION,
        entity_type="video_analysis_results",
        entity_id=result_id,
        subject_id=answer.candidate_id,
        input_refs={"video_response_id": str(answer.id)},
        output_refs={"video_analysis_result_id": str(result_id), "reason_code": code},
    )
