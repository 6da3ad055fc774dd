"""The tamper-evident audit trail: sealing, append-only, verification, signed heads, pruning."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError, ProgrammingError
from sqlalchemy.orm import Session

from are_workers.services.compliance import audit_chain
from tests.compliance.audit_rows import tamper, write_audit_rows
from tests.factories import make_org

KEY = Ed25519PrivateKey.generate()


def test_sealing_chains_rows_in_order_and_verification_passes(db: Session) -> None:
    org = make_org(db)
    write_audit_rows(db, org.id, 5)
    assert audit_chain.seal(db, org.id, batch_size=2) == 5
    assert audit_chain.seal(db, org.id) == 0
    write_audit_rows(db, org.id, 2)
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
    write_audit_rows(db, org.id, 2)
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
    write_audit_rows(db, org.id, 5)
    audit_chain.seal(db, org.id)
    target = db.execute(
        text("SELECT id FROM audit_log WHERE organization_id = :o AND seq = 3"), {"o": org.id}
    ).scalar_one()
    tamper(db, "UPDATE audit_log SET output_refs = '{\"score\": 99}' WHERE id = :i", i=target)
    report = audit_chain.verify(db, org.id)
    assert not report.ok
    assert report.first_broken is not None
    assert report.first_broken["seq"] == 3 and report.first_broken["id"] == str(target)
    assert "content changed" in report.first_broken["reason"]


def test_a_deleted_row_is_named(db: Session) -> None:
    org = make_org(db)
    write_audit_rows(db, org.id, 4)
    audit_chain.seal(db, org.id)
    tamper(db, "DELETE FROM audit_log WHERE organization_id = :o AND seq = 2", o=org.id)
    report = audit_chain.verify(db, org.id)
    assert report.first_broken is not None
    assert report.first_broken["seq"] == 2 and "missing" in report.first_broken["reason"]


def test_a_recomputed_chain_is_caught_by_the_signed_head(db: Session, tmp_path: Path) -> None:
    org = make_org(db)
    write_audit_rows(db, org.id, 4)
    audit_chain.seal(db, org.id)
    heads = audit_chain.export_heads(db, organization_id=org.id, directory=tmp_path, key=KEY)
    assert [h.seq for h in heads] == [4]
    # The owner rewrites row 2 and recomputes every hash after it: the chain is consistent.
    tamper(
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
        tamper(
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


def test_the_runtime_role_can_append_and_seal_but_not_rewrite(
    owner_engine: Engine, runtime_engine: Engine
) -> None:
    with Session(owner_engine) as owner:
        org_id = make_org(owner).id
        owner.commit()
    with Session(runtime_engine) as runtime:
        write_audit_rows(runtime, org_id, 3)
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
