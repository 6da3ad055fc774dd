"""Email and in-app communication: templates, sent messages, notifications, preferences,
and the suppression list (bounces and unsubscribes, honoured forever).

Sent messages are personal data of their recipient: the recipient address is an encrypted
copy (the candidate may later change or erase theirs), and bodies are redacted on erasure.
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

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
    encrypted_column,
    envelope_check,
    json_default,
    member_fk,
    opt_ref_id,
    opt_ts,
    pg_enum,
    task_run_ref,
    tenant_fk,
    tenant_key,
)


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    IN_APP = "in_app"


class MessageDirection(StrEnum):
    OUTBOUND = "outbound"
    INBOUND = "inbound"


class MessageStatus(StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    OPENED = "opened"
    BOUNCED = "bounced"
    FAILED = "failed"
    RECEIVED = "received"  # inbound


class SuppressionReason(StrEnum):
    HARD_BOUNCE = "hard_bounce"
    COMPLAINT = "complaint"
    UNSUBSCRIBED = "unsubscribed"


class EmailTemplate(TenantMixin, TimestampMixin, Model):
    """A versioned, localised message template (interview invite, rejection, ...)."""

    __tablename__ = "email_templates"

    key: Mapped[str] = mapped_column(String(100), info=not_pii(holds=Holds.CODE))
    locale: Mapped[str] = mapped_column(String(16), info=not_pii(holds=Holds.CODE))
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"), info=not_pii())
    subject: Mapped[str] = mapped_column(String(500), info=not_pii(holds=Holds.TENANT_TEXT))
    body_html: Mapped[str | None] = mapped_column(Text, info=not_pii(holds=Holds.TENANT_TEXT))
    body_text: Mapped[str] = mapped_column(Text, info=not_pii(holds=Holds.TENANT_TEXT))
    is_active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"), info=not_pii())

    __table_args__ = (
        tenant_key(),
        UniqueConstraint("organization_id", "key", "locale", "version"),
        CheckConstraint("version >= 1", name="version_positive"),
        {"info": table_policy(retention_days=None, purpose="Communication templates.")},
    )


class Message(TenantMixin, TimestampMixin, Model):
    """A message sent to (or received from) a candidate or member."""

    __tablename__ = "messages"

    channel: Mapped[Channel] = mapped_column(pg_enum(Channel, "channel"), info=not_pii())
    direction: Mapped[MessageDirection] = mapped_column(
        pg_enum(MessageDirection, "message_direction"), info=not_pii()
    )
    status: Mapped[MessageStatus] = mapped_column(
        pg_enum(MessageStatus, "message_status"),
        server_default=MessageStatus.QUEUED.value,
        info=not_pii(),
    )
    candidate_id: Mapped[opt_ref_id]
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True, info=not_pii(DataCategory.TECHNICAL)
    )
    application_id: Mapped[opt_ref_id]
    template_id: Mapped[opt_ref_id]
    to_address: Mapped[str] = encrypted_column(
        "messages", "to_address", DataCategory.CONTACT, anonymize=Anonymize.REDACT
    )
    subject: Mapped[str | None] = mapped_column(
        String(500), info=pii(DataCategory.COMMUNICATION, anonymize=Anonymize.REDACT)
    )
    body: Mapped[str | None] = mapped_column(
        Text, info=pii(DataCategory.COMMUNICATION, anonymize=Anonymize.NULL)
    )
    provider_message_id: Mapped[str | None] = mapped_column(
        String(255), info=not_pii(DataCategory.TECHNICAL, holds=Holds.REFERENCE)
    )
    error_message: Mapped[str | None] = mapped_column(
        Text, info=pii(DataCategory.TECHNICAL, anonymize=Anonymize.NULL)
    )
    task_run_id: Mapped[task_run_ref]
    sent_at: Mapped[opt_ts]
    delivered_at: Mapped[opt_ts]

    __table_args__ = (
        tenant_key(),
        tenant_fk("candidate_id", "candidates"),
        tenant_fk("application_id", "applications", ondelete="SET NULL"),
        tenant_fk("template_id", "email_templates", ondelete="SET NULL"),
        Index("uq_messages_provider_id", "provider_message_id", unique=True),
        CheckConstraint(
            "(candidate_id IS NOT NULL) OR (user_id IS NOT NULL)", name="has_recipient"
        ),
        envelope_check("to_address", redactable=True),
        {
            "info": table_policy(
                retention_days=730,
                clock="created_at",
                subject="candidate_id",
                purpose="Communication with candidates about their applications.",
            )
        },
    )


class Notification(TenantMixin, Model):
    """An in-app notification for a member ("evaluation ready", "interview tomorrow")."""

    __tablename__ = "notifications"

    user_id: Mapped[uuid.UUID] = mapped_column(info=not_pii(DataCategory.TECHNICAL))
    kind: Mapped[str] = mapped_column(String(100), info=not_pii(holds=Holds.CODE))
    title: Mapped[str] = mapped_column(
        String(300), info=pii(DataCategory.COMMUNICATION, anonymize=Anonymize.REDACT)
    )  # may name a candidate
    body: Mapped[str | None] = mapped_column(
        Text, info=pii(DataCategory.COMMUNICATION, anonymize=Anonymize.NULL)
    )
    entity_type: Mapped[str | None] = mapped_column(String(64), info=not_pii(holds=Holds.CODE))
    entity_id: Mapped[uuid.UUID | None] = mapped_column(info=not_pii(DataCategory.TECHNICAL))
    read_at: Mapped[opt_ts]
    created_at: Mapped[created_at_col]

    __table_args__ = (
        member_fk("user_id"),
        # The unread badge: a member's unread notifications, newest first.
        Index(
            "ix_notifications_unread",
            "user_id",
            "created_at",
            postgresql_where=text("read_at IS NULL"),
        ),
        Index("ix_notifications_user_created", "user_id", "created_at"),
        {
            "info": table_policy(
                retention_days=90,
                clock="created_at",
                subject="user_id",
                purpose="Keeping members informed.",
            )
        },
    )


class NotificationPreference(TenantMixin, TimestampMixin, Model):
    """Whether a member wants notifications of one kind on one channel."""

    __tablename__ = "notification_preferences"

    user_id: Mapped[uuid.UUID] = mapped_column(info=not_pii(DataCategory.TECHNICAL))
    kind: Mapped[str] = mapped_column(String(100), info=not_pii(holds=Holds.CODE))
    channel: Mapped[Channel] = mapped_column(pg_enum(Channel, "channel"), info=not_pii())
    enabled: Mapped[bool] = mapped_column(Boolean, info=not_pii())
    settings: Mapped[dict[str, Any]] = mapped_column(
        server_default=json_default(), info=not_pii(holds=Holds.CODE)
    )  # digest frequency, quiet hours

    __table_args__ = (
        member_fk("user_id"),
        UniqueConstraint("user_id", "organization_id", "kind", "channel"),
        {
            "info": table_policy(
                retention_days=None, subject="user_id", purpose="Honouring members' choices."
            )
        },
    )


class EmailSuppression(TenantMixin, Model):
    """An address we must not email again (by blind index, so no address is stored)."""

    __tablename__ = "email_suppressions"

    email_blind_index: Mapped[str] = mapped_column(
        String(64), info=pii(DataCategory.CONTACT, anonymize=Anonymize.DELETE_ROW)
    )
    reason: Mapped[SuppressionReason] = mapped_column(
        pg_enum(SuppressionReason, "suppression_reason"), info=not_pii()
    )
    created_at: Mapped[created_at_col]

    __table_args__ = (
        UniqueConstraint("organization_id", "email_blind_index"),
        CheckConstraint("email_blind_index ~ '^[0-9a-f]{64}$'", name="blind_index_hex"),
        {
            "info": table_policy(
                retention_days=None,
                clock="created_at",
                purpose="Honouring unsubscribes and bounces (kept while the tenant exists).",
            )
        },
    )
