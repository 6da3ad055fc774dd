"""Audit pruning by dropping whole monthly partitions, and the chain re-anchored after it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from are_workers.config import get_settings
from are_workers.models.privacy import LegalHold, LegalHoldScope, RetentionPolicy
from are_workers.services.compliance import (
    audit,
    audit_chain,
    audit_keys,
    audit_partitions,
    pruning_records,
)
from tests.compliance.audit_rows import tamper, write_audit_rows
from tests.factories import make_candidate, make_org

OLD = 800  # days: a month well past the one-year floor
RECENT = 100  # days: inside the floor


@pytest.fixture(autouse=True)
def head_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Signed heads and pruning records of each test in a directory of its own."""
    path = tmp_path / "audit-heads"
    monkeypatch.setenv("ARE_AUDIT_HEAD_DIR", str(path))
    get_settings.cache_clear()
    yield path
    get_settings.cache_clear()


def _partition_of(db: Session, row_id: uuid.UUID) -> str:
    return str(
        db.execute(
            text("SELECT tableoid::regclass::text FROM audit_log WHERE id = :i"), {"i": row_id}
        ).scalar_one()
    )


def _month(days_ago: int, db: Session) -> str:
    stamp = db.execute(
        text("SELECT to_char((now() - make_interval(days => :d)) AT TIME ZONE 'UTC', 'YYYYMM')"),
        {"d": days_ago},
    ).scalar_one()
    return f"audit_log_p{stamp}"


def _short_retention(db: Session, org_id: uuid.UUID, days: int = 400) -> None:
    db.add(RetentionPolicy(organization_id=org_id, table_name="audit_log", retention_days=days))
    db.flush()


def _count(db: Session, org_id: uuid.UUID) -> int:
    return int(
        db.execute(
            text("SELECT count(*) FROM audit_log WHERE organization_id = :o"), {"o": org_id}
        ).scalar_one()
    )


def test_rows_land_in_their_months_partition_and_the_coming_months_exist(db: Session) -> None:
    audit_partitions.ensure(db, months_ahead=2)
    names = [p.name for p in audit_partitions.partitions(db)]
    now = datetime.now(UTC)
    assert f"audit_log_p{now:%Y%m}" in names
    assert names[-1] == "audit_log_default"  # the default partition sorts last
    future = [n for n in names if n != "audit_log_default" and n > f"audit_log_p{now:%Y%m}"]
    assert len(future) >= 2
    org = make_org(db)
    [row] = write_audit_rows(db, org.id, 1)
    assert _partition_of(db, row) == f"audit_log_p{now:%Y%m}"


def test_a_row_of_a_month_without_partition_is_kept_then_moved_to_its_own(db: Session) -> None:
    org = make_org(db)
    rows = write_audit_rows(db, org.id, 3, days_ago=OLD)
    assert {_partition_of(db, r) for r in rows} == {"audit_log_default"}
    audit_chain.seal(db, org.id)
    created = audit_partitions.ensure(db, months_ahead=0)
    assert _month(OLD, db) in created
    assert {_partition_of(db, r) for r in rows} == {_month(OLD, db)}
    assert audit_chain.verify(db, org.id).ok  # moved rows keep their content and hashes


def test_an_expired_partition_is_dropped_and_the_chain_reanchors(db: Session) -> None:
    org = make_org(db)
    other = make_org(db)
    write_audit_rows(db, org.id, 4, days_ago=OLD)
    write_audit_rows(db, other.id, 3, days_ago=OLD)
    write_audit_rows(db, org.id, 2)
    for organization in (org, other):
        _short_retention(db, organization.id)
    audit_chain.seal_all(db)
    result = audit_partitions.prune(db)
    assert result.dropped == {_month(OLD, db): {str(org.id): 4, str(other.id): 3}}
    assert _month(OLD, db) not in {p.name for p in audit_partitions.partitions(db)}
    assert _count(db, org.id) == 2 + 1  # the recent rows and the pruning anchor
    assert _count(db, other.id) == 1  # only the anchor: its head was pruned
    audit_chain.seal_all(db)
    report = audit_chain.verify(db, org.id)
    assert report.ok and report.anchored_at == 4 and report.rows_checked == 3
    # The other organization's head went with the partition; its chain continues from it.
    report = audit_chain.verify(db, other.id)
    assert report.ok and report.anchored_at == 3 and report.head_seq == 4
    write_audit_rows(db, other.id, 1)
    audit_chain.seal(db, other.id)
    report = audit_chain.verify(db, other.id)
    assert report.ok and report.head_seq == 5 and report.rows_checked == 2
    assert audit_partitions.prune(db).dropped == {}  # nothing more to drop


def test_a_partition_stays_while_any_organization_keeps_its_rows(db: Session) -> None:
    short, default, held = make_org(db), make_org(db), make_org(db)
    for organization in (short, default):
        write_audit_rows(db, organization.id, 2, days_ago=OLD)
    _short_retention(db, short.id)
    audit_chain.seal_all(db)
    verdicts = {v.partition.name: v for v in audit_partitions.prune(db).verdicts}
    kept = verdicts[_month(OLD, db)]
    assert not kept.droppable
    assert str(default.id) in kept.reason and "2190 days" in kept.reason
    # A legal hold on the organization keeps it too, whatever its retention says.
    _short_retention(db, default.id)
    write_audit_rows(db, held.id, 1, days_ago=OLD)
    _short_retention(db, held.id)
    db.add(LegalHold(organization_id=held.id, scope=LegalHoldScope.ORGANIZATION, reason="case"))
    db.flush()
    audit_chain.seal_all(db)
    old = kept.partition.name
    kept = next(v for v in audit_partitions.prune(db).verdicts if v.partition.name == old)
    assert not kept.droppable and f"organization {held.id} has a legal hold" == kept.reason
    assert _count(db, short.id) == 2


def test_a_held_candidates_audit_rows_keep_their_partition(db: Session) -> None:
    org = make_org(db)
    candidate = make_candidate(db, org)
    write_audit_rows(db, org.id, 2, days_ago=OLD, subject_id=candidate.id)
    _short_retention(db, org.id)
    db.add(
        LegalHold(
            organization_id=org.id,
            scope=LegalHoldScope.CANDIDATE,
            candidate_id=candidate.id,
            reason="claim",
        )
    )
    db.flush()
    audit_chain.seal(db, org.id)
    audit_partitions.ensure(db, months_ahead=0)  # a dry run changes nothing, not even this
    result = audit_partitions.prune(db, dry_run=True)
    [verdict] = [v for v in result.verdicts if v.partition.name == _month(OLD, db)]
    assert not verdict.droppable and "holds a candidate" in verdict.reason


def test_rows_written_late_straddle_partitions_and_verify_after_the_drop(db: Session) -> None:
    """A row whose transaction began last month may be sealed after this month's rows."""
    org = make_org(db)
    write_audit_rows(db, org.id, 2, days_ago=OLD)  # seq 1, 2
    audit_chain.seal(db, org.id)
    write_audit_rows(db, org.id, 1, days_ago=RECENT)  # seq 3, a younger month
    audit_chain.seal(db, org.id)
    write_audit_rows(db, org.id, 1, days_ago=OLD)  # seq 4, back in the old month
    audit_chain.seal(db, org.id)
    _short_retention(db, org.id)
    result = audit_partitions.prune(db)
    assert result.dropped[_month(OLD, db)] == {str(org.id): 3}
    anchor = db.execute(
        text(
            "SELECT output_refs FROM audit_log WHERE organization_id = :o "
            "AND action = 'audit.pruned'"
        ),
        {"o": org.id},
    ).scalar_one()
    assert [(r["lo"], r["hi"]) for r in anchor["ranges"]] == [(1, 2), (4, 4)]
    audit_chain.seal(db, org.id)  # the anchor becomes seq 5, after the pruned head 4
    report = audit_chain.verify(db, org.id)
    assert report.ok, report.first_broken
    assert report.anchored_at == 2 and report.rows_checked == 2 and report.head_seq == 5


def test_the_database_refuses_young_unsealed_and_foreign_partitions(db: Session) -> None:
    org = make_org(db)
    audit_partitions.ensure(db, months_ahead=0)
    current = f"audit_log_p{datetime.now(UTC):%Y%m}"
    for name, message in (
        (current, "younger than 365 days"),
        ("audit_log_default", "not a monthly partition"),
        ("organizations", "not a monthly partition"),
    ):
        with pytest.raises(DBAPIError, match=message), db.begin_nested():
            db.execute(text("SELECT * FROM are_audit_drop_partition(:p)"), {"p": name})
    write_audit_rows(db, org.id, 1, days_ago=OLD)
    audit_partitions.ensure(db, months_ahead=0)
    with pytest.raises(DBAPIError, match="unsealed audit rows"), db.begin_nested():
        db.execute(text("SELECT * FROM are_audit_drop_partition(:p)"), {"p": _month(OLD, db)})


def test_a_duplicated_seq_is_named(db: Session) -> None:
    org = make_org(db)
    write_audit_rows(db, org.id, 3)
    audit_chain.seal(db, org.id)
    tamper(
        db,
        "INSERT INTO audit_log (organization_id, actor_type, action, seq, prev_hash, row_hash) "
        "SELECT organization_id, actor_type, action, seq, prev_hash, row_hash FROM audit_log "
        "WHERE organization_id = :o AND seq = 2",
        o=org.id,
    )
    report = audit_chain.verify(db, org.id)
    assert report.first_broken is not None
    assert report.first_broken["seq"] == 2 and "more than once" in report.first_broken["reason"]


# --- forged pruning records ----------------------------------------------------------------------


def _hash_at(db: Session, org_id: uuid.UUID, seq: int) -> str:
    return str(
        db.execute(
            text("SELECT row_hash FROM audit_log WHERE organization_id = :o AND seq = :s"),
            {"o": org_id, "s": seq},
        ).scalar_one()
    )


def _forge_pruning(
    db: Session,
    org_id: uuid.UUID,
    lo: int,
    hi: int,
    *,
    digest: str | None = None,
    partition: str = "audit_log_p202001",
    sign: bool = False,
) -> None:
    """What an owner can do: delete sealed rows ``lo..hi`` and write an anchor covering them
    (with the last deleted row's real hash unless told otherwise); ``sign``: and get a
    record for it signed with the real key (a compromised signer, or the legacy command)."""
    digest = digest or _hash_at(db, org_id, hi)
    tamper(
        db,
        "DELETE FROM audit_log WHERE organization_id = :o AND seq BETWEEN :lo AND :hi",
        o=org_id,
        lo=lo,
        hi=hi,
    )
    ranges = [{"lo": lo, "hi": hi, "hash": digest}]
    tamper(
        db,
        "INSERT INTO audit_log (organization_id, actor_type, action, entity_type, output_refs) "
        "VALUES (:o, 'system', 'audit.pruned', 'audit_log', CAST(:refs AS jsonb))",
        o=org_id,
        refs=json.dumps({"partition": partition, "deleted": hi - lo + 1, "ranges": ranges}),
    )
    if sign:
        pruning_records.export_record(
            org_id,
            partition,
            pruning_records.ranges_of(ranges),
            retention_days=400,
            key=audit_keys.signing_key(),
        )


def _reason(report: audit_chain.ChainReport) -> str:
    assert report.first_broken is not None, "the forgery passed verification"
    return str(report.first_broken["reason"])


def test_a_pruning_record_forged_in_the_table_is_named_even_past_a_signed_head(
    db: Session,
) -> None:
    """The owner deletes seq 2..4 (a signed head at 3 among them) and writes an anchor with
    seq 4's real hash: only a record signed outside the database covers a gap."""
    org = make_org(db)
    write_audit_rows(db, org.id, 3)
    audit_chain.seal(db, org.id)
    assert [h.seq for h in audit_chain.export_heads(db, organization_id=org.id)] == [3]
    write_audit_rows(db, org.id, 3)
    audit_chain.seal(db, org.id)
    _forge_pruning(db, org.id, 2, 4)
    report = audit_chain.verify(db, org.id, heads=audit_chain.read_heads(org.id))
    assert report.first_broken is not None and report.first_broken["seq"] == 2
    assert "none signed with the head-signing key" in _reason(report)


def test_a_signed_pruning_record_with_a_wrong_hash_is_named(db: Session) -> None:
    org = make_org(db)
    write_audit_rows(db, org.id, 5)
    audit_chain.seal(db, org.id)
    _forge_pruning(db, org.id, 2, 3, digest="f" * 64, sign=True)
    report = audit_chain.verify(db, org.id)
    assert "prev_hash does not match" in _reason(report)
    assert report.first_broken is not None and report.first_broken["seq"] == 4


def test_a_signed_pruning_record_over_rows_never_sealed_is_named(db: Session) -> None:
    org = make_org(db)
    write_audit_rows(db, org.id, 3)
    audit_chain.seal(db, org.id)
    pruning_records.export_record(
        org.id,
        "audit_log_p202001",
        (pruning_records.PrunedRange(4, 9, "e" * 64),),
        retention_days=400,
        key=audit_keys.signing_key(),
    )
    report = audit_chain.verify(db, org.id)
    assert "never sealed" in _reason(report)
    assert report.first_broken is not None and report.first_broken["seq"] == 4


def test_a_signed_pruning_record_over_a_month_too_young_to_drop_is_named(db: Session) -> None:
    org = make_org(db)
    write_audit_rows(db, org.id, 5)
    audit_chain.seal(db, org.id)
    _forge_pruning(db, org.id, 2, 3, partition=_month(RECENT, db), sign=True)
    report = audit_chain.verify(db, org.id)
    assert "too young to drop" in _reason(report)
    assert report.first_broken is not None and report.first_broken["seq"] == 2


def test_a_real_drop_verifies_by_its_signed_record_and_not_without_it(db: Session) -> None:
    org = make_org(db)
    write_audit_rows(db, org.id, 3, days_ago=OLD)
    write_audit_rows(db, org.id, 2)
    _short_retention(db, org.id)
    audit_chain.seal(db, org.id)
    assert audit_partitions.prune(db).dropped == {_month(OLD, db): {str(org.id): 3}}
    report = audit_chain.verify(db, org.id)
    assert report.ok, report.first_broken
    assert report.pruning_records_trusted == 1 and report.legacy_pruning_records == 0
    [record] = pruning_records.read_records(org.id, public_key=audit_keys.public_key())
    assert record.partition == _month(OLD, db) and record.retention_days == 400
    assert record.path is not None
    record.path.unlink()  # a record lost (or never written): the gap is unexplained
    assert "none signed with the head-signing key" in _reason(audit_chain.verify(db, org.id))


def test_legacy_drops_are_signed_once_and_reported_as_legacy(db: Session) -> None:
    """A drop made before records were signed left only the table's anchor: the one-off
    command signs it (as legacy), but not an anchor verification would refuse anyway."""
    org, forged = make_org(db), make_org(db)
    write_audit_rows(db, org.id, 3, days_ago=OLD)
    write_audit_rows(db, org.id, 2)
    _short_retention(db, org.id)
    audit_chain.seal(db, org.id)
    audit_partitions.ensure(db, months_ahead=0)
    db.execute(text("SELECT * FROM are_audit_drop_partition(:p)"), {"p": _month(OLD, db)})
    audit_chain.seal(db, org.id)
    assert "none signed" in _reason(audit_chain.verify(db, org.id))
    write_audit_rows(db, forged.id, 5)
    audit_chain.seal(db, forged.id)
    _forge_pruning(db, forged.id, 2, 3, partition=_month(RECENT, db))
    audit_chain.seal(db, forged.id)
    key = audit_keys.signing_key()
    outcomes = {o.organization_id: o for o in pruning_records.sign_legacy(db, key=key)}
    assert outcomes[org.id].status == "signed"
    assert outcomes[forged.id].status == "refused"
    assert "too young" in outcomes[forged.id].reason
    report = audit_chain.verify(db, org.id)
    assert report.ok and report.legacy_pruning_records == 1
    again = {o.organization_id: o.status for o in pruning_records.sign_legacy(db, key=key)}
    assert again[org.id] == "already-signed"
    assert not audit_chain.verify(db, forged.id).ok


def test_the_runtime_role_prunes_through_the_function_but_cannot_forge_anchors(
    owner_engine: Engine, runtime_engine: Engine
) -> None:
    with Session(owner_engine) as owner:
        org_id = make_org(owner).id
        write_audit_rows(owner, org_id, 2, days_ago=OLD)
        _short_retention(owner, org_id)
        owner.commit()
    with Session(runtime_engine) as runtime:
        with pytest.raises(DBAPIError, match="written only by are_audit_drop_partition"):
            audit.record(
                runtime,
                organization_id=org_id,
                action="audit.pruned",
                entity_type="audit_log",
                output_refs={"ranges": [{"lo": 1, "hi": 1, "hash": "0" * 64}]},
            )
        runtime.rollback()
        with pytest.raises(DBAPIError, match="permission denied"):
            runtime.execute(text("DELETE FROM audit_log_default"))
        runtime.rollback()
        audit_chain.seal(runtime, org_id)
        result = audit_partitions.prune(runtime)
        assert result.dropped == {_month(OLD, runtime): {str(org_id): 2}}
        audit_chain.seal(runtime, org_id)
        assert audit_chain.verify(runtime, org_id).ok


def test_anchors_are_handed_on_so_a_month_kept_longer_still_verifies(db: Session) -> None:
    """A month kept under a hold outlives later months, and the anchors written for them."""
    org = make_org(db)
    held = make_candidate(db, org)
    write_audit_rows(db, org.id, 2, days_ago=OLD, subject_id=held.id)  # seq 1, 2: kept
    write_audit_rows(db, org.id, 2, days_ago=OLD - 100)  # seq 3, 4: dropped
    _short_retention(db, org.id)
    db.add(
        LegalHold(
            organization_id=org.id, scope=LegalHoldScope.CANDIDATE, candidate_id=held.id, reason="x"
        )
    )
    db.flush()
    audit_chain.seal(db, org.id)
    assert audit_partitions.prune(db).dropped == {_month(OLD - 100, db): {str(org.id): 2}}
    # The anchor itself grows old: move it into another old month, then drop that one too.
    tamper(
        db,
        "UPDATE audit_log SET occurred_at = now() - make_interval(days => :d) "
        "WHERE organization_id = :o AND action = 'audit.pruned'",
        d=OLD - 200,
        o=org.id,
    )
    audit_chain.seal(db, org.id)  # the anchor is seq 5
    result = audit_partitions.prune(db)
    assert result.dropped == {_month(OLD - 200, db): {str(org.id): 1}}
    audit_chain.seal(db, org.id)  # the new anchor is seq 6
    report = audit_chain.verify(db, org.id)
    assert report.ok, report.first_broken
    assert report.rows_checked == 3 and report.head_seq == 6  # seq 1, 2 and the new anchor
