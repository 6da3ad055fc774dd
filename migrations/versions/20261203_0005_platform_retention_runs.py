"""``retention_runs`` holds platform runs too (``organization_id`` NULL).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03

Why: the platform retention sweep (the global tables) recorded its run on its own job's
ledger row, which the ledger's own retention prunes long before a year, so the proof that
the platform enforced its retention went with it. A run without an organization is now a ``retention_runs`` row like
any other; the table becomes global (the platform sweep keeps it).

The foreign key to ``organizations``, its index and ``UNIQUE (organization_id, id)`` (the
target of ``erasure_records``' composite key) are unchanged. Downgrading deletes the
platform runs, which the old schema cannot hold.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.alter_column("retention_runs", "organization_id", nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM retention_runs WHERE organization_id IS NULL")
    op.alter_column("retention_runs", "organization_id", nullable=False)
