"""The compliance vocabulary every column and table declares.

Why it lives on the columns: retention sweeps, erasure, export, encryption and the GDPR
Art. 30 data map are all driven from ``Base.metadata``, so a table added tomorrow is covered
the moment its columns are classified, and a column nobody classified fails a test.

Usage in a model::

    email: Mapped[str] = mapped_column(
        String(320), info=pii(DataCategory.CONTACT, anonymize=Anonymize.FAKE)
    )
    status: Mapped[str] = mapped_column(String(20), info=not_pii())

and on the table::

    __table_args__ = ({"info": table_policy(retention_days=365 * 2, clock="closed_at",
                                            subject="candidate_id")},)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

INFO_KEY = "compliance"
TABLE_INFO_KEY = "compliance_table"


class DataCategory(StrEnum):
    """GDPR data categories. ``special`` ones are Art. 9 special categories."""

    NONE = "none"
    IDENTITY = "identity"
    CONTACT = "contact"
    EMPLOYMENT = "employment"
    EDUCATION = "education"
    FINANCIAL = "financial"
    AUTHENTICATION = "authentication"
    COMMUNICATION = "communication"
    ASSESSMENT = "assessment"
    BEHAVIOURAL = "behavioural"
    TECHNICAL = "technical"
    # Art. 9 special categories
    BIOMETRIC = "biometric"
    HEALTH = "health"
    DEMOGRAPHIC = "demographic"  # racial/ethnic origin etc. from voluntary self-identification

    @property
    def special(self) -> bool:
        return self in {DataCategory.BIOMETRIC, DataCategory.HEALTH, DataCategory.DEMOGRAPHIC}


class Holds(StrEnum):
    """What a text, JSON or binary column *can* hold, whatever it holds today.

    Why a second axis next to ``pii``: "not personal" must be a property of what can be
    written into the column, not of what the seeders put there. A free-text column that a
    worker fills from an exception, a file name or an archive path can quote a person, so
    it is ``PERSONAL`` (and therefore ``pii``, and cleared by erasure), even if most rows
    hold boilerplate. ``tests/schema/test_free_text.py`` reads every text, varchar, JSON and
    bytea column from the live schema and fails on one that says nothing.
    """

    PERSONAL = "personal"  # may hold or quote a person's data (set by ``pii()``)
    CODE = "code"  # a vocabulary the code defines: statuses, kinds, codes, names of models
    REFERENCE = "reference"  # opaque ids, hashes, pseudonyms, keys; JSON of those
    METRICS = "metrics"  # numbers and structures the code computes (counts, scores, params)
    TENANT_TEXT = "tenant_text"  # an organization's own text about its jobs and settings
    PLATFORM_TEXT = "platform_text"  # the platform's catalogue (skills, plans)


class Anonymize(StrEnum):
    """What erasure and retention do to a column's value."""

    KEEP = "keep"  # not personal, or needed and not identifying (ids, statuses)
    NULL = "null"
    HASH = "hash"  # keyed hash: still joinable, no longer readable
    FAKE = "fake"  # a realistic placeholder ("Erased Candidate", erased+<id>@invalid)
    REDACT = "redact"  # a fixed marker string
    DELETE_ROW = "delete_row"  # the row cannot exist without this value


@dataclass(frozen=True)
class ColumnClassification:
    category: DataCategory
    pii: bool
    anonymize: Anonymize
    encrypted: bool = False
    retention_days: int | None = None  # None: the table's retention applies
    holds: Holds | None = None  # required for text, JSON and bytea columns

    def __post_init__(self) -> None:
        if self.encrypted and self.anonymize in {Anonymize.HASH, Anonymize.FAKE}:
            raise ValueError(
                "an encrypted column can only be nulled, redacted or have its row deleted: "
                "SQL cannot hash or fake ciphertext"
            )
        if self.pii and self.anonymize is Anonymize.KEEP:
            raise ValueError("a PII column must say how it is anonymized (not KEEP)")
        if self.category.special and not self.pii:
            raise ValueError("special-category data is always personal data")
        if (self.holds is Holds.PERSONAL) != self.pii:
            raise ValueError("a column that can hold personal data is PII, and only that one")


@dataclass(frozen=True)
class TablePolicy:
    """Table-level retention: how long rows live and from which date the clock runs.

    ``subject`` names the column that links a row to a data subject (a candidate or a user),
    which erasure and export follow. Precedence when deciding what to delete, written once:
    legal hold > organization override > column retention > table default.
    """

    retention_days: int | None
    clock: str = "created_at"
    subject: str | None = None
    purpose: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def pii(
    category: DataCategory,
    *,
    anonymize: Anonymize = Anonymize.NULL,
    encrypted: bool = False,
    retention_days: int | None = None,
) -> dict[str, ColumnClassification]:
    """``info=`` for a column holding personal data."""
    return {
        INFO_KEY: ColumnClassification(
            category=category,
            pii=True,
            anonymize=anonymize,
            encrypted=encrypted,
            retention_days=retention_days,
            holds=Holds.PERSONAL,
        )
    }


def not_pii(
    category: DataCategory = DataCategory.NONE, *, holds: Holds | None = None
) -> dict[str, ColumnClassification]:
    """``info=`` for a column that holds no personal data (ids, statuses, settings).

    A text, JSON or bytea column must say what it *can* hold (``holds``): why it cannot
    quote a person.
    """
    return {
        INFO_KEY: ColumnClassification(
            category=category, pii=False, anonymize=Anonymize.KEEP, holds=holds
        )
    }


def table_policy(
    *,
    retention_days: int | None,
    clock: str = "created_at",
    subject: str | None = None,
    purpose: str = "",
) -> dict[str, TablePolicy]:
    """``{"info": ...}`` entry for ``__table_args__``."""
    return {
        TABLE_INFO_KEY: TablePolicy(
            retention_days=retention_days, clock=clock, subject=subject, purpose=purpose
        )
    }


def classification_of(column: Any) -> ColumnClassification | None:
    return column.info.get(INFO_KEY)


def policy_of(table: Any) -> TablePolicy | None:
    return table.info.get(TABLE_INFO_KEY)
