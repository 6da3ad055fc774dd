"""Transcription checkpoints: each chunk committed on its own, and the fence that stops a
superseded attempt.

A transcription commits each chunk in a short transaction of its own (the chunk's segments on
a ``partial`` transcript, and the ``transcription_checkpoints`` pointer), because the job's
transaction commits only when the job ends and a SIGKILL before that would lose every chunk.
Chunk writes are keyed by (answer, model version, chunk index), so a chunk written twice is
written once, and fenced on the job's claimed attempt, so a worker whose lease was taken over
stops at its next chunk (:class:`JobSupersededError`).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from are_workers.errors import AreWorkersError
from are_workers.ml.transcriber import Segment, Word
from are_workers.models.schemas import ChunkLanguages, TranscriptWords, validated
from are_workers.models.video_interviews import (
    Transcript,
    TranscriptionCheckpoint,
    TranscriptSegment,
    TranscriptStatus,
)
from are_workers.services.media.store import JobRef, TransactionFactory
from are_workers.services.media.transcription import (
    ChunkResult,
    TranscriptionOptions,
    TranscriptionPlan,
)

CHUNK_SEGMENT_STRIDE = 10_000
"""While a transcript is ``partial``, chunk k's segments are stored at indexes
``k * 10_000 + i``, so a resumed attempt knows which chunk each segment came from (a chunk
holds at most 30 s of speech: far fewer than 10,000 phrases). The complete transcript is
renumbered ``0..n-1``."""


class JobSupersededError(AreWorkersError):
    """The job's lease was taken over by another attempt: stop, and write nothing more."""


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
    languages: list[tuple[str, float]]
    """(language, probability) of chunks ``0..done``, by index."""
    segments: dict[int, list[Segment]]

    def restore(
        self, plan: TranscriptionPlan, options: TranscriptionOptions
    ) -> list[ChunkResult] | None:
        """Chunk results for ``plan``, or ``None`` if they cannot have come from it (another
        recording, other options) or lack a chunk's language (a checkpoint written before
        languages were kept): then the caller starts over. Each restored chunk gets exactly
        the language and probability its first run detected.
        """
        if (
            self.total != len(plan.chunks)
            or self.done >= len(plan.chunks)
            or len(self.languages) != self.done + 1
            or not math.isclose(self.chunk_seconds, options.chunking.max_chunk_seconds)
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
                    language=self.languages[span.index][0],
                    language_probability=self.languages[span.index][1],
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
                    TranscriptionCheckpoint.chunk_languages,
                ).where(*self._checkpoint_key())
            ).one_or_none()
            transcript = session.execute(
                select(Transcript.id).where(
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
            languages=[(c["language"], c["probability"]) for c in checkpoint.chunk_languages],
            segments=by_chunk,
        )

    def save(
        self, chunk: ChunkResult, *, language: str, languages: Sequence[tuple[str, float]]
    ) -> None:
        """Commit one chunk (idempotent), then tell the hooks. ``language`` is the
        transcript's so far; ``languages`` those of chunks ``0..chunk.index``."""
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
                "chunk_languages": validated(
                    ChunkLanguages,
                    [{"language": code, "probability": p} for code, p in languages],
                ),
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
