"""The AI decision log: each AI decision, the model version that made it, and its evidence.

For traceability and human review (EU AI Act Arts. 12 and 14). Two sources:

* ``ai_evaluations`` (resume matching): one entry per evaluation, with the model (name,
  version, provider), the input's hash, the per-criterion scores with *references* to their
  evidence (the parsed resume and character span, the requirement), the human reviews that
  confirmed or overrode it, and the audit rows about it;
* every other AI decision, from its audit row (``_KINDS``: interview transcripts, speech and
  video analysis, proctoring, portfolio evaluations, assessment scoring and calibration): the
  model and version, the input and output refs, and the stored row the decision produced
  (``evidence``: its table, id and scores, never its text).

The audit log names people only by ``subject_ref``, so a candidate's decisions are found by
computing theirs. Every query is filtered by the organization, the evidence lookups too: an
audit row can only point at evidence of its own tenant. Free text (summaries, rationales,
transcripts, quoted evidence, answers) is personal data and stays in its tables, where erasure
reaches it; the log only points at it. A decision whose row has since been erased keeps its
entry, with ``evidence`` None.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from are_workers.crypto import subject_ref as make_subject_ref


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, uuid.UUID | datetime) else value


def _interview(response: str) -> str:
    """Joins from a video response id up to the application (candidate and job)."""
    return f"""
        JOIN video_responses r ON r.organization_id = x.organization_id AND r.id = {response}
        JOIN video_interviews vi
          ON vi.organization_id = x.organization_id AND vi.id = r.video_interview_id
        JOIN applications ap ON ap.organization_id = x.organization_id AND ap.id = vi.application_id
    """


def _application(session: str) -> str:
    """The assessment session's application, if it has one (for the job)."""
    return f"""
        LEFT JOIN applications ap
          ON ap.organization_id = {session}.organization_id AND ap.id = {session}.application_id
    """


@dataclass(frozen=True, slots=True)
class _Kind:
    """One kind of AI decision: its audit actions and where its evidence row lives.

    ``source`` joins the evidence row (aliased ``x``) to what it concerns; ``candidate``,
    ``application`` and ``job`` are SQL over it; ``fields`` are the evidence columns shown,
    never free text.
    """

    name: str
    actions: tuple[str, ...]
    table: str
    source: str
    candidate: str
    application: str
    job: str
    fields: str


_RESUME = _Kind(
    "resume_evaluation",
    ("ai_evaluation.scored", "candidate.evaluated"),
    "ai_evaluations",
    "ai_evaluations x",
    "x.candidate_id",
    "x.application_id",
    "x.job_id",
    "x.status::text AS status, x.overall_score",
)
_KINDS = (
    _RESUME,
    _Kind(
        "interview_transcript",
        ("transcript.completed",),
        "transcripts",
        "transcripts x" + _interview("x.video_response_id"),
        "ap.candidate_id",
        "ap.id",
        "ap.job_id",
        "x.video_response_id, x.model_version_id, x.status::text AS status, x.language, "
        "x.word_count, x.duration_seconds",
    ),
    _Kind(
        "interview_speech",
        ("speech_analytics.analysed",),
        "speech_analytics",
        """speech_analytics x
        JOIN transcripts t ON t.organization_id = x.organization_id AND t.id = x.transcript_id"""
        + _interview("t.video_response_id"),
        "ap.candidate_id",
        "ap.id",
        "ap.job_id",
        "x.transcript_id, t.video_response_id, x.words_per_minute, x.filler_word_rate, "
        "x.pause_ratio, x.mean_pause_ms",
    ),
    _Kind(
        "interview_video",
        ("video_analysis.analysed", "video_analysis.skipped"),
        "video_analysis_results",
        "video_analysis_results x" + _interview("x.video_response_id"),
        "ap.candidate_id",
        "ap.id",
        "ap.job_id",
        "x.video_response_id, x.model_version_id, x.summary->>'status' AS status, "
        "(x.summary->>'needs_human_review')::boolean AS needs_human_review, "
        "x.summary->>'reason_code' AS reason_code",
    ),
    _Kind(
        "proctoring",
        ("proctoring.analysed",),
        "proctoring_sessions",
        """proctoring_sessions x
        JOIN assessment_sessions s
          ON s.organization_id = x.organization_id AND s.id = x.assessment_session_id"""
        + _application("s"),
        "s.candidate_id",
        "s.application_id",
        "ap.job_id",
        "x.assessment_session_id, x.status::text AS status, x.risk_score, "
        "x.decision::text AS human_decision, x.reviewed_by_user_id",
    ),
    _Kind(
        "portfolio_evaluation",
        ("deep_evaluation.scored", "deep_evaluation.skipped", "deep_evaluation.failed"),
        "deep_evaluations",
        """deep_evaluations x
        JOIN portfolios p ON p.organization_id = x.organization_id AND p.id = x.portfolio_id""",
        "p.candidate_id",
        "x.application_id",
        "x.job_id",
        "x.portfolio_id, x.model_version_id, x.status::text AS status, x.overall_score, "
        "x.error_code, x.pipeline_versions",
    ),
    _Kind(
        "assessment_result",
        ("assessment.scored",),
        "assessment_sessions",
        "assessment_sessions x" + _application("x"),
        "x.candidate_id",
        "x.application_id",
        "ap.job_id",
        "x.assessment_id, x.norm_group_id, x.status::text AS status, x.theta, x.se, "
        "x.percentile, x.items_administered",
    ),
    _Kind(
        "assessment_response",
        ("assessment.response_scored", "assessment.free_text_scored"),
        "assessment_responses",
        """assessment_responses x
        JOIN assessment_sessions s
          ON s.organization_id = x.organization_id AND s.id = x.session_id"""
        + _application("s"),
        "s.candidate_id",
        "s.application_id",
        "ap.job_id",
        "x.session_id AS assessment_session_id, x.item_id, x.position, x.category, "
        "x.theta_after, x.se_after, s.theta AS session_theta, s.se AS session_se",
    ),
    _Kind(
        "item_calibration",  # about an item bank, no candidate
        ("assessment.items_calibrated",),
        "item_calibration_runs",
        "item_calibration_runs x",
        "NULL::uuid",
        "NULL::uuid",
        "NULL::uuid",
        "x.bank_id, x.status::text AS status, x.method, x.sample_size, (SELECT count(*) "
        "FROM item_drift_flags f WHERE f.organization_id = x.organization_id "
        "AND f.calibration_run_id = x.id) AS drift_flags",
    ),
)
_KIND_OF_ACTION = {action: kind for kind in _KINDS for action in kind.actions}
#: Every audit action the log reads: the AI decisions of the workers.
AI_DECISION_ACTIONS = tuple(_KIND_OF_ACTION)


def decision_log(
    session: Session,
    organization_id: uuid.UUID,
    *,
    candidate_id: uuid.UUID | None = None,
    job_id: uuid.UUID | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """The newest AI decisions of one organization (optionally one candidate or job).

    Every entry has ``kind``, ``action``, ``model_name``, ``model_version``, ``when``,
    ``candidate_id``, ``job_id``, ``application_id``, ``subject_ref``, ``entity_type``,
    ``entity_id``, ``input_refs``, ``output_refs``, ``evidence`` (``table``, ``id`` and what
    the row says; None once erased), ``audit``, ``human_reviews`` and ``human_reviewed``;
    resume evaluations also keep their own columns and ``criteria``.
    """
    ref = make_subject_ref(candidate_id) if candidate_id is not None else None
    dated = _evaluations(session, organization_id, candidate_id, job_id, ref, limit)
    dated += _audited(session, organization_id, candidate_id, job_id, ref, limit)
    dated.sort(key=lambda pair: pair[0], reverse=True)
    return [entry for _, entry in dated[:limit]]


# --- resume evaluations (ai_evaluations) ---------------------------------------------------------


def _evaluations(
    session: Session,
    organization_id: uuid.UUID,
    candidate_id: uuid.UUID | None,
    job_id: uuid.UUID | None,
    ref: str | None,
    limit: int,
) -> list[tuple[datetime, dict[str, Any]]]:
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
        FROM evaluation_criteria_scores
        WHERE organization_id = :o AND evaluation_id = ANY(CAST(:ids AS uuid[]))
        ORDER BY criterion_key""",
        organization_id=organization_id,
    )
    reviews = _by_evaluation(
        session,
        ids,
        """
        SELECT evaluation_id, decision::text AS decision, override_score, reviewer_user_id,
               reviewed_at
        FROM evaluation_reviews
        WHERE organization_id = :o AND evaluation_id = ANY(CAST(:ids AS uuid[]))
        ORDER BY reviewed_at""",
        organization_id=organization_id,
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
        decision = next((a for a in entry["audit"] if a["action"] in _RESUME.actions), None)
        entry.update(
            kind=_RESUME.name,
            action=decision["action"] if decision else None,
            when=entry["created_at"],
            subject_ref=ref or make_subject_ref(e.candidate_id),
            entity_type=_RESUME.table,
            entity_id=key,
            input_refs=decision["input_refs"] if decision else None,
            output_refs=decision["output_refs"] if decision else None,
            evidence={
                "table": _RESUME.table,
                "id": key,
                "status": entry["status"],
                "overall_score": entry["overall_score"],
                "criteria": entry["criteria"],
            },
        )
        log.append((e.created_at, entry))
    return log


def _by_evaluation(
    session: Session, ids: list[str], sql: str, *, organization_id: uuid.UUID
) -> dict[str, list[dict[str, Any]]]:
    if not ids:
        return {}
    out: dict[str, list[dict[str, Any]]] = {}
    for row in session.execute(text(sql), {"ids": ids, "o": organization_id}):
        record = {k: _plain(v) for k, v in row._mapping.items() if k != "evaluation_id"}
        out.setdefault(str(row.evaluation_id), []).append(record)
    return out


# --- every other AI decision, from the audit log ------------------------------------------------


def _audited(
    session: Session,
    organization_id: uuid.UUID,
    candidate_id: uuid.UUID | None,
    job_id: uuid.UUID | None,
    ref: str | None,
    limit: int,
) -> list[tuple[datetime, dict[str, Any]]]:
    """AI decision audit rows, newest first, with the rows they produced.

    A resume evaluation's row is read with its evaluation (``_evaluations``) unless the
    evaluation is gone. With a job, a decision belongs to it when its evidence row does (or,
    once erased, when its input refs name the job).
    """
    params: dict[str, Any] = {"o": organization_id, "actions": list(AI_DECISION_ACTIONS)}
    where = [
        "a.organization_id = :o",
        "a.action = ANY(CAST(:actions AS text[]))",
        """NOT EXISTS (SELECT 1 FROM ai_evaluations e
                       WHERE e.organization_id = a.organization_id AND e.id = a.entity_id)""",
    ]
    if ref is not None:
        where.append("a.subject_ref = :s")
        params["s"] = ref
    if job_id is not None:
        linked = " UNION ALL ".join(
            f"SELECT x.id FROM {kind.source} WHERE x.organization_id = :o AND {kind.job} = :j"  # noqa: S608 - this module's SQL only
            for kind in _KINDS
            if kind.job != "NULL::uuid"
        )
        where.append(f"(a.entity_id IN ({linked}) OR a.input_refs->>'job_id' = :js)")
        params.update(j=job_id, js=str(job_id))
    rows = session.execute(
        text(
            f"""
            SELECT a.id, a.action, a.occurred_at, a.seq, a.entity_type, a.entity_id,
                   a.subject_ref, a.model_name, a.model_version, a.input_refs, a.output_refs,
                   a.task_run_id
            FROM audit_log a WHERE {" AND ".join(where)}
            ORDER BY a.occurred_at DESC, a.id LIMIT :n
            """  # noqa: S608 - only this module's SQL is interpolated
        ),
        {**params, "n": limit},
    ).all()
    wanted: dict[_Kind, list[str]] = defaultdict(list)
    for row in rows:
        if row.entity_id is not None:
            wanted[_KIND_OF_ACTION[row.action]].append(str(row.entity_id))
    evidence: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    for kind, ids in wanted.items():
        evidence.update(_evidence(session, organization_id, kind, ids))
    log = []
    for row in rows:
        kind = _KIND_OF_ACTION[row.action]
        audit = {k: _plain(v) for k, v in row._mapping.items()}
        links, found = evidence.get(str(row.entity_id), ({}, None))
        reviews = _human_reviews(found)
        log.append(
            (
                row.occurred_at,
                {
                    "kind": kind.name,
                    "action": row.action,
                    "model_name": row.model_name,
                    "model_version": row.model_version,
                    "when": audit["occurred_at"],
                    "candidate_id": links.get("candidate_id") or _plain(candidate_id),
                    "job_id": links.get("job_id"),
                    "application_id": links.get("application_id"),
                    "subject_ref": row.subject_ref,
                    "entity_type": row.entity_type,
                    "entity_id": audit["entity_id"],
                    "input_refs": row.input_refs,
                    "output_refs": row.output_refs,
                    "task_run_id": audit["task_run_id"],
                    "evidence": dict(found) if found else None,
                    "audit": [audit],
                    "human_reviews": reviews,
                    "human_reviewed": bool(reviews),
                },
            )
        )
    return log


def _evidence(
    session: Session, organization_id: uuid.UUID, kind: _Kind, ids: list[str]
) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """The rows ``ids`` of ``kind`` in this organization: id -> (what it concerns, evidence)."""
    rows = session.execute(
        text(
            f"""
            SELECT x.id, {kind.candidate} AS candidate_id, {kind.application} AS application_id,
                   {kind.job} AS job_id, {kind.fields}
            FROM {kind.source}
            WHERE x.organization_id = :o AND x.id = ANY(CAST(:ids AS uuid[]))
            """  # noqa: S608 - only this module's SQL is interpolated
        ),
        {"o": organization_id, "ids": ids},
    ).all()
    found: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    for row in rows:
        values = {k: _plain(v) for k, v in row._mapping.items()}
        links = {k: values.pop(k) for k in ("candidate_id", "application_id", "job_id")}
        found[values["id"]] = (links, {"table": kind.table, **values})
    if kind.table == "deep_evaluations" and found:
        for evaluation_id, findings in _findings(session, organization_id, list(found)).items():
            found[evaluation_id][1]["findings"] = findings
    return found


def _findings(
    session: Session, organization_id: uuid.UUID, ids: list[str]
) -> dict[str, list[dict[str, Any]]]:
    """Each finding's requirement, score and where its evidence is (file and offsets), not the
    quote itself nor its locator (an archive path can name the person)."""
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in session.execute(
        text(
            """
            SELECT id, deep_evaluation_id, kind::text AS kind, requirement_id, portfolio_item_id,
                   score, evidence_file_id, evidence_char_start,
                   evidence_char_end
            FROM deep_evaluation_findings
            WHERE organization_id = :o AND deep_evaluation_id = ANY(CAST(:ids AS uuid[]))
            ORDER BY created_at, id
            """
        ),
        {"o": organization_id, "ids": ids},
    ):
        finding = {k: _plain(v) for k, v in row._mapping.items() if k != "deep_evaluation_id"}
        out[str(row.deep_evaluation_id)].append(finding)
    return out


def _human_reviews(evidence: dict[str, Any] | None) -> list[dict[str, Any]]:
    """A person's decision recorded on the evidence row (today: a proctoring review)."""
    if evidence is None or evidence.get("human_decision") is None:
        return []
    return [
        {
            "decision": evidence["human_decision"],
            "reviewer_user_id": evidence.get("reviewed_by_user_id"),
        }
    ]
