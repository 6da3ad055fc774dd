"""The AI decision log: each AI score, the model version that produced it, and its evidence.

For traceability and human review (EU AI Act Arts. 12 and 14): one entry per AI evaluation,
with the model (name, version, provider), the input's hash, the per-criterion scores with
*references* to their evidence (the parsed resume and character span, the requirement), the
human reviews that confirmed or overrode it, and the audit rows about it. Free text (the
summary, rationales, quoted evidence) is personal data and stays in its tables, where
erasure reaches it; the log only points at it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, uuid.UUID | datetime) else value


def decision_log(
    session: Session,
    organization_id: uuid.UUID,
    *,
    candidate_id: uuid.UUID | None = None,
    job_id: uuid.UUID | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """The newest AI decisions of one organization (optionally one candidate or job)."""
    evaluations = session.execute(
        text(
            """
            SELECT e.id, e.candidate_id, e.job_id, e.application_id, e.status::text AS status,
                   e.overall_score, e.must_haves_met, e.input_hash, e.task_run_id,
                   e.created_at, e.completed_at,
                   v.id AS model_version_id, v.name AS model_name, v.version AS model_version,
                   v.provider AS model_provider
            FROM ai_evaluations e JOIN ai_model_versions v ON v.id = e.model_version_id
            WHERE e.organization_id = :o
              AND (CAST(:c AS uuid) IS NULL OR e.candidate_id = CAST(:c AS uuid))
              AND (CAST(:j AS uuid) IS NULL OR e.job_id = CAST(:j AS uuid))
            ORDER BY e.created_at DESC, e.id LIMIT :n
            """
        ),
        {"o": organization_id, "c": _plain(candidate_id), "j": _plain(job_id), "n": limit},
    ).all()
    ids = [str(e.id) for e in evaluations]
    scores = _by_evaluation(
        session,
        ids,
        """
        SELECT evaluation_id, criterion_key, requirement_id, score, weight, met, confidence,
               evidence_parsed_resume_id, evidence_char_start, evidence_char_end
        FROM evaluation_criteria_scores WHERE evaluation_id = ANY(CAST(:ids AS uuid[]))
        ORDER BY criterion_key""",
    )
    reviews = _by_evaluation(
        session,
        ids,
        """
        SELECT evaluation_id, decision::text AS decision, override_score, reviewer_user_id,
               reviewed_at
        FROM evaluation_reviews WHERE evaluation_id = ANY(CAST(:ids AS uuid[]))
        ORDER BY reviewed_at""",
    )
    audits = _by_evaluation(
        session,
        ids,
        """
        SELECT entity_id AS evaluation_id, action, occurred_at, seq, model_name, model_version,
               input_refs, output_refs, task_run_id
        FROM audit_log WHERE organization_id = :o AND entity_id = ANY(CAST(:ids AS uuid[]))
        ORDER BY occurred_at, id""",
        organization_id=organization_id,
    )
    log = []
    for e in evaluations:
        entry = {k: _plain(v) for k, v in e._mapping.items()}
        key = str(e.id)
        entry["criteria"] = scores.get(key, [])
        entry["human_reviews"] = reviews.get(key, [])
        entry["audit"] = audits.get(key, [])
        entry["human_reviewed"] = bool(entry["human_reviews"])
        log.append(entry)
    return log


def _by_evaluation(
    session: Session, ids: list[str], sql: str, *, organization_id: uuid.UUID | None = None
) -> dict[str, list[dict[str, Any]]]:
    if not ids:
        return {}
    params: dict[str, Any] = {"ids": ids}
    if organization_id is not None:
        params["o"] = organization_id
    out: dict[str, list[dict[str, Any]]] = {}
    for row in session.execute(text(sql), params):
        record = {k: _plain(v) for k, v in row._mapping.items() if k != "evaluation_id"}
        out.setdefault(str(row.evaluation_id), []).append(record)
    return out
