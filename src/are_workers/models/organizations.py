"""Organizations (tenants). Each organization is the GDPR controller of its own data."""

from __future__ import annotations

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from are_workers.models.base import Model, TimestampMixin
from are_workers.models.classification import DataCategory, not_pii, table_policy


class Organization(TimestampMixin, Model):
    __tablename__ = "organizations"

    name: Mapped[str] = mapped_column(String(200), info=not_pii(DataCategory.NONE))
    slug: Mapped[str] = mapped_column(String(100), unique=True, info=not_pii(DataCategory.NONE))

    __table_args__ = (
        {"info": table_policy(retention_days=None, purpose="Tenant registry; kept for contract.")},
    )
