"""Rows that record which model (and which rules) produced an output, and what it cost.

Why in one place: every AI output (a vector, an evaluation, a transcript) must name the
model version that made it, and every AI job writes one usage record for billing. The rows
are upserted by natural key, so a retried job reuses them and bills once.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from are_workers.job_context import current_job_id
from are_workers.models.ai_evaluations import AIModelVersion, ModelKind
from are_workers.models.embeddings import EmbeddingModel, EmbeddingModelStatus
from are_workers.models.subscription import UsageKind, UsageRecord, UsageUnit


def ensure_model_version(
    session: Session,
    *,
    kind: ModelKind,
    name: str,
    version: str,
    params: dict[str, Any] | None = None,
    provider: str | None = "are-workers",
) -> uuid.UUID:
    """The ``ai_model_versions`` row for (kind, name, version), created on first use."""
    existing = session.scalar(
        select(AIModelVersion.id).where(
            AIModelVersion.kind == kind,
            AIModelVersion.name == name,
            AIModelVersion.version == version,
        )
    )
    if existing is not None:
        return existing
    stmt = (
        insert(AIModelVersion)
        .values(kind=kind, name=name, version=version, params=params or {}, provider=provider)
        .on_conflict_do_nothing()
        .returning(AIModelVersion.id)
    )
    inserted = session.scalar(stmt)
    if inserted is not None:
        return inserted
    return session.scalars(
        select(AIModelVersion.id).where(
            AIModelVersion.kind == kind,
            AIModelVersion.name == name,
            AIModelVersion.version == version,
        )
    ).one()


def ensure_embedding_model(
    session: Session, *, name: str, version: str, dimension: int, max_tokens: int | None
) -> uuid.UUID:
    """The ``embedding_models`` row for this embedder; the first one becomes the default.

    A second model (another name or weights) is registered as ``backfilling``: it starts
    serving only when a backfill finishes and flips the default.
    """
    found = session.scalar(
        select(EmbeddingModel.id).where(
            EmbeddingModel.name == name, EmbeddingModel.version == version
        )
    )
    if found is not None:
        return found
    has_default = session.scalar(select(EmbeddingModel.id).where(EmbeddingModel.is_default))
    version_id = ensure_model_version(
        session,
        kind=ModelKind.EMBEDDING,
        name=name,
        version=version,
        params={"dimension": dimension, "max_tokens": max_tokens},
    )
    stmt = (
        insert(EmbeddingModel)
        .values(
            name=name,
            version=version,
            dimension=dimension,
            max_tokens=max_tokens,
            status=EmbeddingModelStatus.BACKFILLING if has_default else EmbeddingModelStatus.ACTIVE,
            is_default=has_default is None,
            ai_model_version_id=version_id,
        )
        .on_conflict_do_nothing()
        .returning(EmbeddingModel.id)
    )
    inserted = session.scalar(stmt)
    if inserted is not None:
        return inserted
    return session.scalars(
        select(EmbeddingModel.id).where(
            EmbeddingModel.name == name, EmbeddingModel.version == version
        )
    ).one()


def record_usage(
    session: Session,
    *,
    organization_id: uuid.UUID,
    kind: UsageKind,
    quantity: float,
    unit: UsageUnit,
    model_version_id: uuid.UUID | None = None,
) -> None:
    """One usage record per (job, kind): a retried or re-delivered job is billed once."""
    stmt = (
        insert(UsageRecord)
        .values(
            organization_id=organization_id,
            kind=kind,
            quantity=Decimal(str(round(quantity, 6))),
            unit=unit,
            task_run_id=current_job_id(),
            model_version_id=model_version_id,
        )
        .on_conflict_do_nothing()
    )
    session.execute(stmt)
