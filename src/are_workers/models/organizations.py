"""Organizations (tenants) and who works in them.

Each organization is the GDPR controller of its own data; we process it on its behalf.
``organizations`` itself is global (it *is* the tenant registry). Everything else here is
tenant-owned. ``organization_members`` is also the target of :func:`member_fk`, so a user
acting inside a tenant (interviewer, note author) must be a member of that tenant.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from are_workers.models.base import Model, TenantMixin, TimestampMixin
from are_workers.models.classification import (
    Anonymize,
    DataCategory,
    Holds,
    not_pii,
    pii,
    table_policy,
)
from are_workers.models.columns import (
    json_default,
    member_fk,
    opt_ref_id,
    opt_ts,
    pg_enum,
    ref_id,
    tenant_fk,
    tenant_key,
)

if TYPE_CHECKING:
    from are_workers.models.users import User


class OrganizationStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"  # unpaid: read-only, workers skip its jobs
    CLOSED = "closed"  # contract ended: data is deleted after the notice period


class MemberRole(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    RECRUITER = "recruiter"
    HIRING_MANAGER = "hiring_manager"
    INTERVIEWER = "interviewer"
    VIEWER = "viewer"


member_role_enum = pg_enum(MemberRole, "member_role")


class MemberStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"


class Organization(TimestampMixin, Model):
    """A customer (tenant). Deleting one cascades to every tenant-owned row."""

    __tablename__ = "organizations"

    name: Mapped[str] = mapped_column(
        String(200), info=not_pii(DataCategory.NONE, holds=Holds.TENANT_TEXT)
    )
    slug: Mapped[str] = mapped_column(
        String(100), unique=True, info=not_pii(DataCategory.NONE, holds=Holds.TENANT_TEXT)
    )
    status: Mapped[OrganizationStatus] = mapped_column(
        pg_enum(OrganizationStatus, "organization_status"),
        server_default=OrganizationStatus.ACTIVE.value,
        info=not_pii(),
    )
    default_language: Mapped[str] = mapped_column(
        String(16), server_default="en", info=not_pii(holds=Holds.CODE)
    )
    settings: Mapped[dict[str, Any]] = mapped_column(
        server_default=json_default(), info=not_pii(holds=Holds.TENANT_TEXT)
    )
    closed_at: Mapped[opt_ts]

    members: Mapped[list[OrganizationMember]] = relationship(
        back_populates="organization", passive_deletes=True
    )

    __table_args__ = (
        {
            "info": table_policy(
                retention_days=None,
                clock="closed_at",
                purpose="Tenant registry; kept for the life of the contract.",
            )
        },
    )


class OrganizationMember(TenantMixin, TimestampMixin, Model):
    """A user's membership and role in one organization."""

    __tablename__ = "organization_members"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"),
        index=True,
        info=not_pii(DataCategory.TECHNICAL),
    )
    role: Mapped[MemberRole] = mapped_column(member_role_enum, info=not_pii())
    status: Mapped[MemberStatus] = mapped_column(
        pg_enum(MemberStatus, "member_status"),
        server_default=MemberStatus.ACTIVE.value,
        info=not_pii(),
    )
    job_title: Mapped[str | None] = mapped_column(
        String(200), info=pii(DataCategory.EMPLOYMENT, anonymize=Anonymize.NULL)
    )

    organization: Mapped[Organization] = relationship(back_populates="members")
    user: Mapped[User] = relationship(back_populates="memberships")

    __table_args__ = (
        tenant_key(),
        UniqueConstraint("organization_id", "user_id"),
        {
            "info": table_policy(
                retention_days=None,
                clock="updated_at",
                subject="user_id",
                purpose="Access control: who may act in which organization.",
            )
        },
    )


class Department(TenantMixin, TimestampMixin, Model):
    """An org unit that owns jobs (reporting and access scoping)."""

    __tablename__ = "departments"

    name: Mapped[str] = mapped_column(String(200), info=not_pii(holds=Holds.TENANT_TEXT))
    parent_id: Mapped[opt_ref_id]
    cost_center: Mapped[str | None] = mapped_column(
        String(64), info=not_pii(holds=Holds.TENANT_TEXT)
    )

    __table_args__ = (
        tenant_key(),
        UniqueConstraint("organization_id", "name"),
        tenant_fk("parent_id", "departments", ondelete="SET NULL"),
        CheckConstraint("parent_id IS DISTINCT FROM id", name="not_own_parent"),
        {"info": table_policy(retention_days=None, purpose="Organization structure.")},
    )


class Team(TenantMixin, TimestampMixin, Model):
    """A group of members (a recruiting pod), used to share pipelines and notifications."""

    __tablename__ = "teams"

    name: Mapped[str] = mapped_column(String(200), info=not_pii(holds=Holds.TENANT_TEXT))
    department_id: Mapped[opt_ref_id]

    __table_args__ = (
        tenant_key(),
        UniqueConstraint("organization_id", "name"),
        tenant_fk("department_id", "departments", ondelete="SET NULL"),
        {"info": table_policy(retention_days=None, purpose="Organization structure.")},
    )


class TeamMember(TenantMixin, Model):
    """Membership of a team; the user must be a member of the same organization."""

    __tablename__ = "team_members"

    team_id: Mapped[ref_id]
    user_id: Mapped[ref_id]
    created_at: Mapped[datetime] = mapped_column(
        server_default=text("now()"), info=not_pii(DataCategory.TECHNICAL)
    )

    __table_args__ = (
        UniqueConstraint("team_id", "user_id"),
        tenant_fk("team_id", "teams"),
        member_fk("user_id"),
        {
            "info": table_policy(
                retention_days=None, subject="user_id", purpose="Organization structure."
            )
        },
    )


class Invitation(TenantMixin, TimestampMixin, Model):
    """An invitation to join an organization, sent to an email address."""

    __tablename__ = "invitations"

    email: Mapped[str] = mapped_column(
        String(320), info=pii(DataCategory.CONTACT, anonymize=Anonymize.DELETE_ROW)
    )
    role: Mapped[MemberRole] = mapped_column(member_role_enum, info=not_pii())
    token_hash: Mapped[str] = mapped_column(
        String(64), unique=True, info=not_pii(DataCategory.AUTHENTICATION, holds=Holds.REFERENCE)
    )
    invited_by_user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"),
        index=True,
        info=not_pii(DataCategory.TECHNICAL),
    )
    expires_at: Mapped[datetime] = mapped_column(info=not_pii(DataCategory.TECHNICAL))
    accepted_at: Mapped[opt_ts]
    revoked_at: Mapped[opt_ts]

    __table_args__ = (
        # One pending invitation per address and organization.
        Index(
            "uq_invitations_pending",
            "organization_id",
            text("lower(email)"),
            unique=True,
            postgresql_where=text("accepted_at IS NULL AND revoked_at IS NULL"),
        ),
        {
            "info": table_policy(
                retention_days=30, clock="expires_at", purpose="Onboarding of new members."
            )
        },
    )


class ApiKey(TenantMixin, TimestampMixin, Model):
    """An organization's integration key (the ATS backend enqueues jobs with it)."""

    __tablename__ = "api_keys"

    name: Mapped[str] = mapped_column(String(100), info=not_pii(holds=Holds.TENANT_TEXT))
    prefix: Mapped[str] = mapped_column(
        String(16), info=not_pii(DataCategory.TECHNICAL, holds=Holds.REFERENCE)
    )
    key_hash: Mapped[str] = mapped_column(
        String(64), unique=True, info=not_pii(DataCategory.AUTHENTICATION, holds=Holds.REFERENCE)
    )
    scopes: Mapped[list[Any]] = mapped_column(
        server_default=json_default("[]"), info=not_pii(holds=Holds.CODE)
    )
    created_by_user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"),
        index=True,
        info=not_pii(DataCategory.TECHNICAL),
    )
    last_used_at: Mapped[opt_ts]
    expires_at: Mapped[opt_ts]
    revoked_at: Mapped[opt_ts]

    __table_args__ = (
        {
            "info": table_policy(
                retention_days=365, clock="revoked_at", purpose="Machine access for integrations."
            )
        },
    )
