"""Bias audit: selection rates and impact ratios for the AI and the human decision, from
self-identification read only under its own role; small groups reported, not flagged."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.orm import Session

from are_workers.config import Settings
from are_workers.models.ai_evaluations import AIEvaluation, EvaluationStatus
from are_workers.models.applications import ApplicationStageHistory
from are_workers.models.fairness import CandidateSelfIdentification
from are_workers.models.schemas import BiasAuditMetrics
from are_workers.services.compliance.bias import group_metrics, latest_reports, run_bias_audit
from tests.factories import (
    make_application,
    make_candidate,
    make_job,
    make_member,
    make_model_version,
    make_org,
    utcnow,
)

SETTINGS = Settings(bias_min_group_size=5, bias_shortlist_score=0.7)


def _seed(db: Session) -> uuid.UUID:
    """25 women (AI shortlists 6), 25 men (AI shortlists 15), 3 non-binary, 4 unanswered;
    people advance 10 women and 10 men: the AI is biased, the humans are not."""
    org = make_org(db)
    member = make_member(db, org)
    job = make_job(db, org, created_by_user_id=member.user_id)
    db.refresh(job)
    screening = next(s for s in job.pipeline_stages if s.kind.value == "screening")
    version = make_model_version(db)
    people = (
        [("female", i < 6, i < 10) for i in range(25)]
        + [("male", i < 15, i < 10) for i in range(25)]
        + [("non-binary", True, False) for _ in range(3)]
        + [(None, False, True) for _ in range(4)]
    )
    for n, (gender, shortlisted, advanced) in enumerate(people):
        candidate = make_candidate(db, org)
        application = make_application(db, candidate, job)
        if gender is not None:
            db.add(
                CandidateSelfIdentification(
                    organization_id=org.id,
                    candidate_id=candidate.id,
                    gender=gender,
                    ethnicity="hispanic or latino" if n % 2 else "white",
                )
            )
        db.add(
            AIEvaluation(
                organization_id=org.id,
                candidate_id=candidate.id,
                job_id=job.id,
                application_id=application.id,
                model_version_id=version.id,
                status=EvaluationStatus.COMPLETED,
                overall_score=85.0 if shortlisted else 40.0,
                input_hash=f"{n:064x}",
                completed_at=utcnow(),
            )
        )
        if advanced:
            db.add(
                ApplicationStageHistory(
                    organization_id=org.id, application_id=application.id, to_stage_id=screening.id
                )
            )
    db.flush()
    return org.id


def test_selection_rates_and_impact_ratios_flag_the_ai_not_the_people(
    owner_engine: Engine, runtime_engine: Engine
) -> None:
    with Session(owner_engine) as owner:
        org_id = _seed(owner)
        owner.commit()
    with Session(runtime_engine) as runtime:
        # The runtime role cannot read self-identification directly ...
        with pytest.raises(ProgrammingError, match="permission denied"):
            runtime.execute(text("SELECT gender FROM candidate_self_identifications"))
        runtime.rollback()
        # ... only the bias audit does, under its own role, and publishes aggregates.
        run = run_bias_audit(runtime, org_id, settings=SETTINGS)
        runtime.commit()
        reports = latest_reports(runtime, org_id)
    # 6 dimensions x (AI recommendation, AI score, human decision)
    assert len(run.report_ids) == 18
    assert set(run.sample_sizes.values()) == {57}
    ai = next(k for k in run.sample_sizes if k.startswith("ai:"))
    gender_flags = [f for f in run.flagged if f["dimension"] == "gender"]
    assert gender_flags == [
        {"decision": f"ai{k}", "dimension": "gender", "group": "female", "impact_ratio": 0.4}
        for k in (ai[2:], f"_score{ai[2:]}")
    ]
    # the people are not flagged
    assert {f["decision"] for f in run.flagged} == {ai, f"ai_score{ai[2:]}"}
    assert {f["group"].split(" / ")[0] for f in run.flagged} == {"female"}
    assert {(t["dimension"], t["group"], t["count"]) for t in run.too_small} >= {
        ("gender", "non-binary", 3)
    }
    by_key = {(r["decision"], r["metrics"]["dimension"]): r for r in reports}
    ai_gender = BiasAuditMetrics.model_validate(by_key[("ai_recommendation", "gender")]["metrics"])
    groups = {g.group: g for g in ai_gender.groups}
    assert groups["female"].selection_rate == 0.24 and groups["male"].selection_rate == 0.6
    assert groups["non-binary"].suppressed and groups["non-binary"].selection_rate is None
    assert groups["unknown"].count == 4 and groups["unknown"].suppressed
    human = {g["group"]: g for g in by_key[("human_decision", "gender")]["metrics"]["groups"]}
    assert human["female"]["impact_ratio"] == human["male"]["impact_ratio"] == 1.0
    assert by_key[("human_decision", "gender")]["flags"] == []
    assert by_key[("ai_recommendation", "gender")]["model_version"]
    # The AI's overall score is audited as a score (LL 144 scoring rate): above the median
    # (40) means shortlisted here, so the rates match the selection rates.
    ai_score = BiasAuditMetrics.model_validate(by_key[("ai_score", "gender")]["metrics"])
    assert ai_score.method == "scoring_rate" and ai_score.median_score == 40.0
    scored = {g.group: g for g in ai_score.groups}
    assert scored["female"].scoring_rate == 0.24 and scored["female"].impact_ratio == 0.4
    assert scored["unknown"].count == 4 and scored["unknown"].scoring_rate is None
    score_flags = [f for f in run.flagged if f["decision"].startswith("ai_score:")]
    assert {(f["dimension"], f["group"]) for f in score_flags} >= {("gender", "female")}
    intersect = by_key[("ai_recommendation", "gender_x_ethnicity")]["metrics"]["groups"]
    assert {g["group"] for g in intersect} >= {"female / white", "male / hispanic or latino"}


def test_small_groups_are_reported_as_such_not_as_false_alarms() -> None:
    outcomes = [("a", True)] * 40 + [("a", False)] * 10 + [("b", False)] * 2 + [("unknown", True)]
    groups = {g["group"]: g for g in group_metrics(outcomes, min_group_size=5)}
    assert groups["a"]["impact_ratio"] == 1.0
    assert groups["b"] == {
        "group": "b",
        "count": 2,
        "selection_rate": None,
        "impact_ratio": None,
        "suppressed": True,
    }
    assert groups["unknown"]["suppressed"]


def test_an_empty_period_stores_nothing(db: Session) -> None:
    org = make_org(db)
    run = run_bias_audit(db, org.id, settings=SETTINGS)
    assert run.report_ids == [] and run.flagged == []


def test_the_decision_log_links_each_score_to_its_model_and_evidence(db: Session) -> None:
    from are_workers.models.ai_evaluations import EvaluationCriterionScore
    from are_workers.services.compliance import audit
    from are_workers.services.compliance.decisions import decision_log
    from tests.factories import make_graph

    graph = make_graph(db)
    version = make_model_version(db, name="evaluator", version="2026.11")
    evaluation = AIEvaluation(
        organization_id=graph.org.id,
        candidate_id=graph.candidate.id,
        job_id=graph.job.id,
        application_id=graph.application.id,
        model_version_id=version.id,
        status=EvaluationStatus.COMPLETED,
        overall_score=77.0,
        input_hash="a" * 64,
        completed_at=utcnow(),
        summary="Strong Python background (personal text)",
    )
    db.add(evaluation)
    db.flush()
    db.add(
        EvaluationCriterionScore(
            organization_id=graph.org.id,
            evaluation_id=evaluation.id,
            criterion_key="python",
            requirement_id=graph.requirements[0].id,
            score=0.9,
            weight=1.0,
            evidence_parsed_resume_id=graph.parsed_resume.id,
            evidence_char_start=10,
            evidence_char_end=40,
            evidence_text="quoted resume text",
            rationale="matches",
        )
    )
    audit.record_ai_decision(
        db,
        organization_id=graph.org.id,
        action="candidate.evaluated",
        entity_type="ai_evaluation",
        entity_id=evaluation.id,
        subject_id=graph.candidate.id,
        model_name="evaluator",
        model_version="2026.11",
        input_refs={"input_hash": "a" * 64},
        output_refs={"overall_score": 77.0},
    )
    db.flush()
    [entry] = decision_log(db, graph.org.id, candidate_id=graph.candidate.id)
    assert entry["model_name"] == "evaluator" and entry["model_version"] == "2026.11"
    assert entry["overall_score"] == 77.0 and entry["human_reviewed"] is False
    [criterion] = entry["criteria"]
    assert criterion["evidence_parsed_resume_id"] == str(graph.parsed_resume.id)
    assert (criterion["evidence_char_start"], criterion["evidence_char_end"]) == (10, 40)
    assert entry["audit"][0]["action"] == "candidate.evaluated"
    assert "personal text" not in str(entry) and "quoted resume" not in str(entry)


def test_assessment_scores_are_audited_by_scoring_rate(
    owner_engine: Engine, runtime_engine: Engine
) -> None:
    """Final assessment scores of a synthetic pool with a known disparity: 20 women of whom
    4 score above the pool's median, 20 men of whom 15 do, 2 non-binary people (too few for
    a rate) and 3 who did not answer; an older attempt of the same person is not counted."""
    from datetime import timedelta

    from are_workers.models.assessments import AssessmentSession, SessionStatus
    from are_workers.services.compliance.bias_summary import public_summary
    from tests.assessments.factories import make_assessment, make_bank

    with Session(owner_engine) as owner:
        org = make_org(owner)
        assessment = make_assessment(owner, org, make_bank(owner, org, n=5, seed=1))
        people = (
            [("female", 1.0 if i < 4 else -1.0) for i in range(20)]
            + [("male", 1.0 if i < 15 else -1.0) for i in range(20)]
            + [("non-binary", 1.0) for _ in range(2)]
            + [(None, 0.0) for _ in range(3)]
        )
        now = utcnow()
        for n, (gender, theta) in enumerate(people):
            candidate = make_candidate(owner, org)
            if gender is not None:
                owner.add(
                    CandidateSelfIdentification(
                        organization_id=org.id,
                        candidate_id=candidate.id,
                        gender=gender,
                        ethnicity="white" if n % 2 else "asian",
                    )
                )
            attempts = [(theta, now - timedelta(days=1))]
            if n == 0:  # an earlier, higher attempt: only the latest one counts
                attempts.append((3.0, now - timedelta(days=2)))
            for score, completed in attempts:
                owner.add(
                    AssessmentSession(
                        organization_id=org.id,
                        assessment_id=assessment.id,
                        candidate_id=candidate.id,
                        status=SessionStatus.COMPLETED,
                        theta=score,
                        se=0.3,
                        started_at=completed - timedelta(hours=1),
                        expires_at=completed + timedelta(hours=1),
                        completed_at=completed,
                    )
                )
        org_id, key = org.id, f"assessment:{assessment.id}"
        owner.commit()
    with Session(runtime_engine) as runtime:
        run = run_bias_audit(runtime, org_id, settings=SETTINGS)
        runtime.commit()
        reports = latest_reports(runtime, org_id)
    assert run.sample_sizes[key] == 45
    by_dimension = {
        r["metrics"]["dimension"]: r for r in reports if r["decision"] == "assessment_score"
    }
    gender = BiasAuditMetrics.model_validate(by_dimension["gender"]["metrics"])
    assert gender.method == "scoring_rate" and gender.median_score == 0.0
    groups = {g.group: g for g in gender.groups}
    assert groups["female"].scoring_rate == 0.2 and groups["male"].scoring_rate == 0.75
    assert groups["female"].impact_ratio == pytest.approx(0.2 / 0.75, abs=1e-3)
    assert groups["non-binary"].suppressed and groups["non-binary"].scoring_rate is None
    assert groups["unknown"].count == 3
    assert {(f["dimension"], f["group"]) for f in run.flagged if f["decision"] == key} >= {
        ("gender", "female")
    }
    intersect = {g["group"] for g in by_dimension["gender_x_ethnicity"]["metrics"]["groups"]}
    assert {"female / white", "male / asian"} <= intersect
    [tool] = public_summary(reports)["tools"]
    assert tool["output"] == "assessment_score" and tool["method"] == "scoring_rate"
    assert tool["individuals_assessed"] == 45 and tool["categories"][0]["unknown_count"] == 3
