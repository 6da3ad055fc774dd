"""A job whose worker kept dying: the sweeper marks it dead and its entity says so."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from are_workers import ledger
from are_workers.broker import get_broker
from are_workers.dead_jobs import run_dead_hook
from are_workers.errors import NotFoundError
from are_workers.models.candidates import Candidate, ProcessingStatus
from are_workers.models.files import FileStatus
from are_workers.tasks import registry
from tests.conftest import UploadFn
from tests.factories import make_org

registry.load_all()
SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "resumes"


def test_a_job_dead_at_the_crash_cap_records_that_it_gave_up(db: Session, upload: UploadFn) -> None:
    org = make_org(db)
    file = upload(org, SAMPLES / "tom_baker_accountant.txt")
    job = ledger.enqueue(db, "resumes.process_file", {"file_id": str(file.id)},
                         organization_id=org.id)  # fmt: skip
    db.execute(text("UPDATE task_runs SET status = 'running', attempts = 3, crashes = 2, "
                    "lease_expires_at = now() - interval '1 minute' WHERE id = :i"),
               {"i": job})  # fmt: skip
    ledger.recover_expired_leases(db, crash_cap=3)
    status, handler = db.execute(text(
        "SELECT (SELECT status::text FROM task_runs WHERE id = :i), "
        "(SELECT args->>'dead_job_id' FROM task_runs WHERE actor = 'system.handle_dead' "
        " AND organization_id = :o)"), {"i": job, "o": org.id}).one()  # fmt: skip
    assert status == "dead" and handler == str(job)  # the follow-up job, same transaction

    outcome = run_dead_hook(db, get_broker(), job, org.id)
    assert outcome["hook"].endswith("record_file_failure")
    db.refresh(file)
    assert file.status is FileStatus.FAILED and file.error_code == "gave_up"
    assert "will not be retried automatically" in (file.error_message or "")
    candidate = db.get_one(Candidate, file.candidate_id)
    db.refresh(candidate)
    assert candidate.processing_status is ProcessingStatus.FAILED
    # Running the handler again (a redelivery) is harmless; another tenant finds nothing.
    assert run_dead_hook(db, get_broker(), job, org.id)["hook"]
    other = make_org(db)
    with pytest.raises(NotFoundError):
        run_dead_hook(db, get_broker(), job, other.id)
