"""Every dashboard page reads the ledger through an index, on a million-row ledger.

No timing here (``bench/dashboard.py`` times the pages): the test seeds a million
``task_runs`` rows with ``generate_series``, ANALYZEs, and EXPLAINs each page's statements
as the app runs them, asserting the plan reads ``task_runs`` through an index and never
scans it whole.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, text

from are_workers.dashboard import queries
from are_workers.dashboard.actions import BULK_CAP
from are_workers.models.engine import make_engine
from tests.conftest import TEMPLATE_DB, create_database, drop_database
from tests.dashboard.seed import seed_ledger

pytestmark = pytest.mark.slow

ROWS = 1_000_000


@pytest.fixture(scope="module")
def big_ledger(
    server_url: str, template_database_url: str
) -> Iterator[tuple[Engine, list[uuid.UUID]]]:
    name = f"are_dash_plans_{uuid.uuid4().hex[:8]}"
    url = create_database(server_url, name, template=TEMPLATE_DB)
    engine = make_engine(url, pool_size=1, application_name="are-dashboard-plans")
    with engine.begin() as conn:
        orgs = seed_ledger(conn, ROWS)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE task_runs"))
        conn.execute(text("ANALYZE"))
    yield engine, orgs
    engine.dispose()
    drop_database(server_url, name)


def _plan(conn: Connection, sql: str, params: dict[str, Any]) -> dict[str, Any]:
    raw = conn.execute(text(f"EXPLAIN (FORMAT JSON) {sql}"), params).scalar_one()
    return (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def assert_indexed(conn: Connection, sql: str, params: dict[str, Any] | None = None) -> set[str]:
    """The statement touches task_runs only through indexes; returns the indexes used."""
    plan = _plan(conn, sql, params or {})
    on_ledger = [n for n in _nodes(plan) if n.get("Relation Name") == "task_runs"]
    scans = {n["Node Type"] for n in on_ledger}
    assert on_ledger, f"task_runs is not read at all: {json.dumps(plan)[:2000]}"
    assert "Seq Scan" not in scans, f"a sequential scan of task_runs: {json.dumps(plan)[:3000]}"
    indexes = {n["Index Name"] for n in _nodes(plan) if "Index Name" in n}
    assert any(i.startswith(("ix_task_runs", "pk_task_runs", "uq_task_runs")) for i in indexes), (
        indexes
    )
    return indexes


def test_the_seed_looks_like_a_busy_month(big_ledger: tuple[Engine, list[uuid.UUID]]) -> None:
    engine, _ = big_ledger
    with engine.connect() as conn:
        counts = dict(
            conn.execute(text("SELECT status::text, count(*) FROM task_runs GROUP BY 1")).all()
        )
    assert sum(counts.values()) == ROWS
    assert counts["dead"] > 2000 and counts["failed"] > 10_000
    assert counts["queued"] > 0 and counts["running"] > 0 and counts["retrying"] > 0


def test_queues_page_reads_through_indexes(big_ledger: tuple[Engine, list[uuid.UUID]]) -> None:
    engine, _ = big_ledger
    with engine.connect() as conn:
        assert_indexed(conn, queries.QUEUES)
        assert "ix_task_runs_finished" in assert_indexed(conn, queries.THROUGHPUT)


def test_every_job_list_variant_reads_through_an_index(
    big_ledger: tuple[Engine, list[uuid.UUID]],
) -> None:
    engine, orgs = big_ledger
    week_ago = datetime.now(UTC) - timedelta(days=7)
    variants = [
        queries.JobFilter(),
        queries.JobFilter(status="dead"),
        queries.JobFilter(status="succeeded"),
        queries.JobFilter(actor="resumes.process_file"),
        queries.JobFilter(organization_id=orgs[3]),
        queries.JobFilter(since=week_ago, until=week_ago + timedelta(days=1)),
        queries.JobFilter(status="failed", organization_id=orgs[5]),
        queries.JobFilter(status="dead", actor="matching.match_job", since=week_ago),
    ]
    with engine.connect() as conn:
        for variant in variants:
            for after in (None, (week_ago, uuid.UUID(int=0))):
                sql, params = queries.jobs_sql(variant, after=after, limit=51)
                assert_indexed(conn, sql, params)


def test_job_page_and_its_lookups_read_through_indexes(
    big_ledger: tuple[Engine, list[uuid.UUID]],
) -> None:
    engine, _ = big_ledger
    with engine.connect() as conn:
        job_id = conn.execute(text("SELECT id FROM task_runs LIMIT 1")).scalar_one()
        assert "pk_task_runs" in assert_indexed(conn, queries.JOB, {"id": job_id})
        assert "ix_task_runs_actor_created" in assert_indexed(conn, queries.ACTORS)


def test_bulk_replay_preview_reads_through_an_index(
    big_ledger: tuple[Engine, list[uuid.UUID]],
) -> None:
    engine, orgs = big_ledger
    with engine.connect() as conn:
        for variant in (queries.JobFilter(), queries.JobFilter(organization_id=orgs[1]),
                        queries.JobFilter(actor="system.noop", status="dead")):  # fmt: skip
            sql, params = queries.bulk_sql(queries.BULK_COUNT, variant)
            assert_indexed(conn, sql, params | {"cap": BULK_CAP + 1})


def test_schedule_and_compliance_pages_read_the_ledger_through_indexes(
    big_ledger: tuple[Engine, list[uuid.UUID]],
) -> None:
    engine, _ = big_ledger
    with engine.connect() as conn:
        assert_indexed(
            conn,
            queries.SCHEDULE_LAST_RUN,
            {"actor": "compliance.verify_audit_chain", "prefix": "schedule:audit-verify:%"},
        )
        assert "uq_task_runs_idempotency" in assert_indexed(conn, queries.AUDIT_VERIFICATIONS)
        assert "uq_task_runs_idempotency" in assert_indexed(conn, queries.RETENTION_RUNS)
        dsr_plan = json.dumps(_plan(conn, queries.OPEN_DSRS, {}))
        assert "ix_data_subject_requests_open_deadline" in dsr_plan, dsr_plan
