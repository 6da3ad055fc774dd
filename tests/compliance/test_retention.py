"""The retention sweep: dry run, set-based batches audited per batch, files and derived
data, column retention, overrides, legal holds, the circuit breaker, and what it leaves to
other jobs (``audit_log``)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from are_workers.config import Settings
from are_workers.models.privacy import (
    LegalHold,
    LegalHoldScope,
    RetentionAction,
    RetentionPolicy,
    RetentionRun,
)
from are_workers.services import storage
from are_workers.services.compliance import audit
from are_workers.services.compliance.registry import RetentionOverrides
from are_workers.services.compliance.retention import (
    RetentionBreakerError,
    build_targets,
    plan,
    sweep,
)
from tests.compliance.scan import find_values, vectors_equal
from tests.compliance.seed import Seeder, seed_subject, unique_marker
from tests.factories import make_org, utcnow

SETTINGS = Settings(retention_batch_size=2, retention_breaker_min_rows=1000)


def _age_candidate(db: Session, seeder: Seeder, days: int) -> None:
    db.execute(
        text(
            "UPDATE candidates SET last_activity_at = now() - make_interval(days => :d) "
            "WHERE id = :i"
        ),
        {"d": days, "i": seeder.rows["candidates"]["id"]},
    )


@pytest.fixture
def two_candidates(db: Session, storage_dir: Path) -> tuple[Seeder, Seeder]:
    org = make_org(db)
    old = seed_subject(
        db,
        org.id,
        marker=unique_marker(),
        email="old@example.com",
        full_name="Olga Oldfield",
        storage_dir=storage_dir,
    )
    recent = seed_subject(
        db,
        org.id,
        marker=unique_marker(),
        email="new@example.com",
        full_name="Nina Newton",
        storage_dir=storage_dir,
        context_from=old,
    )
    _age_candidate(db, old, 800)
    _age_candidate(db, recent, 10)
    return old, recent


def _needles(s: Seeder) -> list[str]:
    return [s.marker, s.email, s.full_name]


def _access_log(db: Session, org_id: uuid.UUID, *, days_ago: int, n: int = 1) -> None:
    for _ in range(n):
        db.execute(
            text(
                "INSERT INTO file_access_log (organization_id, actor, action, ip_address, "
                "accessed_at) VALUES (:o, 'worker', 'view', '203.0.113.7', "
                "now() - make_interval(days => :d))"
            ),
            {"o": org_id, "d": days_ago},
        )


def test_dry_run_reports_what_would_go_and_changes_nothing(
    db: Session, two_candidates: tuple[Seeder, Seeder]
) -> None:
    old, _ = two_candidates
    org = old.organization_id
    report = plan(db, org)
    assert report.counts["candidates"] == 1
    assert sum(report.counts.values()) == 1
    by_target = {row["target"]: row for row in report.as_report()}
    assert by_target["candidates"]["days"] == 730
    assert by_target["candidates"]["rule"] == "table_default"
    result = sweep(db, org, dry_run=True, settings=SETTINGS)
    assert result.dry_run and result.counts["candidates"] == 1
    run = db.get(RetentionRun, result.run_id)
    assert run is not None and run.dry_run and run.status.value == "completed"
    assert run.counts["candidates"] == 1
    assert find_values(db, org, _needles(old))  # still all there
    assert len(storage.existing(old.storage_keys, old.organization_id)) == 2


def test_sweep_deletes_expired_rows_with_their_files_and_derived_data(
    owner_engine: Engine, runtime_engine: Engine, storage_dir: Path
) -> None:
    """Committed data (as in production), swept by the least-privilege runtime role."""
    with Session(owner_engine) as db:
        org = make_org(db)
        old = seed_subject(
            db,
            org.id,
            marker=unique_marker(),
            email="old@example.com",
            full_name="Olga Oldfield",
            storage_dir=storage_dir,
        )
        recent = seed_subject(
            db,
            org.id,
            marker=unique_marker(),
            email="new@example.com",
            full_name="Nina Newton",
            storage_dir=storage_dir,
            context_from=old,
        )
        _age_candidate(db, old, 800)
        _age_candidate(db, recent, 10)
        org_id = org.id
        db.commit()
        recent_before = find_values(db, org_id, _needles(recent))
    with Session(runtime_engine) as runtime:
        result = sweep(runtime, org_id, settings=SETTINGS)
    assert result.status == "completed"
    assert result.counts == {"candidates": 1} and result.files_deleted == 2
    with Session(owner_engine) as db:
        # Cascades took every module's rows: embeddings, transcripts, analysis results, ...
        assert find_values(db, org_id, _needles(old)) == {}
        assert vectors_equal(db, org_id, old.vector) == 0
        assert storage.existing(old.storage_keys, old.organization_id) == []
        assert find_values(db, org_id, _needles(recent)) == recent_before
        assert vectors_equal(db, org_id, recent.vector) == 1
        assert len(storage.existing(recent.storage_keys, recent.organization_id)) == 2
        run = db.get(RetentionRun, result.run_id)
        assert run is not None and run.counts == {"candidates": 1} and run.finished_at is not None


def test_each_batch_is_one_statement_and_one_audit_row(db: Session) -> None:
    org = make_org(db)
    _access_log(db, org.id, days_ago=400, n=5)
    _access_log(db, org.id, days_ago=10, n=3)
    result = sweep(db, org.id, settings=SETTINGS)
    assert result.counts == {"file_access_log": 5}
    audits = (
        db.execute(
            text(
                "SELECT output_refs FROM audit_log WHERE organization_id = :o "
                "AND action = 'retention.deleted' ORDER BY occurred_at, id"
            ),
            {"o": org.id},
        )
        .scalars()
        .all()
    )
    assert sorted(a["rows"] for a in audits) == [1, 2, 2]
    assert {a["retention_run_id"] for a in audits} == {str(result.run_id)}
    left = db.execute(
        text("SELECT count(*) FROM file_access_log WHERE organization_id = :o"), {"o": org.id}
    ).scalar_one()
    assert left == 3


def test_column_retention_anonymizes_the_column_and_keeps_the_row(db: Session) -> None:
    org = make_org(db)
    _access_log(db, org.id, days_ago=100, n=2)  # ip kept 90 days, the row 365
    _access_log(db, org.id, days_ago=10)
    result = sweep(db, org.id, settings=SETTINGS)
    assert result.counts == {"file_access_log.ip_address": 2}
    rows = (
        db.execute(
            text(
                "SELECT ip_address FROM file_access_log WHERE organization_id = :o "
                "ORDER BY accessed_at"
            ),
            {"o": org.id},
        )
        .scalars()
        .all()
    )
    assert rows == [None, None, "203.0.113.7"]
    assert sweep(db, org.id, settings=SETTINGS).counts == {}  # idempotent


def test_an_override_can_shorten_retention_and_anonymize_instead_of_deleting(
    db: Session, two_candidates: tuple[Seeder, Seeder]
) -> None:
    old, _ = two_candidates
    org = old.organization_id
    db.add(
        RetentionPolicy(
            organization_id=org,
            table_name="messages",
            retention_days=1,
            action=RetentionAction.ANONYMIZE,
        )
    )
    db.add(
        LegalHold(
            organization_id=org,
            scope=LegalHoldScope.TABLE,
            table_name="candidates",
            reason="Audit by the regulator",
        )
    )
    db.flush()
    db.execute(
        text(
            "UPDATE messages SET created_at = now() - interval '5 days' WHERE organization_id = :o"
        ),
        {"o": org},
    )
    result = sweep(db, org, settings=SETTINGS)
    assert result.counts == {"messages": 2}
    assert result.held == ["candidates"]
    left = find_values(db, org, _needles(old))
    assert not [k for k in left if k.startswith("messages.")]
    assert "candidates.full_name" in left  # held
    count = db.execute(
        text("SELECT count(*) FROM messages WHERE organization_id = :o"), {"o": org}
    ).scalar_one()
    assert count == 2  # anonymized, not deleted


def test_a_candidate_hold_keeps_that_candidates_rows_at_every_depth(
    db: Session, two_candidates: tuple[Seeder, Seeder]
) -> None:
    old, _ = two_candidates
    org = old.organization_id
    db.add(
        LegalHold(
            organization_id=org,
            scope=LegalHoldScope.CANDIDATE,
            candidate_id=old.rows["candidates"]["id"],
            reason="Litigation",
        )
    )
    db.flush()
    db.execute(
        text(
            "UPDATE video_analysis_results SET created_at = now() - interval '200 days' "
            "WHERE organization_id = :o"
        ),
        {"o": org},
    )
    report = plan(db, org)
    assert report.counts["candidates"] == 0
    assert report.counts["video_analysis_results"] == 1  # the other candidate's
    db.add(LegalHold(organization_id=org, scope=LegalHoldScope.ORGANIZATION, reason="All"))
    db.flush()
    everything_held = plan(db, org)
    assert everything_held.targets == [] and "candidates" in everything_held.held


def test_the_breaker_stops_a_sweep_far_larger_than_before_until_confirmed(db: Session) -> None:
    org = make_org(db)
    strict = Settings(
        retention_batch_size=2, retention_breaker_min_rows=2, retention_breaker_factor=2.0
    )
    _access_log(db, org.id, days_ago=400, n=1)
    assert sweep(db, org.id, settings=strict).counts == {"file_access_log": 1}
    _access_log(db, org.id, days_ago=400, n=6)  # a clock jump, a bad override ...
    with pytest.raises(RetentionBreakerError) as stopped:
        sweep(db, org.id, settings=strict)
    message = stopped.value.user_message
    assert "file_access_log: 6 rows (recent runs removed at most 1)" in message
    run_id = uuid.UUID(message.rsplit("confirm ", 1)[1].split("`")[0])
    tripped = db.get(RetentionRun, run_id)
    assert tripped is not None and tripped.status.value == "failed" and tripped.counts == {}
    assert tripped.horizons["breaker"]["file_access_log"]["planned"] == 6
    left = db.execute(
        text("SELECT count(*) FROM file_access_log WHERE organization_id = :o"), {"o": org.id}
    ).scalar_one()
    assert left == 6  # nothing was deleted
    confirmed = sweep(db, org.id, settings=strict, confirmed_run_id=run_id)
    assert confirmed.counts == {"file_access_log": 6}
    assert (
        db.execute(
            text(
                "SELECT count(*) FROM audit_log WHERE organization_id = :o AND "
                "action = 'retention.breaker_tripped'"
            ),
            {"o": org.id},
        ).scalar_one()
        == 1
    )


def test_confirming_a_run_that_did_not_trip_is_refused(db: Session) -> None:
    from are_workers.errors import InvalidInputError

    org = make_org(db)
    done = sweep(db, org.id, settings=SETTINGS)
    with pytest.raises(InvalidInputError, match="did not stop at the circuit breaker"):
        sweep(db, org.id, settings=SETTINGS, confirmed_run_id=done.run_id)


def test_audit_log_is_left_to_its_partition_job_whatever_its_retention(db: Session) -> None:
    """Audit rows far past any retention, and an override shortening it: never a target."""
    shortest = RetentionOverrides(by_table={"audit_log": 1}, by_category={"technical": 1})
    targets, _ = build_targets(uuid.uuid4(), utcnow(), shortest, {"audit_log": "anonymize"})
    assert not [t for t in targets if t.table.name == "audit_log"]
    org = make_org(db)
    db.add(RetentionPolicy(organization_id=org.id, table_name="audit_log", retention_days=1))
    db.flush()
    db.execute(
        text(
            "INSERT INTO audit_log (organization_id, occurred_at, actor_type, action) "
            "VALUES (:o, now() - interval '3000 days', 'system', 'candidate.viewed')"
        ),
        {"o": org.id},
    )
    audit.record(db, organization_id=org.id, action="candidate.viewed")
    assert not [t for t in plan(db, org.id).targets if t.table.name == "audit_log"]
    result = sweep(db, org.id, settings=SETTINGS)
    assert result.counts == {}
    left = db.execute(
        text("SELECT count(*) FROM audit_log WHERE organization_id = :o AND action = :a"),
        {"o": org.id, "a": "candidate.viewed"},
    ).scalar_one()
    assert left == 2
