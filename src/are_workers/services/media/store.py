"""Persistence shared by the media jobs.

The analysis itself lives in the sibling modules (no database there); ``answers``,
``answer_transcription``, ``answer_analysis`` and ``proctoring_store`` store what it finds, and
``checkpoints`` commits a transcription chunk by chunk. This module holds what they share:

* ``TransactionFactory``: short transactions committed apart from the job's own session
  (the chunk checkpoints, the model versions, the answer's status before native work).
* ``JobRef``: the ledger claim a service writes under.
* Model versions, registered in their own committed transaction (chunk rows reference them).
* Audit: every stored result is an AI decision, audited (``audit.record``) in the
  transaction that writes it, with the model's registered name and version, the inputs by
  id and content hash, and the outputs by id, count and hash: never words or face data.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from are_workers.config import Settings
from are_workers.crypto import json_sha256
from are_workers.errors import TransientError
from are_workers.ml.transcriber import OOM_RETRY_DELAY_SECONDS
from are_workers.ml.vision import DetectorInfo
from are_workers.models.ai_evaluations import AIModelVersion, ModelKind
from are_workers.models.files import File
from are_workers.services.media.transcription import PLAN_VERSION, TranscriptionOptions
from are_workers.services.media.video_analysis import VideoAnalysisOptions
from are_workers.services.model_registry import ensure_model_version

TransactionFactory = Callable[[], AbstractContextManager[Session]]
"""Opens one short transaction that commits when the block exits (rolls back on error)."""


@dataclass(frozen=True, slots=True)
class JobRef:
    """The ledger claim a service writes under: checkpoints are fenced on it."""

    id: uuid.UUID
    attempt: int


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


def vision_detector(options: VideoAnalysisOptions) -> DetectorInfo:
    """The face detector this thread runs for ``options``: BlazeFace when the ``faces``
    extra is installed, else the Haar cascades (``ml.vision.get_face_detector``)."""
    from are_workers.ml.vision import get_face_detector

    return get_face_detector(options.frame.detector).info


def vision_version(options: VideoAnalysisOptions) -> str:
    """The face detector's version (its package build and method) and every option its
    signals depend on."""
    return f"{vision_detector(options).version}/{options_digest(options)}"


def vision_model_version(
    transactions: TransactionFactory, options: VideoAnalysisOptions
) -> uuid.UUID:
    version = vision_version(options)
    with transactions() as session:
        return ensure_model_version(
            session,
            kind=ModelKind.VISION,
            name=vision_detector(options).name,
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
