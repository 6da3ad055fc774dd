"""AI chat: the candidate-facing assistant, screening bots and the recruiter copilot.

A session belongs to a candidate or to a member (never neither). Messages are personal
communication data and expire with the session: 365 days after its last message.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from are_workers.models.base import Model, TenantMixin, TimestampMixin, created_at_col
from are_workers.models.classification import (
    Anonymize,
    DataCategory,
    Holds,
    not_pii,
    pii,
    table_policy,
)
from are_workers.models.columns import (
    covered_ref_id,
    json_default,
    member_fk,
    opt_ref_id,
    opt_ts,
    pg_enum,
    tenant_fk,
    tenant_key,
)


class ChatKind(StrEnum):
    CANDIDATE_ASSISTANT = "candidate_assistant"
    SCREENING_BOT = "screening_bot"
    RECRUITER_COPILOT = "recruiter_copilot"


class ChatStatus(StrEnum):
    ACTIVE = "active"
    ESCALATED = "escalated"  # handed to a human
    CLOSED = "closed"


class ChatRole(StrEnum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"


class ChatSession(TenantMixin, TimestampMixin, Model):
    """A conversation with an AI assistant."""

    __tablename__ = "chat_sessions"

    kind: Mapped[ChatKind] = mapped_column(pg_enum(ChatKind, "chat_kind"), info=not_pii())
    status: Mapped[ChatStatus] = mapped_column(
        pg_enum(ChatStatus, "chat_status"), server_default=ChatStatus.ACTIVE.value, info=not_pii()
    )
    candidate_id: Mapped[opt_ref_id]
    user_id: Mapped[opt_ref_id]
    application_id: Mapped[opt_ref_id]
    model_version_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("ai_model_versions.id", ondelete="RESTRICT"),
        index=True,
        info=not_pii(DataCategory.TECHNICAL),
    )
    title: Mapped[str | None] = mapped_column(
        String(300), info=pii(DataCategory.COMMUNICATION, anonymize=Anonymize.NULL)
    )
    last_message_at: Mapped[datetime | None] = mapped_column(info=not_pii(DataCategory.TECHNICAL))
    closed_at: Mapped[opt_ts]

    messages: Mapped[list[ChatMessage]] = relationship(
        back_populates="session",
        foreign_keys="ChatMessage.session_id",
        order_by="ChatMessage.sequence",
        passive_deletes=True,
    )

    __table_args__ = (
        tenant_key(),
        tenant_fk("candidate_id", "candidates"),
        tenant_fk("application_id", "applications", ondelete="SET NULL"),
        member_fk("user_id"),
        CheckConstraint(
            "(candidate_id IS NOT NULL) OR (user_id IS NOT NULL)", name="has_participant"
        ),
        {
            "info": table_policy(
                retention_days=365,
                clock="last_message_at",
                subject="candidate_id",
                purpose="Answering candidates' questions and assisting recruiters.",
            )
        },
    )


class ChatMessage(TenantMixin, Model):
    """One message of a chat session, in order."""

    __tablename__ = "chat_messages"

    session_id: Mapped[covered_ref_id]
    sequence: Mapped[int] = mapped_column(Integer, info=not_pii())
    role: Mapped[ChatRole] = mapped_column(pg_enum(ChatRole, "chat_role"), info=not_pii())
    content: Mapped[str] = mapped_column(
        Text, info=pii(DataCategory.COMMUNICATION, anonymize=Anonymize.REDACT)
    )
    tool_calls: Mapped[list[Any] | None] = mapped_column(
        info=pii(DataCategory.COMMUNICATION, anonymize=Anonymize.NULL)
    )
    model_version_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("ai_model_versions.id", ondelete="RESTRICT"),
        index=True,
        info=not_pii(DataCategory.TECHNICAL),
    )
    tokens_in: Mapped[int | None] = mapped_column(Integer, info=not_pii())
    tokens_out: Mapped[int | None] = mapped_column(Integer, info=not_pii())
    metadata_: Mapped[dict[str, Any]] = mapped_column(
        "metadata", server_default=json_default(), info=not_pii(holds=Holds.METRICS)
    )  # latency, finish reason, safety flags
    created_at: Mapped[created_at_col]

    session: Mapped[ChatSession] = relationship(
        back_populates="messages", foreign_keys="ChatMessage.session_id"
    )

    __table_args__ = (
        tenant_fk("session_id", "chat_sessions"),
        UniqueConstraint("session_id", "sequence"),
        CheckConstraint("sequence >= 0", name="sequence_non_negative"),
        CheckConstraint(
            "(tokens_in IS NULL OR tokens_in >= 0) AND (tokens_out IS NULL OR tokens_out >= 0)",
            name="tokens_non_negative",
        ),
        {"info": table_policy(retention_days=None, purpose="Chat history.")},
    )
