"""A synthetic ledger of any size, written by SQL alone (``generate_series``), for the
dashboard's query-plan test and ``bench/dashboard.py``.

The shape follows a month of a busy deployment: most jobs succeeded, about 1.5 % failed or
died, a few hundredths of a percent are queued, running or retrying; twenty organizations,
the real actor names, creation times spread over 30 days, a thousand scheduled runs, worker
registry rows, retention runs (two stopped by the breaker) and data subject requests (one
in 200 open).
"""

from __future__ import annotations

import uuid

from sqlalchemy import Connection, text

ORGANIZATIONS = 20
ACTORS = (
    "resumes.process_file",
    "matching.embed_job",
    "matching.match_job",
    "media.proctor_snapshots",
    "portfolios.evaluate",
    "assessments.score_response",
    "compliance.seal_audit_chain",
    "compliance.verify_audit_chain",
    "compliance.process_dsr",
    "compliance.retention_sweep",
    "system.noop",
    "system.handle_dead",
)
CLASSES = ("default", "ml", "ml", "media", "default", "default", "compliance", "compliance",
           "compliance", "compliance", "default", "default")  # fmt: skip


def seed_ledger(conn: Connection, rows: int) -> list[uuid.UUID]:
    """Insert ``rows`` ledger rows (and their organizations); returns the organization ids."""
    orgs = [uuid.uuid4() for _ in range(ORGANIZATIONS)]
    conn.execute(
        text(
            "INSERT INTO organizations (id, name, slug) "
            "SELECT o, 'Synthetic ' || i, 'synthetic-' || i || '-' || left(o::text, 8) "
            "FROM unnest(CAST(:orgs AS uuid[])) WITH ORDINALITY AS t(o, i)"
        ),
        {"orgs": [str(o) for o in orgs]},
    )
    conn.execute(
        text(
            """
            INSERT INTO task_runs (id, actor, queue_class, queue, args, organization_id,
                                   idempotency_key, status, attempts, max_attempts, crashes,
                                   error_type, error_message, available_at, published_at,
                                   started_at, finished_at, lease_expires_at, worker_id,
                                   created_at, updated_at)
            SELECT gen_random_uuid(), a.actor, a.cls, a.cls,
                   jsonb_build_object('file_id', gen_random_uuid()),
                   (CAST(:orgs AS uuid[]))[1 + g % :norgs],
                   CASE WHEN a.actor LIKE 'compliance.%' AND g % 97 = 0
                        THEN 'schedule:audit-verify:' || g END,
                   s.status::task_status,
                   CASE WHEN s.status IN ('queued') THEN 0 ELSE 1 + (g % 3) END, 6,
                   CASE WHEN s.status = 'dead' THEN 1 ELSE 0 END,
                   CASE WHEN s.status IN ('failed', 'dead')
                        THEN 'InvalidInputError:corrupt_file' END,
                   CASE WHEN s.status IN ('failed', 'dead')
                        THEN 'This PDF is corrupt. Upload the file again.' END,
                   t.created, t.created, t.created + interval '50 milliseconds',
                   CASE WHEN s.status IN ('succeeded', 'failed', 'dead', 'cancelled')
                        THEN t.created + interval '2 seconds' END,
                   CASE WHEN s.status = 'running' THEN now() + interval '60 seconds' END,
                   CASE WHEN s.status <> 'queued' THEN 'synthetic-host/' || (g % 16) END,
                   t.created, t.created
            FROM generate_series(1, :n) AS g
            CROSS JOIN LATERAL (
                SELECT (CAST(:actors AS text[]))[1 + (g::bigint * 7919) % :nactors] AS actor,
                       (CAST(:classes AS text[]))[1 + (g::bigint * 7919) % :nactors] AS cls
            ) AS a
            CROSS JOIN LATERAL (
                SELECT CASE
                    WHEN g % 1000 < 3 THEN 'dead'
                    WHEN g % 1000 < 15 THEN 'failed'
                    WHEN g % 1000 < 17 THEN 'cancelled'
                    WHEN g % 10000 < 180 AND g > :n - 20000 THEN 'queued'
                    WHEN g % 10000 < 185 AND g > :n - 20000 THEN 'running'
                    WHEN g % 10000 < 187 AND g > :n - 20000 THEN 'retrying'
                    ELSE 'succeeded' END AS status
            ) AS s
            CROSS JOIN LATERAL (
                SELECT now() - make_interval(secs => (:n - g) * (30.0 * 86400 / :n)) AS created
            ) AS t
            """
        ),
        {
            "n": rows,
            "orgs": [str(o) for o in orgs],
            "norgs": len(orgs),
            "actors": list(ACTORS),
            "classes": list(CLASSES),
            "nactors": len(ACTORS),
        },
    )
    conn.execute(
        text(
            """
            INSERT INTO worker_registry (worker_id, host, pid, queues, threads, running_jobs)
            SELECT 'synthetic-host/' || g, 'synthetic-host', g, '["default", "ml-cpu"]', 4, g % 3
            FROM generate_series(1, 16) AS g
            """
        )
    )
    conn.execute(
        text(
            """
            INSERT INTO retention_runs (organization_id, status, dry_run, counts, horizons,
                                        started_at, finished_at)
            SELECT (CAST(:orgs AS uuid[]))[1 + g % :norgs],
                   CAST('completed' AS retention_run_status), false,
                   jsonb_build_object('file_access_log', 10 + g % 50),
                   CASE WHEN g <= 2 THEN jsonb_build_object('breaker', jsonb_build_object(
                       'file_access_log', jsonb_build_object(
                           'planned', 50000, 'baseline', 60, 'allowed', 1000)))
                        ELSE '{}'::jsonb END,
                   now() - make_interval(days => g), now() - make_interval(days => g)
                       + interval '1 minute'
            FROM generate_series(1, 600) AS g
            """
        ),
        {"orgs": [str(o) for o in orgs], "norgs": len(orgs)},
    )
    conn.execute(
        text(
            """
            INSERT INTO data_subject_requests (organization_id, kind, status, subject_type,
                                               subject_ref, received_at, deadline_at,
                                               completed_at)
            SELECT (CAST(:orgs AS uuid[]))[1 + g % :norgs], CAST('erasure' AS dsr_kind),
                   CAST(CASE WHEN g % 200 = 0 THEN 'received' ELSE 'completed' END
                        AS dsr_status),
                   CAST('candidate' AS subject_type), md5(g::text) || md5((g + 1)::text),
                   now() - make_interval(days => g % 400),
                   now() - make_interval(days => g % 400) + interval '30 days',
                   CASE WHEN g % 200 <> 0 THEN now() - make_interval(days => g % 400)
                        + interval '2 days' END
            FROM generate_series(1, :n) AS g
            """
        ),
        {"orgs": [str(o) for o in orgs], "norgs": len(orgs), "n": max(rows // 20, 1000)},
    )
    return orgs
