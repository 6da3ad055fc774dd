"""Users: people who log in (recruiters, hiring managers, candidates using the portal).

Global tables: a user is one login for one person, who may be a member of several
organizations (an agency recruiter) or a candidate in several; tenant membership lives in
``organization_members``. The platform (not a tenant) is the controller of account data.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import Boolean, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from are_workers.models.base import Model, TimestampMixin, created_at_col
from are_workers.models.classification import (
    Anonymize,
    DataCategory,
    Holds,
    not_pii,
    pii,
    table_policy,
)
from are_workers.models.columns import encrypted_column, envelope_check, opt_ts, pg_enum

if TYPE_CHECKING:
    from are_workers.models.organizations import OrganizationMember


class MfaKind(StrEnum):
    TOTP = "totp"
    WEBAUTHN = "webauthn"
    RECOVERY_CODES = "recovery_codes"


class User(TimestampMixin, Model):
    """A login. Candidates without a portal account have no user row."""

    __tablename__ = "users"

    email: Mapped[str] = mapped_column(
        String(320), info=pii(DataCategory.CONTACT, anonymize=Anonymize.FAKE)
    )
    full_name: Mapped[str] = mapped_column(
        String(200), info=pii(DataCategory.IDENTITY, anonymize=Anonymize.FAKE)
    )
    password_hash: Mapped[str | None] = mapped_column(
        String(255), info=pii(DataCategory.AUTHENTICATION, anonymize=Anonymize.NULL)
    )
    locale: Mapped[str] = mapped_column(
        String(16), server_default="en", info=not_pii(holds=Holds.CODE)
    )
    timezone: Mapped[str] = mapped_column(
        String(64), server_default="UTC", info=not_pii(holds=Holds.CODE)
    )
    is_active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"), info=not_pii())
    is_platform_admin: Mapped[bool] = mapped_column(
        Boolean, server_default=text("false"), info=not_pii()
    )
    email_verified_at: Mapped[opt_ts]
    last_login_at: Mapped[opt_ts]
    deactivated_at: Mapped[opt_ts]

    memberships: Mapped[list[OrganizationMember]] = relationship(
        back_populates="user", passive_deletes=True
    )
    sessions: Mapped[list[UserSession]] = relationship(back_populates="user", passive_deletes=True)

    __table_args__ = (
        # Case-insensitive login: one account per address.
        Index("uq_users_email_lower", text("lower(email)"), unique=True),
        {
            "info": table_policy(
                retention_days=None,
                clock="deactivated_at",
                subject="id",
                purpose="User accounts: authentication and attribution of actions.",
            )
        },
    )


class UserSession(Model):
    """A login session (the token itself is never stored, only its hash)."""

    __tablename__ = "user_sessions"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"),
        index=True,
        info=not_pii(DataCategory.TECHNICAL),
    )
    token_hash: Mapped[str] = mapped_column(
        String(64), unique=True, info=not_pii(DataCategory.AUTHENTICATION, holds=Holds.REFERENCE)
    )
    ip_address: Mapped[str | None] = mapped_column(
        String(45),
        info=pii(DataCategory.TECHNICAL, anonymize=Anonymize.NULL, retention_days=30),
    )
    user_agent: Mapped[str | None] = mapped_column(
        Text, info=pii(DataCategory.TECHNICAL, anonymize=Anonymize.NULL, retention_days=30)
    )
    created_at: Mapped[created_at_col]
    last_seen_at: Mapped[opt_ts]
    expires_at: Mapped[datetime] = mapped_column(info=not_pii(DataCategory.TECHNICAL))
    revoked_at: Mapped[opt_ts]

    user: Mapped[User] = relationship(back_populates="sessions")

    __table_args__ = (
        {
            "info": table_policy(
                retention_days=90,
                clock="expires_at",
                subject="user_id",
                purpose="Authentication sessions; IP and user agent for security monitoring.",
            )
        },
    )


class MfaFactor(TimestampMixin, Model):
    """A second factor. Secrets are application-encrypted (AES-GCM)."""

    __tablename__ = "mfa_factors"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"),
        index=True,
        info=not_pii(DataCategory.TECHNICAL),
    )
    kind: Mapped[MfaKind] = mapped_column(pg_enum(MfaKind, "mfa_kind"), info=not_pii())
    label: Mapped[str | None] = mapped_column(
        String(100), info=pii(DataCategory.AUTHENTICATION, anonymize=Anonymize.NULL)
    )
    secret: Mapped[str] = encrypted_column(
        "mfa_factors", "secret", DataCategory.AUTHENTICATION, anonymize=Anonymize.DELETE_ROW
    )
    confirmed_at: Mapped[opt_ts]
    last_used_at: Mapped[opt_ts]

    __table_args__ = (
        envelope_check("secret"),
        {
            "info": table_policy(
                retention_days=None,
                clock="created_at",
                subject="user_id",
                purpose="Multi-factor authentication; lives as long as the account.",
            )
        },
    )
