"""The operators' dashboard: a worker registry, and indexes for its pages.

Revision ID: 0009
Revises: 0007
Create Date: 2026-12-06

Why: ``are-workers dashboard`` lists worker processes (each upserts its row on its lease
heartbeat) and reads the ledger by creation time (keyset pages, optionally by status or
actor) and by finishing time (the last hour's throughput). At a million ledger rows those
reads must go through indexes. The indexes are built ``CONCURRENTLY`` so that a live ledger
keeps taking jobs while they build.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEXES = (
    ("ix_task_runs_created", ["created_at", "id"], None),
    ("ix_task_runs_status_created", ["status", "created_at"], None),
    ("ix_task_runs_actor_created", ["actor", "created_at"], None),
    ("ix_task_runs_finished", ["finished_at"], "finished_at IS NOT NULL"),
)


def upgrade() -> None:
    op.create_table(
        "worker_registry",
        sa.Column("worker_id", sa.String(length=200), nullable=False),
        sa.Column("host", sa.String(length=200), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column(
            "queues",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column("threads", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("running_jobs", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "started_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "last_seen_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.CheckConstraint(
            "running_jobs >= 0", name=op.f("ck_worker_registry_running_jobs_non_negative")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_worker_registry")),
        sa.UniqueConstraint("worker_id", name=op.f("uq_worker_registry_worker_id")),
    )
    op.create_index("ix_worker_registry_last_seen", "worker_registry", ["last_seen_at"])
    with op.get_context().autocommit_block():
        for name, columns, where in _INDEXES:
            op.create_index(
                name,
                "task_runs",
                columns,
                postgresql_concurrently=True,
                postgresql_where=sa.text(where) if where else None,
                if_not_exists=True,
            )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        for name, _, _ in _INDEXES:
            op.drop_index(name, table_name="task_runs", postgresql_concurrently=True)
    op.drop_index("ix_worker_registry_last_seen", table_name="worker_registry")
    op.drop_table("worker_registry")
