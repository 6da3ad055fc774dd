"""``task_runs.queue_class``: enqueuers name a queue class; the relay maps it to a queue.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06

Why: an upstream app enqueueing by SQL had to mirror the workers' queue names
(``ARE_QUEUE_ML=ml-gpu`` on a GPU deployment), and a stale copy sent jobs to a queue no
worker reads. Now a row names its class (default, ml, media, compliance, …) and the relay
maps it with the worker side's settings, recording the queue it published to in ``queue``.
Rows that name only a queue keep working; a row must name one or the other.

Later schema changes build on this revision (keep one Alembic head).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("task_runs", sa.Column("queue_class", sa.String(length=32), nullable=True))
    op.alter_column("task_runs", "queue", existing_type=sa.String(length=64), nullable=True)
    op.create_check_constraint(
        op.f("ck_task_runs_routed"), "task_runs", "queue_class IS NOT NULL OR queue IS NOT NULL"
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_task_runs_routed"), "task_runs", type_="check")
    # A row that named only a class goes to that class's default queue name.
    op.execute(
        "UPDATE task_runs SET queue = CASE queue_class WHEN 'ml' THEN 'ml-cpu' "
        "ELSE queue_class END WHERE queue IS NULL"
    )
    op.alter_column("task_runs", "queue", existing_type=sa.String(length=64), nullable=False)
    op.drop_column("task_runs", "queue_class")
