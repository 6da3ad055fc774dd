"""Tenant-safe top-K retrieval: the candidates (or chunks) nearest a query vector, inside one
organization, for one embedding model.

Why not the obvious query. pgvector 0.6 applies ``WHERE`` *after* the HNSW graph walk, and
the walk returns at most ``hnsw.ef_search`` rows, so a tenant filter on the shared index
silently loses results (recall@10 was 0.03 for a tenant holding 1/20 of 200k vectors). Two
plans never lose any:

- **exact**: the distance is computed on the untyped ``embedding`` column, which no HNSW index
  covers (they are all on a ``::vector(N)`` cast), so PostgreSQL can only read the tenant's
  rows through the btree on ``organization_id`` and rank every one of them by true distance.
  Recall is 1.0 by construction; the cost grows with the tenant, so it serves small tenants.
- **tenant HNSW**: a partial HNSW index per (model, organization), ``rt_emb_<model>_<org>``
  (:func:`ensure_tenant_index`), whose predicate is the query's own ``embedding_model_id =
  ... AND organization_id = ...``. Every row the graph walk meets belongs to the tenant, so
  only ``entity_type`` is filtered afterwards, and the result is *verified*: fewer rows than
  asked for means something was filtered away (other entity types, dead tuples), and the
  query is re-run exactly.

Which plan: tenant HNSW exactly when that tenant's index exists and is valid, checked in the
catalog on every call (one round trip), so a dropped or half-built index is never relied on.
*Whether* a tenant has an index is decided off the request path by :func:`sync_tenant_index`
(a tenant with ``INDEX_MIN_VECTORS`` vectors gets one; below half of that it is dropped):
building takes minutes, and thousands of partial indexes would tax every INSERT and every
plan on ``embeddings``, so small tenants stay on the exact plan.

Tenant isolation is absolute. The organization is a literal in every statement's ``WHERE``
(a literal rather than a parameter, so a generic plan can still prove the partial index
applies), and every returned row's ``organization_id`` is checked again before it leaves
this module (:class:`TenantIsolationError`).

Candidates, not chunks. A resume is many chunks, and a candidate scores by their best one.
The exact plan groups in SQL (``DISTINCT ON (candidate_id)``) in the same single scan. The
HNSW plan fetches ``k * CHUNKS_PER_CANDIDATE`` chunks, keeps each candidate's first (best),
and grows the fetch (x ``GROWTH``, up to pgvector's ``ef_search`` ceiling of 1000) until
``k`` distinct candidates are found; past the ceiling it falls back to exact. Any candidate
missing from the first ``n`` chunks scores at most the ``n``-th chunk, so the first ``k``
distinct candidates of a correct chunk ranking are the correct top ``k``.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import structlog
from sqlalchemy import Connection, Engine, Row, select, text
from sqlalchemy.orm import Session

from are_workers.errors import AreWorkersError, NotFoundError
from are_workers.models.embeddings import (
    CANDIDATE_ENTITIES,
    MAX_INDEXED_DIMENSION,
    EmbeddingDistance,
    EmbeddingEntity,
    EmbeddingModel,
    EmbeddingModelStatus,
    runtime_index_ddl,
    runtime_index_name,
)

log = structlog.get_logger(__name__)

#: A tenant with this many vectors of a model gets its own HNSW index. Measured: the exact
#: plan costs 1-2 ms per 1,000 vectors of 384 dimensions (tenants interleaved in the heap, a
#: busy 2-core server), so this keeps it within the 15 ms budget (docs/benchmarks.md).
INDEX_MIN_VECTORS = 5_000
#: ``hnsw.ef_search`` of the tenant plan: the graph walk's breadth (pgvector's default is 40).
#: On clustered 100k-vector tenants, the walk's misses are whole queries whose topic the walk
#: never reaches (all 10 results wrong); 100 left 0-2 such queries in 100 depending on the
#: build, 200 at most 1, for ~15 % more latency (docs/benchmarks.md).
EF_SEARCH = 200
#: Graph degree and build breadth of tenant indexes: pgvector's defaults (16, 64) gave
#: recall@10 0.973-0.99 at ef_search 100; (24, 100) 0.984-0.999, for ~2x the build time.
HNSW_M = 24
HNSW_EF_CONSTRUCTION = 100
#: pgvector's ceiling for ``hnsw.ef_search``, hence for rows one HNSW scan can return.
MAX_EF_SEARCH = 1000
#: First over-fetch of the HNSW plan, in chunks per wanted candidate, and its growth factor.
CHUNKS_PER_CANDIDATE = 4
GROWTH = 4
#: ``maintenance_work_mem`` for index builds: an HNSW graph that does not fit is built
#: several times slower (100k x 384 dimensions needs ~200 MB).
BUILD_MEMORY = "1GB"
DEFAULT_ENTITY_TYPES: frozenset[EmbeddingEntity] = frozenset({EmbeddingEntity.RESUME_CHUNK})
#: First key of the two-key advisory locks serialising builds of one tenant index.
_BUILD_LOCK_SPACE = 0x52_54_49_58  # "RTIX"

_OPERATORS = {
    EmbeddingDistance.COSINE: "<=>",
    EmbeddingDistance.L2: "<->",
    EmbeddingDistance.INNER_PRODUCT: "<#>",
}

Executor = Session | Connection


class Strategy(StrEnum):
    EXACT = "exact"
    TENANT_HNSW = "tenant_hnsw"


class IndexState(StrEnum):
    MISSING = "missing"
    BUILDING = "building"  # in the catalog but not valid: being built, or a failed build
    VALID = "valid"


class TenantIsolationError(AreWorkersError):
    """A row of another organization reached retrieval's output: a bug, never served."""


@dataclass(frozen=True, slots=True)
class Hit:
    """One retrieved chunk; for candidate retrieval, that candidate's best chunk."""

    candidate_id: uuid.UUID | None
    entity_type: EmbeddingEntity
    entity_id: uuid.UUID
    chunk_index: int
    distance: float  # the model's distance (cosine: 1 - cos)
    similarity: float  # higher is closer: cosine similarity, inner product, or -L2


@dataclass(frozen=True, slots=True)
class Retrieval:
    """The hits, best first, and how they were found (for logs and tests)."""

    hits: list[Hit]
    strategy: Strategy
    reason: str
    index_name: str
    rounds: int  # queries run (the HNSW plan grows its over-fetch round by round)
    chunks_fetched: int  # rows read back from PostgreSQL, all rounds together


@dataclass(frozen=True, slots=True)
class _Model:
    dimension: int
    distance: EmbeddingDistance


#: Model id -> (dimension, distance). A model's dimension cannot change while it has
#: embeddings (the composite FK), and ids are never reused, so entries never go stale.
_MODELS: dict[uuid.UUID, _Model] = {}


# --- retrieval -----------------------------------------------------------------------------


def retrieve(
    db: Executor,
    *,
    organization_id: uuid.UUID,
    model_id: uuid.UUID,
    query_vector: Sequence[float],
    k: int = 10,
    entity_types: Collection[EmbeddingEntity] = DEFAULT_ENTITY_TYPES,
    group_by_candidate: bool = True,
    ef_search: int = EF_SEARCH,
    exact: bool = False,
) -> Retrieval:
    """The ``k`` candidates (``group_by_candidate``) or chunks of ``organization_id`` nearest
    ``query_vector`` by model ``model_id``, best first.

    Runs in the caller's transaction. ``hnsw.ef_search`` is set for the HNSW query only and
    restored after it. ``exact=True`` never uses an index: the reference answer (evaluation,
    audits), at the exact plan's cost.
    """
    if k < 1:
        raise ValueError("k must be at least 1")
    if not 1 <= ef_search <= MAX_EF_SEARCH:
        raise ValueError(f"ef_search must be within 1..{MAX_EF_SEARCH}")
    types = frozenset(EmbeddingEntity(value) for value in entity_types)
    if not types:
        raise ValueError("entity_types is empty")
    if group_by_candidate and not types <= CANDIDATE_ENTITIES:
        raise ValueError("only candidate entities can be grouped by candidate")
    model = _model(db, model_id)
    query = _Query(
        where=_tenant_predicate(organization_id, model_id, types),
        params={"q": _vector_literal(query_vector, model.dimension)},
        organization_id=organization_id,
        model=model,
        k=k,
        group=group_by_candidate,
    )
    index_name = runtime_index_name(model_id, organization_id)
    state, previous_ef = _catalog_check(db, index_name)
    if exact:
        reason = "exact requested"
    elif state is not IndexState.VALID:
        reason = f"tenant index {state.value}"
    elif model.dimension > MAX_INDEXED_DIMENSION or k > MAX_EF_SEARCH:
        reason = "beyond what an HNSW scan can return"
    else:
        found = _retrieve_hnsw(db, query, ef_search, previous_ef)
        if isinstance(found, tuple):
            hits, rounds, fetched = found
            return Retrieval(
                hits, Strategy.TENANT_HNSW, "tenant index", index_name, rounds, fetched
            )
        reason = found
        log.info("retrieval.fallback_to_exact", index=index_name, reason=reason)
    hits, fetched = _retrieve_exact(db, query)
    return Retrieval(hits, Strategy.EXACT, reason, index_name, 1, fetched)


def retrieve_for_job(
    db: Executor,
    *,
    organization_id: uuid.UUID,
    job_id: uuid.UUID,
    model_id: uuid.UUID,
    k: int = 10,
    **options: Any,
) -> Retrieval:
    """The top-``k`` candidates for a job, by the job's own vector.

    The job's vector is read *within* ``organization_id``: a job id of another tenant finds
    nothing (``NotFoundError``) rather than leaking its vector into this tenant's search.
    """
    stored = db.execute(
        text(
            "SELECT embedding::text FROM embeddings WHERE organization_id = :org "
            "AND job_id = :job AND entity_type = 'job' AND embedding_model_id = :model "
            "ORDER BY chunk_index LIMIT 1"
        ),
        {"org": organization_id, "job": job_id, "model": model_id},
    ).scalar_one_or_none()
    if stored is None:
        raise NotFoundError("This job has not been embedded yet.", code="job_not_embedded")
    return retrieve(
        db,
        organization_id=organization_id,
        model_id=model_id,
        query_vector=json.loads(stored),
        k=k,
        **options,
    )


@dataclass(frozen=True, slots=True)
class _Query:
    where: str
    params: dict[str, Any]
    organization_id: uuid.UUID
    model: _Model
    k: int
    group: bool

    def distance(self, *, indexed: bool) -> str:
        """The distance expression: on the indexed ``::vector(N)`` cast, or on the untyped
        column, which no HNSW index covers, so the plan cannot be an approximate one."""
        operator = _OPERATORS[self.model.distance]
        dim = self.model.dimension
        column = f"CAST(embedding AS vector({dim}))" if indexed else "embedding"
        return f"{column} {operator} CAST(:q AS vector({dim}))"

    def similarity(self, distance: float) -> float:
        if self.model.distance is EmbeddingDistance.COSINE:
            return 1.0 - distance
        return -distance  # <#> is the negative inner product; -L2 keeps "higher is closer"


_COLUMNS = "organization_id, candidate_id, entity_type, entity_id, chunk_index"


def _retrieve_hnsw(
    db: Executor, query: _Query, ef_search: int, previous_ef: str | None
) -> tuple[list[Hit], int, int] | str:
    """Hits, rounds and rows fetched through the tenant index; or why exact must answer."""
    limit = min(query.k * CHUNKS_PER_CANDIDATE if query.group else query.k, MAX_EF_SEARCH)
    rounds = fetched = 0
    outcome: tuple[list[Hit], int, int] | str
    while True:
        rounds += 1
        _set_ef_search(db, str(min(max(ef_search, limit), MAX_EF_SEARCH)))
        rows = db.execute(
            text(
                f"SELECT {_COLUMNS}, {query.distance(indexed=True)} AS distance "  # noqa: S608 - typed literals only
                f"FROM embeddings WHERE {query.where} ORDER BY distance LIMIT {int(limit)}"
            ),
            query.params,
        ).all()
        fetched += len(rows)
        if len(rows) < limit:
            outcome = f"tenant index returned {len(rows)} of {limit} rows"
            break
        hits = _hits(rows, query)
        if len(hits) >= query.k:
            outcome = (hits[: query.k], rounds, fetched)
            break
        if limit >= MAX_EF_SEARCH:
            outcome = f"fewer than {query.k} candidates in the best {limit} chunks"
            break
        limit = min(limit * GROWTH, MAX_EF_SEARCH)
    # Not in a ``finally``: after an error the transaction is aborted (and its rollback
    # restores the setting anyway), so a restore would only hide the original error.
    _set_ef_search(db, previous_ef)
    return outcome


def _retrieve_exact(db: Executor, query: _Query) -> tuple[list[Hit], int]:
    distance = query.distance(indexed=False)
    if query.group:
        sql = (
            f"SELECT * FROM (SELECT DISTINCT ON (candidate_id) {_COLUMNS}, {distance} AS distance "  # noqa: S608 - typed literals only
            f"FROM embeddings WHERE {query.where} "
            "ORDER BY candidate_id, distance, entity_id, chunk_index) AS best "
            f"ORDER BY distance, candidate_id LIMIT {int(query.k)}"
        )
    else:
        sql = (
            f"SELECT {_COLUMNS}, {distance} AS distance FROM embeddings "  # noqa: S608 - typed literals only
            f"WHERE {query.where} ORDER BY distance, entity_id, chunk_index LIMIT {int(query.k)}"
        )
    rows = db.execute(text(sql), query.params).all()
    return _hits(rows, query), len(rows)


def _hits(rows: Sequence[Row[Any]], query: _Query) -> list[Hit]:
    """Rows -> hits, best first; with grouping, each candidate's best chunk only."""
    hits: list[Hit] = []
    seen: set[uuid.UUID] = set()
    for row in sorted(rows, key=lambda r: r.distance):
        if row.organization_id != query.organization_id:
            raise TenantIsolationError(
                f"retrieval for organization {query.organization_id} read a row of another"
            )
        if query.group:
            if row.candidate_id in seen:
                continue
            seen.add(row.candidate_id)
        distance = float(row.distance)
        hits.append(
            Hit(
                candidate_id=row.candidate_id,
                entity_type=EmbeddingEntity(row.entity_type),
                entity_id=row.entity_id,
                chunk_index=row.chunk_index,
                distance=distance,
                similarity=query.similarity(distance),
            )
        )
    return hits


def _tenant_predicate(
    organization_id: uuid.UUID, model_id: uuid.UUID, types: frozenset[EmbeddingEntity]
) -> str:
    """The WHERE clause, from typed values only; its first two terms are the tenant index's
    predicate, word for word, so the planner can prove that index applies."""
    entity_list = ", ".join(f"'{entity.value}'" for entity in sorted(types))
    return (
        f"embedding_model_id = '{uuid.UUID(str(model_id))}' "
        f"AND organization_id = '{uuid.UUID(str(organization_id))}' "
        f"AND entity_type IN ({entity_list})"
    )


def _vector_literal(vector: Sequence[float], dimension: int) -> str:
    values = [float(value) for value in vector]
    if len(values) != dimension:
        raise ValueError(f"query has {len(values)} dimensions, the model has {dimension}")
    if not all(math.isfinite(value) for value in values):
        raise ValueError("query vector has a NaN or infinite component")
    return "[" + ",".join(repr(value) for value in values) + "]"


def _model(db: Executor, model_id: uuid.UUID) -> _Model:
    model = _MODELS.get(model_id)
    if model is None:
        row = db.execute(
            text("SELECT dimension, distance FROM embedding_models WHERE id = :id"),
            {"id": model_id},
        ).one_or_none()
        if row is None:
            raise NotFoundError("Unknown embedding model.", code="embedding_model_not_found")
        model = _MODELS[model_id] = _Model(int(row.dimension), EmbeddingDistance(row.distance))
    return model


def _catalog_check(db: Executor, index_name: str) -> tuple[IndexState, str | None]:
    """The tenant index's state and the session's ``hnsw.ef_search``, in one round trip."""
    row = db.execute(
        text(
            "SELECT current_setting('hnsw.ef_search', true) AS ef_search, "
            "(SELECT i.indisvalid FROM pg_index AS i WHERE i.indexrelid = to_regclass(:name)) "
            "AS valid, to_regclass(:name) IS NOT NULL AS present"
        ),
        {"name": index_name},
    ).one()
    if not row.present:
        return IndexState.MISSING, row.ef_search
    return (IndexState.VALID if row.valid else IndexState.BUILDING), row.ef_search


def _set_ef_search(db: Executor, value: str | None) -> None:
    """Session-level rather than ``SET LOCAL``: a local setting would not survive to the
    next statement on an autocommit connection, and the walk would silently use 40."""
    if value is None:
        db.execute(text("RESET hnsw.ef_search"))
    else:
        db.execute(text("SELECT set_config('hnsw.ef_search', :value, false)"), {"value": value})


# --- tenant indexes ------------------------------------------------------------------------


def tenant_index_name(organization_id: uuid.UUID, model_id: uuid.UUID) -> str:
    return runtime_index_name(model_id, organization_id)


def tenant_index_ddl(
    organization_id: uuid.UUID,
    model_id: uuid.UUID,
    dimension: int,
    distance: EmbeddingDistance = EmbeddingDistance.COSINE,
) -> str:
    """The schema's run-time index DDL (name, cast and predicate stay defined in one place),
    with this module's graph parameters added before its ``WHERE``."""
    ddl = runtime_index_ddl(model_id, dimension, distance, organization_id=organization_id)
    head, where, predicate = ddl.partition(" WHERE ")
    if not where:
        raise RuntimeError(f"unexpected run-time index DDL: {ddl}")
    graph = f"m = {int(HNSW_M)}, ef_construction = {int(HNSW_EF_CONSTRUCTION)}"
    return f"{head} WITH ({graph}) WHERE {predicate}"


def tenant_index_state(db: Executor, organization_id: uuid.UUID, model_id: uuid.UUID) -> IndexState:
    return _catalog_check(db, tenant_index_name(organization_id, model_id))[0]


def tenant_vector_count(db: Executor, organization_id: uuid.UUID, model_id: uuid.UUID) -> int:
    """The tenant's vectors of the model (exact; for index decisions, off the request path)."""
    return int(
        db.execute(
            text(
                "SELECT count(*) FROM embeddings "
                "WHERE organization_id = :org AND embedding_model_id = :model"
            ),
            {"org": organization_id, "model": model_id},
        ).scalar_one()
    )


def ensure_tenant_index(
    bind: Engine | Connection,
    organization_id: uuid.UUID,
    model_id: uuid.UUID,
    dimension: int,
    distance: EmbeddingDistance = EmbeddingDistance.COSINE,
    *,
    maintenance_work_mem: str | None = BUILD_MEMORY,
) -> IndexState:
    """Build the tenant's partial HNSW index unless it is valid already; idempotent.

    ``CREATE INDEX CONCURRENTLY`` (writes go on meanwhile) needs an autocommit connection:
    pass an Engine, or a Connection with ``isolation_level="AUTOCOMMIT"``. Concurrent callers
    are serialised by an advisory lock: the loser returns ``BUILDING`` at once rather than
    wait minutes. An invalid index found under the lock is the remains of an interrupted
    build (nobody else can be building it) and is dropped and rebuilt.
    """
    name = tenant_index_name(organization_id, model_id)
    with _autocommit(bind) as conn:
        if _catalog_check(conn, name)[0] is IndexState.VALID:
            return IndexState.VALID
        with _build_lock(conn, name) as acquired:
            if not acquired:
                return IndexState.BUILDING
            state = _catalog_check(conn, name)[0]
            if state is IndexState.VALID:
                return state
            if state is IndexState.BUILDING:
                conn.execute(text(f"DROP INDEX CONCURRENTLY IF EXISTS {name}"))
            log.info("retrieval.tenant_index.build", index=name)
            ddl = tenant_index_ddl(organization_id, model_id, dimension, distance)
            if maintenance_work_mem is None:
                conn.execute(text(ddl))
            else:
                conn.execute(
                    text("SELECT set_config('maintenance_work_mem', :value, false)"),
                    {"value": maintenance_work_mem},
                )
                try:
                    conn.execute(text(ddl))
                finally:
                    if not conn.invalidated:
                        conn.execute(text("RESET maintenance_work_mem"))
            return _catalog_check(conn, name)[0]


def drop_tenant_index(
    bind: Engine | Connection, organization_id: uuid.UUID, model_id: uuid.UUID
) -> bool:
    """Drop the tenant's index (``CONCURRENTLY``: searches go on, exactly); True if dropped,
    False if there was none or a build holds it (try again later)."""
    name = tenant_index_name(organization_id, model_id)
    with _autocommit(bind) as conn, _build_lock(conn, name) as acquired:
        if not acquired or _catalog_check(conn, name)[0] is IndexState.MISSING:
            return False
        conn.execute(text(f"DROP INDEX CONCURRENTLY IF EXISTS {name}"))
        return True


@contextmanager
def _build_lock(conn: Connection, index_name: str) -> Iterator[bool]:
    """A session advisory lock per index, taken without waiting: whether it was acquired."""
    key = {"space": _BUILD_LOCK_SPACE, "name": index_name}
    acquired = bool(
        conn.execute(text("SELECT pg_try_advisory_lock(:space, hashtext(:name))"), key).scalar()
    )
    try:
        yield acquired
    finally:
        if acquired and not conn.invalidated:
            conn.execute(text("SELECT pg_advisory_unlock(:space, hashtext(:name))"), key)


def sync_tenant_index(
    bind: Engine | Connection,
    organization_id: uuid.UUID,
    model_id: uuid.UUID,
    *,
    min_vectors: int = INDEX_MIN_VECTORS,
) -> IndexState:
    """Give the tenant an index if it has ``min_vectors`` vectors of the model, take it away
    below half of that (hysteresis: a tenant near the line is not rebuilt every day); what a
    periodic or after-backfill job calls."""
    with _autocommit(bind) as conn:
        model = _model(conn, model_id)
        count = tenant_vector_count(conn, organization_id, model_id)
        if count >= min_vectors and model.dimension <= MAX_INDEXED_DIMENSION:
            return ensure_tenant_index(
                conn, organization_id, model_id, model.dimension, model.distance
            )
        if count < min_vectors // 2:
            drop_tenant_index(conn, organization_id, model_id)  # not while a build holds it
        return tenant_index_state(conn, organization_id, model_id)


@contextmanager
def _autocommit(bind: Engine | Connection) -> Iterator[Connection]:
    if isinstance(bind, Engine):
        with bind.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            yield conn
        return
    if not getattr(bind.connection.dbapi_connection, "autocommit", False):
        raise ValueError(
            "CREATE/DROP INDEX CONCURRENTLY cannot run in a transaction: pass an Engine or "
            'a Connection with execution_options(isolation_level="AUTOCOMMIT")'
        )
    yield bind


def sync_tenant_indexes(
    session: Session, organization_id: uuid.UUID, *, min_vectors: int | None = None
) -> dict[str, Any]:
    """Sync the tenant's index of every embedding model (a retired model's is dropped).

    Works on an autocommit connection of its own and never opens ``session``'s transaction:
    ``CREATE INDEX CONCURRENTLY`` waits for every older transaction, the caller's included.
    """
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    threshold = INDEX_MIN_VECTORS if min_vectors is None else int(min_vectors)
    states: dict[str, str] = {}
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        models = conn.execute(
            select(EmbeddingModel.id, EmbeddingModel.status).order_by(EmbeddingModel.id)
        ).all()
        for model_id, status in models:
            if status == EmbeddingModelStatus.RETIRED:
                drop_tenant_index(conn, organization_id, model_id)
                state = tenant_index_state(conn, organization_id, model_id)
            else:
                state = sync_tenant_index(conn, organization_id, model_id, min_vectors=threshold)
            states[str(model_id)] = state.value
    return {"indexes": states}
