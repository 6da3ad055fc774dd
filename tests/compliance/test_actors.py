"""The compliance actors: catalogue options, and their bodies under a real ledger claim."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from are_workers.config import get_settings
from are_workers.crypto import subject_ref
from are_workers.errors import InvalidInputError
from are_workers.job_context import running_job
from are_workers.models.privacy import DataSubjectRequest, DsrKind, RetentionRun, SubjectType
from are_workers.services.compliance import audit
from are_workers.tasks import compliance as actors
from are_workers.tasks import registry
from tests.compliance.seed import seed_subject, unique_marker
from tests.factories import days, make_org, utcnow


def test_actors_are_registered_on_the_compliance_queue() -> None:
    assert "are_workers.tasks.compliance" in registry.ACTOR_MODULES
    for name in (
        "retention_sweep",
        "process_dsr",
        "verify_audit_chain",
        "bias_audit",
        "rotate_keys",
        "seal_audit_chain",
        "export_audit_head",
        "expire_exports",
        "process_due_dsrs",
        "retention_sweep_platform",
        "maintain_audit_partitions",
    ):
        actor = getattr(actors, name)
        signs = name in {"export_audit_head", "maintain_audit_partitions"}  # hold the key
        assert actor.actor_name == f"compliance.{name}"
        assert actor.queue_name == ("signing" if signs else "compliance")


def test_a_scheduled_sweep_runs_for_its_own_organization_only(db: Session) -> None:
    org, other = make_org(db), make_org(db)
    args = {"scheduled_for": utcnow().isoformat()}
    with running_job(db, "compliance.retention_sweep", args, org.id) as ctx:
        actors.retention_sweep.fn(**args)
        result = ctx.result or {}
        assert result["status"] == "completed" and result["rows"] == 0
        with pytest.raises(InvalidInputError, match="its own organization"):
            actors.retention_sweep.fn(organization_id=str(other.id))
    with (
        running_job(db, "compliance.retention_sweep", {}, None),
        pytest.raises(InvalidInputError, match="needs an organization"),
    ):
        actors.retention_sweep.fn()


def test_the_platform_sweep_runs_for_no_organization(db: Session) -> None:
    org = make_org(db)
    args = {"scheduled_for": utcnow().isoformat()}
    with running_job(db, "compliance.retention_sweep_platform", args, None) as ctx:
        actors.retention_sweep_platform.fn(**args)
        result = ctx.result or {}
        assert result["status"] == "completed" and result["scope"] == "platform"
        run = db.get(RetentionRun, uuid.UUID(result["run_id"]))
        assert run is not None and run.organization_id is None  # recorded in retention_runs
        assert run.task_run_id == ctx.job_id
    with (
        running_job(db, "compliance.retention_sweep_platform", {}, org.id),
        pytest.raises(InvalidInputError, match="belongs to no organization"),
    ):
        actors.retention_sweep_platform.fn()


def test_audit_partition_maintenance_runs_for_no_organization(db: Session) -> None:
    org = make_org(db)
    args = {"scheduled_for": utcnow().isoformat()}
    with running_job(db, "compliance.maintain_audit_partitions", args, None) as ctx:
        actors.maintain_audit_partitions.fn(**args)
        result = ctx.result or {}
        assert result["dry_run"] is False and result["rows_dropped"] == 0
        current = f"audit_log_p{utcnow():%Y%m}"
        assert any(p["partition"] == current for p in result["partitions"])
    with (
        running_job(db, "compliance.maintain_audit_partitions", {}, org.id),
        pytest.raises(InvalidInputError, match="without one"),
    ):
        actors.maintain_audit_partitions.fn()


def test_process_dsr_erases_through_the_request(
    db: Session, storage_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARE_ERASURE_JOURNAL_DIR", str(tmp_path / "journal"))
    get_settings.cache_clear()
    org = make_org(db)
    subject = seed_subject(
        db, org.id, marker=unique_marker(), email="eve@example.com", storage_dir=storage_dir
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
    db.flush()
    try:
        args = {"request_id": str(dsr.id)}
        with running_job(db, "compliance.process_dsr", args, org.id) as ctx:
            actors.process_dsr.fn(**args)
        result = ctx.result or {}
        assert result["status"] == "completed" and result["residual"] == {}
        task_run = db.execute(
            text("SELECT task_run_id FROM data_subject_requests WHERE id = :i"), {"i": dsr.id}
        ).scalar_one()
        assert task_run == ctx.job_id
        with (
            running_job(db, "compliance.process_dsr", {"request_id": "nope"}, org.id),
            pytest.raises(InvalidInputError, match="not a valid"),
        ):
            actors.process_dsr.fn(request_id="nope")
    finally:
        get_settings.cache_clear()


def test_verify_fails_the_job_naming_the_broken_link(db: Session, storage_dir: Path) -> None:
    org = make_org(db)
    for _ in range(3):
        audit.record(db, organization_id=org.id, action="candidate.viewed")
    with running_job(db, "compliance.seal_audit_chain", {}, None) as ctx:
        actors.seal_audit_chain.fn()
        assert (ctx.result or {})["sealed"] >= 3
    with running_job(db, "compliance.export_audit_head", {}, None) as ctx:
        actors.export_audit_head.fn()
        assert (ctx.result or {})["exported"] >= 1
    with running_job(db, "compliance.verify_audit_chain", {}, org.id) as ctx:
        actors.verify_audit_chain.fn()
        assert (ctx.result or {})["ok"] is True
        db.execute(text("SET LOCAL session_replication_role = replica"))
        db.execute(
            text(
                "UPDATE audit_log SET action = 'candidate.exported' "
                "WHERE organization_id = :o AND seq = 2"
            ),
            {"o": org.id},
        )
        db.execute(text("SET LOCAL session_replication_role = origin"))
        with pytest.raises(actors.AuditChainBrokenError, match="broken at seq 2"):
            actors.verify_audit_chain.fn()
