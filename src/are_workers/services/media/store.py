"""Persistence shared by the media jobs, and the proctoring of assessment sessions.

The analysis itself lives in the sibling modules (no database there); ``answers``,
``transcription_job`` and ``analysis_job`` store what it finds for video interview answers.
This module holds what they need:

* ``TransactionFactory``: short transactions committed apart from the job's own session. A
  transcription commits each chunk in one (the chunk's segments on a ``partial`` transcript,
  and the ``transcription_checkpoints`` pointer), because the job's transaction commits only
  when the job ends and a SIGKILL before that would lose every chunk. Chunk writes are keyed
  by (answer, model version, chunk index), so a chunk written twice is written once, and
  fenced on the job's claimed attempt, so a worker whose lease was taken over stops at its
  next chunk.
* Consents: checked before a file is opened. An objection to automated processing stops the
  job with a message for people; a missing consent for one step skips that step and records
  why (a result row, the job's result), which is not a failure.
* Model versions, registered in their own committed transaction (chunk rows reference them).
* Proctoring: camera events of a session from its webcam snapshots, replaced as a set on
  every run, and an integrity summary (status, share of time with events) on the session.
  Only times and kinds are stored: no face boxes, no images, no per-frame data.
* Audit: every stored result is an AI decision, audited (``audit.record``) in the
  transaction that writes it, with the model's registered name and version, the inputs by
  id and content hash, and the outputs by id, count and hash: never words or face data.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy import delete, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from are_workers.config import Settings, get_settings
from are_workers.crypto import json_sha256
from are_workers.errors import (
    AreWorkersError,
    InvalidInputError,
    NotFoundError,
    TransientError,
)
from are_workers.ml.transcriber import OOM_RETRY_DELAY_SECONDS, Segment, Word
from are_workers.models.ai_assessments_ext import (
    EventSeverity,
    ProctoringEvent,
    ProctoringEventKind,
    ProctoringSession,
    ProctoringStatus,
)
from are_workers.models.ai_evaluations import AIModelVersion, ModelKind
from are_workers.models.assessments import AssessmentSession
from are_workers.models.files import File, FilePurpose, FileStatus
from are_workers.models.schemas import TranscriptWords, validated
from are_workers.models.subscription import UsageKind, UsageUnit
from are_workers.models.video_interviews import (
    Transcript,
    TranscriptionCheckpoint,
    TranscriptSegment,
    TranscriptStatus,
)
from are_workers.services import consent
from are_workers.services.compliance import audit
from are_workers.services.consent import Activity, load_consents
from are_workers.services.media.proctoring import (
    EventKind,
    ProctoringOptions,
    ProctoringReport,
    proctor_observations,
)
from are_workers.services.media.transcription import (
    PLAN_VERSION,
    ChunkResult,
    TranscriptionOptions,
    TranscriptionPlan,
)
from are_workers.services.media.video_analysis import VideoAnalysisOptions
from are_workers.services.model_registry import ensure_model_version, record_usage
from are_workers.services.storage import storage_path

log = structlog.get_logger(__name__)

TransactionFactory = Callable[[], AbstractContextManager[Session]]
"""Opens one short transaction that commits when the block exits (rolls back on error)."""

CHUNK_SEGMENT_STRIDE = 10_000
"""While a transcript is ``partial``, chunk k's segments are stored at indexes
``k * 10_000 + i``, so a resumed attempt knows which chunk each segment came from (a chunk
holds at most 30 s of speech: far fewer than 10,000 phrases). The complete transcript is
renumbered ``0..n-1``."""

VISION_MODEL_NAME = "opencv-haar-frontalface-alt2"
PROCTORING_MODEL_NAME = f"{VISION_MODEL_NAME}+are-proctoring"
"""Camera events are the face detector's observations turned into events by the
proctoring rules (``ProctoringOptions``): the audit log names both."""
PROCTORING_AUDIT_ACTION = "proctoring.analysed"


class JobSupersededError(AreWorkersError):
    """The job's lease was taken over by another attempt: stop, and write nothing more."""


@dataclass(frozen=True, slots=True)
class JobRef:
    """The ledger claim a service writes under: checkpoints are fenced on it."""

    id: uuid.UUID
    attempt: int


@dataclass(frozen=True, slots=True)
class ChunkCommitted:
    """Told to :data:`chunk_committed_hooks` after a chunk's transaction committed."""

    response_id: uuid.UUID
    index: int
    total: int
    job: JobRef | None


chunk_committed_hooks: list[Callable[[ChunkCommitted], None]] = []
"""Called, in order, after each chunk is committed: progress reporting, metrics, and the
multi-process tests, which kill their worker here to prove that committed chunks survive."""


@contextmanager
def committed_transaction() -> Iterator[Session]:
    """A short transaction on the process's engine, separate from the job's own session."""
    from are_workers.models.engine import get_engine

    with Session(get_engine(), expire_on_commit=False) as session, session.begin():
        yield session


@contextmanager
def gpu_memory_errors_as_transient(stage: str) -> Iterator[None]:
    """A CUDA out-of-memory error (another job holds the GPU) becomes a delayed retry,
    resumed from the last checkpoint, instead of a failed job or a crash loop."""
    try:
        yield
    except RuntimeError as exc:  # torch.cuda.OutOfMemoryError and CTranslate2 both
        if "out of memory" not in str(exc).lower():
            raise
        raise TransientError(
            f"The GPU ran out of memory during {stage}; retrying later.",
            delay_seconds=OOM_RETRY_DELAY_SECONDS,
        ) from exc


# --- model versions (committed at once: chunk transactions reference them) ------------------


def digest(value: Any) -> str:
    """SHA-256 of a JSON value: how model options and stored results are referenced (the
    audit log, which outlives erasure, holds the hash of a result, never the result)."""
    return json_sha256(value, default=str)


def options_digest(options: Any) -> str:
    """12 hex digits of an options dataclass, as part of a model version."""
    return digest(asdict(options))[:12]


def asr_model_version(
    transactions: TransactionFactory, settings: Settings, options: TranscriptionOptions
) -> tuple[uuid.UUID, str]:
    """(id, model name) of the Whisper model, engine, plan code and options in use.

    Everything but the audio that a chunk's words depend on is in the version, so stored
    chunks are only ever resumed under the same version: a pool moved from CPU int8 to GPU
    float16, or changed options, starts a new transcript instead of mixing two.
    """
    from are_workers.ml.transcriber import resolve_config

    config = resolve_config(settings)
    engine = f"{config.device}-{config.compute_type}"
    version = f"{engine}/plan{PLAN_VERSION}/{options_digest(options)}"
    params = {"engine": engine, "plan_version": PLAN_VERSION, "options": asdict(options)}
    with transactions() as session:
        model_id = ensure_model_version(
            session, kind=ModelKind.ASR, name=config.model_name, version=version, params=params
        )
    return model_id, config.model_name


def vision_version(options: VideoAnalysisOptions) -> str:
    """The face detector's version: the OpenCV build and every option its signals depend on."""
    import cv2

    return f"opencv-{cv2.__version__}/{options_digest(options)}"


def vision_model_version(
    transactions: TransactionFactory, options: VideoAnalysisOptions
) -> uuid.UUID:
    version = vision_version(options)
    with transactions() as session:
        return ensure_model_version(
            session,
            kind=ModelKind.VISION,
            name=VISION_MODEL_NAME,
            version=version,
            params={"options": asdict(options)},
        )


def model_identity(session: Session, model_version_id: uuid.UUID) -> tuple[str, str]:
    """(name, version) of a registered model version, as its audit rows name it."""
    row = session.execute(
        select(AIModelVersion.name, AIModelVersion.version).where(
            AIModelVersion.id == model_version_id
        )
    ).one()
    return row.name, row.version


def file_refs(
    session: Session, organization_id: uuid.UUID, file_id: uuid.UUID | None
) -> dict[str, Any]:
    """An input file as the audit log references it: its id and content hash, not its name."""
    sha256 = None
    if file_id is not None:
        sha256 = session.scalar(
            select(File.sha256).where(File.id == file_id, File.organization_id == organization_id)
        )
    return {"file_id": str(file_id) if file_id else None, "sha256": sha256}


def audit_recording_decision(
    session: Session,
    answer: Any,
    *,
    action: str,
    entity_type: str,
    entity_id: uuid.UUID,
    model_version_id: uuid.UUID,
    output_refs: dict[str, Any],
    task_run_id: uuid.UUID | None,
) -> None:
    """An AI decision about one recorded answer: the model that made it, the recording by
    id and content hash (never its name or words), and what was stored."""
    from are_workers.services.compliance import audit

    name, version = model_identity(session, model_version_id)
    audit.record(
        session,
        organization_id=answer.organization_id,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        subject_id=answer.candidate_id,
        model_name=name,
        model_version=version,
        input_refs={
            "video_response_id": str(answer.id),
            **file_refs(session, answer.organization_id, answer.file_id),
            "model_version_id": str(model_version_id),
        },
        output_refs=output_refs,
    )


def digest_refs(pairs: Sequence[tuple[Any, Any]]) -> str:
    """One SHA-256 over many (id, hash) inputs: a batch referenced without listing it."""
    return digest(sorted([str(a), str(b)] for a, b in pairs))


# --- transcription checkpoints ---------------------------------------------------------------


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def segment_rows(
    organization_id: uuid.UUID, transcript_id: uuid.UUID, segments: Sequence[Segment], first: int
) -> list[dict[str, Any]]:
    """``transcript_segments`` rows; times in whole milliseconds (Whisper's are rounded to
    them already, so reading them back gives the same floats)."""
    return [
        {
            "organization_id": organization_id,
            "transcript_id": transcript_id,
            "segment_index": first + offset,
            "start_ms": _ms(segment.start),
            "end_ms": _ms(segment.end),
            "text": segment.text,
            "words": validated(
                TranscriptWords,
                [
                    {
                        "word": w.text,
                        "start_ms": _ms(w.start),
                        "end_ms": _ms(w.end),
                        "probability": w.probability,
                    }
                    for w in segment.words
                ],
            ),
            "avg_logprob": segment.avg_logprob,
            "no_speech_prob": segment.no_speech_prob,
        }
        for offset, segment in enumerate(segments)
    ]


def segment_from_row(row: Any) -> Segment:
    return Segment(
        start=row.start_ms / 1000,
        end=row.end_ms / 1000,
        text=row.text,
        words=tuple(
            Word(
                start=w["start_ms"] / 1000,
                end=w["end_ms"] / 1000,
                text=w["word"],
                probability=w["probability"],
            )
            for w in row.words
        ),
        avg_logprob=row.avg_logprob,
        no_speech_prob=row.no_speech_prob,
    )


@dataclass(frozen=True, slots=True)
class StoredChunks:
    """What earlier attempts committed: chunks ``0..done``, their segments by chunk."""

    done: int
    total: int | None
    chunk_seconds: float
    language: str | None
    segments: dict[int, list[Segment]]

    def restore(
        self, plan: TranscriptionPlan, options: TranscriptionOptions
    ) -> list[ChunkResult] | None:
        """Chunk results for ``plan``, or ``None`` if they cannot have come from it (another
        recording, other options): then the caller starts over.

        Chunk languages are not stored one by one: every restored chunk takes the
        transcript's language so far, which is exact for English-only models (the default)
        and for answers in one language.
        """
        if (
            self.total != len(plan.chunks)
            or self.done >= len(plan.chunks)
            or not math.isclose(self.chunk_seconds, options.chunking.max_speech_seconds)
            or any(index > self.done for index in self.segments)
        ):
            return None
        restored: list[ChunkResult] = []
        for span in plan.chunks[: self.done + 1]:
            segments = self.segments.get(span.index, [])
            if any(s.start < span.start - 0.001 or s.end > span.end + 0.001 for s in segments):
                return None
            restored.append(
                ChunkResult(
                    index=span.index,
                    total=len(plan.chunks),
                    start=span.start,
                    end=span.end,
                    language=self.language or "en",
                    language_probability=1.0,
                    segments=tuple(segments),
                    plan_fingerprint=plan.fingerprint,
                )
            )
        return restored


@dataclass
class ChunkCheckpoints:
    """The committed progress of one answer's transcription under one model version."""

    transactions: TransactionFactory
    organization_id: uuid.UUID
    response_id: uuid.UUID
    model_version_id: uuid.UUID
    chunk_seconds: float
    job: JobRef | None = None

    def load(self) -> StoredChunks | None:
        with self.transactions() as session:
            checkpoint = session.execute(
                select(
                    TranscriptionCheckpoint.chunk_index_done,
                    TranscriptionCheckpoint.total_chunks,
                    TranscriptionCheckpoint.chunk_seconds,
                ).where(*self._checkpoint_key())
            ).one_or_none()
            transcript = session.execute(
                select(Transcript.id, Transcript.language).where(
                    *self._transcript_key(), Transcript.status == TranscriptStatus.PARTIAL
                )
            ).one_or_none()
            if checkpoint is None or transcript is None or checkpoint.chunk_index_done < 0:
                return None
            rows = session.execute(
                select(TranscriptSegment)
                .where(TranscriptSegment.transcript_id == transcript.id)
                .order_by(TranscriptSegment.segment_index)
            ).scalars()
            by_chunk: dict[int, list[Segment]] = {}
            for row in rows:
                by_chunk.setdefault(row.segment_index // CHUNK_SEGMENT_STRIDE, []).append(
                    segment_from_row(row)
                )
        return StoredChunks(
            done=checkpoint.chunk_index_done,
            total=checkpoint.total_chunks,
            chunk_seconds=checkpoint.chunk_seconds,
            language=transcript.language,
            segments=by_chunk,
        )

    def save(self, chunk: ChunkResult, *, language: str) -> None:
        """Commit one chunk (idempotent), then tell the hooks."""
        with self.transactions() as session:
            self._fence(session)
            stmt = insert(Transcript).values(
                organization_id=self.organization_id,
                video_response_id=self.response_id,
                model_version_id=self.model_version_id,
                status=TranscriptStatus.PARTIAL,
                language=language,
            )
            transcript_id = session.scalar(
                stmt.on_conflict_do_update(
                    index_elements=["video_response_id", "model_version_id"],
                    set_={"language": language, "updated_at": func.now()},
                    where=Transcript.status == TranscriptStatus.PARTIAL,
                ).returning(Transcript.id)
            )
            if transcript_id is None:
                return  # complete already: another attempt finished this transcript
            first = chunk.index * CHUNK_SEGMENT_STRIDE
            session.execute(
                delete(TranscriptSegment).where(
                    TranscriptSegment.transcript_id == transcript_id,
                    TranscriptSegment.segment_index >= first,
                    TranscriptSegment.segment_index < first + CHUNK_SEGMENT_STRIDE,
                )
            )
            if chunk.segments:
                session.execute(
                    insert(TranscriptSegment),
                    segment_rows(self.organization_id, transcript_id, chunk.segments, first),
                )
            progress = {
                "chunk_seconds": self.chunk_seconds,
                "total_chunks": chunk.total,
                "chunk_index_done": chunk.index,
                "task_run_id": self.job.id if self.job else None,
            }
            upsert = insert(TranscriptionCheckpoint).values(
                organization_id=self.organization_id,
                video_response_id=self.response_id,
                model_version_id=self.model_version_id,
                **progress,
            )
            session.execute(
                upsert.on_conflict_do_update(
                    index_elements=["video_response_id", "model_version_id"],
                    set_={**progress, "updated_at": func.now()},
                )
            )
        event = ChunkCommitted(self.response_id, chunk.index, chunk.total, self.job)
        for hook in list(chunk_committed_hooks):
            hook(event)

    def reset(self) -> None:
        with self.transactions() as session:
            session.execute(delete(TranscriptionCheckpoint).where(*self._checkpoint_key()))
            session.execute(
                delete(Transcript).where(
                    *self._transcript_key(), Transcript.status == TranscriptStatus.PARTIAL
                )
            )

    def _fence(self, session: Session) -> None:
        if self.job is None:
            return
        still_ours = session.execute(
            text(
                "SELECT 1 FROM task_runs WHERE id = :id AND status = 'running' "
                "AND attempts = :attempt FOR SHARE"
            ),
            {"id": self.job.id, "attempt": self.job.attempt},
        ).first()
        if still_ours is None:
            raise JobSupersededError("another attempt took over this job; stopping")

    def _checkpoint_key(self) -> tuple[Any, ...]:
        return (
            TranscriptionCheckpoint.organization_id == self.organization_id,
            TranscriptionCheckpoint.video_response_id == self.response_id,
            TranscriptionCheckpoint.model_version_id == self.model_version_id,
        )

    def _transcript_key(self) -> tuple[Any, ...]:
        return (
            Transcript.organization_id == self.organization_id,
            Transcript.video_response_id == self.response_id,
            Transcript.model_version_id == self.model_version_id,
        )


# --- proctoring ----------------------------------------------------------------------------

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
            observation = _observe_snapshot(storage_key, seconds, settings, video_options)
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
    _replace_camera_events(session, proctoring, report, file_at)
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
        model_name=PROCTORING_MODEL_NAME,
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
    storage_key: str, seconds: float, settings: Settings, options: VideoAnalysisOptions
) -> Any:
    from are_workers.ml.vision import observe_image

    path = storage_path(storage_key, settings)
    if not path.is_file():
        raise InvalidInputError("The snapshot is missing from storage.", code="file_missing")
    return observe_image(path, timestamp=seconds, options=options.frame)


def _replace_camera_events(
    session: Session,
    proctoring: ProctoringSession,
    report: ProctoringReport,
    file_at: dict[float, uuid.UUID],
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
            "confidence": None,  # Haar cascades give no calibrated confidence
            "details": {
                "source": CAMERA_SOURCE,
                "signal": event.kind.value,
                "duration_seconds": event.duration,
                "detector": VISION_MODEL_NAME,
            },
            "snapshot_file_id": file_at.get(event.start),
        }
        for event in report.events
    ]
    if rows:
        session.execute(insert(ProctoringEvent), rows)
