"""Compliance actors: thin wrappers that take ids and call ``services/compliance``.

The scheduler enqueues most of them (``are_workers.scheduler.DEFAULT_SCHEDULES``), passing
``scheduled_for``; the ATS enqueues ``compliance.process_dsr`` when a request arrives.

Sweeps, sealing and key rotation commit in batches on the job's session (a long run holds
no long locks, and a crash loses one batch of progress); their work is idempotent, so a
job that runs twice after losing its lease repeats nothing harmful. Erasure and export
commit once, together with the job's completion.
"""

from __future__ import annotations

import uuid
from typing import Any

from are_workers.errors import InvalidInputError, PermanentError
from are_workers.job_context import current_job
from are_workers.tasks.base import job_actor


class AuditChainBrokenError(PermanentError):
    """Verification found a broken link: a person must investigate (never retried)."""

    code = "audit_chain_broken"


def _organization(organization_id: uuid.UUID | None) -> uuid.UUID:
    """The job's tenant: its ledger row's organization, or an explicit argument."""
    job_org = current_job().organization_id
    chosen = organization_id or job_org
    if chosen is None:
        raise InvalidInputError("This job needs an organization: enqueue it for one.")
    if job_org is not None and chosen != job_org:
        raise InvalidInputError("A job may only act on its own organization.")
    return chosen


@job_actor("compliance.retention_sweep")
def retention_sweep(
    organization_id: uuid.UUID | None = None,
    dry_run: bool = False,
    confirmed_run_id: uuid.UUID | None = None,
    **_schedule: Any,
) -> dict[str, Any]:
    """Delete or anonymize what outlived its retention in one organization."""
    from are_workers.services.compliance.retention import sweep

    job = current_job()
    result = sweep(
        job.session,
        _organization(organization_id),
        dry_run=bool(dry_run),
        confirmed_run_id=confirmed_run_id,
    )
    return result.as_dict()


@job_actor("compliance.process_dsr")
def process_dsr(request_id: uuid.UUID, **_schedule: Any) -> dict[str, Any]:
    """Carry out a data subject request (erasure or export) before its deadline."""
    from are_workers.services.compliance.dsr import process_request

    job = current_job()
    return process_request(
        job.session,
        request_id,
        organization_id=job.organization_id,
    )


@job_actor("compliance.process_due_dsrs")
def process_due_dsrs(**_schedule: Any) -> dict[str, Any]:
    """Queue every open request no job has picked up yet (a safety net for the ATS)."""
    from are_workers.services.compliance.dsr import enqueue_due

    return {"queued": len(enqueue_due(current_job().session))}


@job_actor("compliance.seal_audit_chain")
def seal_audit_chain(organization_id: uuid.UUID | None = None, **_schedule: Any) -> dict[str, Any]:
    """Hash-chain the audit rows written since the last seal (every organization)."""
    from are_workers.services.compliance import audit_chain

    session = current_job().session
    if organization_id:
        sealed = {str(organization_id): audit_chain.seal(session, _organization(organization_id))}
    else:
        sealed = audit_chain.seal_all(session)
    return {"sealed": sum(sealed.values()), "organizations": len(sealed)}


@job_actor("compliance.export_audit_head")
def export_audit_head(**_schedule: Any) -> dict[str, Any]:
    """Sign each organization's chain head and write it outside the database."""
    from are_workers.services.compliance import audit_chain

    session = current_job().session
    audit_chain.seal_all(session)
    heads = audit_chain.export_heads(session)
    return {"exported": len(heads)}


@job_actor("compliance.verify_audit_chain")
def verify_audit_chain(
    organization_id: uuid.UUID | None = None, **_schedule: Any
) -> dict[str, Any]:
    """Recompute one organization's chain against its exported heads; fail loudly if broken."""
    from are_workers.services.compliance import audit_chain

    org = _organization(organization_id)
    session = current_job().session
    report = audit_chain.verify(session, org, heads=audit_chain.read_heads(org))
    if not report.ok:
        broken = report.first_broken or {}
        raise AuditChainBrokenError(
            f"The audit chain of organization {org} is broken at seq {broken.get('seq')}"
            f" (row {broken.get('id')}): {broken.get('reason')}."
        )
    return report.as_dict()


@job_actor("compliance.maintain_audit_partitions")
def maintain_audit_partitions(dry_run: bool = False, **_schedule: Any) -> dict[str, Any]:
    """Create the coming months' audit partitions; drop the months every organization let go."""
    from are_workers.services.compliance import audit_partitions

    job = current_job()
    if job.organization_id is not None:
        raise InvalidInputError(
            "Audit partitions hold every organization's rows: enqueue this without one."
        )
    return audit_partitions.prune(job.session, dry_run=bool(dry_run)).as_dict()


@job_actor("compliance.rotate_keys")
def rotate_keys(**_schedule: Any) -> dict[str, Any]:
    """Re-encrypt every encrypted column under the active key."""
    from are_workers.services.compliance.keys import rotate

    return rotate(current_job().session).as_dict()


@job_actor("compliance.expire_exports")
def expire_exports(**_schedule: Any) -> dict[str, Any]:
    """Delete data subject export bundles older than the configured time."""
    from are_workers.services.compliance.export import expire_exports as expire

    return {"deleted": expire(current_job().session)}


@job_actor("compliance.bias_audit")
def bias_audit(
    organization_id: uuid.UUID | None = None,
    period_days: int = 365,
    job_id: uuid.UUID | None = None,
    **_schedule: Any,
) -> dict[str, Any]:
    """Selection rates and impact ratios of AI and human decisions (NYC LL 144)."""
    from are_workers.services.compliance.bias import run_bias_audit

    job = current_job()
    report = run_bias_audit(
        job.session,
        _organization(organization_id),
        period_days=int(period_days),
        job_id=job_id,
    )
    return report.summary()


@job_actor("compliance.retention_sweep_platform")
def retention_sweep_platform(
    dry_run: bool = False, confirmed_run_id: uuid.UUID | None = None, **_schedule: Any
) -> dict[str, Any]:
    """Delete or anonymize what outlived its retention in the global tables (no tenant)."""
    from are_workers.services.compliance.retention import sweep_platform

    job = current_job()
    if job.organization_id is not None:
        raise InvalidInputError(
            "The platform retention sweep belongs to no organization: enqueue it without one."
        )
    result = sweep_platform(
        job.session,
        dry_run=bool(dry_run),
        confirmed_run_id=confirmed_run_id,
    )
    return result.as_dict()
