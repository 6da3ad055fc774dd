"""``task_runs.traceparent``: the enqueuer's trace context, continued by the worker.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06

Why: a job runs later, in another process, maybe enqueued from another language; the W3C
``traceparent`` written with the row lets the worker's spans (claim, actor, commit) join the
enqueuer's trace. Nullable: rows enqueued outside a trace, and every existing row, have none.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("task_runs", sa.Column("traceparent", sa.String(length=128), nullable=True))


def downgrade() -> None:
    op.drop_column("task_runs", "traceparent")
