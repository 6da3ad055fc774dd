"""The compliance registry (services/compliance/registry.py) and models/security.py:
subject data, retention, encryption."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from are_workers.models.base import Base
from are_workers.models.privacy import LegalHold, LegalHoldScope, RetentionPolicy
from are_workers.models.security import encrypted_columns
from are_workers.models.video_interviews import (
    Transcript,
    TranscriptStatus,
    VideoInterview,
    VideoInterviewQuestion,
    VideoResponse,
)
from are_workers.services.compliance.registry import (
    RetentionOverrides,
    load_retention_overrides,
    resolve_retention,
    retention_horizons,
    subject_pii_columns,
    subject_pii_select,
    subject_tables,
)
from tests.factories import Graph, make_graph, make_model_version, utcnow

TABLES = Base.metadata.tables


def test_candidate_data_is_found_through_foreign_keys() -> None:
    entries = {e.table.name: e for e in subject_tables("candidate")}
    assert entries["candidates"].path == ["candidates"]
    assert entries["parsed_resumes"].subject_column == "candidate_id"
    # Several hops: transcript → response → video interview → application → candidate.
    assert entries["transcripts"].path == [
        "transcripts",
        "video_responses",
        "video_interviews",
        "applications",
        "candidates",
    ]
    assert "proctoring_events" in entries
    assert "candidate_self_identifications" in entries
    # The organization's own records are not the candidate's data.
    for not_theirs in ("job_postings", "job_requirements", "email_templates", "audit_log"):
        assert not_theirs not in entries
    # A DSR outlives the erasure it asked for (SET NULL is attribution, not ownership).
    assert "data_subject_requests" not in entries


def test_user_data_does_not_reach_into_tenants_candidate_copies() -> None:
    tables = {e.table.name for e in subject_tables("user")}
    assert {"users", "user_sessions", "mfa_factors", "organization_members", "notifications"} <= (
        tables
    )
    assert "candidates" not in tables  # each organization controls its own candidate copy


def test_pii_columns_of_a_subject() -> None:
    columns = subject_pii_columns("candidate")
    assert {"full_name", "email", "phone"} <= set(columns["candidates"])
    assert columns["transcripts"] == ["text"]
    assert "evidence_text" in columns["evaluation_criteria_scores"]


def test_subject_query_returns_only_that_subjects_rows(db: Session, graph: Graph) -> None:
    other = make_graph(db, graph.org)
    question = VideoInterviewQuestion(
        organization_id=graph.org.id, job_id=graph.job.id, prompt="Why us?", position=0
    )
    db.add(question)
    db.flush()
    transcripts = []
    for g in (graph, other):
        interview = VideoInterview(
            organization_id=g.org.id,
            application_id=g.application.id,
            expires_at=utcnow() + timedelta(days=3),
        )
        db.add(interview)
        db.flush()
        response = VideoResponse(
            organization_id=g.org.id, video_interview_id=interview.id, question_id=question.id
        )
        db.add(response)
        db.flush()
        transcript = Transcript(
            organization_id=g.org.id,
            video_response_id=response.id,
            model_version_id=make_model_version(db).id,
            status=TranscriptStatus.COMPLETE,
            text=f"I am {g.candidate.id}",
        )
        db.add(transcript)
        transcripts.append(transcript)
    db.flush()

    entry = next(e for e in subject_tables("candidate") if e.table.name == "transcripts")
    rows = db.execute(subject_pii_select(entry, graph.candidate.id)).all()
    assert [(r.id, r.text) for r in rows] == [(transcripts[0].id, f"I am {graph.candidate.id}")]

    root = next(e for e in subject_tables("candidate") if e.table.name == "candidates")
    assert [r.id for r in db.execute(subject_pii_select(root, other.candidate.id))] == [
        other.candidate.id
    ]


def test_retention_horizons() -> None:
    horizons = retention_horizons()
    assert horizons["candidates"].retention_days == 730
    assert horizons["candidates"].clock == "last_activity_at"
    assert horizons["parsed_resumes"].source == "inherited"
    assert horizons["parsed_resumes"].follows == ("candidates", "files")
    assert horizons["video_analysis_results"].retention_days == 180
    assert horizons["video_responses"].column_days == {"file_id": 90}
    assert horizons["skills"].source == "indefinite"
    assert set(horizons) == set(TABLES)


def test_retention_precedence() -> None:
    candidates, sessions = TABLES["candidates"], TABLES["user_sessions"]
    nothing = RetentionOverrides()
    assert resolve_retention(candidates, None, nothing).days == 730
    assert resolve_retention(sessions, "ip_address", nothing).rule == "column"
    assert resolve_retention(sessions, "ip_address", nothing).days == 30
    by_category = RetentionOverrides(by_category={"technical": 7})
    assert resolve_retention(sessions, "ip_address", by_category).days == 7
    by_table = RetentionOverrides(by_table={"candidates": 365}, by_category={"identity": 10})
    assert resolve_retention(candidates, "full_name", by_table).days == 365
    held = RetentionOverrides(by_table={"candidates": 365}, held_tables=frozenset({"candidates"}))
    assert resolve_retention(candidates, None, held).rule == "legal_hold"
    assert resolve_retention(candidates, None, held).days is None


def test_overrides_are_loaded_from_the_database(db: Session, graph: Graph) -> None:
    db.add_all(
        [
            RetentionPolicy(
                organization_id=graph.org.id, table_name="candidates", retention_days=400
            ),
            RetentionPolicy(
                organization_id=graph.org.id, data_category="biometric", retention_days=30
            ),
            LegalHold(
                organization_id=graph.org.id,
                scope=LegalHoldScope.TABLE,
                table_name="messages",
                reason="audit",
            ),
        ]
    )
    db.flush()
    overrides = load_retention_overrides(db, graph.org.id)
    assert overrides.by_table == {"candidates": 400}
    assert overrides.by_category == {"biometric": 30}
    assert overrides.held_tables == frozenset({"messages"})
    assert not overrides.organization_held


def test_encrypted_columns_are_listed() -> None:
    found = encrypted_columns()
    assert ("candidates", "email") in found
    assert ("candidates", "full_name") not in found


def test_every_encrypted_column_is_written_through_the_type_and_checked() -> None:
    """A column classified ``encrypted`` without ``EncryptedText`` (plaintext written by the
    ORM) or without its CHECK (plaintext written by SQL) fails here, and the reverse."""
    from sqlalchemy import CheckConstraint

    from are_workers.models.classification import Anonymize, classification_of
    from are_workers.models.columns import EncryptedText, envelope_check_sql

    typed = {
        (t.name, c.name)
        for t in Base.metadata.sorted_tables
        for c in t.columns
        if isinstance(c.type, EncryptedText)
    }
    assert typed == set(encrypted_columns())
    for table_name, column_name in encrypted_columns():
        table = Base.metadata.tables[table_name]
        column = table.c[column_name]
        assert isinstance(column.type, EncryptedText)
        assert (column.type.table, column.type.column) == (table_name, column_name)  # the AAD
        cl = classification_of(column)
        assert cl is not None
        checks = {
            c.name: str(c.sqltext) for c in table.constraints if isinstance(c, CheckConstraint)
        }
        name = f"ck_{table_name}_{column_name}_envelope"
        redactable = cl.anonymize is Anonymize.REDACT
        assert checks.get(name) == envelope_check_sql(column_name, redactable=redactable)
