"""Explainable evaluation: each requirement judged with a verbatim resume passage as evidence.

Why this shape: a recruiter must be able to read *why* a candidate ranks where they do, and
defend it. The evidence judge (``judge.py``) decides, requirement by requirement, whether a
passage of the resume shows the candidate meets it (a calibrated probability, the passage
that earned a ✔, the years of the dated roles that show it); the score is the
criteria-weighted mean of those probabilities times the expected share of must-haves met,
and the shortlist is sorted by that score. A resume that only lists keywords evidences
little: a bare list is not a passage that shows work.

The result is never a rejection: unmet must-haves flag the evaluation for human review.
Before anything runs, the candidate's consents (``services.consent``, a ranking judgment)
are checked, and a skipped candidate is recorded with the reason. A job with no readable
requirements is refused with a worded error instead of scores that would mean nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from are_workers.crypto import json_sha256, text_sha256
from are_workers.errors import InvalidInputError
from are_workers.job_context import current_job_id
from are_workers.models.ai_evaluations import (
    AIEvaluation,
    EvaluationCriterionScore,
    EvaluationStatus,
    ModelKind,
)
from are_workers.models.candidates import (
    ParsedResume,
)
from are_workers.models.embeddings import MatchResult
from are_workers.models.jobs import JobPosting, JobRequirement
from are_workers.models.schemas import EvaluationCriteria, MatchDetails
from are_workers.models.subscription import UsageKind, UsageUnit
from are_workers.services import consent
from are_workers.services.compliance.audit import record_ai_decision
from are_workers.services.consent import Activity
from are_workers.services.embeddings import EmbeddingContext
from are_workers.services.matching import judge
from are_workers.services.matching.postings import embed_job, job_query_text, load_job
from are_workers.services.matching.retrieval import retrieve
from are_workers.services.model_registry import (
    ensure_model_version,
    record_usage,
)
from are_workers.services.skills import SkillTaxonomy, get_taxonomy

log = structlog.get_logger(__name__)

EVALUATOR_NAME = judge.JUDGE_NAME
#: Bump when the judge's inputs change meaning; the model version is the coefficients'.
EVALUATOR_VERSION = "2026.12.1"


@dataclass(frozen=True)
class Evidence:
    text: str
    start: int
    end: int
    section: str


@dataclass(frozen=True)
class RequirementScore:
    requirement_id: uuid.UUID | None
    key: str
    text: str
    kind: str
    must_have: bool
    weight: float
    score: float
    met: bool
    evidence: Evidence | None
    rationale: str


@dataclass
class CandidateEvaluation:
    candidate_id: uuid.UUID
    status: EvaluationStatus
    overall: float | None = None  # 0..100
    must_have_coverage: float | None = None
    rank_score: float | None = None
    requirements: list[RequirementScore] = field(default_factory=list)
    skip_reason: str | None = None
    summary: str = ""
    retrieval_similarity: float = 0.0
    judge: dict[str, Any] | None = None  # the judge's verdicts, as stored
    evaluation_id: uuid.UUID | None = None  # the stored evaluation the ranking shows


# --- the job-level run -------------------------------------------------------------------


def _skip_reason(session: Session, candidate_id: uuid.UUID) -> str | None:
    refusal = consent.candidate_refusal(session, candidate_id, Activity.RANKING)
    return refusal.code if refusal is not None else None


_SKIP_TEXT = {
    **consent.REASONS,
    "no_resume": "The candidate has no processed resume to evaluate.",
}


def _latest_resume(
    session: Session, organization_id: uuid.UUID, candidate_id: uuid.UUID
) -> ParsedResume | None:
    return session.scalars(
        select(ParsedResume)
        .where(
            ParsedResume.organization_id == organization_id,
            ParsedResume.candidate_id == candidate_id,
        )
        .order_by(ParsedResume.created_at.desc())
        .limit(1)
    ).first()


def _input_hash(job: JobPosting, requirements: Sequence[JobRequirement], resume: str) -> str:
    return json_sha256(
        {
            "evaluator": EVALUATOR_VERSION,
            "job": job_query_text(job, list(requirements)),
            "criteria": job.evaluation_criteria,
            "requirements": [(r.text, r.kind.value, r.must_have, str(r.min_years), r.weight)
                             for r in requirements],
            "resume": text_sha256(resume),
        }
    )  # fmt: skip


def judge_requirements(
    requirements: Sequence[JobRequirement], criteria: EvaluationCriteria
) -> list[judge.Requirement]:
    """The job's requirements as the judge reads them, weighted by the job's criteria."""
    weights = dict(criteria.kind_weights)
    return [
        judge.Requirement(
            key=f"req:{r.position}",
            text=r.text,
            must_have=r.must_have,
            weight=float(weights.get(r.kind.value, 1.0)) * float(r.weight or 1.0),
            kind=r.kind.value,
            min_years=float(r.min_years) if r.min_years is not None else None,
        )
        for r in requirements
    ]


def _scores(
    judged: judge.Judgement, requirements: Sequence[JobRequirement]
) -> list[RequirementScore]:
    by_key = {f"req:{r.position}": r for r in requirements}
    out = []
    for verdict in judged.verdicts:
        row = by_key[verdict.requirement.key]
        passage = verdict.passage
        out.append(
            RequirementScore(
                row.id, verdict.requirement.key, row.text, row.kind.value, row.must_have,
                verdict.requirement.weight, verdict.probability, verdict.met,
                Evidence(*passage.quote, passage.section)
                if passage is not None else None,
                verdict.rationale,
            )
        )  # fmt: skip
    return out


def evaluate_job(
    session: Session,
    *,
    organization_id: uuid.UUID,
    job_id: uuid.UUID,
    embedding: EmbeddingContext,
    top_k: int = 10,
    pool: int | None = None,
    taxonomy: SkillTaxonomy | None = None,
    encoder: Any = None,
) -> list[CandidateEvaluation]:
    """Retrieve the job's nearest candidates in its organization, judge each requirement
    with evidence, rank and store.

    ``pool`` candidates (default ``3 * top_k``, at least 30) are judged so the evidence can
    re-rank beyond the vector similarity; the best ``top_k`` are the shortlist. A job with
    no requirements the parser could read is refused (nothing meaningful to score).
    """
    from are_workers.ml.multilingual import get_encoder

    task_run_id = current_job_id()
    taxonomy = taxonomy or get_taxonomy()
    encoder = encoder or get_encoder()
    job, requirements = load_job(session, organization_id, job_id)
    if not requirements:
        raise InvalidInputError(
            "This job has no requirements the matcher could read, so candidates were not "
            "scored (scores would mean nothing). List what the role needs under a heading "
            "such as 'Requirements' or 'What you'll need', then run the match again.",
            code="no_requirements",
        )
    embed_job(session, organization_id=organization_id, job_id=job.id, embedding=embedding)
    model_id = embedding.ensure_model(session)
    model = judge.default_model()
    evaluator_id = ensure_model_version(
        session, kind=ModelKind.RULES, name=EVALUATOR_NAME,
        version=f"{EVALUATOR_VERSION}+{model.version}",
        params={"judge": model.version, "encoder": encoder.info.key,
                "must_have_weight": model.must_weight, "met": judge.MET,
                "rank_alpha": model.rank_alpha, "rank_power": model.rank_power},
    )  # fmt: skip
    criteria = EvaluationCriteria.model_validate(job.evaluation_criteria or {})
    query = embedding.embed([job_query_text(job, requirements)])[0]
    found = retrieve(
        session, organization_id=organization_id, model_id=model_id,
        query_vector=query.tolist(), k=pool or max(30, 3 * top_k),
    )  # fmt: skip
    wanted = judge.prepare_requirements(
        judge_requirements(requirements, criteria),
        encoder.queries,
        taxonomy=taxonomy,
        encode_aux=embedding.embed,
    )
    results: list[CandidateEvaluation] = []
    readable: list[tuple[CandidateEvaluation, ParsedResume, judge.ResumeView]] = []
    for hit in found.hits:
        assert hit.candidate_id is not None
        result = CandidateEvaluation(hit.candidate_id, EvaluationStatus.COMPLETED,
                                     retrieval_similarity=hit.similarity)  # fmt: skip
        results.append(result)
        reason = _skip_reason(session, hit.candidate_id)
        resume = _latest_resume(session, organization_id, hit.candidate_id)
        if reason is None and (resume is None or not resume.raw_text):
            reason = "no_resume"
        if reason is not None:
            result.status, result.skip_reason = EvaluationStatus.SKIPPED, reason
            result.summary = _SKIP_TEXT[reason]
            continue
        assert resume is not None
        assert resume.raw_text is not None
        view = judge.read_resume(
            resume.raw_text, encoder.passages, taxonomy=taxonomy, encode_aux=embedding.embed
        )
        readable.append((result, resume, view))
    idf = judge.pool_idf([view for _, _, view in readable])
    judge.pool_norms(wanted, [view for _, _, view in readable])
    for result, resume, view in readable:
        judged = judge.judge_resume(view, wanted, model=model, idf=idf)
        result.requirements = _scores(judged, requirements)
        result.overall = judged.rank_score
        result.must_have_coverage = judged.must_have_coverage
        result.rank_score = judged.rank_score
        result.judge = judged.as_dict()
        missing = [s.text for s in result.requirements if s.must_have and not s.met]
        if missing:
            result.status = EvaluationStatus.NEEDS_REVIEW
            result.summary = "Must-haves not evidenced in the resume: " + "; ".join(missing)
        else:
            result.summary = f"All must-haves evidenced; score {result.overall:.0f}/100."
        _store(session, organization_id, job, requirements, resume, result, evaluator_id,
               model_id, task_run_id)  # fmt: skip

    # Sorted by the score shown; ties broken by the retrieval similarity, then the id.
    ranked = sorted(
        (r for r in results if r.rank_score is not None),
        key=lambda r: (-(r.rank_score or 0), -r.retrieval_similarity, str(r.candidate_id)),
    )
    for rank, result in enumerate(ranked, start=1):
        _store_match(session, organization_id, job.id, model_id, result, rank, task_run_id)
    for result in results:
        if result.rank_score is None:
            _store_skipped(session, organization_id, job, requirements, result, evaluator_id,
                           task_run_id)  # fmt: skip
    record_usage(
        session, organization_id=organization_id, kind=UsageKind.EVALUATION,
        quantity=len(ranked), unit=UsageUnit.ITEM,
        model_version_id=evaluator_id,
    )  # fmt: skip
    return ranked[:top_k] + [r for r in results if r.rank_score is None]


def _store(
    session: Session,
    organization_id: uuid.UUID,
    job: JobPosting,
    requirements: Sequence[JobRequirement],
    resume: ParsedResume,
    result: CandidateEvaluation,
    evaluator_id: uuid.UUID,
    model_id: uuid.UUID,
    task_run_id: uuid.UUID | None,
) -> None:
    """One evaluation per (candidate, job, inputs): re-running with the same inputs is a no-op."""
    digest = _input_hash(job, requirements, resume.raw_text or "")
    stmt = (
        insert(AIEvaluation)
        .values(
            organization_id=organization_id, candidate_id=result.candidate_id, job_id=job.id,
            model_version_id=evaluator_id, status=result.status,
            overall_score=result.overall, must_haves_met=result.must_have_coverage in (None, 1.0),
            summary=result.summary, criteria_snapshot=job.evaluation_criteria or {},
            output={
                "must_have_coverage": result.must_have_coverage,
                "rank_score": result.rank_score,
                "embedding_model_id": str(model_id),
                "evaluator": f"{EVALUATOR_NAME}@{EVALUATOR_VERSION}",
                "judge": result.judge,
                "parsed_resume_id": str(resume.id),
                "human_review_required": True,
            },
            input_hash=digest, task_run_id=task_run_id, completed_at=datetime.now(UTC),
        )
        .on_conflict_do_nothing(index_elements=["candidate_id", "job_id", "input_hash"])
        .returning(AIEvaluation.id)
    )  # fmt: skip
    evaluation_id = session.scalar(stmt)
    if evaluation_id is None:
        # Already evaluated with exactly these inputs (an earlier run): the ranking shows
        # that evaluation.
        result.evaluation_id = session.scalar(
            select(AIEvaluation.id).where(
                AIEvaluation.candidate_id == result.candidate_id,
                AIEvaluation.job_id == job.id,
                AIEvaluation.input_hash == digest,
            )
        )
        return
    result.evaluation_id = evaluation_id
    record_ai_decision(
        session,
        organization_id=organization_id,
        action="ai_evaluation.scored",
        entity_type="ai_evaluations",
        entity_id=evaluation_id,
        subject_id=result.candidate_id,
        model_name=EVALUATOR_NAME,
        model_version=EVALUATOR_VERSION,
        input_refs={"job_id": str(job.id), "parsed_resume_id": str(resume.id),
                    "embedding_model_id": str(model_id), "input_hash": digest},
        output_refs={"evaluation_id": str(evaluation_id), "status": result.status.value},
    )  # fmt: skip
    session.execute(
        insert(EvaluationCriterionScore),
        [
            {
                "organization_id": organization_id,
                "evaluation_id": evaluation_id,
                "requirement_id": s.requirement_id,
                "criterion_key": s.key,
                "score": s.score,
                "weight": s.weight,
                "met": s.met,
                "confidence": round(s.score, 4),
                "evidence_text": s.evidence.text if s.evidence else None,
                "evidence_parsed_resume_id": resume.id if s.evidence else None,
                "evidence_char_start": s.evidence.start if s.evidence else None,
                "evidence_char_end": s.evidence.end if s.evidence else None,
                "rationale": s.rationale,
            }
            for s in result.requirements
        ],
    )


def _store_skipped(
    session: Session,
    organization_id: uuid.UUID,
    job: JobPosting,
    requirements: Sequence[JobRequirement],
    result: CandidateEvaluation,
    evaluator_id: uuid.UUID,
    task_run_id: uuid.UUID | None,
) -> None:
    digest = _input_hash(job, requirements, f"skipped:{result.skip_reason}")
    session.execute(
        insert(AIEvaluation)
        .values(
            organization_id=organization_id, candidate_id=result.candidate_id, job_id=job.id,
            model_version_id=evaluator_id, status=EvaluationStatus.SKIPPED,
            skip_reason=result.skip_reason, summary=result.summary,
            criteria_snapshot=job.evaluation_criteria or {}, output={}, input_hash=digest,
            task_run_id=task_run_id,
        )
        .on_conflict_do_nothing(index_elements=["candidate_id", "job_id", "input_hash"])
    )  # fmt: skip


def _store_match(
    session: Session,
    organization_id: uuid.UUID,
    job_id: uuid.UUID,
    model_id: uuid.UUID,
    result: CandidateEvaluation,
    rank: int,
    task_run_id: uuid.UUID | None,
) -> None:
    details = {
        "version": 2,
        "method": "evidence-judge",
        # The evaluation (verdicts, quotes) this rank comes from: a re-run with unchanged
        # inputs keeps the earlier evaluation, made by an earlier job.
        "evaluation_id": str(result.evaluation_id) if result.evaluation_id else None,
        "requirements": [
            {"requirement_id": str(s.requirement_id), "probability": round(s.score, 4)}
            for s in result.requirements if s.requirement_id and s.evidence
        ],
    }  # fmt: skip
    similarity = round(max(-1.0, min(1.0, result.retrieval_similarity)), 6)
    details = MatchDetails.model_validate(details).model_dump(mode="json")
    stmt = insert(MatchResult).values(
        organization_id=organization_id, job_id=job_id, candidate_id=result.candidate_id,
        embedding_model_id=model_id, score=similarity,
        rank=rank, details=details, task_run_id=task_run_id,
    )  # fmt: skip
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["job_id", "candidate_id", "embedding_model_id"],
            set_={
                "score": stmt.excluded.score,
                "rank": stmt.excluded.rank,
                "details": stmt.excluded.details,
                "task_run_id": stmt.excluded.task_run_id,
            },
        )
    )
