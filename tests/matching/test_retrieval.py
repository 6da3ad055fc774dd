"""Tenant-safe retrieval against a real PostgreSQL + pgvector.

One database for the module (built like ``isolated_database``, from the migrated template):
the tenant indexes are made with ``CREATE INDEX CONCURRENTLY``, which needs committed rows
and autocommit, and building HNSW graphs once for every test would take minutes. Tenants:

- ``big`` (12k vectors): over the index threshold, so it gets its partial HNSW index;
- ``mid`` (2k): indexed on purpose, for the fallback and over-fetch tests, which change it;
- ``small`` (1k): exact.

Vectors are clustered (topic centres plus a low-dimensional spread, like sentence embeddings),
tenants mix shared topics with their own, and queries are held out (never inserted). The truth
is brute force in numpy over the tenant's own vectors only.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pytest
from sqlalchemy import Engine, event, text
from sqlalchemy.orm import Session

from are_workers.models.embeddings import EmbeddingEntity, nearest_embeddings
from are_workers.models.engine import make_engine
from are_workers.services.matching.retrieval import (
    INDEX_MIN_VECTORS,
    IndexState,
    Retrieval,
    Strategy,
    drop_tenant_index,
    ensure_tenant_index,
    retrieve,
    retrieve_for_job,
    sync_tenant_index,
    tenant_index_name,
    tenant_index_state,
)
from tests.conftest import TEMPLATE_DB, create_database, drop_database
from tests.factories import make_embedding_model, make_graph

pytestmark = pytest.mark.slow

DIMENSION = 384
K = 10
QUERIES = 60
SUBSPACE = 16


@dataclass
class Tenant:
    organization_id: uuid.UUID
    vectors: np.ndarray
    candidate_of_row: np.ndarray
    candidate_ids: list[uuid.UUID]
    entity_ids: list[uuid.UUID]
    chunk_index: np.ndarray
    queries: np.ndarray

    def truth(self, query: np.ndarray, *, group: bool) -> set[object]:
        similarity = self.vectors64 @ query.astype(np.float64)
        if not group:
            return {self.key(row) for row in np.argsort(-similarity)[:K]}
        starts = np.flatnonzero(np.r_[True, np.diff(self.candidate_of_row) != 0])
        best = np.maximum.reduceat(similarity, starts)  # a candidate's rows are contiguous
        return {self.candidate_ids[c] for c in np.argsort(-best)[:K]}

    @cached_property
    def vectors64(self) -> np.ndarray:
        return self.vectors.astype(np.float64)

    def key(self, row: int) -> tuple[uuid.UUID, int]:
        return self.entity_ids[self.candidate_of_row[row]], int(self.chunk_index[row])


@dataclass
class Corpus:
    engine: Engine
    model_id: uuid.UUID
    big: Tenant
    mid: Tenant
    small: Tenant


class _Topics:
    """Topic centres and subspaces; a point is centre + subspace offset + isotropic noise."""

    def __init__(self, rng: np.random.Generator, count: int) -> None:
        self.rng = rng
        self.centres = _unit(rng.standard_normal((count, DIMENSION)))
        self.bases = np.linalg.qr(rng.standard_normal((count, DIMENSION, SUBSPACE)))[0]

    def points(self, topics: np.ndarray, spread: float, noise: float) -> np.ndarray:
        z = self.rng.standard_normal((len(topics), SUBSPACE)) * spread / SUBSPACE**0.5
        result = self.centres[topics].copy()
        for topic in np.unique(topics):
            rows = topics == topic
            result[rows] += z[rows] @ self.bases[topic].T
        jitter = self.rng.standard_normal((len(topics), DIMENSION)) * noise / DIMENSION**0.5
        return result + jitter


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=-1, keepdims=True)


def _make_tenant(topics: _Topics, own: list[int], size: int) -> Tenant:
    rng = topics.rng
    chunks_per = rng.integers(1, 9, size=size)
    chunks_per = chunks_per[: int(np.searchsorted(np.cumsum(chunks_per), size)) + 1]
    chunks_per[-1] -= int(chunks_per.sum()) - size
    topic_of = rng.choice(own, size=len(chunks_per))
    centre_of = topics.points(topic_of, spread=0.7, noise=0.0) - topics.centres[topic_of]
    candidate_of_row = np.repeat(np.arange(len(chunks_per)), chunks_per)
    chunks = topics.points(topic_of[candidate_of_row], spread=0.35, noise=0.25)
    starts = np.cumsum(chunks_per) - chunks_per
    return Tenant(
        organization_id=uuid.uuid4(),
        vectors=_unit(chunks + centre_of[candidate_of_row]).astype(np.float32),
        candidate_of_row=candidate_of_row,
        candidate_ids=[uuid.uuid4() for _ in chunks_per],
        entity_ids=[uuid.uuid4() for _ in chunks_per],
        chunk_index=np.arange(size) - np.repeat(starts, chunks_per),
        queries=_unit(topics.points(rng.choice(own, size=QUERIES), 0.7, 0.25)).astype(np.float32),
    )


def _copy(engine: Engine, model_id: uuid.UUID, tenants: list[Tenant]) -> None:
    """COPY the tenants in (binary vectors); the shared HNSW index is rebuilt after the load."""
    raw = engine.raw_connection()
    try:
        pg = raw.driver_connection
        assert pg is not None
        pg.execute(
            "INSERT INTO embedding_models (id, name, version, dimension, status) "
            "VALUES (%s, 'test-retrieval', %s, %s, 'active')",
            (model_id, model_id.hex, DIMENSION),
        )
        for tenant in tenants:
            pg.execute(
                "INSERT INTO organizations (id, name, slug) VALUES (%s, 'Org', %s)",
                (tenant.organization_id, tenant.organization_id.hex),
            )
        with pg.cursor().copy("COPY candidates (organization_id, id, full_name) FROM STDIN") as cp:
            for tenant in tenants:
                for candidate_id in tenant.candidate_ids:
                    cp.write_row((tenant.organization_id, candidate_id, "Jane Doe"))
        pg.execute("DROP INDEX ix_embeddings_hnsw_384")
        with pg.cursor().copy(
            "COPY embeddings (organization_id, entity_type, entity_id, chunk_index, "
            "embedding_model_id, dimension, candidate_id, content_hash, embedding) "
            "FROM STDIN (FORMAT BINARY)"
        ) as cp:
            types = ["uuid", "text", "uuid", "int4", "uuid", "int2", "uuid", "text", "bytea"]
            cp.set_types(types)
            for tenant in tenants:
                for row, vector in enumerate(tenant.vectors):
                    candidate = tenant.candidate_of_row[row]
                    cp.write_row(
                        (
                            tenant.organization_id,
                            "resume_chunk",
                            tenant.entity_ids[candidate],
                            int(tenant.chunk_index[row]),
                            model_id,
                            DIMENSION,
                            tenant.candidate_ids[candidate],
                            f"{row:064x}",
                            struct.pack(">HH", DIMENSION, 0) + vector.astype(">f4").tobytes(),
                        )
                    )
        pg.execute("SET maintenance_work_mem = '512MB'")
        pg.execute(
            "CREATE INDEX ix_embeddings_hnsw_384 ON embeddings USING hnsw "
            "((embedding::vector(384)) vector_cosine_ops) WHERE dimension = 384"
        )
        raw.commit()
    finally:
        raw.close()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE embeddings"))


@pytest.fixture(scope="module")
def corpus(server_url: str, template_database_url: str) -> Iterator[Corpus]:
    name = f"are_rt_{uuid.uuid4().hex[:12]}"
    url = create_database(server_url, name, template=TEMPLATE_DB)
    engine = make_engine(url, pool_size=2, application_name="are-tests-retrieval")
    try:
        topics = _Topics(np.random.default_rng(20261124), 40)
        shared = list(range(10))  # every tenant has some of these, and topics of its own
        big = _make_tenant(topics, [*shared, *range(10, 25)], 12_000)
        mid = _make_tenant(topics, [*shared[:5], *range(25, 32)], 2_000)
        small = _make_tenant(topics, [*shared[5:], *range(32, 40)], 1_000)
        model_id = uuid.uuid4()
        _copy(engine, model_id, [big, mid, small])
        assert sync_tenant_index(engine, big.organization_id, model_id) is IndexState.VALID
        assert sync_tenant_index(engine, small.organization_id, model_id) is IndexState.MISSING
        ensure_tenant_index(engine, mid.organization_id, model_id, DIMENSION)
        yield Corpus(engine, model_id, big, mid, small)
    finally:
        engine.dispose()
        drop_database(server_url, name)


def _retrieve(corpus: Corpus, tenant: Tenant, query: np.ndarray, **options: object) -> Retrieval:
    with corpus.engine.connect() as conn:
        return retrieve(
            conn,
            organization_id=tenant.organization_id,
            model_id=corpus.model_id,
            query_vector=query.tolist(),
            k=K,
            **options,  # type: ignore[arg-type]
        )


def _found(result: Retrieval, *, group: bool) -> set[object]:
    if group:
        return {hit.candidate_id for hit in result.hits}
    return {(hit.entity_id, hit.chunk_index) for hit in result.hits}


def _recall(corpus: Corpus, tenant: Tenant, *, group: bool, expected: Strategy) -> float:
    hits = 0
    for query in tenant.queries:
        result = _retrieve(corpus, tenant, query, group_by_candidate=group)
        assert result.strategy is expected, result.reason
        assert len(result.hits) == K
        hits += len(_found(result, group=group) & tenant.truth(query, group=group))
    return hits / (K * len(tenant.queries))


# --- recall --------------------------------------------------------------------------------


@pytest.mark.parametrize("group", [True, False], ids=["candidates", "chunks"])
def test_big_tenant_uses_its_index_with_recall_of_exact_search(corpus: Corpus, group: bool) -> None:
    assert len(corpus.big.vectors) >= INDEX_MIN_VECTORS
    assert _recall(corpus, corpus.big, group=group, expected=Strategy.TENANT_HNSW) >= 0.99


@pytest.mark.parametrize("group", [True, False], ids=["candidates", "chunks"])
def test_small_tenant_is_searched_exactly(corpus: Corpus, group: bool) -> None:
    assert _recall(corpus, corpus.small, group=group, expected=Strategy.EXACT) >= 0.99


def test_naive_shared_index_with_a_tenant_filter_loses_results(corpus: Corpus) -> None:
    """The problem this module exists for: the shared index walks ef_search (40) rows of all
    tenants, then the tenant filter drops most of them."""
    small, hits, short = corpus.small, 0, 0
    with Session(corpus.engine) as session:
        for query in small.queries:
            stmt = nearest_embeddings(
                query.tolist(),
                model_id=corpus.model_id,
                dimension=DIMENSION,
                organization_id=small.organization_id,
                limit=K,
            )
            rows = session.execute(stmt).all()
            short += len(rows) < K
            found = {(row.Embedding.entity_id, row.Embedding.chunk_index) for row in rows}
            hits += len(found & small.truth(query, group=False))
    naive = hits / (K * QUERIES)
    ours = _recall(corpus, small, group=False, expected=Strategy.EXACT)
    assert naive < 0.9, naive
    assert short > 0  # it even returns fewer than K rows
    assert ours >= 0.99


# --- tenant isolation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("searched", "other"), [("small", "big"), ("mid", "big"), ("big", "small")]
)
def test_results_never_cross_tenants_even_when_another_tenants_vectors_are_closer(
    corpus: Corpus, searched: str, other: str
) -> None:
    tenant, neighbour = getattr(corpus, searched), getattr(corpus, other)
    own = set(tenant.candidate_ids)
    queries = neighbour.vectors[:: max(1, len(neighbour.vectors) // 20)][:20]  # distance 0 there
    for query in queries:
        for group in (True, False):
            result = _retrieve(corpus, tenant, query, group_by_candidate=group)
            assert len(result.hits) == K
            assert {hit.candidate_id for hit in result.hits} <= own
    with corpus.engine.connect() as conn:
        owners = conn.execute(
            text(
                "SELECT DISTINCT organization_id FROM embeddings "
                "WHERE (entity_id, chunk_index) IN (SELECT unnest(CAST(:e AS uuid[])), "
                "unnest(CAST(:c AS int[])))"
            ),
            {"e": [h.entity_id for h in result.hits], "c": [h.chunk_index for h in result.hits]},
        ).scalars()
        assert set(owners) == {tenant.organization_id}


def test_every_statement_names_the_tenant_and_the_big_tenant_plan_uses_its_index(
    corpus: Corpus,
) -> None:
    big, small = corpus.big, corpus.small
    statements: list[tuple[str, object]] = []

    def capture(_conn, _cursor, statement, parameters, _context, _many):  # type: ignore[no-untyped-def]
        statements.append((statement, parameters))

    event.listen(corpus.engine, "before_cursor_execute", capture)
    try:
        hnsw = _retrieve(corpus, big, big.queries[0])
        exact = _retrieve(corpus, small, small.queries[0])
    finally:
        event.remove(corpus.engine, "before_cursor_execute", capture)
    assert (hnsw.strategy, exact.strategy) == (Strategy.TENANT_HNSW, Strategy.EXACT)
    searches = [(s, p) for s, p in statements if "FROM embeddings" in s]
    assert len(searches) == 2
    (big_sql, big_params), (small_sql, small_params) = searches
    assert f"organization_id = '{big.organization_id}'" in big_sql
    assert f"organization_id = '{small.organization_id}'" in small_sql
    with corpus.engine.connect() as conn:
        big_plan = "\n".join(conn.exec_driver_sql(f"EXPLAIN {big_sql}", big_params).scalars())  # type: ignore[arg-type]
        small_plan = "\n".join(
            conn.exec_driver_sql(f"EXPLAIN {small_sql}", small_params).scalars()  # type: ignore[arg-type]
        )
    assert tenant_index_name(big.organization_id, corpus.model_id) in big_plan, big_plan
    assert "ix_embeddings_hnsw_384" not in big_plan
    assert "rt_emb_" not in small_plan and "hnsw" not in small_plan, small_plan  # exact


def test_job_of_another_tenant_is_not_found(db: Session) -> None:
    from are_workers.errors import NotFoundError
    from are_workers.models.embeddings import Embedding

    model = make_embedding_model(db, dimension=4)
    mine, theirs = make_graph(db), make_graph(db)
    rows = [
        (mine, EmbeddingEntity.JOB, mine.job.id, [1.0, 0.0, 0.0, 0.0]),
        (mine, EmbeddingEntity.RESUME_CHUNK, mine.parsed_resume.id, [0.9, 0.1, 0.0, 0.0]),
        (theirs, EmbeddingEntity.JOB, theirs.job.id, [1.0, 0.0, 0.0, 0.0]),
        (theirs, EmbeddingEntity.RESUME_CHUNK, theirs.parsed_resume.id, [1.0, 0.0, 0.0, 0.0]),
    ]
    for graph, entity, entity_id, vector in rows:
        is_job = entity is EmbeddingEntity.JOB
        db.add(
            Embedding(
                organization_id=graph.org.id,
                entity_type=entity,
                entity_id=entity_id,
                job_id=graph.job.id if is_job else None,
                candidate_id=None if is_job else graph.candidate.id,
                embedding_model_id=model.id,
                dimension=4,
                content_hash="0" * 64,
                embedding=vector,
            )
        )
    db.flush()
    result = retrieve_for_job(
        db, organization_id=mine.org.id, job_id=mine.job.id, model_id=model.id
    )
    assert [hit.candidate_id for hit in result.hits] == [mine.candidate.id]
    assert result.hits[0].similarity == pytest.approx(0.9 / (0.81 + 0.01) ** 0.5)
    with pytest.raises(NotFoundError):
        retrieve_for_job(db, organization_id=mine.org.id, job_id=theirs.job.id, model_id=model.id)


# --- fallbacks, over-fetch, index life cycle ------------------------------------------------


def test_missing_or_invalid_index_falls_back_to_exact(corpus: Corpus) -> None:
    mid, model_id = corpus.mid, corpus.model_id
    name = tenant_index_name(mid.organization_id, model_id)
    query = mid.queries[0]
    truth = mid.truth(query, group=True)
    assert _retrieve(corpus, mid, query).strategy is Strategy.TENANT_HNSW

    assert drop_tenant_index(corpus.engine, mid.organization_id, model_id)
    missing = _retrieve(corpus, mid, query)
    assert (missing.strategy, missing.reason) == (Strategy.EXACT, "tenant index missing")
    assert _found(missing, group=True) == truth

    assert ensure_tenant_index(corpus.engine, mid.organization_id, model_id, DIMENSION) is (
        IndexState.VALID
    )
    with corpus.engine.begin() as conn:
        if not conn.execute(
            text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        ).scalar():
            pytest.skip("marking an index invalid needs a superuser")
        # What an interrupted CREATE INDEX CONCURRENTLY leaves behind.
        conn.execute(
            text("UPDATE pg_index SET indisvalid = false WHERE indexrelid = to_regclass(:n)"),
            {"n": name},
        )
    invalid = _retrieve(corpus, mid, query)
    assert (invalid.strategy, invalid.reason) == (Strategy.EXACT, "tenant index building")
    assert _found(invalid, group=True) == truth
    with corpus.engine.connect() as conn:
        assert tenant_index_state(conn, mid.organization_id, model_id) is IndexState.BUILDING
    # Nobody holds the build lock, so it is a leftover: dropped and rebuilt.
    assert ensure_tenant_index(corpus.engine, mid.organization_id, model_id, DIMENSION) is (
        IndexState.VALID
    )
    assert _retrieve(corpus, mid, query).strategy is Strategy.TENANT_HNSW


def test_ensure_is_idempotent_and_refuses_a_transaction(corpus: Corpus) -> None:
    big = corpus.big
    assert ensure_tenant_index(corpus.engine, big.organization_id, corpus.model_id, DIMENSION) is (
        IndexState.VALID
    )
    with corpus.engine.connect() as conn, pytest.raises(ValueError, match="AUTOCOMMIT"):
        ensure_tenant_index(conn, big.organization_id, corpus.model_id, DIMENSION)


def test_sync_builds_keeps_and_drops_with_hysteresis(corpus: Corpus) -> None:
    mid, model_id, engine = corpus.mid, corpus.model_id, corpus.engine
    vectors = len(mid.vectors)
    try:
        built = sync_tenant_index(engine, mid.organization_id, model_id, min_vectors=vectors)
        assert built is IndexState.VALID
        # Between half the threshold and the threshold: the index stays.
        kept = sync_tenant_index(engine, mid.organization_id, model_id, min_vectors=vectors + 1)
        assert kept is IndexState.VALID
        dropped = sync_tenant_index(
            engine, mid.organization_id, model_id, min_vectors=2 * vectors + 2
        )
        assert dropped is IndexState.MISSING
        assert _retrieve(corpus, mid, mid.queries[0]).strategy is Strategy.EXACT
    finally:
        ensure_tenant_index(engine, mid.organization_id, model_id, DIMENSION)


def test_candidates_with_many_close_chunks_grow_the_over_fetch(corpus: Corpus) -> None:
    """Two candidates own the 120 chunks nearest the query: the first fetch (k x 4 = 40
    chunks) finds only them, so the HNSW plan must grow until k distinct candidates."""
    mid, model_id = corpus.mid, corpus.model_id
    rng = np.random.default_rng(5)
    query = mid.queries[1]
    crowd = [uuid.uuid4(), uuid.uuid4()]
    with corpus.engine.begin() as conn:
        for candidate_id in crowd:
            conn.execute(
                text(
                    "INSERT INTO candidates (organization_id, id, full_name) VALUES (:o, :c, 'X')"
                ),
                {"o": mid.organization_id, "c": candidate_id},
            )
            entity_id = uuid.uuid4()
            conn.execute(
                text(
                    "INSERT INTO embeddings (organization_id, entity_type, entity_id, chunk_index,"
                    " embedding_model_id, dimension, candidate_id, content_hash, embedding) "
                    "VALUES (:o, 'resume_chunk', :e, :i, :m, 384, :c, :h, CAST(:v AS vector))"
                ),
                [
                    {
                        "o": mid.organization_id,
                        "e": entity_id,
                        "i": i,
                        "m": model_id,
                        "c": candidate_id,
                        "h": f"{i:064x}",
                        "v": str(_unit(query + rng.standard_normal(DIMENSION) * 0.002).tolist()),
                    }
                    for i in range(60)
                ],
            )
    try:
        result = _retrieve(corpus, mid, query)
        assert result.strategy is Strategy.TENANT_HNSW
        assert result.rounds >= 2
        candidates = [hit.candidate_id for hit in result.hits]
        assert len(set(candidates)) == K
        assert set(candidates[:2]) == set(crowd)
        exact = _retrieve(corpus, mid, query, exact=True)
        assert candidates == [hit.candidate_id for hit in exact.hits]
    finally:
        with corpus.engine.begin() as conn:
            conn.execute(text("DELETE FROM candidates WHERE id = ANY(:ids)"), {"ids": crowd})


def test_ef_search_is_restored_after_an_hnsw_search(corpus: Corpus) -> None:
    big = corpus.big
    with corpus.engine.connect() as conn:
        conn.execute(text("SET hnsw.ef_search = 57"))
        result = retrieve(
            conn,
            organization_id=big.organization_id,
            model_id=corpus.model_id,
            query_vector=big.queries[0].tolist(),
        )
        assert result.strategy is Strategy.TENANT_HNSW
        assert conn.execute(text("SHOW hnsw.ef_search")).scalar() == "57"


def test_bad_input_is_refused(corpus: Corpus) -> None:
    small = corpus.small
    with pytest.raises(ValueError, match="dimensions"):
        _retrieve(corpus, small, small.queries[0][:100])
    with pytest.raises(ValueError, match="NaN"):
        _retrieve(corpus, small, np.full(DIMENSION, np.nan))
    with pytest.raises(ValueError, match="grouped"):
        _retrieve(corpus, small, small.queries[0], entity_types=[EmbeddingEntity.JOB])
