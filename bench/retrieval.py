"""Tenant-safe retrieval vs exact search inside the tenant: recall@10 and latency.

Data: tenants of skewed sizes (default 100k, 100k, 20k, 5k, 1k vectors of 384 dimensions),
each a mix of topics shared by all tenants and topics of its own (so tenants differ in
content). A topic is a centre plus a 24-dimensional subspace; a candidate is a point of it,
and their resume chunks (1-8 each) scatter around that point, plus isotropic noise: clustered,
low intrinsic dimension, like sentence embeddings. Candidates of all tenants are inserted in
random order (a production heap interleaves tenants). Queries are held out: new points of the
tenant's topics, never inserted.

Truth: brute force in numpy (float64) over the tenant's own vectors, at the level asked for:
the top-10 candidates by their best chunk (what the resume pipeline uses) and the top-10
chunks. Measured, per tenant: ``retrieve`` as the pipeline calls it (exact for small tenants,
the per-tenant partial HNSW index for large ones), ``retrieve(exact=True)`` on the large
ones for contrast, and once, before the tenant indexes exist, the naive query (the shared
``ix_embeddings_hnsw_384`` plus a tenant filter, pgvector's default ef_search 40).
Latency is the whole ``retrieve`` call as a worker sees it (catalog check, settings, query,
grouping), on one warm connection. Each run covers every query of every tenant; figures are
medians over --runs runs.

    python bench/retrieval.py                  # build the database, then measure
    python bench/retrieval.py --reuse          # measure again on the database already built
"""

from __future__ import annotations

import argparse
import os
import statistics
import struct
import time
import uuid
from dataclasses import dataclass, field

import numpy as np
import psycopg
from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from are_workers.models.embeddings import nearest_embeddings
from are_workers.models.engine import make_engine
from are_workers.services.matching.retrieval import (
    EF_SEARCH,
    HNSW_EF_CONSTRUCTION,
    HNSW_M,
    INDEX_MIN_VECTORS,
    Strategy,
    ensure_tenant_index,
    retrieve,
)

DATABASE = "are_bench_retrieval"
DIMENSION = 384
SUBSPACE = 24
SHARED_TOPICS = 48
OWN_TOPICS = 16
K = 10


@dataclass
class Tenant:
    name: str
    organization_id: uuid.UUID
    vectors: np.ndarray  # (n, d) float32, unit length
    candidate_of_row: np.ndarray  # (n,) candidate number within the tenant
    candidate_ids: list[uuid.UUID]
    entity_ids: list[uuid.UUID]  # one "parsed resume" per candidate
    chunk_index: np.ndarray
    queries: np.ndarray
    truth_candidates: list[set[uuid.UUID]] = field(default_factory=list)
    truth_chunks: list[set[tuple[uuid.UUID, int]]] = field(default_factory=list)


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=-1, keepdims=True)


def _uuid(rng: np.random.Generator) -> uuid.UUID:
    return uuid.UUID(bytes=rng.bytes(16), version=4)


def make_tenants(sizes: list[int], queries: int, seed: int) -> list[Tenant]:
    """Deterministic for a seed, so --reuse can rebuild the truth without reloading; the
    queries come from a generator of their own, so the data do not depend on --queries."""
    rng = np.random.default_rng(seed)
    query_rng = np.random.default_rng(seed + 1)
    total_topics = SHARED_TOPICS + OWN_TOPICS * len(sizes)
    centres = _unit(rng.standard_normal((total_topics, DIMENSION))).astype(np.float32)
    bases = np.linalg.qr(rng.standard_normal((total_topics, DIMENSION, SUBSPACE)))[0]
    bases = bases.astype(np.float32)

    def points(
        topics: np.ndarray, spread: float, noise: float, rng: np.random.Generator
    ) -> np.ndarray:
        """Topic centre + an offset in the topic's subspace + isotropic noise."""
        z = rng.standard_normal((len(topics), SUBSPACE), dtype=np.float32)
        z *= spread / SUBSPACE**0.5
        result = centres[topics].copy()
        for topic in np.unique(topics):
            rows = topics == topic
            result[rows] += z[rows] @ bases[topic].T
        jitter = rng.standard_normal((len(topics), DIMENSION), dtype=np.float32)
        return result + jitter * (noise / DIMENSION**0.5)

    tenants = []
    for number, size in enumerate(sizes):
        shared = rng.choice(SHARED_TOPICS, size=24, replace=False)
        own = SHARED_TOPICS + OWN_TOPICS * number + np.arange(OWN_TOPICS)
        topics = np.concatenate([shared, own])
        weights = 1.0 / np.arange(1, len(topics) + 1) ** 0.8  # skewed topic popularity
        weights = rng.permutation(weights / weights.sum())
        chunks_per = rng.integers(1, 9, size=size)  # more than enough candidates
        chunks_per = chunks_per[: int(np.searchsorted(np.cumsum(chunks_per), size)) + 1]
        chunks_per[-1] -= int(chunks_per.sum()) - size
        candidates = len(chunks_per)
        topic_of = rng.choice(topics, size=candidates, p=weights)
        centre_of = points(topic_of, spread=0.7, noise=0.0, rng=rng)
        candidate_of_row = np.repeat(np.arange(candidates), chunks_per)
        # A chunk: its candidate's point, moved within the topic's subspace, plus noise.
        chunks = points(topic_of[candidate_of_row], spread=0.35, noise=0.25, rng=rng)
        chunks += centre_of[candidate_of_row] - centres[topic_of[candidate_of_row]]
        starts = np.cumsum(chunks_per) - chunks_per
        query_topics = query_rng.choice(topics, size=queries, p=weights)
        held_out = points(query_topics, spread=0.7, noise=0.25, rng=query_rng)
        tenants.append(
            Tenant(
                name=f"t{number}-{size // 1000}k" if size >= 1000 else f"t{number}-{size}",
                organization_id=_uuid(rng),
                vectors=_unit(chunks),
                candidate_of_row=candidate_of_row,
                candidate_ids=[_uuid(rng) for _ in range(candidates)],
                entity_ids=[_uuid(rng) for _ in range(candidates)],
                chunk_index=np.arange(size) - np.repeat(starts, chunks_per),
                queries=_unit(held_out),
            )
        )
    return tenants


def compute_truth(tenant: Tenant) -> None:
    """Exact top-K inside the tenant, in float64: chunks, and candidates by their best chunk."""
    similarity = tenant.queries.astype(np.float64) @ tenant.vectors.astype(np.float64).T
    starts = np.flatnonzero(np.r_[True, np.diff(tenant.candidate_of_row) != 0])
    best_per_candidate = np.maximum.reduceat(similarity, starts, axis=1)
    for row in range(len(tenant.queries)):
        top_chunks = np.argsort(-similarity[row])[:K]
        tenant.truth_chunks.append(
            {
                (tenant.entity_ids[tenant.candidate_of_row[i]], int(tenant.chunk_index[i]))
                for i in top_chunks
            }
        )
        top_candidates = np.argsort(-best_per_candidate[row])[:K]
        tenant.truth_candidates.append({tenant.candidate_ids[c] for c in top_candidates})


# --- database ------------------------------------------------------------------------------


def prepare_database(server_url: str) -> str:
    from alembic import command
    from alembic.config import Config

    url = make_url(server_url)
    with psycopg.connect(
        dbname="postgres", host=url.query["host"], user="postgres", autocommit=True
    ) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DATABASE}")
    bench_url = url.set(database=DATABASE).render_as_string(hide_password=False)
    config = Config(os.path.join(os.path.dirname(__file__), "..", "alembic.ini"))
    config.attributes["database_url"] = bench_url
    command.upgrade(config, "head")
    return bench_url


def _vector_bytes(vector: np.ndarray) -> bytes:
    """pgvector's binary wire format: dimension, unused, big-endian float4s."""
    return struct.pack(">HH", len(vector), 0) + vector.astype(">f4").tobytes()


def load(url: str, tenants: list[Tenant], model_id: uuid.UUID, seed: int) -> None:
    """COPY organizations, candidates and embeddings; the shared HNSW index is rebuilt after
    the load (as a restore would), not maintained row by row."""
    sa_url = make_url(url)
    with psycopg.connect(dbname=DATABASE, host=sa_url.query["host"], user="postgres") as conn:
        conn.execute(
            "INSERT INTO embedding_models (id, name, version, dimension, status, is_default) "
            "VALUES (%s, 'bench-minilm', '1', %s, 'active', true)",
            (model_id, DIMENSION),
        )
        for tenant in tenants:
            conn.execute(
                "INSERT INTO organizations (id, name, slug) VALUES (%s, %s, %s)",
                (tenant.organization_id, tenant.name, f"bench-{tenant.organization_id.hex[:12]}"),
            )
        with conn.cursor().copy(
            "COPY candidates (organization_id, id, full_name) FROM STDIN"
        ) as copy:
            for tenant in tenants:
                for number, candidate_id in enumerate(tenant.candidate_ids):
                    copy.write_row((tenant.organization_id, candidate_id, f"Candidate {number}"))
        conn.execute("DROP INDEX ix_embeddings_hnsw_384")
        order = [(t, c) for t in range(len(tenants)) for c in range(len(tenants[t].candidate_ids))]
        order = [order[i] for i in np.random.default_rng(seed + 1).permutation(len(order))]
        rows_of = []
        for tenant in tenants:
            starts = np.flatnonzero(np.r_[True, np.diff(tenant.candidate_of_row) != 0])
            rows_of.append(np.r_[starts, len(tenant.vectors)])
        with conn.cursor().copy(
            "COPY embeddings (organization_id, entity_type, entity_id, chunk_index, "
            "embedding_model_id, dimension, candidate_id, content_hash, embedding) "
            "FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(
                ["uuid", "text", "uuid", "int4", "uuid", "int2", "uuid", "text", "bytea"]
            )
            for t, c in order:
                tenant = tenants[t]
                for row in range(rows_of[t][c], rows_of[t][c + 1]):
                    copy.write_row(
                        (
                            tenant.organization_id,
                            "resume_chunk",
                            tenant.entity_ids[c],
                            int(tenant.chunk_index[row]),
                            model_id,
                            DIMENSION,
                            tenant.candidate_ids[c],
                            f"{row:064x}",
                            _vector_bytes(tenant.vectors[row]),
                        )
                    )
        conn.commit()
        conn.autocommit = True
        conn.execute("SET maintenance_work_mem = '1GB'")
        started = time.perf_counter()
        conn.execute(
            "CREATE INDEX ix_embeddings_hnsw_384 ON embeddings USING hnsw "
            "((embedding::vector(384)) vector_cosine_ops) WHERE dimension = 384"
        )
        print(
            f"shared ix_embeddings_hnsw_384 over {sum(len(t.vectors) for t in tenants):,} "
            f"vectors built in {time.perf_counter() - started:.1f} s"
        )
        conn.execute("VACUUM ANALYZE embeddings")


def naive_recall(conn: Connection, tenant: Tenant, model_id: uuid.UUID) -> float:
    """The query everybody writes first: the shared index, a tenant filter, LIMIT 10."""
    hits = 0
    for row, query in enumerate(tenant.queries):
        stmt = nearest_embeddings(
            query.tolist(),
            model_id=model_id,
            dimension=DIMENSION,
            organization_id=tenant.organization_id,
            limit=K,
        )
        with Session(bind=conn) as session:
            found = {(e.entity_id, e.chunk_index) for e, _ in session.execute(stmt).all()}
        hits += len(found & tenant.truth_chunks[row])
    return hits / (K * len(tenant.queries))


def measure(
    conn: Connection,
    tenant: Tenant,
    model_id: uuid.UUID,
    *,
    group: bool,
    exact: bool = False,
    ef_search: int = EF_SEARCH,
    queries: int | None = None,
) -> tuple[float, list[float], set[Strategy]]:
    """Recall@K vs the truth, per-query latencies (ms), strategies used."""
    truth = tenant.truth_candidates if group else tenant.truth_chunks
    hits, latencies, strategies = 0, [], set()
    chosen = tenant.queries[:queries]
    for row, query in enumerate(chosen):
        vector = query.tolist()
        started = time.perf_counter()
        result = retrieve(
            conn,
            organization_id=tenant.organization_id,
            model_id=model_id,
            query_vector=vector,
            k=K,
            group_by_candidate=group,
            exact=exact,
            ef_search=ef_search,
        )
        latencies.append((time.perf_counter() - started) * 1000)
        conn.rollback()
        strategies.add(result.strategy)
        if group:
            found = {hit.candidate_id for hit in result.hits}
        else:
            found = {(hit.entity_id, hit.chunk_index) for hit in result.hits}
        hits += len(found & truth[row])
    return hits / (K * len(chosen)), latencies, strategies


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,100000,20000,5000,1000")
    parser.add_argument("--queries", type=int, default=100, help="held-out queries per tenant")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=20261124)
    parser.add_argument("--ef-search", type=int, default=EF_SEARCH)
    parser.add_argument(
        "--exact-queries", type=int, default=20, help="queries of the exact contrast (1 run)"
    )
    parser.add_argument("--reuse", action="store_true", help="skip the load and index builds")
    args = parser.parse_args()
    os.environ.setdefault("ARE_LOG_LEVEL", "WARNING")
    sizes = [int(s) for s in args.sizes.split(",")]
    model_id = uuid.UUID(int=args.seed, version=4)

    started = time.perf_counter()
    tenants = make_tenants(sizes, args.queries, args.seed)
    for tenant in tenants:
        compute_truth(tenant)
    print(
        f"generated {sum(sizes):,} vectors in {len(sizes)} tenants, "
        f"{args.queries} held-out queries each, truth in {time.perf_counter() - started:.1f} s"
    )

    from are_workers.config import get_settings
    from are_workers.embedded import ensure_database_url

    server_url = ensure_database_url(get_settings())
    if args.reuse:
        url = make_url(server_url).set(database=DATABASE).render_as_string(hide_password=False)
    else:
        url = prepare_database(server_url)
        started = time.perf_counter()
        load(url, tenants, model_id, args.seed)
        print(f"loaded (COPY + shared index + ANALYZE) in {time.perf_counter() - started:.1f} s")
    engine = make_engine(url, pool_size=1, application_name="bench-retrieval")

    with engine.connect() as conn:
        shown = [t for t in tenants if not args.reuse]
        if shown:
            print("\nnaive (shared index + tenant filter, ef_search 40), recall@10 of chunks:")
        for tenant in shown:
            print(f"  {tenant.name:>8}: {naive_recall(conn, tenant, model_id):.3f}")
            conn.rollback()

    if not args.reuse:
        print(
            f"\ntenant indexes (tenants with >= {INDEX_MIN_VECTORS:,} vectors; CREATE INDEX "
            f"CONCURRENTLY, m {HNSW_M}, ef_construction {HNSW_EF_CONSTRUCTION}, "
            "maintenance_work_mem 1GB):"
        )
        for tenant in tenants:
            if len(tenant.vectors) >= INDEX_MIN_VECTORS:
                started = time.perf_counter()
                state = ensure_tenant_index(engine, tenant.organization_id, model_id, DIMENSION)
                print(f"  {tenant.name:>8}: {state.value} in {time.perf_counter() - started:.1f} s")
        with engine.connect() as conn:
            conn.execute(text("ANALYZE embeddings"))
            conn.commit()

    results: dict[tuple[str, bool], list[tuple[float, float, float]]] = {}
    strategies: dict[tuple[str, bool], set[Strategy]] = {}
    with engine.connect() as conn:
        for tenant in tenants:  # warm-up: caches, prepared statements
            measure(conn, tenant, model_id, group=True, ef_search=args.ef_search)
        for _run in range(args.runs):
            for tenant in tenants:
                for group in (True, False):
                    recall, latencies, used = measure(
                        conn, tenant, model_id, group=group, ef_search=args.ef_search
                    )
                    key = (tenant.name, group)
                    results.setdefault(key, []).append(
                        (recall, percentile(latencies, 0.5), percentile(latencies, 0.95))
                    )
                    strategies.setdefault(key, set()).update(used)
        contrast = {}
        for tenant in tenants:
            if len(tenant.vectors) >= INDEX_MIN_VECTORS:
                recall, latencies, _ = measure(
                    conn, tenant, model_id, group=True, exact=True, queries=args.exact_queries
                )
                contrast[tenant.name] = (recall, latencies)

    print(
        f"\nrecall@{K} vs exact inside the tenant, latency of retrieve() in ms; medians of "
        f"{args.runs} runs x {args.queries} queries (ef_search {args.ef_search})"
    )
    print(
        f"{'tenant':>8} {'vectors':>8} {'level':>9} {'strategy':>12} "
        f"{'recall':>7} {'p50':>7} {'p95':>7} {'p95 max':>8}"
    )
    for tenant in tenants:
        for group in (True, False):
            runs = results[(tenant.name, group)]
            used = "+".join(sorted(s.value for s in strategies[(tenant.name, group)]))
            print(
                f"{tenant.name:>8} {len(tenant.vectors):>8,} "
                f"{'candidate' if group else 'chunk':>9} {used:>12} "
                f"{statistics.median(r[0] for r in runs):>7.4f} "
                f"{statistics.median(r[1] for r in runs):>7.2f} "
                f"{statistics.median(r[2] for r in runs):>7.2f} "
                f"{max(r[2] for r in runs):>8.2f}"
            )
    all_p95 = [statistics.median(r[2] for r in runs) for runs in results.values()]
    all_recall = [statistics.median(r[0] for r in runs) for runs in results.values()]
    print(f"worst tenant: recall@{K} {min(all_recall):.4f}, p95 {max(all_p95):.2f} ms")
    if contrast:
        print(
            f"\nfor contrast, exact=True on the indexed tenants ({args.exact_queries} queries, "
            "candidate level, 1 run):"
        )
        for name, (recall, latencies) in contrast.items():
            print(
                f"  {name:>8}: recall {recall:.4f}, p50 {percentile(latencies, 0.5):.1f} ms, "
                f"p95 {percentile(latencies, 0.95):.1f} ms"
            )


if __name__ == "__main__":
    main()
