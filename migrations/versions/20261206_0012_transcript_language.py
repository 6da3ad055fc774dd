"""``transcription_checkpoints.chunk_languages``: the language of every committed chunk.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06

Why: with a multilingual Whisper each chunk has its own detected language and probability.
The checkpoint kept only the last chunk's index, so a resumed transcription gave every
restored chunk the transcript's language so far and a probability of 1. Now the checkpoint
keeps ``[{language, probability}]`` for chunks 0..chunk_index_done; a checkpoint without
them (written before this revision) is not resumed but started over.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "transcription_checkpoints",
        sa.Column(
            "chunk_languages",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
    )


def downgrade() -> None:
    op.drop_column("transcription_checkpoints", "chunk_languages")
