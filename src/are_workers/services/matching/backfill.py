"""Re-embed everything with a new model while the old vectors keep serving.

Why a backfill and not a migration: every vector row names its model, so a new model's
vectors are simply more rows. The new model is registered as ``backfilling``; this walks
the source model's rows in keyset-ordered batches (re-embedding the stored chunk text, so no
file is re-read), upserts the new model's rows, and is safe to stop and re-run: chunks whose
text hash already matches are skipped. Retrieval keeps using the default model until
``activate_model`` flips it, in one transaction, once the backfill is complete.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from are_workers.crypto import text_sha256
from are_workers.errors import InvalidInputError
from are_workers.models.embeddings import Embedding, EmbeddingModel, EmbeddingModelStatus
from are_workers.services.embeddings import EmbeddingContext

ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class BackfillReport:
    source_model_id: uuid.UUID
    target_model_id: uuid.UUID
    rows: int
    embedded: int
    skipped: int


def default_model_id(session: Session) -> uuid.UUID:
    found = session.scalar(select(EmbeddingModel.id).where(EmbeddingModel.is_default))
    if found is None:
        raise InvalidInputError("No default embedding model yet: nothing to backfill from.")
    return found


def backfill(
    session: Session,
    *,
    target: EmbeddingContext,
    source_model_id: uuid.UUID | None = None,
    organization_id: uuid.UUID | None = None,
    batch_size: int = 256,
    progress: ProgressFn | None = None,
) -> BackfillReport:
    """Copy every chunk of the source model to ``target``'s model, re-embedded.

    Commits per batch (through ``session``), so a long backfill holds no long transaction
    and resumes where it stopped.
    """
    source = source_model_id or default_model_id(session)
    target_id = target.ensure_model(session)
    if target_id == source:
        raise InvalidInputError("The target model is the source model: nothing to do.")
    scope = [Embedding.embedding_model_id == source]
    if organization_id is not None:
        scope.append(Embedding.organization_id == organization_id)
    total = int(session.scalar(select(func.count()).select_from(Embedding).where(*scope)) or 0)
    done = embedded = skipped = 0
    last: uuid.UUID | None = None
    while True:
        stmt = select(Embedding).where(*scope).order_by(Embedding.id).limit(batch_size)
        if last is not None:
            stmt = stmt.where(Embedding.id > last)
        rows = list(session.scalars(stmt))
        if not rows:
            break
        last = rows[-1].id
        existing = {
            (org, kind, entity, index): digest
            for org, kind, entity, index, digest in session.execute(
                select(Embedding.organization_id, Embedding.entity_type, Embedding.entity_id,
                       Embedding.chunk_index, Embedding.content_hash)
                .where(Embedding.embedding_model_id == target_id,
                       Embedding.entity_id.in_({r.entity_id for r in rows}))
            )
        }  # fmt: skip
        todo = [
            r for r in rows
            if r.chunk_text
            and existing.get((r.organization_id, r.entity_type, r.entity_id, r.chunk_index))
            != text_sha256(r.chunk_text)
        ]  # fmt: skip
        if todo:
            vectors = target.embed([r.chunk_text or "" for r in todo])
            values = [
                {
                    "organization_id": r.organization_id, "entity_type": r.entity_type,
                    "entity_id": r.entity_id, "chunk_index": r.chunk_index,
                    "embedding_model_id": target_id, "dimension": target.dimension,
                    "candidate_id": r.candidate_id, "job_id": r.job_id, "section": r.section,
                    "char_start": r.char_start, "char_end": r.char_end,
                    "chunk_text": r.chunk_text, "content_hash": text_sha256(r.chunk_text or ""),
                    "embedding": vector.astype(np.float32),
                }
                for r, vector in zip(todo, vectors, strict=True)
            ]  # fmt: skip
            stmt_insert = insert(Embedding).values(values)
            session.execute(
                stmt_insert.on_conflict_do_update(
                    constraint="uq_embeddings_upsert_key",
                    set_={
                        name: stmt_insert.excluded[name]
                        for name in ("embedding", "content_hash", "chunk_text", "dimension")
                    },
                )
            )
        embedded += len(todo)
        skipped += len(rows) - len(todo)
        done += len(rows)
        session.commit()
        if progress is not None:
            progress(done, total)
    return BackfillReport(source, target_id, done, embedded, skipped)


def activate_model(session: Session, model_id: uuid.UUID) -> None:
    """Make ``model_id`` the default; the previous default is retired (its rows remain until
    an operator deletes them, so a rollback is a flip back)."""
    target = session.get(EmbeddingModel, model_id)
    if target is None:
        raise InvalidInputError(f"No embedding model {model_id}.")
    session.execute(
        update(EmbeddingModel)
        .where(EmbeddingModel.is_default, EmbeddingModel.id != model_id)
        .values(is_default=False, status=EmbeddingModelStatus.RETIRED)
    )
    session.flush()
    target.status = EmbeddingModelStatus.ACTIVE
    target.is_default = True
    session.flush()
