"""Writing audit rows in tests, and tampering with them the way a database owner could."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.orm import Session

from are_workers.services.compliance import audit


def write_audit_rows(
    db: Session,
    org_id: uuid.UUID,
    n: int,
    *,
    days_ago: int = 0,
    subject_id: uuid.UUID | None = None,
) -> list[uuid.UUID]:
    """``n`` AI-decision rows; back-dated ones move to that month's partition (or default)."""
    ids = []
    for i in range(n):
        row = audit.record(
            db,
            organization_id=org_id,
            action="candidate.evaluated",
            entity_type="ai_evaluation",
            entity_id=uuid.uuid4(),
            subject_id=subject_id or uuid.uuid4(),
            model_name="scorer",
            model_version="1.2",
            input_refs={"resume_sha256": f"{i:064x}"},
            output_refs={"score": i},
        )
        if days_ago:  # back-dated while unsealed (only the owner could, bypassing the trigger)
            tamper(
                db,
                "UPDATE audit_log SET occurred_at = now() - make_interval(days => :d) "
                "WHERE id = :i",
                d=days_ago,
                i=row,
            )
        ids.append(row)
    return ids


def tamper(db: Session, sql: str, **params: object) -> None:
    """What a database owner can do: bypass the trigger (as a superuser) and rewrite rows."""
    db.execute(text("SET LOCAL session_replication_role = replica"))
    db.execute(text(sql), params)
    db.execute(text("SET LOCAL session_replication_role = origin"))
