"""The dashboard's reads. Each page's SQL is here, by name, so that a test can EXPLAIN every
one of them on a million-row ledger and check it reads through an index.

Nothing here selects a column that can hold personal data: ``task_runs`` holds ids by
contract, error messages are redacted before they are shown (``redact.py``), DSRs are listed
without their subject or requester, and bias audits are aggregates.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from are_workers.models.task_runs import TaskStatus

# --- queues ----------------------------------------------------------------------------------

QUEUES = """
    SELECT queue_class, COALESCE(queue, '') AS queue,
           count(*) FILTER (WHERE status IN ('queued', 'retrying')) AS depth,
           count(*) FILTER (WHERE status IN ('queued', 'retrying')
                            AND available_at <= now()) AS ready,
           count(*) FILTER (WHERE status = 'running') AS running,
           count(*) FILTER (WHERE status = 'retrying') AS retrying,
           COALESCE(EXTRACT(EPOCH FROM now() - min(available_at) FILTER (
               WHERE status IN ('queued', 'retrying') AND available_at <= now())), 0)::float
               AS oldest_ready_s
    FROM task_runs
    WHERE status IN ('queued', 'retrying', 'running')
    GROUP BY queue_class, queue
    ORDER BY queue_class NULLS LAST, queue
"""

#: Jobs finished in the last hour, per 5-minute bucket, by outcome.
THROUGHPUT = """
    SELECT floor(EXTRACT(EPOCH FROM now() - finished_at) / 300)::int AS bucket,
           count(*) FILTER (WHERE status = 'succeeded') AS succeeded,
           count(*) FILTER (WHERE status IN ('failed', 'dead')) AS failed,
           count(*) AS finished
    FROM task_runs
    WHERE finished_at IS NOT NULL AND finished_at > now() - interval '1 hour'
    GROUP BY 1 ORDER BY 1
"""

# --- workers ---------------------------------------------------------------------------------

WORKERS = """
    SELECT worker_id, host, pid, queues, threads, running_jobs, started_at, last_seen_at,
           stopped_at, EXTRACT(EPOCH FROM now() - last_seen_at)::float AS silent_s
    FROM worker_registry
    WHERE stopped_at IS NULL OR last_seen_at > now() - interval '1 day'
    ORDER BY last_seen_at DESC
    LIMIT 500
"""

# --- jobs ------------------------------------------------------------------------------------

_JOB_COLUMNS = """
    id, actor, queue_class, queue, status::text AS status, attempts, max_attempts, crashes,
    organization_id, error_type, created_at, started_at, finished_at
"""
# The job list is built per filter set (``jobs_sql`` below), not as one statement with
# "param IS NULL OR column = param" filters: Postgres plans those for the generic case, which
# picks no index; each variant of the built statement reads its own index.

JOB = """
    SELECT id, actor, queue_class, queue, status::text AS status, attempts, max_attempts,
           crashes, organization_id, args, error_type, error_message, priority, worker_id,
           idempotency_key, created_at, available_at, published_at, started_at, finished_at,
           lease_expires_at, updated_at, to_jsonb(t) ->> 'traceparent' AS traceparent
    FROM task_runs t WHERE id = :id
"""

JOB_AUDIT = """
    SELECT occurred_at, action, actor_type::text AS actor_type, actor_id, input_refs
    FROM audit_log
    WHERE organization_id = :org AND entity_type = 'task_run' AND entity_id = :id
    ORDER BY occurred_at
    LIMIT 50
"""

ACTORS = """
    WITH RECURSIVE actors AS (
        (SELECT actor FROM task_runs ORDER BY actor LIMIT 1)
        UNION ALL
        SELECT (SELECT actor FROM task_runs WHERE actor > a.actor ORDER BY actor LIMIT 1)
        FROM actors a WHERE a.actor IS NOT NULL
    )
    SELECT actor FROM actors WHERE actor IS NOT NULL LIMIT 200
"""  # a loose index scan: one probe per distinct actor, not a pass over the ledger

BULK_COUNT = """
    SELECT count(*) FROM (
        SELECT 1 FROM task_runs
        WHERE status = ANY(CAST(:statuses AS task_status[]))
          {filters}
        LIMIT :cap
    ) AS matching
"""

BULK_REPLAY = """
    UPDATE task_runs SET status = 'queued', attempts = 0, crashes = 0, published_at = NULL,
           available_at = now(), finished_at = NULL, error_type = NULL, error_message = NULL,
           updated_at = now()
    WHERE id IN (
        SELECT id FROM task_runs
        WHERE status = ANY(CAST(:statuses AS task_status[]))
          {filters}
        ORDER BY created_at
        LIMIT :cap
        FOR UPDATE SKIP LOCKED
    )
    RETURNING id
"""  # the same statement as ``ledger.replay``, for every row the filter selects

# --- schedules -------------------------------------------------------------------------------

SCHEDULE_LAST_RUN = """
    SELECT id, status::text AS status, organization_id, created_at, finished_at
    FROM task_runs
    WHERE actor = :actor AND idempotency_key LIKE :prefix
    ORDER BY created_at DESC
    LIMIT 1
"""

SCHEDULE_OVERRIDES = """
    SELECT schedule_name, organization_id, cron, paused, paused_until, reason, updated_at
    FROM schedule_overrides
"""

# --- compliance ------------------------------------------------------------------------------

OPEN_DSRS = """
    SELECT id, organization_id, kind::text AS kind, status::text AS status, received_at,
           deadline_at, extended_until,
           EXTRACT(EPOCH FROM COALESCE(extended_until, deadline_at) - now())::float AS due_in_s
    FROM data_subject_requests
    WHERE status NOT IN ('completed', 'rejected')
    ORDER BY deadline_at
    LIMIT 100
"""

#: The latest audit-chain verification job of each organization (never verified: no job).
#: The scheduler keys every run (``schedule:audit-verify:<tick>``), so the lookup probes the
#: idempotency index on (organization, actor): a few dozen rows per organization. Ordering
#: by an expression keeps the planner from walking the whole creation-time index backwards
#: for an organization that has no verification at all.
AUDIT_VERIFICATIONS = """
    SELECT o.id AS organization_id, o.name, v.id AS job_id, v.status, v.finished_at,
           v.error_type, v.rows_checked
    FROM organizations o
    LEFT JOIN LATERAL (
        SELECT id, status::text AS status, finished_at, error_type,
               (result ->> 'rows_checked')::bigint AS rows_checked
        FROM task_runs
        WHERE organization_id = o.id AND actor = 'compliance.verify_audit_chain'
          AND idempotency_key IS NOT NULL
        ORDER BY created_at + interval '0 seconds' DESC
        LIMIT 1
    ) v ON true
    ORDER BY v.finished_at NULLS FIRST, o.id
    LIMIT 500
"""

_RETENTION_RUNS = """
    SELECT r.id, r.organization_id, r.status::text AS status, r.dry_run, r.counts,
           r.started_at, r.finished_at, r.horizons -> 'breaker' AS breaker,
           r.horizons ? 'breaker' AS tripped, c.id AS confirm_job_id, c.status AS confirm_status
    FROM retention_runs r
    LEFT JOIN LATERAL (
        SELECT id, status::text AS status FROM task_runs
        WHERE r.organization_id IS NOT NULL AND organization_id = r.organization_id
          AND actor = 'compliance.retention_sweep' AND idempotency_key = 'confirm:' || r.id
        UNION ALL
        SELECT id, status::text FROM task_runs
        WHERE r.organization_id IS NULL AND organization_id IS NULL
          AND actor = 'compliance.retention_sweep_platform'
          AND idempotency_key = 'confirm:' || r.id
        LIMIT 1
    ) c ON true
    {where}
    ORDER BY r.started_at DESC
    LIMIT 30
"""  # the confirming sweep, found by its idempotency key (the unique index), per scope
RETENTION_RUNS = _RETENTION_RUNS.format(where="")
RETENTION_RUN = _RETENTION_RUNS.format(where="WHERE r.id = :i")

LATEST_BIAS_ORG = """
    SELECT organization_id FROM bias_audit_reports ORDER BY created_at DESC LIMIT 1
"""

PAGE_QUERIES: dict[str, str] = {
    "queues": QUEUES,
    "throughput": THROUGHPUT,
    "workers": WORKERS,
    "job": JOB,
    "actors": ACTORS,
    "schedule_last_run": SCHEDULE_LAST_RUN,
    "open_dsrs": OPEN_DSRS,
    "audit_verifications": AUDIT_VERIFICATIONS,
    "retention_runs": RETENTION_RUNS,
}


# --- the job list, built per filter set ------------------------------------------------------


@dataclass(frozen=True)
class JobFilter:
    status: str | None = None
    actor: str | None = None
    organization_id: uuid.UUID | None = None
    since: datetime | None = None
    until: datetime | None = None

    def where(self) -> tuple[list[str], dict[str, Any]]:
        """SQL conditions and their parameters: only the filters that are set, so that the
        planner sees the statement it can use an index for."""
        clauses: list[str] = []
        params: dict[str, Any] = {}
        if self.status:
            clauses.append("status = CAST(:status AS task_status)")
            params["status"] = self.status
        if self.actor:
            clauses.append("actor = :actor")
            params["actor"] = self.actor
        if self.organization_id:
            clauses.append("organization_id = :org")
            params["org"] = self.organization_id
        if self.since:
            clauses.append("created_at >= :since")
            params["since"] = self.since
        if self.until:
            clauses.append("created_at < :until")
            params["until"] = self.until
        return clauses, params

    def query_string(self) -> dict[str, str]:
        out = {
            "status": self.status or "",
            "actor": self.actor or "",
            "org": str(self.organization_id) if self.organization_id else "",
            "since": self.since.isoformat() if self.since else "",
            "until": self.until.isoformat() if self.until else "",
        }
        return {k: v for k, v in out.items() if v}


def jobs_sql(
    job_filter: JobFilter, *, after: tuple[datetime, uuid.UUID] | None, limit: int
) -> tuple[str, dict[str, Any]]:
    clauses, params = job_filter.where()
    if after is not None:
        clauses.append("(created_at, id) < (:after_at, :after_id)")
        params |= {"after_at": after[0], "after_id": after[1]}
    where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
    sql = (
        f"SELECT {_JOB_COLUMNS} FROM task_runs {where} "  # noqa: S608 - fixed clauses, bound values
        "ORDER BY created_at DESC, id DESC LIMIT :limit"
    )
    return sql, params | {"limit": limit}


def jobs_page(
    conn: Connection,
    job_filter: JobFilter,
    *,
    after: tuple[datetime, uuid.UUID] | None = None,
    page_size: int = 50,
) -> tuple[list[dict[str, Any]], tuple[datetime, uuid.UUID] | None]:
    """One page of jobs and the keyset cursor of the next page (``None`` on the last)."""
    sql, params = jobs_sql(job_filter, after=after, limit=page_size + 1)
    rows = [dict(r._mapping) for r in conn.execute(text(sql), params)]
    more = len(rows) > page_size
    rows = rows[:page_size]
    cursor = (rows[-1]["created_at"], rows[-1]["id"]) if more and rows else None
    return rows, cursor


def bulk_sql(template: str, job_filter: JobFilter) -> tuple[str, dict[str, Any]]:
    """A bulk statement over the jobs the filter selects among dead and failed ones."""
    clauses, params = job_filter.where()
    params.pop("status", None)
    clauses = [c for c in clauses if not c.startswith("status")]
    statuses = (
        [job_filter.status]
        if job_filter.status in (TaskStatus.DEAD.value, TaskStatus.FAILED.value)
        else [TaskStatus.DEAD.value, TaskStatus.FAILED.value]
    )
    filters = "".join(f" AND {c}" for c in clauses)
    return template.format(filters=filters), params | {"statuses": statuses}


def rows(conn: Connection, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in conn.execute(text(sql), params or {})]
