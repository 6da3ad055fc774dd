"""The job ledger: the source of truth for every job, and the outbox that feeds the broker.

Why a table and not just the broker: Redis may restart with nothing persisted, and a worker
may be SIGKILLed mid-job. Every enqueue is an INSERT here inside the caller's transaction; a
relay publishes committed rows; a worker claims a row with one ``UPDATE … RETURNING`` and
finishes it in the same transaction as its side effects. The contract, as SQL, is in
``docs/job-ledger.md``.

Beside the ledger, ``schedule_overrides``: a tenant's or the platform's change to a periodic
job (another cron, or a pause) that the scheduler reads before enqueueing it here.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Enum,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from are_workers.models.base import Model, created_at_col, updated_at_col
from are_workers.models.classification import (
    Anonymize,
    DataCategory,
    Holds,
    not_pii,
    pii,
    table_policy,
)
from are_workers.models.columns import opt_ts

LEDGER_NOTIFY_CHANNEL = "are_task_runs_done"
OUTBOX_NOTIFY_CHANNEL = "are_task_runs_new"


class TaskStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    RETRYING = "retrying"
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # permanent error: shown to the user, never retried
    DEAD = "dead"  # retries exhausted or crash cap reached; `jobs replay` re-queues it
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset(
    {TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.DEAD, TaskStatus.CANCELLED}
)
task_status_enum = Enum(
    TaskStatus, name="task_status", values_callable=lambda e: [m.value for m in e]
)


class TaskRun(Model):
    """One job. Its id is also the Dramatiq message id."""

    __tablename__ = "task_runs"

    actor: Mapped[str] = mapped_column(
        String(100), info=not_pii(DataCategory.TECHNICAL, holds=Holds.CODE)
    )
    # What routes the job: the relay maps the class to this deployment's queue name and
    # writes that name into ``queue`` when it publishes. Rows that name only a queue (written
    # before classes existed, or pinned on purpose) go to that queue.
    queue_class: Mapped[str | None] = mapped_column(
        String(32), info=not_pii(DataCategory.TECHNICAL, holds=Holds.CODE)
    )
    queue: Mapped[str | None] = mapped_column(
        String(64), info=not_pii(DataCategory.TECHNICAL, holds=Holds.CODE)
    )
    args: Mapped[dict[str, Any]] = mapped_column(
        server_default=text("'{}'::jsonb"),
        info=not_pii(DataCategory.TECHNICAL, holds=Holds.REFERENCE),
    )
    organization_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), info=not_pii(DataCategory.TECHNICAL)
    )
    idempotency_key: Mapped[str | None] = mapped_column(
        String(200), info=not_pii(DataCategory.TECHNICAL, holds=Holds.REFERENCE)
    )
    priority: Mapped[int] = mapped_column(
        SmallInteger, server_default=text("0"), info=not_pii(DataCategory.TECHNICAL)
    )
    status: Mapped[TaskStatus] = mapped_column(
        task_status_enum, server_default=TaskStatus.QUEUED.value, info=not_pii()
    )
    attempts: Mapped[int] = mapped_column(
        Integer, server_default=text("0"), info=not_pii(DataCategory.TECHNICAL)
    )
    max_attempts: Mapped[int] = mapped_column(
        Integer, server_default=text("6"), info=not_pii(DataCategory.TECHNICAL)
    )
    crashes: Mapped[int] = mapped_column(
        Integer, server_default=text("0"), info=not_pii(DataCategory.TECHNICAL)
    )
    error_type: Mapped[str | None] = mapped_column(String(200), info=not_pii(holds=Holds.CODE))
    error_message: Mapped[str | None] = mapped_column(
        Text, info=pii(DataCategory.TECHNICAL, anonymize=Anonymize.NULL)
    )
    result: Mapped[dict[str, Any] | None] = mapped_column(info=not_pii(holds=Holds.METRICS))
    available_at: Mapped[datetime] = mapped_column(
        server_default=func.now(), info=not_pii(DataCategory.TECHNICAL)
    )
    published_at: Mapped[datetime | None] = mapped_column(info=not_pii(DataCategory.TECHNICAL))
    started_at: Mapped[datetime | None] = mapped_column(info=not_pii(DataCategory.TECHNICAL))
    finished_at: Mapped[datetime | None] = mapped_column(info=not_pii(DataCategory.TECHNICAL))
    lease_expires_at: Mapped[datetime | None] = mapped_column(info=not_pii(DataCategory.TECHNICAL))
    worker_id: Mapped[str | None] = mapped_column(
        String(200), info=not_pii(DataCategory.TECHNICAL, holds=Holds.REFERENCE)
    )
    # The enqueuer's W3C trace context (``00-<trace id>-<span id>-<flags>``), NULL outside a
    # trace: the worker continues that trace (are_workers.tracing). A malformed value only
    # means the job starts a trace of its own.
    traceparent: Mapped[str | None] = mapped_column(
        String(128), info=not_pii(DataCategory.TECHNICAL, holds=Holds.REFERENCE)
    )
    created_at: Mapped[created_at_col]
    updated_at: Mapped[updated_at_col]

    __table_args__ = (
        CheckConstraint("attempts >= 0", name="attempts_non_negative"),
        CheckConstraint("max_attempts >= 1", name="max_attempts_positive"),
        CheckConstraint("crashes >= 0", name="crashes_non_negative"),
        CheckConstraint("queue_class IS NOT NULL OR queue IS NOT NULL", name="routed"),
        # One live job per (organization, actor, idempotency key). NULLS NOT DISTINCT so that
        # global jobs (no organization) are deduplicated too (PG 15+).
        Index(
            "uq_task_runs_idempotency",
            "organization_id",
            "actor",
            "idempotency_key",
            unique=True,
            postgresql_where=text("idempotency_key IS NOT NULL"),
            postgresql_nulls_not_distinct=True,
        ),
        # The relay's scan: unpublished, due work in priority order.
        Index(
            "ix_task_runs_outbox",
            "priority",
            "available_at",
            postgresql_where=text("published_at IS NULL AND status IN ('queued', 'retrying')"),
        ),
        # The fair relay: the organizations with work on a queue class (a skip scan), and
        # each one's next jobs in priority order.
        Index(
            "ix_task_runs_fair_outbox",
            "queue_class",
            "organization_id",
            "priority",
            "available_at",
            postgresql_where=text("published_at IS NULL AND status IN ('queued', 'retrying')"),
        ),
        # Jobs in flight per queue and organization (published but unclaimed, or running):
        # the relay's backlog cap and ARE_ORG_MAX_IN_FLIGHT count them. Small by design.
        Index(
            "ix_task_runs_in_flight",
            "queue",
            "organization_id",
            postgresql_where=text(
                "status = 'running' OR (status IN ('queued', 'retrying') "
                "AND published_at IS NOT NULL)"
            ),
        ),
        # The sweeper's scans: expired leases, and published-but-never-claimed jobs.
        Index(
            "ix_task_runs_lease",
            "lease_expires_at",
            postgresql_where=text("status = 'running'"),
        ),
        Index(
            "ix_task_runs_published",
            "published_at",
            postgresql_where=text("status IN ('queued', 'retrying') AND published_at IS NOT NULL"),
        ),
        Index("ix_task_runs_status_queue", "status", "queue"),
        Index("ix_task_runs_org_created", "organization_id", "created_at"),
        # The dashboard's pages (``are_workers/dashboard``): the job list newest first (keyset
        # on created_at, id), by status and by actor (schedules' and audits' last runs too),
        # and the last hour's throughput by finishing time.
        Index("ix_task_runs_created", "created_at", "id"),
        Index("ix_task_runs_status_created", "status", "created_at"),
        Index("ix_task_runs_actor_created", "actor", "created_at"),
        Index(
            "ix_task_runs_finished",
            "finished_at",
            postgresql_where=text("finished_at IS NOT NULL"),
        ),
        {
            "info": table_policy(
                retention_days=90,
                clock="finished_at",
                purpose="Operational job ledger; holds ids only, never personal data.",
            )
        },
    )


class ScheduleOverride(Model):
    """An override of a periodic job: another cron, or paused (per tenant or platform-wide).

    ``organization_id`` NULL means the whole platform (ops pausing a schedule), so this is
    the one table where the tenant column is optional.
    """

    __tablename__ = "schedule_overrides"

    organization_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"),
        index=True,
        info=not_pii(DataCategory.TECHNICAL),
    )
    schedule_name: Mapped[str] = mapped_column(String(100), info=not_pii(holds=Holds.CODE))
    cron: Mapped[str | None] = mapped_column(String(100), info=not_pii(holds=Holds.CODE))
    paused: Mapped[bool] = mapped_column(Boolean, server_default=text("false"), info=not_pii())
    paused_until: Mapped[opt_ts]
    reason: Mapped[str | None] = mapped_column(Text, info=not_pii(holds=Holds.PLATFORM_TEXT))
    updated_by_user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"),
        index=True,
        info=not_pii(DataCategory.TECHNICAL),
    )
    created_at: Mapped[created_at_col]
    updated_at: Mapped[datetime] = mapped_column(
        server_default=text("now()"), onupdate=text("now()"), info=not_pii(DataCategory.TECHNICAL)
    )

    __table_args__ = (
        UniqueConstraint("organization_id", "schedule_name", postgresql_nulls_not_distinct=True),
        CheckConstraint("cron IS NOT NULL OR paused", name="overrides_something"),
        {"info": table_policy(retention_days=None, purpose="Operating periodic jobs.")},
    )


class WorkerRegistration(Model):
    """A worker process, as it last reported itself: which queues, since when, how busy.

    Each worker child upserts its row on every lease heartbeat and marks it stopped when it
    drains, so the dashboard can list live workers and spot silent ones (``last_seen_at``
    falling behind). Rows not seen for a week are deleted by the next worker that starts.
    """

    __tablename__ = "worker_registry"

    worker_id: Mapped[str] = mapped_column(
        String(200), unique=True, info=not_pii(DataCategory.TECHNICAL, holds=Holds.REFERENCE)
    )  # "<host>/<pid>", as task_runs.worker_id names it
    host: Mapped[str] = mapped_column(
        String(200), info=not_pii(DataCategory.TECHNICAL, holds=Holds.REFERENCE)
    )
    pid: Mapped[int] = mapped_column(Integer, info=not_pii(DataCategory.TECHNICAL))
    queues: Mapped[list[Any]] = mapped_column(
        server_default=text("'[]'::jsonb"),
        info=not_pii(DataCategory.TECHNICAL, holds=Holds.CODE),
    )
    threads: Mapped[int] = mapped_column(
        Integer, server_default=text("0"), info=not_pii(DataCategory.TECHNICAL)
    )
    running_jobs: Mapped[int] = mapped_column(
        Integer, server_default=text("0"), info=not_pii(DataCategory.TECHNICAL)
    )
    started_at: Mapped[datetime] = mapped_column(
        server_default=func.now(), info=not_pii(DataCategory.TECHNICAL)
    )
    last_seen_at: Mapped[datetime] = mapped_column(
        server_default=func.now(), info=not_pii(DataCategory.TECHNICAL)
    )
    stopped_at: Mapped[opt_ts]

    __table_args__ = (
        Index("ix_worker_registry_last_seen", "last_seen_at"),
        CheckConstraint("running_jobs >= 0", name="running_jobs_non_negative"),
        {
            "info": table_policy(
                retention_days=None,
                clock="last_seen_at",
                purpose="Operating the worker pools: which processes run, no personal data.",
            )
        },
    )
