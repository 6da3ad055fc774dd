"""The retention circuit breaker: a target that would lose far more than recent completed
runs did stops the whole run before anything is touched, until an operator confirms it."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import (
    ColumnElement,
    select,
)
from sqlalchemy.orm import Session

from are_workers.config import Settings
from are_workers.errors import PermanentError
from are_workers.models.privacy import RetentionRun, RetentionRunStatus
from are_workers.services.compliance.retention_plan import CONFIRM_MARGIN

log = structlog.get_logger(__name__)

# --- the circuit breaker ---------------------------------------------------------------------


class RetentionBreakerError(PermanentError):
    code = "retention_breaker"


@dataclass(frozen=True)
class BreakerVerdict:
    tripped: dict[str, dict[str, int]]  # key → {"planned": n, "baseline": m, "allowed": a}

    @property
    def ok(self) -> bool:
        return not self.tripped


def runs_of(organization_id: uuid.UUID | None) -> ColumnElement[bool]:
    """The ``retention_runs`` of one scope: an organization's, or (``None``) the platform's.

    An organization's filter never matches a platform run (NULL), nor the reverse.
    """
    column = RetentionRun.__table__.c.organization_id
    return column.is_(None) if organization_id is None else column == organization_id


def baseline(session: Session, organization_id: uuid.UUID | None, history: int) -> dict[str, int]:
    """The most each target lost in one of the scope's recent completed (real) runs."""
    runs = RetentionRun.__table__
    rows = session.execute(
        select(runs.c.counts)
        .where(
            runs_of(organization_id),
            runs.c.status == RetentionRunStatus.COMPLETED,
            runs.c.dry_run.is_(False),
        )
        .order_by(runs.c.started_at.desc())
        .limit(history)
    ).scalars()
    return _most_per_target(rows)


def _most_per_target(runs: Iterable[dict[str, Any] | None]) -> dict[str, int]:
    out: dict[str, int] = {}
    for counts in runs:
        for key, value in (counts or {}).items():
            out[key] = max(out.get(key, 0), int(value))
    return out


def check_breaker(
    planned: dict[str, int],
    previous: dict[str, int],
    settings: Settings,
    confirmed: dict[str, int] | None = None,
) -> BreakerVerdict:
    tripped: dict[str, dict[str, int]] = {}
    for key, count in planned.items():
        allowed = max(
            settings.retention_breaker_min_rows,
            int(settings.retention_breaker_factor * previous.get(key, 0)),
            int((confirmed or {}).get(key, 0) * CONFIRM_MARGIN),
        )
        if count > allowed:
            tripped[key] = {"planned": count, "baseline": previous.get(key, 0), "allowed": allowed}
    return BreakerVerdict(tripped)


def breaker_message(run_id: uuid.UUID, verdict: BreakerVerdict) -> str:
    parts = [
        f"{key}: {v['planned']:,} rows (recent runs removed at most {v['baseline']:,})"
        for key, v in sorted(verdict.tripped.items())
    ]
    return (
        "Retention sweep stopped before deleting anything: it would remove far more than "
        "before — " + "; ".join(parts) + ". Check the clock and the retention settings; if "
        f"this is intended, run `are-workers compliance retention confirm {run_id}`."
    )
