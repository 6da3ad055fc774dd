"""Sentence embeddings shared by every domain: the embedder a process uses, its model row,
and the upsert of an entity's chunk vectors.

Why a room of its own: resumes, job postings, portfolios and interview answers all embed
text with the same model and store vectors in the same table, by the same rules (one model
row per name and weights; a chunk whose text did not change keeps its vector).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from are_workers.config import Settings, get_settings
from are_workers.crypto import text_sha256
from are_workers.models.embeddings import Embedding, EmbeddingEntity
from are_workers.services.model_registry import ensure_embedding_model

EmbedFn = Callable[[Sequence[str]], np.ndarray]

#: (chunk index, section, text, char start, char end) of one chunk to store.
ChunkRow = tuple[int, str, str, int | None, int | None]


@dataclass(frozen=True)
class EmbeddingContext:
    """The embedder a worker process uses, and the identity of its model."""

    embed: EmbedFn
    count_tokens: Callable[[str], int] | None
    name: str
    version: str
    dimension: int
    max_tokens: int

    @property
    def key(self) -> str:
        """``name@version``: how audit rows and fingerprints name this embedder."""
        return f"{self.name}@{self.version}"

    def ensure_model(self, session: Session) -> uuid.UUID:
        """The ``embedding_models`` row of this embedder (registered on first use)."""
        return ensure_embedding_model(
            session,
            name=self.name,
            version=self.version,
            dimension=self.dimension,
            max_tokens=self.max_tokens,
        )


def default_embedding_context(settings: Settings | None = None) -> EmbeddingContext:
    """The process-wide embedder behind the micro-batcher (loads the model on first use)."""
    from are_workers.ml.batcher import get_batcher
    from are_workers.ml.embedder import get_embedder

    settings = settings or get_settings()
    embedder = get_embedder(settings)
    batcher = get_batcher(settings)
    return EmbeddingContext(
        embed=batcher.embed,
        count_tokens=embedder.count_tokens,
        name=embedder.info.name,
        version=embedder.info.version,
        dimension=embedder.info.dimension,
        max_tokens=embedder.info.max_seq_length,
    )


def upsert_chunk_embeddings(
    session: Session,
    *,
    organization_id: uuid.UUID,
    entity_type: EmbeddingEntity,
    entity_id: uuid.UUID,
    owner: dict[str, uuid.UUID],
    chunks: list[ChunkRow],
    model_id: uuid.UUID,
    embedding: EmbeddingContext,
) -> tuple[int, int]:
    """Upsert one entity's chunk vectors; returns (embedded, reused).

    Chunks whose text hash is unchanged keep their vector (no forward pass); chunks beyond
    the new count are deleted, so a shorter re-upload leaves no stale vectors behind.
    """
    # Not dict(result): a Result has .keys(), so dict() would treat it as a mapping.
    existing = {  # noqa: C416
        index: digest
        for index, digest in session.execute(
            select(Embedding.chunk_index, Embedding.content_hash).where(
                Embedding.organization_id == organization_id,
                Embedding.entity_type == entity_type,
                Embedding.entity_id == entity_id,
                Embedding.embedding_model_id == model_id,
            )
        )
    }
    todo = [c for c in chunks if existing.get(c[0]) != text_sha256(c[2])]
    if todo:
        vectors = embedding.embed([c[2] for c in todo])
        rows = [
            {
                "organization_id": organization_id,
                "entity_type": entity_type,
                "entity_id": entity_id,
                "chunk_index": index,
                "embedding_model_id": model_id,
                "dimension": embedding.dimension,
                "section": section[:64],
                "char_start": start,
                "char_end": end,
                "chunk_text": text,
                "content_hash": text_sha256(text),
                "embedding": vector.astype(np.float32),
                **owner,
            }
            for (index, section, text, start, end), vector in zip(todo, vectors, strict=True)
        ]
        stmt = insert(Embedding).values(rows)
        session.execute(
            stmt.on_conflict_do_update(
                constraint="uq_embeddings_upsert_key",
                set_={
                    name: stmt.excluded[name]
                    for name in (
                        "section",
                        "char_start",
                        "char_end",
                        "chunk_text",
                        "content_hash",
                        "embedding",
                        "dimension",
                    )
                }
                | {"updated_at": func.now()},
            )
        )
    session.execute(
        delete(Embedding).where(
            Embedding.organization_id == organization_id,
            Embedding.entity_type == entity_type,
            Embedding.entity_id == entity_id,
            Embedding.embedding_model_id == model_id,
            Embedding.chunk_index >= len(chunks),
        )
    )
    return len(todo), len(chunks) - len(todo)
