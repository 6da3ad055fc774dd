"""Every text, varchar, JSON and bytea column of the live schema says what it can hold.

Read from ``information_schema`` of the migrated database, not from the models, so a
column added by a migration alone (or by an upstream app's migration) is caught too.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

import are_workers.models  # noqa: F401 - registers every table
from are_workers.models.base import Base
from are_workers.models.classification import Holds, classification_of

#: Free text that workers fill from input (a file name, an archive path, an exception, a
#: line of the document): it can quote a person, so it is personal and erasure clears it.
CAN_QUOTE_A_PERSON = {
    ("candidates", "status_message"),
    ("files", "error_message"),
    ("portfolio_items", "error_message"),
    ("deep_evaluations", "error_message"),
    ("deep_evaluation_findings", "evidence_locator"),
    ("messages", "error_message"),
    ("video_interviews", "error_message"),
    ("video_responses", "error_message"),
    ("task_runs", "error_message"),
    ("retention_runs", "error_message"),
    ("data_subject_requests", "rejection_reason"),
    ("portfolio_items", "stats"),
    ("parsed_resumes", "raw_text"),
    ("parsed_resumes", "sections"),
}

TEXTUAL = ("text", "character varying", "character", "json", "jsonb", "bytea")


def live_textual_columns(db: Session) -> list[tuple[str, str]]:
    """``(table, column)`` of every text-like column of the public schema's tables (arrays of
    text too; partitions are covered by their parent)."""
    rows = db.execute(
        text(
            "SELECT c.table_name, c.column_name FROM information_schema.columns c "
            "JOIN information_schema.tables t USING (table_schema, table_name) "
            "WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE' "
            "AND c.table_name <> 'alembic_version' "
            # a partition's columns are its parent's (audit_log_p202612 → audit_log)
            "AND NOT (SELECT relispartition FROM pg_class "
            "WHERE oid = format('%I.%I', c.table_schema, c.table_name)::regclass) "
            "AND (c.data_type = ANY(:types) OR c.udt_name IN ('_text', '_varchar', 'citext'))"
        ),
        {"types": list(TEXTUAL)},
    )
    return sorted((row.table_name, row.column_name) for row in rows)


def test_every_textual_column_of_the_live_schema_says_what_it_can_hold(db: Session) -> None:
    columns = live_textual_columns(db)
    assert len(columns) >= 240
    tables = {t for t, _ in columns}
    assert {"task_runs", "skills", "retention_runs", "audit_log"} <= tables  # global ones too
    unknown, unsaid = [], []
    for table_name, column_name in columns:
        table = Base.metadata.tables.get(table_name)
        if table is None or column_name not in table.c:
            unknown.append(f"{table_name}.{column_name}")
            continue
        classification = classification_of(table.c[column_name])
        if classification is None or classification.holds is None:
            unsaid.append(f"{table_name}.{column_name}")
    assert unknown == [], f"columns of the live schema that no model classifies: {unknown}"
    assert unsaid == [], f"say what these columns can hold (holds=Holds...): {unsaid}"


def test_free_text_filled_from_input_is_personal(db: Session) -> None:
    wrong = []
    for table_name, column_name in sorted(CAN_QUOTE_A_PERSON):
        cl = classification_of(Base.metadata.tables[table_name].c[column_name])
        if cl is None or not cl.pii or cl.holds is not Holds.PERSONAL:
            wrong.append(f"{table_name}.{column_name}")
    assert wrong == []


def test_every_error_or_status_message_is_personal() -> None:
    """A message column is written from an error's text; the rule is by name, so a new one
    cannot slip in as "not personal"."""
    wrong = [
        f"{table.name}.{column.name}"
        for table in Base.metadata.sorted_tables
        for column in table.columns
        if column.name.endswith(("error_message", "status_message"))
        and ((cl := classification_of(column)) is None or not cl.pii)
    ]
    assert wrong == []
