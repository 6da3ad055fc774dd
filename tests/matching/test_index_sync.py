"""The scheduled tenant index sync (``matching.sync_tenant_index``): a large tenant gets its
partial HNSW index, a small one none, a retired model's goes, and a second run changes
nothing. A database of its own: ``CREATE INDEX CONCURRENTLY`` needs committed rows."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from are_workers import ledger
from are_workers.config import get_settings
from are_workers.errors import InvalidInputError
from are_workers.job_context import JobContext, set_current
from are_workers.models.engine import make_engine
from are_workers.scheduler import schedule_named
from are_workers.services.matching.retrieval import (
    IndexState,
    ensure_tenant_index,
    tenant_index_name,
)
from are_workers.tasks import matching as actors

DIMENSION = 8
MIN_VECTORS = 200


@pytest.fixture
def engine(isolated_database: str) -> Iterator[Engine]:
    eng = make_engine(isolated_database, pool_size=2, application_name="are-tests-index-sync")
    yield eng
    eng.dispose()


def _model(conn: Any, status: str) -> uuid.UUID:
    model_id = uuid.uuid4()
    conn.execute(
        text(
            "INSERT INTO embedding_models (id, name, version, dimension, status) "
            "VALUES (:i, 'test-sync', :v, :d, CAST(:s AS embedding_model_status))"
        ),
        {"i": model_id, "v": model_id.hex, "d": DIMENSION, "s": status},
    )
    return model_id


def _tenant(conn: Any, vectors: dict[uuid.UUID, int]) -> uuid.UUID:
    org, candidate = uuid.uuid4(), uuid.uuid4()
    conn.execute(
        text("INSERT INTO organizations (id, name, slug) VALUES (:o, 'Org', :s)"),
        {"o": org, "s": org.hex},
    )
    conn.execute(
        text("INSERT INTO candidates (organization_id, id, full_name) VALUES (:o, :c, 'A B')"),
        {"o": org, "c": candidate},
    )
    components = ", ".join("random()" for _ in range(DIMENSION))
    for model_id, n in vectors.items():
        conn.execute(
            text(
                "INSERT INTO embeddings (organization_id, entity_type, entity_id, chunk_index, "
                "embedding_model_id, dimension, candidate_id, content_hash, embedding) "
                "SELECT :o, 'resume_chunk', gen_random_uuid(), 0, :m, :d, :c, md5(g::text), "
                f"CAST(ARRAY[{components}] AS vector) FROM generate_series(1, :n) AS g"
            ),
            {"o": org, "m": model_id, "d": DIMENSION, "c": candidate, "n": n},
        )
    return org


@contextmanager
def _job(engine: Engine, organization_id: uuid.UUID | None) -> Iterator[JobContext]:
    """A claimed job whose session is bound to the engine, as a worker's would be."""
    with engine.begin() as conn:
        job_id = ledger.enqueue(
            conn, "matching.sync_tenant_index", {}, organization_id=organization_id
        )
        claim = ledger.claim(conn, job_id, worker_id="test/0", lease_seconds=60, crash_cap=3)
    assert claim is not None
    ctx = JobContext(session=Session(bind=engine), claim=claim)
    set_current(ctx)
    try:
        yield ctx
    finally:
        set_current(None)
        ctx.session.close()


def _sync(engine: Engine, organization_id: uuid.UUID) -> dict[str, str]:
    with _job(engine, organization_id) as ctx:
        actors.sync_tenant_index.fn(min_vectors=MIN_VECTORS, scheduled_for="2026-12-04T01:20Z")
        # CREATE INDEX CONCURRENTLY waits for every older transaction: the job's own must
        # never be one of them.
        assert not ctx.session.in_transaction()
        return dict((ctx.result or {})["indexes"])


def _index_oid(engine: Engine, organization_id: uuid.UUID, model_id: uuid.UUID) -> int | None:
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT CAST(to_regclass(:n) AS oid)"),
            {"n": tenant_index_name(organization_id, model_id)},
        ).scalar_one()


def test_the_sync_indexes_large_tenants_only_and_a_second_run_does_nothing(
    engine: Engine,
) -> None:
    with engine.begin() as conn:
        active, retired = _model(conn, "active"), _model(conn, "retired")
        big = _tenant(conn, {active: MIN_VECTORS + 50, retired: MIN_VECTORS + 50})
        small = _tenant(conn, {active: MIN_VECTORS // 2 - 1})
    # A retired model's index, left from when it served: nobody searches it any more.
    assert ensure_tenant_index(engine, big, retired, DIMENSION) is IndexState.VALID

    first = _sync(engine, big)
    assert first == {str(active): "valid", str(retired): "missing"}
    built = _index_oid(engine, big, active)
    assert built is not None and _index_oid(engine, big, retired) is None
    assert _sync(engine, small) == {str(active): "missing", str(retired): "missing"}

    assert _sync(engine, big) == first
    assert _index_oid(engine, big, active) == built  # kept, not rebuilt
    assert _sync(engine, small) == {str(active): "missing", str(retired): "missing"}
    assert _index_oid(engine, small, active) is None


def test_the_sync_is_a_daily_tenant_job_on_the_default_queue(engine: Engine) -> None:
    assert actors.sync_tenant_index.queue_name == get_settings().queue_default
    schedule = schedule_named("tenant-index-sync")
    assert (schedule.actor, schedule.scope) == ("matching.sync_tenant_index", "organization")
    with _job(engine, None), pytest.raises(InvalidInputError, match="without an organization"):
        actors.sync_tenant_index.fn()
