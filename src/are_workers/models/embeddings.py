"""Vector search: embedding models, embeddings (pgvector) and match results.

Design: one ``embeddings`` table for every model. The ``embedding`` column is an *untyped*
``vector`` and each row records its model (``embedding_model_id``) and ``dimension``; a
composite FK ``(embedding_model_id, dimension) → embedding_models (id, dimension)`` plus
``CHECK (vector_dims(embedding) = dimension)`` guarantees every vector has its model's
size. So two models can coexist, and switching model is a backfill (insert rows for the
new model, flip ``is_default``, delete the old rows), not a migration.

Indexes. An HNSW index needs a fixed dimension, so indexes are *expression* indexes on a
cast, partial on what they cover:

- ``ix_embeddings_hnsw_384`` (made by the migration): ``(embedding::vector(384))`` with
  ``vector_cosine_ops`` ``WHERE dimension = 384`` — the default model (all-MiniLM-L6-v2)
  and any other 384-dimension model.
- run-time indexes (``rt_emb_<model>[_<org>]``, see :func:`runtime_index_ddl`) created by the
  retrieval workers per model (or per large tenant) with ``CREATE INDEX CONCURRENTLY``. The
  ``rt_`` prefix (``RUNTIME_INDEX_PREFIX``) is skipped by Alembic, so ``alembic check`` stays
  meaningful.

Adding a model with another dimension (say 768): insert an ``embedding_models`` row
(``status='backfilling'``), run :func:`runtime_index_ddl` for it, backfill its embeddings,
then mark it default. Queries must use the same cast and predicate as the index
(:func:`nearest_embeddings` does). pgvector 0.6 indexes at most 2,000 dimensions.
Why a per-model index even for 384: HNSW filters *after* the graph walk, so while two
384-dimension models share ``ix_embeddings_hnsw_384`` each query sees fewer candidates of
its own model; a per-model partial index restores recall during a backfill.
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any

from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ColumnElement,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    Select,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    bindparam,
    cast,
    column,
    select,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, validates

from are_workers.models.base import (
    RUNTIME_INDEX_PREFIX,
    Model,
    TenantMixin,
    TimestampMixin,
    created_at_col,
)
from are_workers.models.classification import (
    Anonymize,
    DataCategory,
    Holds,
    not_pii,
    pii,
    table_policy,
)
from are_workers.models.columns import (
    covered_ref_id,
    opt_ref_id,
    pg_enum,
    ref_id,
    task_run_ref,
    tenant_fk,
)
from are_workers.models.schemas import MatchDetails, validated

#: The dimension of the default model, indexed by the migration.
DEFAULT_DIMENSION = 384
#: pgvector 0.6's HNSW limit for ``vector``.
MAX_INDEXED_DIMENSION = 2000
MATCH_RETENTION_DAYS = 180


class EmbeddingDistance(StrEnum):
    COSINE = "cosine"
    L2 = "l2"
    INNER_PRODUCT = "inner_product"

    @property
    def opclass(self) -> str:
        return {
            EmbeddingDistance.COSINE: "vector_cosine_ops",
            EmbeddingDistance.L2: "vector_l2_ops",
            EmbeddingDistance.INNER_PRODUCT: "vector_ip_ops",
        }[self]


class EmbeddingModelStatus(StrEnum):
    BACKFILLING = "backfilling"  # being filled; not yet used for search
    ACTIVE = "active"
    RETIRED = "retired"  # its rows are being deleted


class EmbeddingEntity(StrEnum):
    """What an embedding's ``entity_id`` points at."""

    CANDIDATE = "candidate"  # candidates.id: a profile-level vector
    RESUME_CHUNK = "resume_chunk"  # parsed_resumes.id + chunk_index
    JOB = "job"  # job_postings.id
    JOB_REQUIREMENT = "job_requirement"  # job_requirements.id
    PORTFOLIO_CHUNK = "portfolio_chunk"  # portfolio_items.id + chunk_index
    ANSWER = "answer"  # application_answers.id
    TRANSCRIPT_CHUNK = "transcript_chunk"  # transcripts.id + chunk_index


CANDIDATE_ENTITIES = frozenset(
    {
        EmbeddingEntity.CANDIDATE,
        EmbeddingEntity.RESUME_CHUNK,
        EmbeddingEntity.PORTFOLIO_CHUNK,
        EmbeddingEntity.ANSWER,
        EmbeddingEntity.TRANSCRIPT_CHUNK,
    }
)
JOB_ENTITIES = frozenset({EmbeddingEntity.JOB, EmbeddingEntity.JOB_REQUIREMENT})


def _sql_in(values: frozenset[EmbeddingEntity]) -> str:
    return ", ".join(f"'{v.value}'" for v in sorted(values))


class EmbeddingModel(TimestampMixin, Model):
    """An embedding model. Global: the same model serves every tenant."""

    __tablename__ = "embedding_models"

    name: Mapped[str] = mapped_column(String(200), info=not_pii(holds=Holds.CODE))
    version: Mapped[str] = mapped_column(String(100), info=not_pii(holds=Holds.CODE))
    dimension: Mapped[int] = mapped_column(SmallInteger, info=not_pii())
    distance: Mapped[EmbeddingDistance] = mapped_column(
        pg_enum(EmbeddingDistance, "embedding_distance"),
        server_default=EmbeddingDistance.COSINE.value,
        info=not_pii(),
    )
    normalized: Mapped[bool] = mapped_column(Boolean, server_default=text("true"), info=not_pii())
    max_tokens: Mapped[int | None] = mapped_column(Integer, info=not_pii())
    status: Mapped[EmbeddingModelStatus] = mapped_column(
        pg_enum(EmbeddingModelStatus, "embedding_model_status"),
        server_default=EmbeddingModelStatus.BACKFILLING.value,
        info=not_pii(),
    )
    is_default: Mapped[bool] = mapped_column(Boolean, server_default=text("false"), info=not_pii())
    ai_model_version_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("ai_model_versions.id", ondelete="SET NULL"),
        index=True,
        info=not_pii(DataCategory.TECHNICAL),
    )

    __table_args__ = (
        UniqueConstraint("name", "version"),
        UniqueConstraint("id", "dimension"),  # target of embeddings' (model, dimension) FK
        Index(
            "uq_embedding_models_default",
            "is_default",
            unique=True,
            postgresql_where=text("is_default"),
        ),
        CheckConstraint("dimension BETWEEN 1 AND 16000", name="dimension_range"),
        CheckConstraint("NOT is_default OR status = 'active'", name="default_is_active"),
        {"info": table_policy(retention_days=None, purpose="Model registry (vector search).")},
    )


class Embedding(TenantMixin, TimestampMixin, Model):
    """One vector of one chunk of one entity, by one model.

    The upsert key is ``uq_embeddings_upsert_key``; ``content_hash`` lets the worker skip a
    chunk whose text and model did not change. ``candidate_id`` / ``job_id`` are the owners:
    deleting (erasing) a candidate deletes their vectors by cascade.
    """

    __tablename__ = "embeddings"

    entity_type: Mapped[EmbeddingEntity] = mapped_column(
        pg_enum(EmbeddingEntity, "embedding_entity"), info=not_pii()
    )
    entity_id: Mapped[uuid.UUID] = mapped_column(info=not_pii(DataCategory.TECHNICAL))
    chunk_index: Mapped[int] = mapped_column(Integer, server_default=text("0"), info=not_pii())
    embedding_model_id: Mapped[uuid.UUID] = mapped_column(info=not_pii(DataCategory.TECHNICAL))
    dimension: Mapped[int] = mapped_column(SmallInteger, info=not_pii())
    candidate_id: Mapped[opt_ref_id]
    job_id: Mapped[opt_ref_id]
    section: Mapped[str | None] = mapped_column(String(64), info=not_pii(holds=Holds.CODE))
    char_start: Mapped[int | None] = mapped_column(Integer, info=not_pii())
    char_end: Mapped[int | None] = mapped_column(Integer, info=not_pii())
    chunk_text: Mapped[str | None] = mapped_column(
        Text, info=pii(DataCategory.EMPLOYMENT, anonymize=Anonymize.NULL)
    )  # the embedded text, kept for highlighting and re-ranking
    content_hash: Mapped[str] = mapped_column(
        String(64), info=not_pii(DataCategory.TECHNICAL, holds=Holds.REFERENCE)
    )
    embedding: Mapped[list[float]] = mapped_column(
        Vector(), info=pii(DataCategory.EMPLOYMENT, anonymize=Anonymize.DELETE_ROW)
    )  # a vector of personal text can be partially inverted: personal data

    __table_args__ = (
        ForeignKeyConstraint(
            ["embedding_model_id", "dimension"],
            ["embedding_models.id", "embedding_models.dimension"],
            ondelete="RESTRICT",
        ),
        tenant_fk("candidate_id", "candidates"),
        tenant_fk("job_id", "job_postings"),
        UniqueConstraint(
            "organization_id",
            "entity_type",
            "entity_id",
            "chunk_index",
            "embedding_model_id",
            name="uq_embeddings_upsert_key",
        ),
        # The migration-made HNSW index for the default 384-dimension model(s).
        Index(
            f"ix_embeddings_hnsw_{DEFAULT_DIMENSION}",
            cast(column("embedding"), Vector(DEFAULT_DIMENSION)).label("embedding_default"),
            postgresql_using="hnsw",
            postgresql_ops={"embedding_default": EmbeddingDistance.COSINE.opclass},
            postgresql_where=text(f"dimension = {DEFAULT_DIMENSION}"),
        ),
        # Backfill progress and model retirement scan by model.
        Index("ix_embeddings_model_entity", "embedding_model_id", "entity_type"),
        CheckConstraint("vector_dims(embedding) = dimension", name="dimension_matches_vector"),
        CheckConstraint("chunk_index >= 0", name="chunk_index_non_negative"),
        CheckConstraint(
            "(char_start IS NULL) = (char_end IS NULL) AND "
            "(char_start IS NULL OR (char_start >= 0 AND char_end >= char_start))",
            name="char_span_valid",
        ),
        CheckConstraint(
            f"entity_type NOT IN ({_sql_in(CANDIDATE_ENTITIES)}) OR candidate_id IS NOT NULL",
            name="candidate_entities_have_owner",
        ),
        CheckConstraint(
            f"entity_type NOT IN ({_sql_in(JOB_ENTITIES)}) OR job_id IS NOT NULL",
            name="job_entities_have_owner",
        ),
        {
            "info": table_policy(
                retention_days=None,
                subject="candidate_id",
                purpose="Semantic matching of candidates and jobs; lives as long as its owner.",
            )
        },
    )


class MatchResult(TenantMixin, Model):
    """How well a candidate matches a job by one embedding model (upsert per triple)."""

    __tablename__ = "match_results"

    job_id: Mapped[covered_ref_id]
    candidate_id: Mapped[ref_id]
    application_id: Mapped[opt_ref_id]
    embedding_model_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("embedding_models.id", ondelete="RESTRICT"),
        index=True,
        info=not_pii(DataCategory.TECHNICAL),
    )
    score: Mapped[float] = mapped_column(Float, info=not_pii(DataCategory.ASSESSMENT))
    rank: Mapped[int | None] = mapped_column(Integer, info=not_pii(DataCategory.ASSESSMENT))
    details: Mapped[dict[str, Any]] = mapped_column(info=not_pii(holds=Holds.METRICS))
    task_run_id: Mapped[task_run_ref]
    computed_at: Mapped[created_at_col]

    @validates("details")
    def _validate_details(self, _key: str, value: Any) -> Any:
        return validated(MatchDetails, value)

    __table_args__ = (
        tenant_fk("job_id", "job_postings"),
        tenant_fk("candidate_id", "candidates"),
        tenant_fk("application_id", "applications", ondelete="SET NULL"),
        UniqueConstraint("job_id", "candidate_id", "embedding_model_id"),
        # A job's ranked shortlist.
        Index("ix_match_results_job_model_rank", "job_id", "embedding_model_id", "rank"),
        CheckConstraint("score >= -1 AND score <= 1", name="score_cosine_range"),
        CheckConstraint("rank IS NULL OR rank >= 1", name="rank_positive"),
        {
            "info": table_policy(
                retention_days=MATCH_RETENTION_DAYS,
                clock="computed_at",
                subject="candidate_id",
                purpose="Candidate-job matching (recomputable, so kept briefly).",
            )
        },
    )


# --- run-time indexes and the query that uses them -------------------------------------


def runtime_index_name(model_id: uuid.UUID, organization_id: uuid.UUID | None = None) -> str:
    """``rt_emb_<model>[_<org>]``: reserved prefix, so Alembic ignores it."""
    name = f"{RUNTIME_INDEX_PREFIX}emb_{model_id.hex[:16]}"
    return f"{name}_{organization_id.hex[:16]}" if organization_id else name


def runtime_index_ddl(
    model_id: uuid.UUID,
    dimension: int,
    distance: EmbeddingDistance = EmbeddingDistance.COSINE,
    *,
    organization_id: uuid.UUID | None = None,
    concurrently: bool = True,
) -> str:
    """DDL of a per-model (optionally per-tenant) partial HNSW index.

    Run ``concurrently`` outside a transaction in production (an AUTOCOMMIT connection).
    Values are interpolated from typed ``uuid.UUID``/``int`` only, never from user text.
    """
    if not 1 <= int(dimension) <= MAX_INDEXED_DIMENSION:
        raise ValueError(f"HNSW indexes support 1..{MAX_INDEXED_DIMENSION} dimensions")
    predicate = f"embedding_model_id = '{uuid.UUID(str(model_id))}'"
    if organization_id is not None:
        predicate += f" AND organization_id = '{uuid.UUID(str(organization_id))}'"
    return (
        f"CREATE INDEX {'CONCURRENTLY ' if concurrently else ''}IF NOT EXISTS "
        f"{runtime_index_name(model_id, organization_id)} ON embeddings USING hnsw "
        f"((embedding::vector({int(dimension)})) {distance.opclass}) WHERE {predicate}"
    )


def _distance(expr: ColumnElement[Any], query: list[float], distance: EmbeddingDistance) -> Any:
    comparator: Any = expr.comparator
    if distance is EmbeddingDistance.COSINE:
        return comparator.cosine_distance(query)
    if distance is EmbeddingDistance.L2:
        return comparator.l2_distance(query)
    return comparator.max_inner_product(query)


def nearest_embeddings(
    query: list[float],
    *,
    model_id: uuid.UUID,
    dimension: int,
    organization_id: uuid.UUID,
    entity_type: EmbeddingEntity | None = None,
    distance: EmbeddingDistance = EmbeddingDistance.COSINE,
    limit: int = 20,
) -> Select[Embedding, float]:
    """A k-nearest-neighbour query shaped to use the HNSW indexes above.

    It casts exactly as the indexes do and repeats their predicates (``dimension = N`` for
    the migration's index, ``embedding_model_id`` for run-time ones), so the planner can
    prove the partial index applies.
    """
    if len(query) != dimension:
        raise ValueError(f"query has {len(query)} dimensions, the model has {dimension}")
    typed = cast(Embedding.embedding, Vector(dimension))
    dist = _distance(typed, query, distance).label("distance")
    stmt = (
        select(Embedding, dist)
        .where(
            # Literals, not parameters: a generic plan could not prove a partial index applies.
            Embedding.dimension == bindparam("dimension", int(dimension), literal_execute=True),
            Embedding.embedding_model_id
            == bindparam("embedding_model_id", model_id, literal_execute=True),
            Embedding.organization_id == organization_id,
        )
        .order_by(dist)
        .limit(limit)
    )
    if entity_type is not None:
        stmt = stmt.where(Embedding.entity_type == entity_type)
    return stmt
