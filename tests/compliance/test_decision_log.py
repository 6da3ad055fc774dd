"""The AI decision log: every kind of AI decision of a candidate, with its model and version,
the audit row's refs and the stored row it produced; nothing of another candidate or of the
same person in another organization, and no free text."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from are_workers.crypto import subject_ref
from are_workers.services.compliance import audit
from are_workers.services.compliance.decisions import AI_DECISION_ACTIONS, decision_log
from tests.compliance.seed import Seeder, seed_subject, unique_marker
from tests.factories import make_org

EMAIL = "zelda.quartermaine@example.com"
NAME = "Zelda Quartermaine"

#: kind -> (action, audit entity_type, seeded table, model name, model version)
DECISIONS: dict[str, tuple[str, str, str, str | None, str | None]] = {
    "interview_transcript": (
        "transcript.completed", "transcripts", "transcripts", "faster-whisper-small", "cpu-int8",
    ),
    "interview_speech": (
        "speech_analytics.analysed", "speech_analytics", "speech_analytics",
        "are-speech+all-MiniLM-L6-v2@abc123", "1/0f0f",
    ),
    "interview_video": (
        "video_analysis.analysed", "video_analysis_results", "video_analysis_results",
        "opencv-face", "opencv-4.10",
    ),
    "proctoring": (
        "proctoring.analysed", "proctoring_sessions", "proctoring_sessions",
        "are-proctoring", "opencv-4.10+9e9e",
    ),
    "portfolio_evaluation": (
        "deep_evaluation.scored", "deep_evaluations", "deep_evaluations",
        "are-deep-evaluator+all-MiniLM-L6-v2", "2+abc123",
    ),
    "assessment_response": (
        "assessment.free_text_scored", "assessment_responses", "assessment_responses",
        "are-irt+rubric-similarity+all-MiniLM-L6-v2@abc123", "0.9.0",
    ),
    "assessment_result": (
        "assessment.scored", "assessment_session", "assessment_sessions", "are-irt", "0.9.0",
    ),
}  # fmt: skip


@dataclass
class Subject:
    seeder: Seeder
    organization_id: uuid.UUID

    def id(self, table: str) -> str:
        return str(self.seeder.rows[table]["id"])

    @property
    def candidate_id(self) -> uuid.UUID:
        return uuid.UUID(self.id("candidates"))

    @property
    def job_id(self) -> uuid.UUID:
        return uuid.UUID(str(self.seeder.rows["applications"]["job_id"]))


def _audit_every_decision(db: Session, subject: Subject) -> None:
    """The audit rows the workers write for one candidate's AI decisions (and a score)."""
    org, rows = subject.organization_id, subject.seeder.rows
    db.execute(
        text("UPDATE assessment_sessions SET theta = 0.8, se = 0.3 WHERE organization_id = :o "
             "AND id = :i"), {"o": org, "i": rows["assessment_sessions"]["id"]},
    )  # fmt: skip
    audit.record_ai_decision(
        db,
        organization_id=org,
        action="ai_evaluation.scored",
        entity_type="ai_evaluations",
        entity_id=rows["ai_evaluations"]["id"],
        subject_id=subject.candidate_id,
        model_name="are-evaluator",
        model_version="3",
        input_refs={"job_id": str(subject.job_id), "input_hash": "b" * 64},
        output_refs={"evaluation_id": subject.id("ai_evaluations"), "status": "completed"},
    )
    for kind, (action, entity_type, table, model, version) in DECISIONS.items():
        audit.record(
            db,
            organization_id=org,
            action=action,
            entity_type=entity_type,
            entity_id=rows[table]["id"],
            subject_id=subject.candidate_id,
            model_name=model,
            model_version=version,
            input_refs={"kind": kind},
            output_refs={f"{table}_id": subject.id(table)},
        )


@pytest.fixture
def world(db: Session) -> dict[str, Subject]:
    """Zelda, and Bob, in one organization; Zelda again (same person) in another."""
    home, elsewhere = make_org(db), make_org(db)
    zelda = seed_subject(db, home.id, marker=unique_marker(), email=EMAIL, full_name=NAME)
    bob = seed_subject(
        db,
        home.id,
        marker=unique_marker(),
        email="bob@example.com",
        full_name="Bob Brightwater",
        context_from=zelda,
    )
    other = seed_subject(db, elsewhere.id, marker=unique_marker(), email=EMAIL, full_name=NAME)
    world = {
        "zelda": Subject(zelda, home.id),
        "bob": Subject(bob, home.id),
        "elsewhere": Subject(other, elsewhere.id),
    }
    for subject in world.values():
        _audit_every_decision(db, subject)
    db.flush()
    return world


def _leaks(log: list[dict[str, Any]], subject: Subject) -> list[str]:
    """Ids and personal text of ``subject`` that appear in the log."""
    dump = str(log)
    needles = [subject.seeder.marker, str(subject.candidate_id)]
    needles += [str(row["id"]) for row in subject.seeder.rows.values()]
    return [needle for needle in needles if needle in dump]


def test_a_candidate_log_shows_every_kind_of_ai_decision_with_model_and_evidence(
    db: Session, world: dict[str, Subject]
) -> None:
    zelda = world["zelda"]
    log = decision_log(db, zelda.organization_id, candidate_id=zelda.candidate_id)

    by_kind = {entry["kind"]: entry for entry in log}
    assert len(log) == len(by_kind) == len(DECISIONS) + 1
    assert set(by_kind) == {"resume_evaluation", *DECISIONS}
    for kind, (action, entity_type, table, model, version) in DECISIONS.items():
        entry = by_kind[kind]
        assert (entry["action"], entry["model_name"], entry["model_version"]) == (
            action,
            model,
            version,
        ), kind
        assert (entry["entity_type"], entry["entity_id"]) == (entity_type, zelda.id(table))
        assert entry["candidate_id"] == str(zelda.candidate_id), kind
        assert entry["job_id"] == str(zelda.job_id), kind
        assert entry["application_id"] == zelda.id("applications"), kind
        assert entry["input_refs"] == {"kind": kind}
        assert entry["output_refs"] == {f"{table}_id": zelda.id(table)}
        assert entry["when"] and entry["audit"][0]["action"] == action
        assert entry["evidence"]["table"] == table and entry["evidence"]["id"] == zelda.id(table)

    evaluation = by_kind["resume_evaluation"]
    version = db.execute(
        text("SELECT name, version FROM ai_model_versions WHERE id = :v"),
        {"v": zelda.seeder.rows["ai_evaluations"]["model_version_id"]},
    ).one()
    assert (evaluation["model_name"], evaluation["model_version"]) == tuple(version)
    assert evaluation["id"] == evaluation["entity_id"] == zelda.id("ai_evaluations")
    assert evaluation["action"] == "ai_evaluation.scored"
    assert evaluation["input_refs"]["job_id"] == str(zelda.job_id)
    assert evaluation["overall_score"] == 81.0
    [criterion] = evaluation["criteria"]
    assert evaluation["evidence"]["criteria"] == [criterion]
    assert (
        criterion["criterion_key"]
        == zelda.seeder.rows["evaluation_criteria_scores"]["criterion_key"]
    )

    deep = by_kind["portfolio_evaluation"]["evidence"]
    [finding] = deep["findings"]
    assert finding["id"] == zelda.id("deep_evaluation_findings")
    session = by_kind["assessment_result"]["evidence"]
    assert (session["theta"], session["se"]) == (0.8, 0.3)
    answer = by_kind["assessment_response"]["evidence"]
    assert answer["assessment_session_id"] == zelda.id("assessment_sessions")
    assert (answer["session_theta"], answer["session_se"]) == (0.8, 0.3)
    assert by_kind["proctoring"]["evidence"]["risk_score"] == 0.42
    assert by_kind["interview_speech"]["evidence"]["transcript_id"] == zelda.id("transcripts")

    # Free text (transcripts, summaries, quoted passages, answers) stays in its tables.
    assert zelda.seeder.marker not in str(log)
    assert _leaks(log, world["bob"]) == [] and _leaks(log, world["elsewhere"]) == []


def test_the_same_person_in_another_organization_never_shows(
    db: Session, world: dict[str, Subject]
) -> None:
    zelda, elsewhere = world["zelda"], world["elsewhere"]
    home = zelda.organization_id
    assert decision_log(db, home, candidate_id=elsewhere.candidate_id) == []
    assert decision_log(db, elsewhere.organization_id, candidate_id=zelda.candidate_id) == []
    assert decision_log(db, home, job_id=elsewhere.job_id) == []

    theirs = decision_log(db, elsewhere.organization_id, candidate_id=elsewhere.candidate_id)
    assert len(theirs) == len(DECISIONS) + 1
    assert _leaks(theirs, zelda) == [] and _leaks(theirs, world["bob"]) == []

    everything = decision_log(db, home, limit=1000)
    assert len(everything) == 2 * (len(DECISIONS) + 1)  # Zelda's and Bob's
    assert _leaks(everything, elsewhere) == []
    assert {e["subject_ref"] for e in everything} == {
        subject_ref(zelda.candidate_id),
        subject_ref(world["bob"].candidate_id),
    }


def test_a_job_log_holds_the_decisions_about_its_applicants(
    db: Session, world: dict[str, Subject]
) -> None:
    zelda, bob = world["zelda"], world["bob"]
    assert zelda.job_id == bob.job_id  # Bob applied to the same job
    log = decision_log(db, zelda.organization_id, job_id=zelda.job_id, limit=1000)
    assert sorted(e["kind"] for e in log) == sorted(2 * ["resume_evaluation", *DECISIONS])
    assert {e["candidate_id"] for e in log} == {str(zelda.candidate_id), str(bob.candidate_id)}
    assert len(decision_log(db, zelda.organization_id, job_id=zelda.job_id, limit=3)) == 3


def test_a_decision_whose_row_is_gone_keeps_its_entry_and_foreign_rows_are_not_evidence(
    db: Session, world: dict[str, Subject]
) -> None:
    """An erased evaluation still has its audit row; an audit row that names another
    organization's row (a bug, or a forged row) shows no evidence from it."""
    zelda, elsewhere = world["zelda"], world["elsewhere"]
    erased = uuid.uuid4()
    audit.record_ai_decision(
        db,
        organization_id=zelda.organization_id,
        action="ai_evaluation.scored",
        entity_type="ai_evaluations",
        entity_id=erased,
        subject_id=zelda.candidate_id,
        model_name="are-evaluator",
        model_version="2",
        input_refs={"job_id": str(zelda.job_id)},
        output_refs={"evaluation_id": str(erased)},
    )
    audit.record(
        db,
        organization_id=zelda.organization_id,
        action="deep_evaluation.scored",
        entity_type="deep_evaluations",
        entity_id=elsewhere.seeder.rows["deep_evaluations"]["id"],
        subject_id=zelda.candidate_id,
        model_name="are-deep-evaluator",
        model_version="2",
    )
    db.flush()
    log = decision_log(db, zelda.organization_id, candidate_id=zelda.candidate_id)
    assert len(log) == len(DECISIONS) + 3
    [gone] = [e for e in log if e["entity_id"] == str(erased)]
    assert (gone["kind"], gone["model_version"], gone["evidence"]) == (
        "resume_evaluation",
        "2",
        None,
    )
    assert gone["candidate_id"] == str(zelda.candidate_id)
    [foreign] = [e for e in log if e["entity_id"] == elsewhere.id("deep_evaluations")]
    assert foreign["evidence"] is None and foreign["job_id"] is None
    assert elsewhere.seeder.marker not in str(log)
    # By job, the erased evaluation is found through its input refs.
    by_job = decision_log(db, zelda.organization_id, job_id=zelda.job_id, limit=1000)
    assert str(erased) in {e["entity_id"] for e in by_job}


def test_an_item_calibration_shows_in_the_organization_log_only(
    db: Session, world: dict[str, Subject]
) -> None:
    zelda = world["zelda"]
    run = zelda.seeder.context_row("item_calibration_runs")
    audit.record(
        db,
        organization_id=zelda.organization_id,
        action="assessment.items_calibrated",
        entity_type="item_calibration_runs",
        entity_id=run["id"],
        model_name="are-irt-calibration+mml-em",
        model_version="0.9.0",
        input_refs={"bank_id": str(run["bank_id"])},
    )
    db.flush()
    [entry] = [e for e in decision_log(db, zelda.organization_id, limit=1000)
               if e["kind"] == "item_calibration"]  # fmt: skip
    assert (entry["model_name"], entry["model_version"]) == ("are-irt-calibration+mml-em", "0.9.0")
    assert entry["evidence"]["bank_id"] == str(run["bank_id"])
    assert entry["candidate_id"] is None and entry["subject_ref"] is None
    assert entry["evidence"]["drift_flags"] == 0
    for filtered in (
        decision_log(db, zelda.organization_id, candidate_id=zelda.candidate_id),
        decision_log(db, zelda.organization_id, job_id=zelda.job_id, limit=1000),
    ):
        assert "item_calibration" not in {e["kind"] for e in filtered}


def test_every_audited_ai_action_of_the_workers_is_read() -> None:
    """A new AI action in a service must be added to the log (``decisions._KINDS``)."""
    from are_workers.services.assessments import recalibration, sessions
    from are_workers.services.media import answer_analysis, answer_transcription, proctoring_store
    from are_workers.services.portfolios import store as portfolio_store

    written = {
        answer_transcription.TRANSCRIPT_AUDIT_ACTION,
        answer_analysis.SPEECH_AUDIT_ACTION,
        answer_analysis.VIDEO_AUDIT_ACTION,
        answer_analysis.VIDEO_SKIPPED_AUDIT_ACTION,
        proctoring_store.PROCTORING_AUDIT_ACTION,
        portfolio_store.SCORED_AUDIT_ACTION,
        portfolio_store.SKIPPED_AUDIT_ACTION,
        portfolio_store.FAILED_AUDIT_ACTION,
        sessions.AUDIT_ACTION,
        sessions.RESPONSE_AUDIT_ACTION,
        sessions.FREE_TEXT_AUDIT_ACTION,
        recalibration.AUDIT_ACTION,
        "ai_evaluation.scored",
    }
    assert written <= set(AI_DECISION_ACTIONS)
