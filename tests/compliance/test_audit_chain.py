"""The tamper-evident audit trail: sealing, append-only, verification, signed heads, pruning."""

from __future__ import annotations

import itertools
import json
import uuid
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError, ProgrammingError
from sqlalchemy.orm import Session

from are_workers.models.audit import RetentionPolicy
from are_workers.services.compliance import audit, audit_chain
from are_workers.services.compliance.retention import sweep
from are_workers.services.compliance.settings import ComplianceSettings
from tests.factories import make_org

KEY = Ed25519PrivateKey.generate()


def _write(db: Session, org_id: uuid.UUID, n: int, *, days_ago: int = 0) -> None:
    for i in range(n):
        row = audit.record(
            db,
            organization_id=org_id,
            action="candidate.evaluated",
            entity_type="ai_evaluation",
            entity_id=uuid.uuid4(),
            subject_id=uuid.uuid4(),
            model_name="scorer",
            model_version="1.2",
            input_refs={"resume_sha256": f"{i:064x}"},
            output_refs={"score": i},
        )
        if days_ago:  # back-dated while unsealed (only the owner could, bypassing the trigger)
            _tamper(
                db,
                "UPDATE audit_log SET occurred_at = now() - make_interval(days => :d) "
                "WHERE id = :i",
                d=days_ago,
                i=row,
            )


def _tamper(db: Session, sql: str, **params: object) -> None:
    """What a database owner can do: bypass the trigger (as a superuser) and rewrite rows."""
    db.execute(text("SET LOCAL session_replication_role = replica"))
    db.execute(text(sql), params)
    db.execute(text("SET LOCAL session_replication_role = origin"))


def test_sealing_chains_rows_in_order_and_verification_passes(db: Session) -> None:
    org = make_org(db)
    _write(db, org.id, 5)
    assert audit_chain.seal(db, org.id, batch_size=2) == 5
    assert audit_chain.seal(db, org.id) == 0
    _write(db, org.id, 2)
    assert audit_chain.seal(db, org.id) == 2
    rows = db.execute(
        text(
            "SELECT seq, prev_hash, row_hash FROM audit_log WHERE organization_id = :o ORDER BY seq"
        ),
        {"o": org.id},
    ).all()
    assert [r.seq for r in rows] == [1, 2, 3, 4, 5, 6, 7]
    assert rows[0].prev_hash is None
    assert all(b.prev_hash == a.row_hash for a, b in itertools.pairwise(rows))
    report = audit_chain.verify(db, org.id, chunk=3)
    assert report.ok and report.rows_checked == 7 and report.head_seq == 7


def test_the_database_refuses_updates_and_deletes(db: Session) -> None:
    org = make_org(db)
    _write(db, org.id, 2)
    audit_chain.seal(db, org.id)
    for statement in (
        "UPDATE audit_log SET action = 'x' WHERE organization_id = :o",
        "DELETE FROM audit_log WHERE organization_id = :o",
        "UPDATE audit_log SET seq = seq + 10 WHERE organization_id = :o",
    ):
        with pytest.raises(DBAPIError, match="append-only"), db.begin_nested():
            db.execute(text(statement), {"o": org.id})


def test_a_row_changed_through_raw_sql_is_named(db: Session) -> None:
    org = make_org(db)
    _write(db, org.id, 5)
    audit_chain.seal(db, org.id)
    target = db.execute(
        text("SELECT id FROM audit_log WHERE organization_id = :o AND seq = 3"), {"o": org.id}
    ).scalar_one()
    _tamper(db, "UPDATE audit_log SET output_refs = '{\"score\": 99}' WHERE id = :i", i=target)
    report = audit_chain.verify(db, org.id)
    assert not report.ok
    assert report.first_broken is not None
    assert report.first_broken["seq"] == 3 and report.first_broken["id"] == str(target)
    assert "content changed" in report.first_broken["reason"]


def test_a_deleted_row_is_named(db: Session) -> None:
    org = make_org(db)
    _write(db, org.id, 4)
    audit_chain.seal(db, org.id)
    _tamper(db, "DELETE FROM audit_log WHERE organization_id = :o AND seq = 2", o=org.id)
    report = audit_chain.verify(db, org.id)
    assert report.first_broken is not None
    assert report.first_broken["seq"] == 2 and "missing" in report.first_broken["reason"]


def test_a_recomputed_chain_is_caught_by_the_signed_head(db: Session, tmp_path: Path) -> None:
    org = make_org(db)
    _write(db, org.id, 4)
    audit_chain.seal(db, org.id)
    heads = audit_chain.export_heads(db, organization_id=org.id, directory=tmp_path, key=KEY)
    assert [h.seq for h in heads] == [4]
    # The owner rewrites row 2 and recomputes every hash after it: the chain is consistent.
    _tamper(
        db,
        "UPDATE audit_log SET output_refs = '{\"score\": 99}' "
        "WHERE organization_id = :o AND seq = 2",
        o=org.id,
    )
    rows = db.execute(
        text(
            "SELECT id, organization_id, seq, occurred_at, actor_type::text AS "
            "actor_type, actor_id, action, entity_type, entity_id, subject_ref, "
            "model_name, model_version, input_refs, output_refs, request_id, "
            "task_run_id, prev_hash, row_hash FROM audit_log "
            "WHERE organization_id = :o ORDER BY seq"
        ),
        {"o": org.id},
    ).all()
    prev = None
    for row in rows:
        digest = audit_chain.row_hash_of(row, seq=row.seq, prev_hash=prev)
        _tamper(
            db,
            "UPDATE audit_log SET prev_hash = :p, row_hash = :h WHERE id = :i",
            p=prev,
            h=digest,
            i=row.id,
        )
        prev = digest
    assert audit_chain.verify(db, org.id).ok  # undetectable from inside the database ...
    exported = audit_chain.read_heads(org.id, directory=tmp_path, public_key=KEY.public_key())
    report = audit_chain.verify(db, org.id, heads=exported)
    assert not report.ok and report.first_broken is not None  # ... but not from outside
    assert "no longer passes through the head exported" in report.first_broken["reason"]
    # A head file edited to match is refused by its signature.
    path = heads[0].path
    assert path is not None
    document = json.loads(path.read_text())
    document["row_hash"] = prev
    path.write_text(json.dumps(document))
    with pytest.raises(audit_chain.HeadSignatureError, match="does not verify"):
        audit_chain.read_heads(org.id, directory=tmp_path, public_key=KEY.public_key())


def test_pruning_drops_an_old_prefix_and_verification_reanchors(db: Session) -> None:
    org = make_org(db)
    _write(db, org.id, 4, days_ago=800)
    _write(db, org.id, 2)
    audit_chain.seal(db, org.id)
    with pytest.raises(DBAPIError, match="younger than 365 days"), db.begin_nested():
        db.execute(
            text("SELECT * FROM are_audit_prune(:o, now() - interval '30 days')"), {"o": org.id}
        )
    db.add(RetentionPolicy(organization_id=org.id, table_name="audit_log", retention_days=400))
    db.flush()
    result = sweep(db, org.id, settings=ComplianceSettings())
    assert result.counts == {"audit_log": 4}
    audit_chain.seal(db, org.id)  # seals the pruning record and the sweep's audit rows
    report = audit_chain.verify(db, org.id)
    assert report.ok and report.anchored_at == 4 and report.rows_checked >= 3


def test_the_runtime_role_can_append_and_seal_but_not_rewrite(
    owner_engine: Engine, runtime_engine: Engine
) -> None:
    with Session(owner_engine) as owner:
        org_id = make_org(owner).id
        owner.commit()
    with Session(runtime_engine) as runtime:
        _write(runtime, org_id, 3)
        runtime.commit()
        assert audit_chain.seal(runtime, org_id) == 3
        for statement in (
            "UPDATE audit_log SET action = 'x' WHERE organization_id = :o",
            "DELETE FROM audit_log WHERE organization_id = :o",
            "TRUNCATE audit_log",
            "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only",
        ):
            with pytest.raises(ProgrammingError, match=r"permission denied|must be owner"):
                runtime.execute(text(statement), {"o": org_id})
            runtime.rollback()
        assert audit_chain.verify(runtime, org_id).ok
