"""Files: uploaded resumes, portfolios, videos and generated exports.

The bytes live under the storage dir (``storage_key`` is relative to it); the database holds
what the workers need to process them idempotently: a detected content type, a checksum,
and a status with a user-readable error. A file belongs to at most one candidate; deleting
the candidate deletes their files (erasure), and the retention task removes the bytes.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, Text, text
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
    covered_opt_ref_id,
    covered_ref_id,
    opt_ref_id,
    opt_ts,
    pg_enum,
    tenant_fk,
    tenant_key,
)

if TYPE_CHECKING:
    from are_workers.models.candidates import Candidate


class FileStatus(StrEnum):
    UPLOADED = "uploaded"
    PROCESSING = "processing"
    PROCESSED = "processed"
    FAILED = "failed"  # error_code / error_message say why, in words a recruiter understands
    DELETED = "deleted"  # bytes removed; the row remains while something still cites it


class FilePurpose(StrEnum):
    RESUME = "resume"
    COVER_LETTER = "cover_letter"
    PORTFOLIO = "portfolio"
    VIDEO = "video"
    AUDIO = "audio"
    PROCTORING_SNAPSHOT = "proctoring_snapshot"
    EXPORT = "export"  # a data subject access/portability package
    ATTACHMENT = "attachment"


class FileAccessAction(StrEnum):
    VIEW = "view"
    DOWNLOAD = "download"
    PROCESS = "process"  # a worker read it
    DELETE = "delete"


class File(TenantMixin, TimestampMixin, Model):
    """An uploaded or generated file."""

    __tablename__ = "files"

    storage_key: Mapped[str] = mapped_column(
        String(500), info=not_pii(DataCategory.TECHNICAL, holds=Holds.REFERENCE)
    )
    original_filename: Mapped[str] = mapped_column(
        # "Jane_Doe_CV.pdf": filenames routinely carry the person's name.
        String(255),
        info=pii(DataCategory.IDENTITY, anonymize=Anonymize.REDACT),
    )
    purpose: Mapped[FilePurpose] = mapped_column(
        pg_enum(FilePurpose, "file_purpose"), info=not_pii()
    )
    declared_content_type: Mapped[str | None] = mapped_column(
        String(255), info=not_pii(holds=Holds.CODE)
    )
    content_type: Mapped[str | None] = mapped_column(
        String(255), info=not_pii(holds=Holds.CODE)
    )  # detected from the bytes, never trusted from the upload
    size_bytes: Mapped[int] = mapped_column(BigInteger, info=not_pii(DataCategory.TECHNICAL))
    sha256: Mapped[str] = mapped_column(
        String(64), info=not_pii(DataCategory.TECHNICAL, holds=Holds.REFERENCE)
    )
    status: Mapped[FileStatus] = mapped_column(
        pg_enum(FileStatus, "file_status"),
        server_default=FileStatus.UPLOADED.value,
        info=not_pii(),
    )
    error_code: Mapped[str | None] = mapped_column(String(64), info=not_pii(holds=Holds.CODE))
    error_message: Mapped[str | None] = mapped_column(
        Text, info=pii(DataCategory.TECHNICAL, anonymize=Anonymize.NULL)
    )
    candidate_id: Mapped[opt_ref_id]
    uploaded_by_user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"),
        index=True,
        info=not_pii(DataCategory.TECHNICAL),
    )
    processed_at: Mapped[opt_ts]
    deleted_at: Mapped[opt_ts]

    candidate: Mapped[Candidate | None] = relationship(
        back_populates="files", foreign_keys="File.candidate_id"
    )
    versions: Mapped[list[FileVersion]] = relationship(
        back_populates="file", passive_deletes=True, order_by="FileVersion.version_number"
    )

    __table_args__ = (
        tenant_key(),
        tenant_fk("candidate_id", "candidates"),
        Index("uq_files_storage_key", "storage_key", unique=True),
        # Duplicate detection ("this resume was already uploaded") within a tenant.
        Index("ix_files_org_sha256", "organization_id", "sha256"),
        # The workers' scan for stuck or pending work.
        Index(
            "ix_files_pending",
            "status",
            "updated_at",
            postgresql_where=text("status IN ('uploaded', 'processing')"),
        ),
        CheckConstraint("size_bytes >= 0", name="size_non_negative"),
        CheckConstraint("sha256 ~ '^[0-9a-f]{64}$'", name="sha256_hex"),
        CheckConstraint(
            "status <> 'failed' OR error_code IS NOT NULL", name="failed_has_error_code"
        ),
        {
            "info": table_policy(
                retention_days=None,
                clock="created_at",
                subject="candidate_id",
                purpose="Documents and media submitted by or about candidates; "
                "lives as long as its owner (candidate, portfolio, interview).",
            )
        },
    )


class FileVersion(TenantMixin, Model):
    """A previous version of a file (a candidate re-uploads a corrected resume)."""

    __tablename__ = "file_versions"

    file_id: Mapped[covered_ref_id]
    version_number: Mapped[int] = mapped_column(Integer, info=not_pii(DataCategory.TECHNICAL))
    storage_key: Mapped[str] = mapped_column(
        String(500), unique=True, info=not_pii(DataCategory.TECHNICAL, holds=Holds.REFERENCE)
    )
    sha256: Mapped[str] = mapped_column(
        String(64), info=not_pii(DataCategory.TECHNICAL, holds=Holds.REFERENCE)
    )
    size_bytes: Mapped[int] = mapped_column(BigInteger, info=not_pii(DataCategory.TECHNICAL))
    created_at: Mapped[datetime] = mapped_column(
        server_default=text("now()"), info=not_pii(DataCategory.TECHNICAL)
    )

    file: Mapped[File] = relationship(back_populates="versions", foreign_keys="FileVersion.file_id")

    __table_args__ = (
        tenant_fk("file_id", "files"),
        Index("uq_file_versions_file_version", "file_id", "version_number", unique=True),
        CheckConstraint("version_number >= 1", name="version_positive"),
        CheckConstraint("size_bytes >= 0", name="size_non_negative"),
        {
            "info": table_policy(
                retention_days=None, purpose="File history; lives as long as its file."
            )
        },
    )


class FileAccessLog(TenantMixin, Model):
    """Who opened which file (SOC 2 access evidence). Append-only."""

    __tablename__ = "file_access_log"

    file_id: Mapped[covered_opt_ref_id]
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"),
        index=True,
        info=not_pii(DataCategory.TECHNICAL),
    )
    actor: Mapped[str] = mapped_column(
        String(100), info=not_pii(DataCategory.TECHNICAL, holds=Holds.REFERENCE)
    )  # "user", "worker:<actor name>", "api_key:<prefix>"
    action: Mapped[FileAccessAction] = mapped_column(
        pg_enum(FileAccessAction, "file_access_action"), info=not_pii()
    )
    ip_address: Mapped[str | None] = mapped_column(
        String(45), info=pii(DataCategory.TECHNICAL, anonymize=Anonymize.NULL, retention_days=90)
    )
    accessed_at: Mapped[datetime] = mapped_column(
        server_default=text("now()"), info=not_pii(DataCategory.TECHNICAL)
    )

    __table_args__ = (
        tenant_fk("file_id", "files", ondelete="SET NULL"),
        Index("ix_file_access_log_file_accessed", "file_id", "accessed_at"),
        {
            "info": table_policy(
                retention_days=365,
                clock="accessed_at",
                subject="user_id",
                purpose="Access evidence for security audits.",
            )
        },
    )
