"""The job ledger contract: enqueue, claim, finish, retry, sweep, cancel, replay, prune.

Every statement here is plain SQL on ``task_runs`` so that the same contract can be
implemented by the ATS in any language (``docs/job-ledger.md`` documents it). The rules:

* Enqueue is an INSERT in the caller's transaction; nothing reaches the broker until that
  transaction commits and the relay publishes the row.
* A worker claims with one ``UPDATE … RETURNING``; a duplicate delivery of a job that is
  running under a live lease, or already finished, claims nothing and is dropped.
* A job finishes in the *same* transaction as its side effects, fenced on the attempt number
  it claimed, so a worker whose lease was taken over can never commit its effects.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from are_workers import tracing
from are_workers.catalog import JOB_KINDS, class_for, queue_for
from are_workers.errors import PermanentError

Executor = Session | Connection

_INSERT_SQL = """
    INSERT INTO task_runs (id, actor, queue_class, queue, args, organization_id,
                           idempotency_key, priority, max_attempts, available_at, traceparent)
    VALUES (:id, :actor, :queue_class, :queue, CAST(:args AS jsonb), :organization_id,
            :idempotency_key, :priority, :max_attempts, now() + make_interval(secs => :delay),
            :traceparent)
"""
# Without an idempotency key there is nothing to conflict with and the id is ours already:
# the plain INSERT saves reading a row back (a quarter of an enqueue's client time).
_INSERT = text(_INSERT_SQL)
_INSERT_IDEMPOTENT = text(
    _INSERT_SQL
    + """
    ON CONFLICT (organization_id, actor, idempotency_key)
        WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING id
    """
)
_FIND_IDEMPOTENT = text(
    """
    SELECT id FROM task_runs
    WHERE organization_id IS NOT DISTINCT FROM :organization_id
      AND actor = :actor AND idempotency_key = :idempotency_key
    """
)


def _json_safe(args: dict[str, Any]) -> str:
    """Arguments must be IDs and scalars: JSON, never objects or PII blobs."""
    try:
        return json.dumps(args, default=_ids_only, sort_keys=True)
    except TypeError as exc:
        raise PermanentError(f"Job arguments must be JSON IDs and scalars: {exc}") from None


def _ids_only(value: Any) -> str:
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not an ID or a scalar")


def enqueue(
    db: Executor,
    actor: str,
    args: dict[str, Any] | None = None,
    *,
    organization_id: uuid.UUID | str | None = None,
    idempotency_key: str | None = None,
    priority: int = 0,
    queue: str | None = None,
    delay_seconds: float = 0.0,
    job_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """Insert a job into the ledger inside ``db``'s transaction; returns the job id.

    With an idempotency key, enqueueing the same (organization, actor, key) twice returns
    the first job's id and inserts nothing. Inside a trace, the row carries the caller's
    trace context (``traceparent``) and the worker continues that trace.
    """
    from are_workers.config import get_settings

    kind = JOB_KINDS.get(actor)
    # The class is what routes the job: the relay maps it to a queue name by the worker
    # side's settings. The queue name written here is only this process's view of it (an
    # explicit ``queue`` pins the job to that queue instead).
    queue_class = None if queue else class_for(actor)
    queue = queue or queue_for(actor)
    max_attempts = min(kind.max_attempts if kind else 6, get_settings().max_retries + 1)
    job_id = job_id or uuid.uuid4()
    params = {
        "id": job_id,
        "actor": actor,
        "queue_class": queue_class,
        "queue": queue,
        "args": _json_safe(args or {}),
        "organization_id": str(organization_id) if organization_id else None,
        "idempotency_key": idempotency_key,
        "priority": priority,
        "max_attempts": max_attempts,
        "delay": delay_seconds,
    }
    with tracing.enqueue_span(actor, job_id) as traceparent:
        params["traceparent"] = traceparent
        if idempotency_key is None:
            db.execute(_INSERT, params)
            return job_id
        inserted = db.execute(_INSERT_IDEMPOTENT, params).scalar_one_or_none()
        if inserted is not None:
            return uuid.UUID(str(inserted))
        existing = db.execute(_FIND_IDEMPOTENT, params).scalar_one()
        return uuid.UUID(str(existing))


# --- claiming and finishing -------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    job_id: uuid.UUID
    actor: str
    attempt: int
    organization_id: uuid.UUID | None
    args: dict[str, Any]
    recovered: bool  # True when taken over from a worker whose lease expired
    max_attempts: int = 6
    traceparent: str | None = None  # the enqueuer's W3C trace context, continued by the worker


_CLAIM_SQL = """
    UPDATE task_runs
    SET status = 'running',
        attempts = attempts + 1,
        crashes = crashes + CASE WHEN status = 'running' THEN 1 ELSE 0 END,
        started_at = now(),
        lease_expires_at = now() + make_interval(secs => :lease),
        worker_id = :worker,
        updated_at = now()
    WHERE id = ANY(CAST(:ids AS uuid[]))
      AND CASE WHEN status IN ('queued', 'retrying') THEN available_at <= now()
               WHEN status = 'running' THEN lease_expires_at < now() AND crashes + 1 < :crash_cap
               ELSE false END
    RETURNING id, actor, attempts, max_attempts, organization_id, args, crashes > 0 AS recovered,
              traceparent
"""
_CLAIM = text(_CLAIM_SQL)
# The batched claim and finish test status inside CASE rather than as plain conditions, so
# that the primary key is the only index they can use. Most rows of a ledger are finished,
# so the statistics call 'queued' and 'running' rare, and the planner then preferred the
# status indexes: every claim scanned the whole backlog (and every finish all running jobs).


def claim(
    conn: Executor, job_id: uuid.UUID | str, *, worker_id: str, lease_seconds: int, crash_cap: int
) -> Claim | None:
    """Take the job for this worker, or ``None`` if it is not ours to run (drop the message)."""
    claims = claim_many(
        conn, [job_id], worker_id=worker_id, lease_seconds=lease_seconds, crash_cap=crash_cap
    )
    return claims.get(uuid.UUID(str(job_id)))


def claim_many(
    conn: Executor,
    job_ids: list[uuid.UUID | str],
    *,
    worker_id: str,
    lease_seconds: int,
    crash_cap: int,
) -> dict[uuid.UUID, Claim]:
    """Claim several jobs in one statement; absent ids were not claimable."""
    rows = conn.execute(
        _CLAIM,
        {
            "ids": [str(j) for j in job_ids],
            "worker": worker_id,
            "lease": lease_seconds,
            "crash_cap": crash_cap,
        },
    )
    return {uuid.UUID(str(row.id)): _claim_from_row(row) for row in rows}


def _claim_from_row(row: Row[Any]) -> Claim:
    return Claim(
        job_id=uuid.UUID(str(row.id)),
        actor=row.actor,
        attempt=row.attempts,
        organization_id=row.organization_id,
        args=row.args,
        recovered=row.recovered,
        max_attempts=row.max_attempts,
        traceparent=row.traceparent,
    )


_SUCCEED = text(
    """
    UPDATE task_runs
    SET status = 'succeeded', finished_at = now(), lease_expires_at = NULL,
        result = CAST(:result AS jsonb), error_type = NULL, error_message = NULL,
        updated_at = now()
    WHERE id = :id AND status = 'running' AND attempts = :attempt
    RETURNING id
    """
)


def mark_succeeded(
    db: Executor, job_id: uuid.UUID, attempt: int, result: dict[str, Any] | None = None
) -> bool:
    """Finish the job in the caller's transaction. False means the lease was lost: roll back."""
    payload = json.dumps(result, default=str) if result is not None else None
    return (
        db.execute(_SUCCEED, {"id": job_id, "attempt": attempt, "result": payload}).first()
        is not None
    )


_SUCCEED_MANY_SQL = """
    UPDATE task_runs AS t
    SET status = 'succeeded', finished_at = now(), lease_expires_at = NULL,
        result = CAST(v.result AS jsonb), error_type = NULL, error_message = NULL,
        updated_at = now()
    FROM unnest(CAST(:done_ids AS uuid[]), CAST(:done_attempts AS int[]),
                CAST(:done_results AS text[])) AS v(id, attempt, result)
    WHERE t.id = v.id AND CASE WHEN t.status = 'running' THEN t.attempts = v.attempt ELSE false END
    RETURNING t.id
"""
_SUCCEED_MANY = text(_SUCCEED_MANY_SQL)


def mark_many_succeeded(
    conn: Executor, finished: list[tuple[uuid.UUID, int, str | None]]
) -> set[uuid.UUID]:
    """Finish several jobs that wrote nothing else (so nothing else must commit with them)."""
    rows = conn.execute(_SUCCEED_MANY, _finished_params(finished))
    return {uuid.UUID(str(row.id)) for row in rows}


def _finished_params(finished: list[tuple[uuid.UUID, int, str | None]]) -> dict[str, Any]:
    return {
        "done_ids": [str(job_id) for job_id, _, _ in finished],
        "done_attempts": [attempt for _, attempt, _ in finished],
        "done_results": [result for _, _, result in finished],
    }


# Both bookkeeping writes of a worker process in one statement: one round trip, and (on an
# autocommit connection) one implicit transaction, instead of BEGIN, two UPDATEs and COMMIT.
_FINISH_AND_CLAIM = text(
    "WITH finished AS (" + _SUCCEED_MANY_SQL + "), claimed AS (" + _CLAIM_SQL + ")"  # noqa: S608 - constants of this module, no input
    """
    SELECT true AS finished, id, NULL AS actor, NULL::int AS attempts, NULL::int AS max_attempts,
           NULL::uuid AS organization_id, NULL::jsonb AS args, NULL::bool AS recovered,
           NULL AS traceparent
    FROM finished
    UNION ALL
    SELECT false, id, actor, attempts, max_attempts, organization_id, args, recovered, traceparent
    FROM claimed
    """
)


def finish_and_claim(
    conn: Executor,
    finished: list[tuple[uuid.UUID, int, str | None]],
    job_ids: list[uuid.UUID | str],
    *,
    worker_id: str,
    lease_seconds: int,
    crash_cap: int,
) -> tuple[set[uuid.UUID], dict[uuid.UUID, Claim]]:
    """``mark_many_succeeded`` and ``claim_many`` in one statement; returns both answers.

    A job to finish and to claim in the same batch (a duplicate delivery arriving as the job
    ends) is claimed by a second statement, after the first: one statement must not update a
    row twice.
    """
    finishing = {str(job_id) for job_id, _, _ in finished}
    later = [j for j in job_ids if str(j) in finishing]
    now = [j for j in job_ids if str(j) not in finishing]
    rows = conn.execute(
        _FINISH_AND_CLAIM,
        _finished_params(finished)
        | {
            "ids": [str(j) for j in now],
            "worker": worker_id,
            "lease": lease_seconds,
            "crash_cap": crash_cap,
        },
    )
    done: set[uuid.UUID] = set()
    claims: dict[uuid.UUID, Claim] = {}
    for row in rows:
        if row.finished:
            done.add(uuid.UUID(str(row.id)))
        else:
            claims[uuid.UUID(str(row.id))] = _claim_from_row(row)
    if later:
        claims |= claim_many(
            conn, later, worker_id=worker_id, lease_seconds=lease_seconds, crash_cap=crash_cap
        )
    return done, claims


_FAIL = text(
    """
    UPDATE task_runs
    SET status = CAST(:status AS task_status),
        error_type = :error_type, error_message = :error_message,
        finished_at = CASE WHEN :terminal THEN now() ELSE NULL END,
        available_at = now() + make_interval(secs => :delay),
        published_at = NULL, lease_expires_at = NULL, updated_at = now()
    WHERE id = :id AND status = 'running' AND attempts = :attempt
    RETURNING status, attempts, max_attempts
    """
)


def backoff_seconds(attempt: int, base: float, ceiling: float) -> float:
    """Exponential backoff: base, 2·base, 4·base … capped (no jitter: the relay spreads load)."""
    return float(min(ceiling, base * (2 ** max(0, attempt - 1))))


def mark_failed(
    conn: Executor,
    job_id: uuid.UUID,
    attempt: int,
    *,
    error: BaseException,
    max_attempts: int,
    backoff_base: float,
    backoff_max: float,
) -> str | None:
    """Record a failed attempt in its own transaction; returns the new status.

    Permanent errors end the job as ``failed`` with the user-facing message. Anything else is
    retried with backoff until ``max_attempts``, then the job is ``dead``.
    """
    from are_workers.errors import TransientError

    if isinstance(error, PermanentError):
        status, message, delay = "failed", error.user_message, 0.0
        error_type = f"{type(error).__name__}:{error.code}"
    else:
        error_type = type(error).__name__
        detail = str(error) or error_type
        if attempt >= max_attempts:
            status, delay = "dead", 0.0
            message = (
                f"Gave up after {attempt} attempts. Last error: {detail}. "
                "Fix the cause, then run `are-workers jobs replay <job id>`."
            )
        else:
            status = "retrying"
            explicit = error.delay_seconds if isinstance(error, TransientError) else None
            delay = (
                explicit
                if explicit is not None
                else backoff_seconds(attempt, backoff_base, backoff_max)
            )
            message = f"Attempt {attempt} failed, retrying in {delay:.0f}s: {detail}"
    row = conn.execute(
        _FAIL,
        {
            "id": job_id,
            "attempt": attempt,
            "status": status,
            "error_type": error_type[:200],
            "error_message": message[:4000],
            "terminal": status != "retrying",
            "delay": delay,
        },
    ).first()
    return status if row else None


_HEARTBEAT = text(
    """
    UPDATE task_runs SET lease_expires_at = now() + make_interval(secs => :lease)
    WHERE id = ANY(CAST(:ids AS uuid[])) AND status = 'running' AND worker_id = :worker
    """
)


def renew_leases(conn: Executor, job_ids: list[uuid.UUID], *, worker_id: str, lease: int) -> int:
    if not job_ids:
        return 0
    result = conn.execute(
        _HEARTBEAT, {"ids": [str(j) for j in job_ids], "worker": worker_id, "lease": lease}
    )
    return int(getattr(result, "rowcount", 0) or 0)


# --- relay and sweeper -------------------------------------------------------------------

_DUE = text(
    """
    SELECT id, actor, queue_class, queue, args, priority
    FROM task_runs
    WHERE published_at IS NULL AND status IN ('queued', 'retrying') AND available_at <= now()
    ORDER BY priority, available_at
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
    """
)
_MARK_PUBLISHED = text(
    """
    UPDATE task_runs AS t SET published_at = now(), queue = u.queue
    FROM unnest(CAST(:ids AS uuid[]), CAST(:queues AS text[])) AS u(id, queue)
    WHERE t.id = u.id
    """
)


def lock_due(conn: Connection, limit: int) -> list[Row[Any]]:
    """Rows ready to publish, locked so concurrent relays never publish the same batch."""
    return list(conn.execute(_DUE, {"limit": limit}))


# The fair relay works one queue class at a time. Its statements share the outbox condition
# of ``ix_task_runs_fair_outbox`` and the in-flight condition of ``ix_task_runs_in_flight``,
# written exactly as in the index definitions so that the planner can prove them.
_OUTBOX = "published_at IS NULL AND status IN ('queued', 'retrying')"
_IN_FLIGHT = (
    "(status = 'running' OR (status IN ('queued', 'retrying') AND published_at IS NOT NULL))"
)
#: Stands for "no organization" (platform jobs) where SQL needs a value to compare.
NO_ORGANIZATION = uuid.UUID(int=0)

# The classes present in the outbox, by a skip scan over the index's first column (a few
# index probes, however long the backlog), and NULL if rows that pin a queue are there too.
_OUTBOX_CLASSES = text(
    f"""
    WITH RECURSIVE classes(queue_class) AS (
        (SELECT queue_class FROM task_runs WHERE queue_class IS NOT NULL AND {_OUTBOX}
         ORDER BY queue_class LIMIT 1)
        UNION ALL
        SELECT (SELECT t.queue_class FROM task_runs t
                WHERE t.queue_class > classes.queue_class
                  AND t.published_at IS NULL AND t.status IN ('queued', 'retrying')
                ORDER BY t.queue_class LIMIT 1)
        FROM classes WHERE classes.queue_class IS NOT NULL
    )
    SELECT queue_class FROM classes WHERE queue_class IS NOT NULL
    UNION ALL
    SELECT NULL WHERE EXISTS (SELECT FROM task_runs WHERE queue_class IS NULL AND {_OUTBOX})
    """  # noqa: S608 - module constants only
)
_WAITING = text(
    """
    SELECT queue, count(*) AS waiting FROM task_runs
    WHERE status IN ('queued', 'retrying') AND published_at IS NOT NULL
    GROUP BY queue
    """
)
_IN_FLIGHT_BY_ORG = text(
    f"""
    SELECT COALESCE(organization_id, CAST(:none AS uuid)) AS org, count(*) AS n
    FROM task_runs WHERE queue = :queue AND {_IN_FLIGHT}
    GROUP BY organization_id
    """  # noqa: S608 - module constants only
)
# Round-robin: each organization with due work on the class offers its next jobs in
# priority order (at most ``allowance`` of them: its room under ARE_ORG_MAX_IN_FLIGHT); the
# batch takes every organization's first job, then every second one, and so on. Locked in
# that order, skipping rows another relay holds, and re-checked after the lock (inside CASE,
# so that the lock reads the chosen rows by primary key, not the whole outbox by its index).
_DUE_FAIR = text(
    f"""
    WITH RECURSIVE orgs(org) AS (
        (SELECT organization_id FROM task_runs
         WHERE queue_class = :class AND organization_id IS NOT NULL AND {_OUTBOX}
         ORDER BY organization_id LIMIT 1)
        UNION ALL
        SELECT (SELECT t.organization_id FROM task_runs t
                WHERE t.queue_class = :class AND t.organization_id > orgs.org
                  AND t.published_at IS NULL AND t.status IN ('queued', 'retrying')
                ORDER BY t.organization_id LIMIT 1)
        FROM orgs WHERE orgs.org IS NOT NULL
    ),
    offered AS (
        SELECT j.* FROM orgs CROSS JOIN LATERAL (
            SELECT t.id, t.organization_id AS org, t.priority, t.available_at
            FROM task_runs t
            WHERE t.queue_class = :class AND t.organization_id = orgs.org
              AND t.published_at IS NULL AND t.status IN ('queued', 'retrying')
              AND t.available_at <= now()
            ORDER BY t.priority, t.available_at LIMIT :limit
        ) j
        WHERE orgs.org IS NOT NULL
        UNION ALL
        (SELECT id, CAST(:none AS uuid), priority, available_at FROM task_runs
         WHERE queue_class = :class AND organization_id IS NULL AND {_OUTBOX}
           AND available_at <= now()
         ORDER BY priority, available_at LIMIT :limit)
    ),
    ranked AS (
        SELECT o.id, o.priority, o.available_at,
               row_number() OVER (PARTITION BY o.org ORDER BY o.priority, o.available_at) AS turn,
               COALESCE(a.allowance, :default_allowance) AS allowance
        FROM offered o
        LEFT JOIN unnest(CAST(:orgs AS uuid[]), CAST(:allowances AS int[])) AS a(org, allowance)
            ON a.org = o.org
    ),
    chosen AS MATERIALIZED (
        SELECT id, turn, priority, available_at FROM ranked WHERE turn <= allowance
        ORDER BY turn, priority, available_at LIMIT :limit
    )
    SELECT t.id, t.actor, t.queue_class, t.queue, t.args, t.priority, t.organization_id
    FROM chosen c JOIN task_runs t ON t.id = c.id
    WHERE CASE WHEN t.published_at IS NULL THEN t.status IN ('queued', 'retrying') ELSE false END
    ORDER BY c.turn, c.priority, c.available_at
    FOR UPDATE OF t SKIP LOCKED
    """  # noqa: S608 - module constants only
)
# Rows that pin a queue instead of naming a class: published in priority order, uncapped.
_DUE_PINNED = text(
    f"""
    SELECT id, actor, queue_class, queue, args, priority, organization_id FROM task_runs
    WHERE queue_class IS NULL AND {_OUTBOX} AND available_at <= now()
    ORDER BY priority, available_at
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
    """  # noqa: S608 - module constants only
)
_DUE_OF_CLASS = text(
    f"""
    SELECT id, actor, queue_class, queue, args, priority, organization_id FROM task_runs
    WHERE queue_class = :class AND {_OUTBOX} AND available_at <= now()
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
    """  # noqa: S608 - module constants only
)
_TRY_LOCK_QUEUE = text("SELECT pg_try_advisory_xact_lock(hashtext('are-relay:' || :queue))")


def outbox_classes(conn: Connection) -> list[str | None]:
    """The queue classes that have unpublished jobs (due now or later); None stands for
    jobs that pin a queue instead of naming a class."""
    return list(conn.execute(_OUTBOX_CLASSES).scalars())


def waiting_in_broker(conn: Connection) -> dict[str, int]:
    """Published jobs no worker has claimed yet, per queue: the broker backlog as we sent it."""
    return {row.queue: int(row.waiting) for row in conn.execute(_WAITING)}


def in_flight_by_organization(conn: Connection, queue: str) -> dict[uuid.UUID, int]:
    """A queue's published-but-unclaimed and running jobs per organization
    (:data:`NO_ORGANIZATION` for platform jobs)."""
    rows = conn.execute(_IN_FLIGHT_BY_ORG, {"queue": queue, "none": NO_ORGANIZATION})
    return {uuid.UUID(str(row.org)): int(row.n) for row in rows}


def try_lock_queue(conn: Connection, queue: str) -> bool:
    """Take this transaction's turn at publishing to ``queue``; False if another relay has it.

    Why: each relay sizes its batch by the room under the queue's backlog cap; two relays
    filling the same queue at once would each take all of it.
    """
    return bool(conn.execute(_TRY_LOCK_QUEUE, {"queue": queue}).scalar_one())


def lock_due_fair(
    conn: Connection,
    queue_class: str,
    limit: int,
    *,
    org_cap: int | None = None,
    in_flight: dict[uuid.UUID, int] | None = None,
) -> list[Row[Any]]:
    """Up to ``limit`` due jobs of ``queue_class``, round-robin across organizations, locked.

    With ``org_cap`` (ARE_ORG_MAX_IN_FLIGHT), an organization gets at most its cap less its
    jobs ``in_flight`` (see :func:`in_flight_by_organization`).
    """
    if limit <= 0:
        return []
    allowances = {
        org: max(0, org_cap - n) for org, n in (in_flight or {}).items() if org_cap is not None
    }
    return list(
        conn.execute(
            _DUE_FAIR,
            {
                "class": queue_class,
                "limit": limit,
                "none": NO_ORGANIZATION,
                "orgs": [str(org) for org in allowances],
                "allowances": list(allowances.values()),
                "default_allowance": min(limit, org_cap) if org_cap is not None else limit,
            },
        )
    )


def lock_due_pinned(conn: Connection, limit: int) -> list[Row[Any]]:
    """Due jobs that pin a queue instead of naming a class, in priority order, locked."""
    return list(conn.execute(_DUE_PINNED, {"limit": limit}))


def lock_due_of_class(conn: Connection, queue_class: str, limit: int) -> list[Row[Any]]:
    """Due jobs of one class, in no particular order (for a class nobody serves)."""
    return list(conn.execute(_DUE_OF_CLASS, {"class": queue_class, "limit": limit}))


def route(row: Row[Any], queue_names: dict[str, str]) -> str | None:
    """The queue a ledger row goes to: its class mapped by this deployment's settings, or
    the queue it names (rows written before queue classes); None if it names neither."""
    if row.queue_class:
        return queue_names.get(row.queue_class)
    return row.queue or None


def mark_published(conn: Connection, published: list[tuple[uuid.UUID, str]]) -> None:
    """Mark rows published, recording the queue each went to."""
    conn.execute(
        _MARK_PUBLISHED,
        {"ids": [str(j) for j, _ in published], "queues": [q for _, q in published]},
    )


_EXPIRED_LEASES = text(
    """
    UPDATE task_runs
    SET crashes = crashes + 1,
        status = CASE WHEN crashes + 1 >= :crash_cap THEN 'dead' ELSE 'retrying' END::task_status,
        finished_at = CASE WHEN crashes + 1 >= :crash_cap THEN now() END,
        error_type = 'WorkerLost',
        error_message = CASE WHEN crashes + 1 >= :crash_cap
            THEN 'The worker running this job died ' || (crashes + 1) || ' times (killed, out of '
                 || 'memory, or a crash in native code). It will not be retried automatically; '
                 || 'inspect the input, then run `are-workers jobs replay ' || id || '`.'
            ELSE 'The worker running this job stopped responding; the job was re-queued.' END,
        published_at = NULL, lease_expires_at = NULL, updated_at = now()
    WHERE id IN (SELECT id FROM task_runs
                 WHERE status = 'running' AND lease_expires_at < now()
                 ORDER BY lease_expires_at LIMIT :limit FOR UPDATE SKIP LOCKED)
    RETURNING id, status, organization_id
    """
)

#: The job that runs a dead job's ``on_dead`` hook in a worker (the sweeper imports no actor).
DEAD_JOB_HANDLER = "system.handle_dead"


def recover_expired_leases(conn: Executor, *, crash_cap: int, limit: int = 1000) -> int:
    """Jobs whose worker died: re-queue them, or mark them dead at the crash cap.

    A job that reaches the cap gets a follow-up job, in the same transaction, that runs its
    actor's ``on_dead`` hook in a worker, so its entity says it gave up.
    """
    rows = list(conn.execute(_EXPIRED_LEASES, {"crash_cap": crash_cap, "limit": limit}))
    for row in rows:
        if row.status == "dead":
            enqueue(
                conn,
                DEAD_JOB_HANDLER,
                {"dead_job_id": str(row.id)},
                organization_id=row.organization_id,
                idempotency_key=f"dead:{row.id}",
            )
    return len(rows)


_STALE_PUBLISHED = text(
    """
    SELECT id, queue FROM task_runs
    WHERE status IN ('queued', 'retrying') AND published_at IS NOT NULL
      AND published_at < now() - make_interval(secs => :after)
    ORDER BY published_at
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
    """
)
_UNPUBLISH = text("UPDATE task_runs SET published_at = NULL WHERE id = ANY(CAST(:ids AS uuid[]))")


def stale_published(conn: Connection, *, after_seconds: float, limit: int = 1000) -> list[Row[Any]]:
    return list(conn.execute(_STALE_PUBLISHED, {"after": after_seconds, "limit": limit}))


def unpublish(conn: Connection, job_ids: list[uuid.UUID]) -> None:
    """Hand jobs back to the relay: their message never reached (or was lost by) the broker."""
    if job_ids:
        conn.execute(_UNPUBLISH, {"ids": [str(j) for j in job_ids]})


def fail_unclaimed(db: Executor, job_id: uuid.UUID | str, *, error: PermanentError) -> bool:
    """Fail a job that no worker can even start (e.g. an actor this deployment lacks)."""
    row = db.execute(
        text(
            """
            UPDATE task_runs SET status = 'failed', finished_at = now(), updated_at = now(),
                   error_type = :error_type, error_message = :message
            WHERE id = :id AND status IN ('queued', 'retrying')
            RETURNING id
            """
        ),
        {
            "id": str(job_id),
            "error_type": f"{type(error).__name__}:{error.code}",
            "message": error.user_message,
        },
    ).first()
    return row is not None


# --- operator actions --------------------------------------------------------------------


def cancel(db: Executor, job_id: uuid.UUID | str) -> bool:
    """Cancel a queued, retrying or running job. A running job's result will not commit."""
    row = db.execute(
        text(
            """
            UPDATE task_runs SET status = 'cancelled', finished_at = now(),
                   lease_expires_at = NULL, updated_at = now(),
                   error_message = 'Cancelled by an operator.'
            WHERE id = :id AND status IN ('queued', 'retrying', 'running')
            RETURNING id
            """
        ),
        {"id": str(job_id)},
    ).first()
    return row is not None


def replay(db: Executor, job_id: uuid.UUID | str) -> bool:
    """Re-queue a dead (or failed, cancelled) job with a fresh attempt and crash budget."""
    row = db.execute(
        text(
            """
            UPDATE task_runs SET status = 'queued', attempts = 0, crashes = 0,
                   published_at = NULL, available_at = now(), finished_at = NULL,
                   error_type = NULL, error_message = NULL, updated_at = now()
            WHERE id = :id AND status IN ('dead', 'failed', 'cancelled')
            RETURNING id
            """
        ),
        {"id": str(job_id)},
    ).first()
    return row is not None


def prune(db: Executor, *, older_than_days: int, batch: int = 10_000) -> int:
    """Delete old succeeded rows in batches (failed and dead rows are kept for people)."""
    total = 0
    while True:
        result = db.execute(
            text(
                """
                DELETE FROM task_runs WHERE id IN (
                    SELECT id FROM task_runs
                    WHERE status = 'succeeded'
                      AND finished_at < now() - make_interval(days => :days)
                    LIMIT :batch)
                """
            ),
            {"days": older_than_days, "batch": batch},
        )
        count = int(getattr(result, "rowcount", 0) or 0)
        total += count
        if count < batch:
            return total


# --- reading -------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobView:
    id: uuid.UUID
    actor: str
    queue: str
    status: str
    attempts: int
    crashes: int
    organization_id: uuid.UUID | None
    args: dict[str, Any]
    error_type: str | None
    error_message: str | None
    result: dict[str, Any] | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    worker_id: str | None
    traceparent: str | None = None  # the enqueuer's trace (tracing.trace_id_of reads its id)

    def as_dict(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, uuid.UUID | datetime) else v)
                for k, v in self.__dict__.items()}  # fmt: skip


def get_job(db: Executor, job_id: uuid.UUID | str) -> JobView | None:
    row = db.execute(
        text(
            """SELECT id, actor, queue, status::text AS status, attempts, crashes,
                      organization_id, args, error_type, error_message, result, created_at,
                      started_at, finished_at, worker_id, traceparent
               FROM task_runs WHERE id = :id"""
        ),
        {"id": str(job_id)},
    ).one_or_none()
    return JobView(**row._mapping) if row else None


def queue_depths(db: Executor) -> list[dict[str, Any]]:
    """Per-queue depth and age of the oldest waiting job: what an autoscaler (KEDA) reads."""
    rows = db.execute(
        text(
            """
            SELECT COALESCE(queue, queue_class) AS queue,
                   count(*) FILTER (WHERE status IN ('queued', 'retrying')
                                    AND available_at <= now()) AS ready,
                   count(*) FILTER (WHERE status = 'running') AS running,
                   count(*) FILTER (WHERE status = 'retrying') AS retrying,
                   COALESCE(EXTRACT(EPOCH FROM now() - min(available_at) FILTER (
                       WHERE status IN ('queued', 'retrying') AND available_at <= now())), 0)
                       AS oldest_age_s
            FROM task_runs
            WHERE status IN ('queued', 'retrying', 'running')
            GROUP BY 1 ORDER BY 1
            """
        )
    )
    return [dict(r._mapping) | {"oldest_age_s": float(r.oldest_age_s)} for r in rows]


def status_counts(db: Executor) -> dict[str, int]:
    rows = db.execute(text("SELECT status::text, count(*) FROM task_runs GROUP BY status"))
    return {status: int(count) for status, count in rows}


def recent_failures(db: Executor, limit: int = 10) -> list[dict[str, Any]]:
    rows = db.execute(
        text(
            """SELECT id, actor, status::text AS status, error_type, error_message, finished_at
               FROM task_runs WHERE status IN ('failed', 'dead')
               ORDER BY finished_at DESC NULLS LAST LIMIT :limit"""
        ),
        {"limit": limit},
    )
    return [
        {k: (str(v) if isinstance(v, uuid.UUID | datetime) else v) for k, v in r._mapping.items()}
        for r in rows
    ]
