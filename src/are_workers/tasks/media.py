"""Media actors on the ``media`` queue: thin wrappers over ``services.media``.

Why a queue of their own: Whisper and OpenCV run long native calls that Dramatiq's time limit
cannot interrupt, so a media pool runs one job per process (``docs/media.md``), on GPUs or
CPUs as ops choose. The lease heartbeat keeps running during those calls (they release the
GIL); a transcription commits each chunk as it goes, so a killed worker's successor resumes
where it stopped. ``notify_shutdown``: a draining worker interrupts a job between two native
calls and the ledger retries it from its checkpoint, instead of the drain timeout SIGKILLing
it, which would count as a crash.
"""

from __future__ import annotations

import uuid
from typing import Any

from are_workers.errors import ConfigurationError
from are_workers.job_context import current_job
from are_workers.services.media import (
    answer_analysis,
    answer_transcription,
    answers,
    proctoring_store,
    store,
)
from are_workers.tasks.base import job_actor, warmup


def _job() -> store.JobRef:
    job = current_job()
    return store.JobRef(job.job_id, job.claim.attempt)


def _encoder() -> Any:
    """The process's multilingual text model, loaded on first use (not at warm-up: most
    media workers should not pay for a second model before their first answer with speech)."""
    from are_workers.ml.multilingual import get_encoder

    return get_encoder()


def _encoder_key() -> str | None:
    """``name@version`` of the text model ``_encoder`` loads, for the audit row, without
    loading it. None without the model; the analysis then says it was unavailable."""
    from are_workers.ml.multilingual import encoder_key

    try:
        return encoder_key()
    except (ConfigurationError, OSError):
        return None


@job_actor(
    "media.transcribe_response",
    on_permanent_failure=answers.record_response_failure,
    on_dead=answers.record_gave_up,
    notify_shutdown=True,
)
def transcribe_response(response_id: uuid.UUID) -> dict[str, Any]:
    """Transcribe an interview answer (resuming from its checkpoint), then queue its analysis."""
    job = current_job()
    outcome = answer_transcription.transcribe_and_queue_analysis(
        job.session,
        organization_id=job.require_organization(),
        response_id=response_id,
        transactions=store.committed_transaction,
        job=_job(),
    )
    return outcome.as_result()


@job_actor(
    "media.analyze_response",
    on_permanent_failure=answers.record_response_failure,
    on_dead=answers.record_gave_up,
    notify_shutdown=True,
)
def analyze_response(response_id: uuid.UUID) -> dict[str, Any]:
    """Speech signals and answer relevance; face and picture signals with consent."""
    job = current_job()
    outcome = answer_analysis.analyze_response(
        job.session,
        organization_id=job.require_organization(),
        response_id=response_id,
        transactions=store.committed_transaction,
        job=_job(),
        similarity=answer_analysis.encoder_similarity(_encoder),
        similarity_model=_encoder_key(),
    )
    return outcome.as_result()


@job_actor("media.proctor_snapshots", notify_shutdown=True)
def proctor_snapshots(
    proctoring_session_id: uuid.UUID, file_ids: list[uuid.UUID] | None = None
) -> dict[str, Any]:
    """Camera events and an integrity summary for human review, from webcam snapshots."""
    job = current_job()
    outcome = proctoring_store.proctor_session(
        job.session,
        organization_id=current_job().require_organization(),
        proctoring_session_id=proctoring_session_id,
        file_ids=file_ids,
    )
    return outcome.as_result()


@warmup("media")
def load_media_models() -> None:
    """Load Whisper and OpenCV before the worker reports ready."""
    import cv2  # noqa: F401 - importing it is most of OpenCV's start-up cost

    from are_workers.ml.transcriber import get_transcriber

    get_transcriber()
