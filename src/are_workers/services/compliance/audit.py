"""Writing the audit trail: one INSERT per audited action, no personal data, no locks.

Why insert-only and unsealed: every worker writes audit rows concurrently; computing the
hash chain at write time would serialise them all on the organization's chain head. Rows
are written with ``seq`` NULL and chained later by the sealer (``audit_chain.seal``), in
``(occurred_at, id)`` order.

Subjects appear only as ``subject_ref`` (an HMAC of the subject's id), and inputs and
outputs only as references (ids, content hashes), so erasing a person never has to touch
the audit log and its chain stays verifiable.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import text

from are_workers.crypto import subject_ref as make_subject_ref
from are_workers.job_context import current_job_id
from are_workers.ledger import Executor
from are_workers.models.audit import ActorType

#: The organization row that holds the *platform chain*: audited actions that concern no one
#: tenant (an operator pausing a schedule everywhere, replaying jobs across tenants,
#: confirming the platform's retention sweep). It is a reserved organization so that the
#: sealer, the head export and verification (``audit-verify`` runs for it too) treat it
#: exactly like a tenant's chain; it owns no other data.
PLATFORM_ORGANIZATION_ID = uuid.UUID("00000000-0000-5000-8000-00000000a0d1")
PLATFORM_ORGANIZATION_SLUG = "are-platform"

_ENSURE_PLATFORM = text(
    "INSERT INTO organizations (id, name, slug) VALUES (:id, 'Platform (operations)', :slug) "
    "ON CONFLICT (id) DO NOTHING"
)

_INSERT = text(
    """
    INSERT INTO audit_log (organization_id, actor_type, actor_id, action, entity_type,
                           entity_id, subject_ref, model_name, model_version, input_refs,
                           output_refs, request_id, task_run_id)
    VALUES (:organization_id, CAST(:actor_type AS actor_type), :actor_id, :action,
            :entity_type, :entity_id, :subject_ref, :model_name, :model_version,
            CAST(:input_refs AS jsonb), CAST(:output_refs AS jsonb), :request_id, :task_run_id)
    RETURNING id
    """
)


def _refs(refs: dict[str, Any] | None) -> str:
    return json.dumps(refs or {}, default=str, sort_keys=True)


def record(
    db: Executor,
    *,
    organization_id: uuid.UUID | str,
    action: str,
    actor_type: ActorType = ActorType.WORKER,
    actor_id: uuid.UUID | None = None,
    entity_type: str | None = None,
    entity_id: uuid.UUID | str | None = None,
    subject_id: uuid.UUID | str | None = None,
    model_name: str | None = None,
    model_version: str | None = None,
    input_refs: dict[str, Any] | None = None,
    output_refs: dict[str, Any] | None = None,
    request_id: str | None = None,
) -> uuid.UUID:
    """Append one audit row in the caller's transaction (it commits with the audited write).

    Inside a job the row names the job (``task_run_id``) from the job context.

    ``subject_id`` is turned into its pseudonym here; pass ids and hashes in the refs, never
    names, addresses or free text.
    """
    row = db.execute(
        _INSERT,
        {
            "organization_id": str(organization_id),
            "actor_type": ActorType(actor_type).value,
            "actor_id": actor_id,
            "action": action,
            "entity_type": entity_type,
            "entity_id": str(entity_id) if entity_id else None,
            "subject_ref": make_subject_ref(subject_id) if subject_id else None,
            "model_name": model_name,
            "model_version": model_version,
            "input_refs": _refs(input_refs),
            "output_refs": _refs(output_refs),
            "request_id": request_id,
            "task_run_id": current_job_id(),
        },
    ).scalar_one()
    return uuid.UUID(str(row))


def record_platform(db: Executor, *, action: str, **fields: Any) -> uuid.UUID:
    """Append one row to the platform chain (see :data:`PLATFORM_ORGANIZATION_ID`)."""
    db.execute(
        _ENSURE_PLATFORM, {"id": PLATFORM_ORGANIZATION_ID, "slug": PLATFORM_ORGANIZATION_SLUG}
    )
    return record(db, organization_id=PLATFORM_ORGANIZATION_ID, action=action, **fields)


def record_ai_decision(
    db: Executor,
    *,
    organization_id: uuid.UUID | str,
    action: str,
    entity_type: str,
    entity_id: uuid.UUID | str,
    subject_id: uuid.UUID | str,
    model_name: str,
    model_version: str,
    input_refs: dict[str, Any],
    output_refs: dict[str, Any],
) -> uuid.UUID:
    """An AI decision (a score, a ranking, a flag): model, version, input and output refs.

    The EU AI Act's record-keeping for high-risk systems asks for exactly this link between
    an output and what produced it; the decision log (``decision_log``) reads it back.
    """
    return record(
        db,
        organization_id=organization_id,
        action=action,
        actor_type=ActorType.WORKER,
        entity_type=entity_type,
        entity_id=entity_id,
        subject_id=subject_id,
        model_name=model_name,
        model_version=model_version,
        input_refs=input_refs,
        output_refs=output_refs,
    )
