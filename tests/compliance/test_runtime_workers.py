"""Real worker processes and the scheduler, connected as the least-privilege runtime role,
carry out compliance jobs end to end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from are_workers import ledger
from are_workers.crypto import subject_ref
from are_workers.models.privacy import DataSubjectRequest, DsrKind, SubjectType
from are_workers.services.compliance import audit, audit_chain
from tests.compliance.scan import find_values
from tests.compliance.seed import seed_subject, unique_marker
from tests.factories import days, make_org, utcnow
from tests.procs import ROOT, PrivateRedis, stop_worker, wait_status, worker_env

pytestmark = [pytest.mark.multiprocess, pytest.mark.slow]

LAUNCHER = (
    "import typer; from are_workers.cli.scheduler import register; "
    "app = typer.Typer(); register(app); app()"
)


def test_workers_and_scheduler_run_as_the_runtime_role(
    owner_engine: Engine, runtime_url: str, tmp_path: Path
) -> None:
    storage = tmp_path / "storage"
    with Session(owner_engine) as db:
        org = make_org(db)
        subject = seed_subject(
            db, org.id, marker=unique_marker(), email="rt@example.com", storage_dir=storage
        )
        candidate_id = subject.rows["candidates"]["id"]
        dsr = DataSubjectRequest(
            organization_id=org.id,
            kind=DsrKind.ERASURE,
            subject_type=SubjectType.CANDIDATE,
            candidate_id=candidate_id,
            subject_ref=subject_ref(candidate_id),
            deadline_at=utcnow() + days(30),
        )
        db.add(dsr)
        for _ in range(3):
            audit.record(db, organization_id=org.id, action="candidate.viewed")
        db.flush()
        erase = ledger.enqueue(
            db,
            "compliance.process_dsr",
            {"request_id": str(dsr.id)},
            organization_id=org.id,
            idempotency_key=f"dsr:{dsr.id}",
        )
        org_id, dsr_id = org.id, dsr.id
        db.commit()
    redis = PrivateRedis(tmp_path / "redis").start()
    env = worker_env(
        runtime_url,
        redis.url,
        tmp_path / "data",
        ARE_STORAGE_DIR=str(storage),
        ARE_ERASURE_JOURNAL_DIR=str(tmp_path / "journal"),
        ARE_RUNTIME_DATABASE_URL=runtime_url,
    )
    log = tmp_path / "worker.log"
    # The scheduler enqueues the seal (as the runtime role), once.
    once = subprocess.run(
        [sys.executable, "-c", LAUNCHER, "scheduler", "--once", "--only", "audit-seal"],
        check=False,
        env=env,
        cwd=ROOT,
        capture_output=True,
        timeout=120,
    )
    assert once.returncode == 0, once.stderr.decode()[-2000:]
    with owner_engine.connect() as conn:
        seal = conn.execute(
            text("SELECT id FROM task_runs WHERE actor = 'compliance.seal_audit_chain'")
        ).scalar_one()
    argv = [
        sys.executable,
        "-m",
        "are_workers.cli.main",
        "worker",
        "--queues",
        "compliance",
        "--processes",
        "1",
        "--threads",
        "2",
    ]
    worker = subprocess.Popen(
        argv, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=ROOT
    )
    try:
        for job in (erase, seal):
            row = wait_status(owner_engine, job, {"succeeded", "failed", "dead"}, timeout=120)
            assert row.status == "succeeded", (row.error_message, log.read_text()[-3000:])
        with owner_engine.connect() as conn:
            roles = set(
                conn.execute(
                    text(
                        "SELECT DISTINCT usename FROM pg_stat_activity WHERE datname = "
                        "current_database() AND application_name = 'are-workers'"
                    )
                ).scalars()
            )
        assert roles == {"are_test_runtime"}
    finally:
        assert stop_worker(worker) == 0, log.read_text()[-3000:]
        redis.kill()
    with Session(owner_engine) as db:
        status = db.execute(
            text("SELECT status::text FROM data_subject_requests WHERE id = :i"), {"i": dsr_id}
        ).scalar_one()
        assert status == "completed"
        assert find_values(db, org_id, [subject.marker, "rt@example.com"]) == {}
        report = audit_chain.verify(db, org_id)
        assert report.ok and report.rows_checked >= 3
