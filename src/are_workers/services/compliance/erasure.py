"""Erasure (GDPR Art. 17): everything about one subject in one organization, from the metadata.

Why it is driven by the compliance registry (``registry.py``): the column classifications
plus every FK path from the subject's root row already know every table, JSONB column and
derived row (embeddings, transcripts, analysis results) that belongs to a candidate; a table
added tomorrow is erased the day its columns are classified. Each table's ``SELECT id`` of
the subject's rows is built once (:class:`SubjectRows`) and serves the file lookup, the
erasure and the verification.

What happens, deepest tables first, every statement scoped to the organization (each
organization is the controller of its own copy: the same person elsewhere is untouched):

* rows whose table has a ``delete_row`` column (embeddings, video analysis, ...) are
  deleted; other rows have their PII columns set per strategy (``anonymize.py``), keeping
  the non-personal facts (an application existed, a score was given) for statistics;
* the subject's files are deleted from storage (files the subject owns, and files any of
  the subject's rows point at) and their rows marked deleted;
* the candidate row stays as an anonymous shell (``status = 'anonymized'``), so its random
  id keeps joining the statistics and the erasure can be re-applied after a restore;
* one ``erasure_records`` row per table (counts only), one audit row (pseudonymous), and a
  verification pass that recounts every subject table for data left behind.

Legal holds: an organization or candidate hold refuses the erasure with the hold's reason
(Art. 17(3)(e)); a table hold skips that table and says so in the report.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import Select, Table, and_, delete, func, select, text, update
from sqlalchemy.orm import Session

from are_workers.crypto import subject_ref as make_subject_ref
from are_workers.errors import NotFoundError, PermanentError
from are_workers.job_context import current_job_id
from are_workers.models.privacy import (
    ErasureRecord,
    ErasureStrategy,
    LegalHold,
    LegalHoldScope,
    SubjectType,
)
from are_workers.models.security import is_tenant_table
from are_workers.services import storage
from are_workers.services.compliance import audit
from are_workers.services.compliance.anonymize import file_reference_columns, row_anonymizer
from are_workers.services.compliance.keys import table_access
from are_workers.services.compliance.registry import SubjectKind, SubjectTable, subject_tables

log = structlog.get_logger(__name__)


class LegalHoldError(PermanentError):
    """Erasure refused: the subject's data is preserved for a legal claim (Art. 17(3)(e))."""

    code = "legal_hold"


@dataclass
class ErasureOutcome:
    organization_id: uuid.UUID
    subject_type: str
    subject_ref: str
    deleted: dict[str, int] = field(default_factory=dict)
    anonymized: dict[str, int] = field(default_factory=dict)
    residual: dict[str, int] = field(default_factory=dict)
    held: list[str] = field(default_factory=list)
    files_deleted: int = 0
    files_remaining: int = 0
    verified_at: datetime | None = None

    @property
    def rows(self) -> int:
        return sum(self.deleted.values()) + sum(self.anonymized.values())

    def verification_report(self) -> dict[str, Any]:
        """The ``VerificationReport`` shape: counts and table names only."""
        residual = dict(self.residual)
        if self.files_remaining:
            residual["storage"] = self.files_remaining
        return {
            "version": 1,
            "verified_at": (self.verified_at or datetime.now(UTC)).isoformat(),
            "deleted": {k: v for k, v in self.deleted.items() if v},
            "anonymized": {k: v for k, v in self.anonymized.items() if v},
            "residual": residual,
            "held": self.held,
        }


def subject_entries(kind: SubjectKind) -> list[SubjectTable]:
    """The tenant tables of a subject, deepest first (children before their parents)."""
    entries = [e for e in subject_tables(kind) if is_tenant_table(e.table)]
    return sorted(entries, key=lambda e: (-len(e.hops), e.table.name))


@dataclass(frozen=True)
class SubjectRows:
    """One table's rows of the subject in one organization: the registry entry and its
    ``SELECT id`` (every path), built once and used to find files, erase and verify."""

    entry: SubjectTable
    ids: Select[Any]

    @property
    def table(self) -> Table:
        return self.entry.table


def _check_holds(
    session: Session, organization_id: uuid.UUID, kind: SubjectKind, subject_id: uuid.UUID
) -> list[str]:
    holds = session.scalars(
        select(LegalHold).where(
            LegalHold.organization_id == organization_id, LegalHold.released_at.is_(None)
        )
    ).all()
    for hold in holds:
        blocking = hold.scope is LegalHoldScope.ORGANIZATION or (
            hold.scope is LegalHoldScope.CANDIDATE
            and kind == "candidate"
            and hold.candidate_id == subject_id
        )
        if blocking:
            reference = f" (reference {hold.reference})" if hold.reference else ""
            raise LegalHoldError(
                f"Erasure refused: the data is under a legal hold{reference} placed "
                f"{hold.placed_at:%Y-%m-%d}: {hold.reason}. It can be erased once the hold "
                "is released (GDPR Art. 17(3)(e))."
            )
    return sorted({h.table_name for h in holds if h.scope is LegalHoldScope.TABLE and h.table_name})


def _subject_exists(
    session: Session, organization_id: uuid.UUID, kind: SubjectKind, subject_id: uuid.UUID
) -> bool:
    if kind == "candidate":
        query = "SELECT 1 FROM candidates WHERE organization_id = :o AND id = :s"
    else:
        query = "SELECT 1 FROM organization_members WHERE organization_id = :o AND user_id = :s"
    return session.execute(text(query), {"o": organization_id, "s": subject_id}).first() is not None


def _subject_files(
    session: Session, scopes: list[SubjectRows], organization_id: uuid.UUID
) -> tuple[list[uuid.UUID], list[str]]:
    """Ids and storage keys of every file the subject's rows own or point at."""
    from are_workers.models.files import File, FileVersion

    files, versions = File.__table__, FileVersion.__table__
    file_ids: set[uuid.UUID] = set()
    for scope in scopes:
        for column in file_reference_columns(scope.table):
            stmt = select(column).where(scope.table.c.id.in_(scope.ids), column.is_not(None))
            file_ids.update(session.execute(stmt).scalars())
    if not file_ids:
        return [], []
    ids = sorted(file_ids)
    keys = list(
        session.execute(
            select(files.c.storage_key)
            .where(files.c.id.in_(ids), files.c.organization_id == organization_id)
            .union_all(select(versions.c.storage_key).where(versions.c.file_id.in_(ids)))
        ).scalars()
    )
    return ids, keys


def erase_subject(
    session: Session,
    organization_id: uuid.UUID,
    subject_id: uuid.UUID,
    *,
    kind: SubjectKind = "candidate",
    request_id: uuid.UUID | None = None,
) -> ErasureOutcome:
    """Erase one subject in one organization, in the caller's transaction; idempotent.

    Raises :class:`LegalHoldError` (nothing changed) when a hold covers the subject, and
    :class:`NotFoundError` when the organization holds no such subject.
    """
    task_run_id = current_job_id()
    if not _subject_exists(session, organization_id, kind, subject_id):
        raise NotFoundError(
            f"No {kind} {subject_id} in organization {organization_id}: nothing to erase."
        )
    held = _check_holds(session, organization_id, kind, subject_id)
    scopes = [
        SubjectRows(entry, entry.row_ids(organization_id, subject_id))
        for entry in subject_entries(kind)
        if entry.table.name not in held
    ]
    outcome = ErasureOutcome(organization_id, kind, make_subject_ref(subject_id), held=held)
    file_ids, keys = _subject_files(session, scopes, organization_id)
    _scrub_job_messages(session, organization_id, subject_id, scopes, outcome)
    for scope in scopes:
        with table_access(session, scope.table.name):
            _erase_table(session, scope, outcome)
    if file_ids and "files" not in held:
        _retire_files(session, organization_id, file_ids)
        outcome.files_deleted = storage.delete(keys, organization_id)
    if kind == "candidate":
        session.execute(
            text(
                "UPDATE candidates SET status = 'anonymized', anonymized_at = "
                "coalesce(anonymized_at, now()), updated_at = now() "
                "WHERE organization_id = :o AND id = :s"
            ),
            {"o": organization_id, "s": subject_id},
        )
    _close_requests_contacts(session, organization_id, kind, subject_id)
    _record(session, outcome, request_id, task_run_id)
    verify(session, outcome, scopes, keys)
    audit.record(
        session,
        organization_id=organization_id,
        action="dsr.erasure.completed",
        entity_type="data_subject_request" if request_id else kind,
        entity_id=request_id,
        subject_id=subject_id,
        output_refs={
            "deleted": outcome.deleted,
            "anonymized": outcome.anonymized,
            "files_deleted": outcome.files_deleted,
            "residual": outcome.residual,
            "held": outcome.held,
        },
    )
    log.info(
        "subject_erased",
        organization_id=str(organization_id),
        kind=kind,
        rows=outcome.rows,
        files=outcome.files_deleted,
    )
    return outcome


def _erase_table(session: Session, scope: SubjectRows, outcome: ErasureOutcome) -> None:
    table, ids = scope.table, scope.ids
    anonymizer = row_anonymizer(table)
    if not anonymizer.columns:
        return  # no personal data in this table (ids, statuses, scores)
    if anonymizer.deletes_rows:
        result = session.execute(delete(table).where(table.c.id.in_(ids)))
        if result.rowcount:  # type: ignore[attr-defined]
            outcome.deleted[table.name] = int(result.rowcount)  # type: ignore[attr-defined]
        return
    values: dict[str, Any] = dict(anonymizer.values)
    if "updated_at" in table.c:
        values["updated_at"] = func.now()
    result = session.execute(
        update(table).where(table.c.id.in_(ids), anonymizer.holds_data).values(values)
    )
    if result.rowcount:  # type: ignore[attr-defined]
        outcome.anonymized[table.name] = int(result.rowcount)  # type: ignore[attr-defined]


def _scrub_job_messages(
    session: Session,
    organization_id: uuid.UUID,
    subject_id: uuid.UUID,
    scopes: list[SubjectRows],
    outcome: ErasureOutcome,
) -> None:
    """The ledger's error messages of the subject's jobs can quote them (an archive path, a
    file name): clear those of the jobs whose arguments name any of the subject's rows.

    Run before the rows go, while their ids can still be found.
    """
    ids = {str(subject_id)}
    for scope in scopes:
        ids.update(str(row_id) for row_id in session.scalars(scope.ids))
    result = session.execute(
        text(
            "UPDATE task_runs SET error_message = NULL, updated_at = now() "
            "WHERE organization_id = :o AND error_message IS NOT NULL AND EXISTS "
            "(SELECT 1 FROM jsonb_each_text(args) AS a WHERE a.value = ANY(:ids))"
        ),
        {"o": organization_id, "ids": sorted(ids)},
    )
    if result.rowcount:  # type: ignore[attr-defined]
        outcome.anonymized["task_runs"] = int(result.rowcount)  # type: ignore[attr-defined]


def _retire_files(session: Session, organization_id: uuid.UUID, file_ids: list[uuid.UUID]) -> None:
    """The objects are going: mark the rows deleted (and redact names not yet redacted)."""
    from are_workers.models.files import File

    files: Table = File.__table__  # type: ignore[assignment]
    anonymizer = row_anonymizer(files)
    session.execute(
        update(files)
        .where(files.c.organization_id == organization_id, files.c.id.in_(file_ids))
        .values({**anonymizer.values, "deleted_at": func.coalesce(files.c.deleted_at, func.now())})
    )


def _close_requests_contacts(
    session: Session, organization_id: uuid.UUID, kind: SubjectKind, subject_id: uuid.UUID
) -> None:
    """Requests about the subject keep no way to contact them once erased."""
    column = "candidate_id" if kind == "candidate" else "user_id"
    session.execute(
        text(
            f"UPDATE data_subject_requests SET requester_email = NULL, updated_at = now() "  # noqa: S608 - a fixed column name
            f"WHERE organization_id = :o AND {column} = :s AND requester_email IS NOT NULL"
        ),
        {"o": organization_id, "s": subject_id},
    )


def _record(
    session: Session,
    outcome: ErasureOutcome,
    request_id: uuid.UUID | None,
    task_run_id: uuid.UUID | None,
) -> None:
    for counts, strategy in (
        (outcome.deleted, ErasureStrategy.DELETED),
        (outcome.anonymized, ErasureStrategy.ANONYMIZED),
    ):
        for table_name, rows in sorted(counts.items()):
            if rows:
                session.add(
                    ErasureRecord(
                        organization_id=outcome.organization_id,
                        request_id=request_id,
                        subject_ref=outcome.subject_ref,
                        table_name=table_name,
                        strategy=strategy,
                        row_count=rows,
                        task_run_id=task_run_id,
                    )
                )
    for table_name in outcome.held:
        session.add(
            ErasureRecord(
                organization_id=outcome.organization_id,
                request_id=request_id,
                subject_ref=outcome.subject_ref,
                table_name=table_name,
                strategy=ErasureStrategy.SKIPPED_HELD,
                row_count=0,
                task_run_id=task_run_id,
            )
        )
    session.flush()


def verify(
    session: Session, outcome: ErasureOutcome, scopes: list[SubjectRows], storage_keys: list[str]
) -> ErasureOutcome:
    """Recount every subject table erased (not held) for rows still holding personal data,
    and storage."""
    for scope in scopes:
        table = scope.table
        anonymizer = row_anonymizer(table)
        if not anonymizer.columns:
            continue
        condition = (
            table.c.id.in_(scope.ids)
            if anonymizer.deletes_rows
            else and_(table.c.id.in_(scope.ids), anonymizer.holds_data)
        )
        with table_access(session, table.name):
            left = session.execute(
                select(func.count()).select_from(table).where(condition)
            ).scalar_one()
        if left:
            outcome.residual[table.name] = int(left)
    outcome.files_remaining = len(storage.existing(storage_keys, outcome.organization_id))
    outcome.verified_at = session.execute(text("SELECT clock_timestamp()")).scalar_one()
    return outcome


# --- the erasure journal: re-applying erasures after a restore -------------------------------


def journal_dir() -> Path:
    from are_workers.config import get_settings

    settings = get_settings()
    return settings.erasure_journal_dir or settings.data_dir / "compliance" / "erasure-journal"


def journal_erasure(
    organization_id: uuid.UUID,
    kind: SubjectKind,
    subject_id: uuid.UUID,
    request_id: uuid.UUID | None,
    directory: Path | None = None,
) -> Path:
    """Append the erasure to a journal kept outside the database.

    Why outside: a database restored from a backup taken before the erasure has forgotten
    it (the request and its records included), and must not bring the person back.
    The journal holds ids only (the subject's random row id), no personal data.
    """
    directory = directory or journal_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{organization_id}.jsonl"
    entry = {
        "organization_id": str(organization_id),
        "subject_type": kind,
        "subject_id": str(subject_id),
        "request_id": str(request_id) if request_id else None,
        "erased_at": datetime.now(UTC).isoformat(),
    }
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry, sort_keys=True) + "\n")
    return path


@dataclass(frozen=True)
class JournalEntry:
    organization_id: uuid.UUID
    subject_type: SubjectKind
    subject_id: uuid.UUID
    request_id: uuid.UUID | None


def read_journal(directory: Path | None = None) -> list[JournalEntry]:
    directory = directory or journal_dir()
    seen: dict[tuple[uuid.UUID, str, uuid.UUID], JournalEntry] = {}
    for path in sorted(directory.glob("*.jsonl")) if directory.exists() else []:
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            data = json.loads(line)
            entry = JournalEntry(
                uuid.UUID(data["organization_id"]),
                data["subject_type"],
                uuid.UUID(data["subject_id"]),
                uuid.UUID(data["request_id"]) if data.get("request_id") else None,
            )
            seen.setdefault((entry.organization_id, entry.subject_type, entry.subject_id), entry)
    return list(seen.values())


def recorded_erasures(session: Session) -> list[JournalEntry]:
    """Completed erasure requests the database itself remembers."""
    rows = session.execute(
        text(
            "SELECT organization_id, subject_type::text AS subject_type, candidate_id, user_id, "
            "id FROM data_subject_requests WHERE kind = 'erasure' AND status = 'completed'"
        )
    )
    out = []
    for r in rows:
        subject = r.candidate_id if r.subject_type == SubjectType.CANDIDATE.value else r.user_id
        if subject is not None:
            out.append(JournalEntry(r.organization_id, r.subject_type, subject, r.id))
    return out


def reapply_erasures(
    session: Session, *, directory: Path | None = None, organization_id: uuid.UUID | None = None
) -> list[dict[str, Any]]:
    """Erase again every subject the journal (or the database) says was erased.

    Idempotent: a subject still erased changes nothing (its counts are zero); one that a
    restore brought back is erased again. Subjects the restored database never held are
    reported as ``absent``.
    """
    entries = {
        (e.organization_id, e.subject_type, e.subject_id): e
        for e in [*read_journal(directory), *recorded_erasures(session)]
    }
    report: list[dict[str, Any]] = []
    for org_id, kind, subject_id in sorted(entries, key=str):
        if organization_id is not None and org_id != organization_id:
            continue
        item: dict[str, Any] = {
            "organization_id": str(org_id),
            "subject_type": kind,
            "subject_ref": make_subject_ref(subject_id),
        }
        try:
            with session.begin_nested():
                outcome = erase_subject(session, org_id, subject_id, kind=kind, request_id=None)
            item.update(status="erased" if outcome.rows else "already_erased", rows=outcome.rows)
        except NotFoundError:
            item["status"] = "absent"
        except LegalHoldError as exc:
            item.update(status="held", reason=exc.user_message)
        report.append(item)
    return report
