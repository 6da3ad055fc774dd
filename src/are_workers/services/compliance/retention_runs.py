"""Where a retention run is recorded: ``retention_runs`` rows (an organization's, or the
platform's with no organization), their batches, and the result a job returns."""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

from are_workers.errors import InvalidInputError, NotFoundError
from are_workers.models.privacy import RetentionRun, RetentionRunStatus
from are_workers.services.compliance import audit
from are_workers.services.compliance.retention_breaker import BreakerVerdict, baseline
from are_workers.services.compliance.retention_plan import AUDIT_ACTIONS, RetentionPlan, Target

log = structlog.get_logger(__name__)

# --- where a run is recorded -------------------------------------------------------------------


@dataclass
class SweepResult:
    run_id: uuid.UUID
    status: str
    dry_run: bool
    counts: dict[str, int]
    planned: dict[str, int]
    files_deleted: int = 0
    batches: int = 0
    held: list[str] = field(default_factory=list)
    message: str | None = None
    #: What the run's record holds besides the counts (a platform run: scope and cut-offs).
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": str(self.run_id),
            "status": self.status,
            "dry_run": self.dry_run,
            "rows": sum(self.counts.values()),
            "counts": {k: v for k, v in self.counts.items() if v},
            "planned": {k: v for k, v in self.planned.items() if v},
            "files_deleted": self.files_deleted,
            "batches": self.batches,
            "held": self.held,
            "message": self.message,
            **self.details,
        }


class RunLog(ABC):
    """Where one sweep keeps its record: a ``retention_runs`` row (counts per target, the
    cut-offs and the breaker's numbers in ``horizons``, status, message), written in the
    sweep's session and committed with the batch it records.

    The two kinds differ only in what accompanies a batch or a stop at the breaker
    (:meth:`_on_batch`, :meth:`_on_tripped`) and in which runs are theirs: an
    organization's (:class:`TenantRunLog`) or the platform's, ``organization_id`` NULL
    (:class:`PlatformRunLog`). Each only ever reads runs of its own scope.
    """

    organization_id: uuid.UUID | None

    def __init__(self, session: Session, task_run_id: uuid.UUID | None) -> None:
        self.session = session
        self.task_run_id = task_run_id
        self.run: RetentionRun | None = None

    def confirmed(self, run_id: uuid.UUID | None) -> dict[str, int] | None:
        """What the run ``run_id`` of this scope planned when the breaker stopped it."""
        if run_id is None:
            return None
        run = self.session.get(RetentionRun, run_id)
        if run is None or run.organization_id != self.organization_id:
            raise NotFoundError(self._not_found(run_id))
        breaker = (run.horizons or {}).get("breaker")
        if run.status is not RetentionRunStatus.FAILED or not breaker:
            raise InvalidInputError(
                f"Retention run {run_id} did not stop at the circuit breaker; nothing to confirm."
            )
        return {key: int(v["planned"]) for key, v in breaker.items()}

    @abstractmethod
    def _not_found(self, run_id: uuid.UUID) -> str: ...

    def _run(self) -> RetentionRun:
        assert self.run is not None, "open() the run first"
        return self.run

    def open(self, the_plan: RetentionPlan, dry_run: bool) -> uuid.UUID:
        self.run = RetentionRun(
            organization_id=self.organization_id,
            dry_run=dry_run,
            counts={},
            horizons=the_plan.horizons(),
            task_run_id=self.task_run_id,
        )
        self.session.add(self.run)
        self.session.flush()
        return self.run.id

    def details(self) -> dict[str, Any]:
        return {}

    def baseline(self, history: int) -> dict[str, int]:
        return baseline(self.session, self.organization_id, history)

    def tripped(self, run_id: uuid.UUID, verdict: BreakerVerdict) -> None:
        run = self._run()
        run.horizons = {**run.horizons, "breaker": verdict.tripped}
        self._on_tripped(run_id, verdict)

    def batch(self, target: Target, rows: int, files: int, result: SweepResult) -> None:
        self._on_batch(target, _batch_refs(target, rows, files, result.run_id))
        self._run().counts = dict(result.counts)

    def close(self, result: SweepResult, status: RetentionRunStatus) -> None:
        finished_at = self.session.execute(text("SELECT clock_timestamp()")).scalar_one()
        run = self._run()
        run.counts = result.counts
        run.status = status
        run.error_message = result.message
        run.finished_at = finished_at

    @abstractmethod
    def _on_tripped(self, run_id: uuid.UUID, verdict: BreakerVerdict) -> None:
        """A stop's own record, besides the run's (the sweep logs it as well)."""

    @abstractmethod
    def _on_batch(self, target: Target, refs: dict[str, Any]) -> None:
        """The batch's own record, besides the run's counts."""


class TenantRunLog(RunLog):
    """An organization's run: its ``retention_runs`` row, and one audit row per batch."""

    organization_id: uuid.UUID

    def __init__(
        self, session: Session, organization_id: uuid.UUID, task_run_id: uuid.UUID | None
    ) -> None:
        super().__init__(session, task_run_id)
        self.organization_id = organization_id

    def _not_found(self, run_id: uuid.UUID) -> str:
        return f"Retention run {run_id} does not exist in this organization."

    def _on_tripped(self, run_id: uuid.UUID, verdict: BreakerVerdict) -> None:
        audit.record(
            self.session,
            organization_id=self.organization_id,
            action="retention.breaker_tripped",
            entity_type="retention_run",
            entity_id=run_id,
            output_refs={"tripped": verdict.tripped},
        )

    def _on_batch(self, target: Target, refs: dict[str, Any]) -> None:
        audit.record(
            self.session,
            organization_id=self.organization_id,
            action=AUDIT_ACTIONS[target.action],
            entity_type="table",
            output_refs=refs,
        )


class PlatformRunLog(RunLog):
    """A platform run: a ``retention_runs`` row with ``organization_id`` NULL, exactly like an
    organization's, and one ``retention_batch`` log event per batch in place of its audit
    row (``audit_log`` is tenant-only: each organization's hash chain)."""

    organization_id = None

    def _not_found(self, run_id: uuid.UUID) -> str:
        return f"Platform retention run {run_id} does not exist."

    def details(self) -> dict[str, Any]:
        return {"scope": "platform"}

    def _on_tripped(self, run_id: uuid.UUID, verdict: BreakerVerdict) -> None:
        pass  # the sweep's retention_breaker_tripped event is the record

    def _on_batch(self, target: Target, refs: dict[str, Any]) -> None:
        log.info("retention_batch", scope="platform", **refs)


def _batch_refs(target: Target, rows: int, files: int, run_id: uuid.UUID) -> dict[str, Any]:
    return {
        "target": target.key,
        "rows": rows,
        "files": files,
        "cutoff": target.cutoff.isoformat(),
        "rule": target.rule,
        "retention_run_id": str(run_id),
    }


# --- confirming a stopped run ------------------------------------------------------------------


@dataclass(frozen=True)
class Confirmation:
    """The sweep queued to finish a run the breaker stopped."""

    run_id: uuid.UUID
    organization_id: uuid.UUID | None  # None: the platform's run
    job_id: uuid.UUID
    actor: str


def confirm_stopped(session: Session | Connection, run_id: uuid.UUID) -> Confirmation | None:
    """Queue the sweep that lets a run stopped by the circuit breaker remove what it
    planned (and no more); ``None`` when no stopped run has that id.

    Idempotent: confirming twice queues one sweep (the key is the run's).
    """
    from are_workers import ledger
    from are_workers.services.compliance.retention_plan import PLATFORM_SWEEP_ACTOR

    row = session.execute(
        text(
            "SELECT organization_id, horizons ? 'breaker' AS tripped "
            "FROM retention_runs WHERE id = :i"
        ),  # an organization's run, or the platform's (organization_id NULL)
        {"i": run_id},
    ).first()
    if row is None or not row.tripped:
        return None
    actor = "compliance.retention_sweep" if row.organization_id else PLATFORM_SWEEP_ACTOR
    job_id = ledger.enqueue(
        session,
        actor,
        {"confirmed_run_id": str(run_id)},
        organization_id=row.organization_id,
        idempotency_key=f"confirm:{run_id}",
    )
    return Confirmation(run_id, row.organization_id, job_id, actor)
