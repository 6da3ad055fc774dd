"""Static checks of the metadata: classification, tenancy, indexes, naming. No database."""

from __future__ import annotations

import pytest
from sqlalchemy import Enum, ForeignKeyConstraint, Index, Table, UniqueConstraint

import are_workers.models  # noqa: F401 - registers every table
from are_workers.models.base import Base
from are_workers.models.classification import (
    Anonymize,
    DataCategory,
    classification_of,
    policy_of,
)
from are_workers.models.security import GLOBAL_TABLES, global_tables, is_tenant_table

TABLES = sorted(Base.metadata.tables.values(), key=lambda t: t.name)

#: Columns that hold personal data by their nature: a lazy ``not_pii()`` must not pass.
MUST_BE_PII = {
    # names
    ("users", "full_name"),
    ("candidates", "full_name"),
    ("files", "original_filename"),
    # emails and phones
    ("users", "email"),
    ("candidates", "email"),
    ("candidates", "email_blind_index"),
    ("candidates", "phone"),
    ("invitations", "email"),
    ("messages", "to_address"),
    ("data_subject_requests", "requester_email"),
    ("email_suppressions", "email_blind_index"),
    # addresses and identifying links
    ("candidates", "location"),
    ("candidates", "profile_url"),
    ("portfolio_items", "url"),
    ("user_sessions", "ip_address"),
    ("file_access_log", "ip_address"),
    # resume text and what is extracted or quoted from it
    ("parsed_resumes", "raw_text"),
    ("parsed_resumes", "sections"),
    ("candidates", "summary"),
    ("candidate_experience", "description"),
    ("candidate_education", "institution"),
    ("embeddings", "chunk_text"),
    ("embeddings", "embedding"),
    ("evaluation_criteria_scores", "evidence_text"),
    ("deep_evaluation_findings", "evidence_passage"),
    ("ai_evaluations", "output"),
    ("ai_evaluations", "summary"),
    # transcripts and messages
    ("transcripts", "text"),
    ("transcript_segments", "text"),
    ("transcript_segments", "words"),
    ("transcription_checkpoints", "carry_text"),
    ("chat_messages", "content"),
    ("messages", "body"),
    ("application_answers", "answer_text"),
    ("applications", "cover_letter"),
    # free-text notes and opinions about a person
    ("candidate_notes", "body"),
    ("interview_feedback", "notes"),
    ("scorecard_ratings", "comment"),
    ("evaluation_reviews", "comment"),
    ("applications", "rejection_note"),
    # face analysis and proctoring (biometric)
    ("video_analysis_results", "signals"),
    ("video_analysis_results", "summary"),
    ("proctoring_events", "details"),
    ("proctoring_sessions", "risk_score"),
    ("video_responses", "file_id"),
    # self-identification (special categories)
    ("candidate_self_identifications", "gender"),
    ("candidate_self_identifications", "ethnicity"),
    ("candidate_self_identifications", "disability_status"),
    ("candidate_self_identifications", "veteran_status"),
    # money offered to a person
    ("offers", "salary_amount"),
}

BIOMETRIC = {
    ("video_analysis_results", "signals"),
    ("video_analysis_results", "summary"),
    ("proctoring_events", "details"),
    ("proctoring_sessions", "risk_score"),
}

ENCRYPTED = {
    ("candidates", "email"),
    ("candidates", "phone"),
    ("mfa_factors", "secret"),
    ("messages", "to_address"),
    ("data_subject_requests", "requester_email"),
    ("candidate_self_identifications", "gender"),
    ("candidate_self_identifications", "ethnicity"),
    ("candidate_self_identifications", "disability_status"),
    ("candidate_self_identifications", "veteran_status"),
    ("candidate_self_identifications", "age_band"),
}


def test_enough_tables_for_a_real_ats() -> None:
    assert len(TABLES) >= 68


@pytest.mark.parametrize("table", TABLES, ids=lambda t: t.name)
def test_every_column_is_classified(table: Table) -> None:
    missing = [c.name for c in table.columns if classification_of(c) is None]
    assert not missing, f"{table.name}: unclassified columns {missing}"


@pytest.mark.parametrize("table", TABLES, ids=lambda t: t.name)
def test_every_table_has_a_policy_whose_columns_exist(table: Table) -> None:
    policy = policy_of(table)
    assert policy is not None, f"{table.name} has no table_policy"
    assert policy.clock in table.c, f"{table.name}: clock {policy.clock!r} is not a column"
    assert policy.subject is None or policy.subject in table.c
    assert policy.purpose, f"{table.name}: say why the table exists (purpose)"
    assert policy.retention_days is None or policy.retention_days > 0


def test_named_columns_are_pii() -> None:
    wrong = []
    for table_name, column_name in sorted(MUST_BE_PII):
        column = Base.metadata.tables[table_name].c[column_name]
        classification = classification_of(column)
        if classification is None or not classification.pii:
            wrong.append(f"{table_name}.{column_name}")
        elif classification.category is DataCategory.NONE:
            wrong.append(f"{table_name}.{column_name} (category none)")
    assert not wrong, f"must be classified as PII: {wrong}"


def test_biometric_and_special_categories() -> None:
    for table_name, column_name in BIOMETRIC:
        cl = classification_of(Base.metadata.tables[table_name].c[column_name])
        assert cl is not None
        assert cl.category is DataCategory.BIOMETRIC, f"{table_name}.{column_name}"
    special_tables = {
        t.name
        for t in TABLES
        for c in t.columns
        if (cl := classification_of(c)) is not None
        and cl.category in {DataCategory.DEMOGRAPHIC, DataCategory.HEALTH}
    }
    # Self-identification lives apart from the candidate row, and only there.
    assert special_tables == {"candidate_self_identifications"}


def test_encrypted_columns() -> None:
    found = {
        (t.name, c.name)
        for t in TABLES
        for c in t.columns
        if (cl := classification_of(c)) is not None and cl.encrypted
    }
    assert found == ENCRYPTED
    for table_name, column_name in found:
        cl = classification_of(Base.metadata.tables[table_name].c[column_name])
        assert cl is not None
        assert cl.anonymize in {Anonymize.NULL, Anonymize.REDACT, Anonymize.DELETE_ROW}
        # ciphertext envelopes are text: the column must hold any length
        assert Base.metadata.tables[table_name].c[column_name].type.python_type is str


def test_global_tables_are_exactly_the_documented_ones() -> None:
    assert global_tables() == sorted(GLOBAL_TABLES)


def _referenced(fk: ForeignKeyConstraint) -> Table:
    return fk.elements[0].column.table


@pytest.mark.parametrize("table", [t for t in TABLES if is_tenant_table(t)], ids=lambda t: t.name)
def test_tenant_children_use_composite_tenant_keys(table: Table) -> None:
    """A tenant row may only reference a tenant parent through (organization_id, id)."""
    for fk in table.foreign_key_constraints:
        parent = _referenced(fk)
        if parent.name == "organizations" or not is_tenant_table(parent):
            continue
        local = [c.name for c in fk.columns]
        remote = [e.column.name for e in fk.elements]
        assert local[0] == "organization_id", f"{table.name} → {parent.name}: {local}"
        assert remote[0] == "organization_id", f"{table.name} → {parent.name}: {remote}"


@pytest.mark.parametrize("table", TABLES, ids=lambda t: t.name)
def test_every_foreign_key_is_indexed(table: Table) -> None:
    """Cascades and joins look children up by their FK: it must lead some index."""
    leading: set[str] = set()
    for index in table.indexes:
        first = next(iter(index.expressions), None)
        if first is not None and hasattr(first, "name"):
            leading.add(first.name)
    for constraint in table.constraints:
        if isinstance(constraint, UniqueConstraint) or constraint is table.primary_key:
            cols = list(constraint.columns)
            if cols:
                leading.add(cols[0].name)
    for fk in table.foreign_key_constraints:
        link = next(
            (e.parent.name for e in fk.elements if e.parent.name != "organization_id"),
            "organization_id",
        )
        if link == "organization_id" and _referenced(fk).name != "organizations":
            continue
        assert link in leading or (link == "organization_id" and "organization_id" in leading), (
            f"{table.name}.{link} is not the leading column of any index"
        )


def test_enums_are_named_and_indexes_follow_the_convention() -> None:
    for table in TABLES:
        for column in table.columns:
            if isinstance(column.type, Enum):
                assert column.type.name, f"{table.name}.{column.name}: unnamed enum"
        for index in table.indexes:
            assert isinstance(index, Index)
            assert index.name, f"{table.name}: unnamed index"
            assert index.name.startswith(("ix_", "uq_")), index.name
            assert len(index.name) <= 63, index.name


def test_tenant_tables_say_who_the_subject_is_or_follow_a_parent() -> None:
    """Every table with PII is reachable from a data subject (else erasure would miss it)."""
    from are_workers.services.compliance.registry import subject_tables

    reachable = {e.table.name for kind in ("candidate", "user") for e in subject_tables(kind)}
    with_pii = {
        t.name
        for t in TABLES
        if any((cl := classification_of(c)) is not None and cl.pii for c in t.columns)
    }
    # Contacts of people who are not (yet) subjects of a row we hold: an invitee's address,
    # a requester's address, and a suppressed address (kept to honour the opt-out).
    # Job and sweep error messages can quote anyone: erasure clears the messages of the jobs
    # whose arguments name the subject's rows (task_runs), retention clears the rest.
    unlinked = {
        "invitations",
        "data_subject_requests",
        "email_suppressions",
        "task_runs",
        "retention_runs",
    }
    assert with_pii - reachable == unlinked


def test_mappers_configure_without_warnings() -> None:
    """Every relationship resolves, and none silently overlaps another's columns."""
    import warnings

    from are_workers.models.relationships import configure

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        configure()
