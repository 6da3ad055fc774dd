"""The ``media.transcribe_response`` job: an answer's transcript, resumable one chunk at a time.

Long (Whisper), checkpointed per chunk (see ``checkpoints``); it leaves the answer
``analyzing`` and the actor queues ``media.analyze_response`` (``answer_analysis``). The
transcription itself (no database) is ``transcription``.

The complete transcript writes one audit row in the transaction that stores it: the model
that made it, the recording by file id and content hash, the rows written by id, and counts;
never words. A transcript already complete is returned without writing anything, so a
redelivered job audits nothing twice. (Chunk checkpoints are not audited one by one: the
complete transcript's row names the same transcript and counts the chunks.)
"""

from __future__ import annotations

import uuid
import zlib
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
from are_workers.errors import InvalidInputError
from are_workers.ml.transcriber import HALLUCINATION_COMPRESSION_RATIO
from are_workers.models.subscription import UsageKind, UsageUnit
from are_workers.models.video_interviews import (
    Transcript,
    TranscriptSegment,
    TranscriptStatus,
    VideoResponse,
    VideoResponseStatus,
)
from are_workers.services import consent
from are_workers.services.consent import Activity, load_consents
from are_workers.services.media.answers import (
    Answer,
    answer_notice,
    begin_attempt,
    drop_partial_transcripts,
    load_answer,
    recording_path,
)
from are_workers.services.media.checkpoints import ChunkCheckpoints, segment_rows
from are_workers.services.media.probe import MediaInfo, probe_media
from are_workers.services.media.store import (
    JobRef,
    TransactionFactory,
    asr_model_version,
    audit_recording_decision,
    gpu_memory_errors_as_transient,
)
from are_workers.services.media.transcription import (
    ChunkResult,
    StaleCheckpointError,
    TranscriptionOptions,
    default_options,
    plan_transcription,
    transcribe_chunks,
)
from are_workers.services.media.transcription import Transcript as SpokenTranscript
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
UNDERSTOOD_MAX_COMPRESSION = HALLUCINATION_COMPRESSION_RATIO
"""Whisper's own bound for a failed decode: a phrase whose text compresses better than this
repeats itself ("a high-end, high-end, high-end, ..."). Among suspect transcripts (at or
below ``UNDERSTOOD_SUSPECT_AVG_LOGPROB``) such a loop marks another language too: the
German fixture answer read -0.70 / 0.58 / coverage 0.79 on an AVX2-only CPU, just inside
the other bounds, with its last phrase looping (ratio 2.48)."""


def compression_ratio(text: str) -> float:
    data = text.encode()
    return len(data) / len(zlib.compress(data)) if data else 0.0


TRANSCRIPT_AUDIT_ACTION = "transcript.completed"


@dataclass
class _LanguageTally:
    """Each chunk's language, and speech seconds per language as ``assemble_transcript``
    weighs them."""

    chunks: list[tuple[str, float]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    probabilities: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    new_chunks: int = 0

    def add(self, chunk: ChunkResult, *, new: bool) -> None:
        self.new_chunks += new
        self.chunks.append((chunk.language, chunk.language_probability))
        spoken = sum(s.end - s.start for s in chunk.segments)
        if spoken > 0:
            self.seconds[chunk.language] = self.seconds.get(chunk.language, 0.0) + spoken
            self.probabilities.setdefault(chunk.language, []).append(
                (chunk.language_probability, spoken)
            )

    @property
    def language(self) -> str:
        if not self.seconds:
            return "und"
        return max(sorted(self.seconds), key=lambda code: self.seconds[code])

    @property
    def probability(self) -> float | None:
        """How sure the detection of the answer's language is: the speech-weighted mean
        probability over the chunks heard in it, times the share of speech in it (an answer
        whose chunks disagree is less certain than any of them)."""
        if not self.seconds:
            return None
        share = self.seconds[self.language] / sum(self.seconds.values())
        mean = _weighted(self.probabilities[self.language])
        return None if mean is None else round(mean * share, 4)


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
            checkpoints.save(chunk, language=tally.language, languages=tally.chunks)

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
    looping = any(
        compression_ratio(s.text) > UNDERSTOOD_MAX_COMPRESSION for s in transcript.segments
    )
    low_confidence = looping or (
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
            looping=looping,
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
    language_probability: float | None
    """None for an English-only model (it cannot tell languages apart) or no speech."""
    notice: str | None
    """``no_speech`` or ``language_uncertain`` (see ``answers.answer_notice``), else None."""
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
            "language_probability": self.language_probability,
            "notice": self.notice,
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
    options = options or default_options(settings)
    answer = load_answer(session, organization_id, response_id)
    consent.ensure_allowed(
        load_consents(session, answer.candidate_id), Activity.EXTRACTION, what="the answer"
    )
    path = recording_path(session, answer, settings)
    model_version_id, model_name = asr_model_version(transactions, settings, options)
    done = session.execute(
        select(Transcript.id, Transcript.language, Transcript.language_probability,
               Transcript.duration_seconds, Transcript.word_count)
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
            language_probability=done.language_probability,
            notice=answer_notice(
                silent=not done.word_count,
                language=done.language,
                language_probability=done.language_probability,
            )[0],
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
        chunk_seconds=options.chunking.max_chunk_seconds,
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

    language_probability = tally.probability if multilingual else None
    transcript_id = _store_transcript(
        session, answer, model_version_id, transcript, language_probability=language_probability
    )
    error_code, error_message = answer_notice(
        silent=transcript.is_empty,
        language=transcript.language,
        language_probability=language_probability,
    )
    session.execute(
        update(VideoResponse)
        .where(VideoResponse.id == response_id, VideoResponse.organization_id == organization_id)
        .values(
            status=VideoResponseStatus.ANALYZING,
            duration_seconds=media.duration,
            error_code=error_code,
            error_message=error_message,
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
            "language": transcript.language,
            "language_probability": language_probability,
        },
        task_run_id=job.id if job else None,
    )
    return TranscriptionOutcome(
        transcript_id=transcript_id,
        model=model_name,
        language=transcript.language,
        language_probability=language_probability,
        notice=error_code,
        duration_seconds=transcript.duration,
        words=len(transcript.words),
        chunks=restored + tally.new_chunks,
        restored_chunks=restored,
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


def transcribe_and_queue_analysis(
    session: Session,
    *,
    organization_id: uuid.UUID,
    response_id: uuid.UUID,
    transactions: TransactionFactory,
    job: JobRef,
) -> TranscriptionOutcome:
    """:func:`transcribe_response`, then the answer's analysis job, enqueued in the job's
    transaction (it runs only if the transcript commits; once per transcript)."""
    from are_workers import ledger

    outcome = transcribe_response(
        session,
        organization_id=organization_id,
        response_id=response_id,
        transactions=transactions,
        job=job,
    )
    ledger.enqueue(
        session,
        "media.analyze_response",
        {"response_id": str(response_id)},
        organization_id=organization_id,
        idempotency_key=f"analyze:{response_id}:{outcome.transcript_id}",
    )
    return outcome
