"""Indexes for the fair relay: the outbox by queue class and organization, and jobs in flight.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06

Why: the relay now publishes round-robin across the organizations with due work on a queue
class, and holds back a queue whose broker backlog, or an organization whose jobs in flight,
reached a cap. ``ix_task_runs_fair_outbox`` lets it list the organizations with work on a
class (a skip scan) and read each one's next jobs in priority order without sorting the
backlog; ``ix_task_runs_in_flight`` counts a queue's published-but-unclaimed and running jobs
per organization, a set the caps keep small.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OUTBOX = "published_at IS NULL AND status IN ('queued', 'retrying')"
IN_FLIGHT = "status = 'running' OR (status IN ('queued', 'retrying') AND published_at IS NOT NULL)"


def upgrade() -> None:
    # CONCURRENTLY: a live ledger keeps taking enqueues and claims while the indexes build.
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_task_runs_fair_outbox",
            "task_runs",
            ["queue_class", "organization_id", "priority", "available_at"],
            unique=False,
            postgresql_where=sa.text(OUTBOX),
            postgresql_concurrently=True,
            if_not_exists=True,
        )
        op.create_index(
            "ix_task_runs_in_flight",
            "task_runs",
            ["queue", "organization_id"],
            unique=False,
            postgresql_where=sa.text(IN_FLIGHT),
            postgresql_concurrently=True,
            if_not_exists=True,
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index(
            "ix_task_runs_in_flight",
            table_name="task_runs",
            postgresql_concurrently=True,
            if_exists=True,
        )
        op.drop_index(
            "ix_task_runs_fair_outbox",
            table_name="task_runs",
            postgresql_concurrently=True,
            if_exists=True,
        )
