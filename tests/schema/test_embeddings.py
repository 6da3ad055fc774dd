"""Embeddings: vectors match their model, the upsert key holds, and nearest-neighbour
queries use the HNSW indexes (the migration's one and run-time ones)."""

from __future__ import annotations

import math
import random
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from are_workers.models.base import RUNTIME_INDEX_PREFIX
from are_workers.models.embeddings import (
    Embedding,
    EmbeddingEntity,
    EmbeddingModel,
    nearest_embeddings,
    runtime_index_ddl,
    runtime_index_name,
)
from tests.factories import Graph, make_embedding_model
from tests.schema.conftest import Violates


def _unit(dimension: int, rng: random.Random) -> list[float]:
    values = [rng.gauss(0, 1) for _ in range(dimension)]
    norm = math.sqrt(sum(v * v for v in values))
    return [v / norm for v in values]


def _embed(
    db: Session, graph: Graph, model: EmbeddingModel, vectors: list[list[float]]
) -> list[Embedding]:
    rows = [
        Embedding(
            organization_id=graph.org.id,
            entity_type=EmbeddingEntity.RESUME_CHUNK,
            entity_id=graph.parsed_resume.id,
            chunk_index=i,
            candidate_id=graph.candidate.id,
            embedding_model_id=model.id,
            dimension=model.dimension,
            content_hash=f"{i:064x}",
            embedding=vector,
        )
        for i, vector in enumerate(vectors)
    ]
    db.add_all(rows)
    db.flush()
    return rows


def _explain(db: Session, stmt: object) -> str:
    sql = stmt.compile(  # type: ignore[attr-defined]
        dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
    )
    # A handful of rows: the planner would rightly sort them in memory. Forbid the sort and
    # the scan, so the plan must come from an index that yields rows in distance order.
    db.execute(text("SET LOCAL enable_seqscan = off"))
    db.execute(text("SET LOCAL enable_sort = off"))
    plan = db.execute(text(f"EXPLAIN {sql}")).scalars().all()
    db.execute(text("RESET enable_seqscan"))
    db.execute(text("RESET enable_sort"))
    return "\n".join(plan)


def test_vector_must_match_its_models_dimension(
    db: Session, graph: Graph, violates: Violates
) -> None:
    model = make_embedding_model(db, dimension=4)
    row = {
        "organization_id": graph.org.id,
        "entity_type": EmbeddingEntity.CANDIDATE,
        "entity_id": graph.candidate.id,
        "candidate_id": graph.candidate.id,
        "embedding_model_id": model.id,
        "content_hash": "f" * 64,
    }
    with violates("ck_embeddings_dimension_matches_vector"):
        db.add(Embedding(**row, dimension=4, embedding=[0.1, 0.2, 0.3]))
    with violates("fk_embeddings_embedding_model_id_dimension_embedding_models"):
        db.add(Embedding(**row, dimension=3, embedding=[0.1, 0.2, 0.3]))
    with violates("ck_embeddings_candidate_entities_have_owner"):
        db.add(Embedding(**{**row, "candidate_id": None}, dimension=4, embedding=[0, 0, 0, 1]))


def test_upsert_key_allows_two_models_side_by_side(
    db: Session, graph: Graph, violates: Violates
) -> None:
    rng = random.Random(1)
    old, new = make_embedding_model(db, 4), make_embedding_model(db, 6)
    _embed(db, graph, old, [_unit(4, rng)])
    _embed(db, graph, new, [_unit(6, rng)])  # a re-embed is a backfill, not a migration
    with violates("uq_embeddings_upsert_key"):
        _embed(db, graph, old, [_unit(4, rng)])


def test_only_one_default_model(db: Session, violates: Violates) -> None:
    make_embedding_model(db, 384, default=True)
    with violates("uq_embedding_models_default"):
        make_embedding_model(db, 384, default=True)


def test_nearest_neighbour_query_uses_the_migrations_hnsw_index(db: Session, graph: Graph) -> None:
    rng = random.Random(7)
    model = make_embedding_model(db, 384)
    vectors = [_unit(384, rng) for _ in range(40)]
    rows = _embed(db, graph, model, vectors)
    stmt = nearest_embeddings(
        vectors[5],
        model_id=model.id,
        dimension=384,
        organization_id=graph.org.id,
        entity_type=EmbeddingEntity.RESUME_CHUNK,
        limit=3,
    )
    plan = _explain(db, stmt)
    assert "ix_embeddings_hnsw_384" in plan, plan
    first, distance = db.execute(stmt).all()[0]
    assert first.id == rows[5].id
    assert distance < 1e-6


def test_runtime_index_for_another_dimension_is_used(db: Session, graph: Graph) -> None:
    rng = random.Random(11)
    model = make_embedding_model(db, 8)
    vectors = [_unit(8, rng) for _ in range(30)]
    rows = _embed(db, graph, model, vectors)
    name = runtime_index_name(model.id)
    assert name.startswith(RUNTIME_INDEX_PREFIX)
    db.execute(text(runtime_index_ddl(model.id, 8, concurrently=False)))
    stmt = nearest_embeddings(
        vectors[2], model_id=model.id, dimension=8, organization_id=graph.org.id, limit=2
    )
    plan = _explain(db, stmt)
    assert name in plan, plan
    first, _distance = db.execute(stmt).all()[0]
    assert first.id == rows[2].id


def test_runtime_index_ddl_is_only_built_from_typed_values() -> None:
    model_id, org_id = uuid.uuid4(), uuid.uuid4()
    ddl = runtime_index_ddl(model_id, 768, organization_id=org_id)
    assert ddl.startswith("CREATE INDEX CONCURRENTLY IF NOT EXISTS rt_emb_")
    assert "(embedding::vector(768)) vector_cosine_ops" in ddl
    assert f"organization_id = '{org_id}'" in ddl
    with pytest.raises(ValueError, match="2000"):
        runtime_index_ddl(model_id, 4096)
