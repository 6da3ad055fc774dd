"""Encryption is enforced, not assumed: what the workers write lands as envelopes (read back
with plain SQL), the database refuses plaintext in every encrypted column, and the code
writes exactly the envelope ``docs/encryption.md`` specifies."""

from __future__ import annotations

import base64
import json
import re
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from are_workers import crypto
from are_workers.config import get_settings
from are_workers.crypto import subject_ref
from are_workers.errors import ConfigurationError
from are_workers.job_context import running_job
from are_workers.models.candidates import Candidate
from are_workers.models.privacy import DataSubjectRequest, DsrKind, SubjectType
from are_workers.models.security import encrypted_columns
from are_workers.models.users import MfaFactor, MfaKind, User
from are_workers.services import storage
from tests.compliance.seed import seed_subject, unique_marker
from tests.conftest import ROOT, UploadFn
from tests.factories import days, make_candidate, make_org, utcnow

RESUME = (
    "Mara Quill\nmara.quill@example.com | +44 20 7946 0958\n\nExperience\n"
    "Senior Python Engineer at Acme, 2019-2024. Built data pipelines with PostgreSQL.\n\n"
    "Skills\nPython, SQL, Docker\n"
)


def _raw(db: Session, table: str, column: str, row_id: object) -> Any:
    return db.execute(
        text(f'SELECT "{column}" FROM "{table}" WHERE id = :i'),
        {"i": row_id},
    ).scalar_one()


def _assert_envelope(value: Any, *, not_containing: str) -> None:
    assert isinstance(value, str) and crypto.is_wellformed_envelope(value), value
    assert not_containing.lower() not in value.lower()


# --- the production write paths ------------------------------------------------------------


def test_a_resume_ingested_fills_the_contact_as_envelopes(
    db: Session, upload: UploadFn, embedding: object
) -> None:
    from are_workers.tasks import resumes

    org = make_org(db)
    sourced = Candidate(organization_id=org.id, full_name="Mara Quill")  # no email, no phone
    db.add(sourced)
    db.flush()
    file = upload(org, RESUME, candidate=sourced)
    with running_job(db, "resumes.process_file", {"file_id": str(file.id)}, org.id):
        resumes.process_file.fn(file_id=file.id)

    email = _raw(db, "candidates", "email", sourced.id)
    phone = _raw(db, "candidates", "phone", sourced.id)
    _assert_envelope(email, not_containing="mara.quill")
    _assert_envelope(phone, not_containing="7946")
    assert crypto.decrypt(email, table="candidates", column="email") == "mara.quill@example.com"
    assert crypto.decrypt(phone, table="candidates", column="phone") == "+44 20 7946 0958"
    index = _raw(db, "candidates", "email_blind_index", sourced.id)
    assert index == crypto.blind_index("mara.quill@example.com")
    db.expire(sourced)
    assert sourced.email == "mara.quill@example.com"  # the ORM reads it decrypted

    # What the ATS recorded is never overwritten, and an address another candidate of the
    # organization has is left out (the blind index is unique per organization).
    known = make_candidate(db, org, email="mara@work.example.com")
    other = Candidate(organization_id=org.id, full_name="Mara Q.")
    db.add(other)
    db.flush()
    for candidate in (known, other):
        again = upload(org, RESUME, candidate=candidate)
        with running_job(db, "resumes.process_file", {"file_id": str(again.id)}, org.id):
            resumes.process_file.fn(file_id=again.id)
    assert crypto.decrypt(
        _raw(db, "candidates", "email", known.id), table="candidates", column="email"
    ) == ("mara@work.example.com")
    assert _raw(db, "candidates", "email", other.id) is None
    _assert_envelope(_raw(db, "candidates", "phone", other.id), not_containing="7946")


def test_dsrs_processed_keep_encrypted_columns_encrypted_and_erasure_passes_the_checks(
    db: Session, storage_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from are_workers.tasks import compliance as actors

    monkeypatch.setenv("ARE_ERASURE_JOURNAL_DIR", str(tmp_path / "journal"))
    get_settings.cache_clear()
    org = make_org(db)
    email = "dsr.dana@example.com"
    subject = seed_subject(db, org.id, marker=unique_marker(), email=email, storage_dir=storage_dir)
    candidate_id = subject.rows["candidates"]["id"]

    def request(kind: DsrKind) -> DataSubjectRequest:
        dsr = DataSubjectRequest(
            organization_id=org.id,
            kind=kind,
            subject_type=SubjectType.CANDIDATE,
            candidate_id=candidate_id,
            subject_ref=subject_ref(candidate_id),
            deadline_at=utcnow() + days(30),
            requester_email=email,
        )
        db.add(dsr)
        db.flush()
        return dsr

    def process(dsr: DataSubjectRequest) -> dict[str, Any]:
        args = {"request_id": str(dsr.id)}
        with running_job(db, "compliance.process_dsr", args, org.id) as ctx:
            actors.process_dsr.fn(**args)
        return ctx.result or {}

    try:
        access = request(DsrKind.ACCESS)
        _assert_envelope(
            _raw(db, "data_subject_requests", "requester_email", access.id), not_containing=email
        )
        for table, column in encrypted_columns():
            if table in subject.rows and column in subject.rows[table]:
                _assert_envelope(
                    _raw(db, table, column, subject.rows[table]["id"]), not_containing=email
                )
        exported = process(access)
        assert exported["status"] == "completed"
        key = db.execute(
            text("SELECT storage_key FROM files WHERE id = :i"), {"i": exported["file_id"]}
        ).scalar_one()
        with zipfile.ZipFile(storage.object_path(key, org.id)) as bundle:
            candidates = json.loads(bundle.read("data/candidates.json"))["candidates"]
        assert candidates[0]["email"] == email  # decrypted by the column's type, for the subject

        erasure = request(DsrKind.ERASURE)
        assert process(erasure)["residual"] == {}
        assert _raw(db, "candidates", "email", candidate_id) is None
        assert _raw(db, "messages", "to_address", subject.rows["messages"]["id"]) == crypto.REDACTED
        assert _raw(db, "data_subject_requests", "requester_email", erasure.id) is None
    finally:
        get_settings.cache_clear()


# --- the database refuses plaintext --------------------------------------------------------


def _every_encrypted_row(db: Session, storage_dir: Path) -> dict[str, object]:
    """``{table: a row id}`` for every table with an encrypted column, written by the ORM."""
    org = make_org(db)
    email = "check.carl@example.com"
    subject = seed_subject(db, org.id, marker=unique_marker(), email=email, storage_dir=storage_dir)
    user = User(email=f"mfa-{uuid.uuid4().hex[:8]}@example.com", full_name="Mfa User")
    db.add(user)
    db.flush()
    factor = MfaFactor(user_id=user.id, kind=MfaKind.TOTP, secret="JBSWY3DPEHPK3PXP")
    candidate_id = subject.rows["candidates"]["id"]
    dsr = DataSubjectRequest(
        organization_id=org.id,
        kind=DsrKind.ACCESS,
        subject_type=SubjectType.CANDIDATE,
        candidate_id=candidate_id,
        subject_ref=subject_ref(candidate_id),
        deadline_at=utcnow() + days(30),
        requester_email=email,
    )
    db.add_all([factor, dsr])
    db.flush()
    rows: dict[str, object] = {t: r["id"] for t, r in subject.rows.items()}
    return rows | {"mfa_factors": factor.id, "data_subject_requests": dsr.id}


def test_plaintext_written_by_sql_is_refused_by_every_encrypted_columns_check(
    db: Session, storage_dir: Path
) -> None:
    rows = _every_encrypted_row(db, storage_dir)
    app_keys = crypto.StaticKeyProvider({"app-2026": bytes(32)}, "app-2026")
    for table, column in encrypted_columns():
        row_id = rows[table]
        _assert_envelope(_raw(db, table, column, row_id), not_containing="check.carl")
        update = text(f'UPDATE "{table}" SET "{column}" = :v WHERE id = :i')
        check = f"ck_{table}_{column}_envelope"
        for refused in ("carl@example.com", "enc:v1:k:tooshort", "enc:v1:bad key:" + "A" * 40):
            with pytest.raises(IntegrityError, match=check), db.begin_nested():
                db.execute(update, {"v": refused, "i": row_id})
        # An envelope an upstream app made (its own key id, this layout) is accepted.
        app_made = crypto.encrypt("carl@example.com", table=table, column=column, provider=app_keys)
        with db.begin_nested():
            db.execute(update, {"v": app_made, "i": row_id})
        if table == "messages":  # the one REDACT column: erasure writes the marker
            with db.begin_nested():
                db.execute(update, {"v": crypto.REDACTED, "i": row_id})
        else:
            with pytest.raises(IntegrityError, match=check), db.begin_nested():
                db.execute(update, {"v": crypto.REDACTED, "i": row_id})


def test_the_python_and_sql_envelope_patterns_agree(db: Session) -> None:
    samples = [
        crypto.encrypt(v, table="t", column="c") for v in ("", "a", "ab", "abc", "x" * 200)
    ] + [
        "enc:v1:dev:" + "A" * 38 + "==",
        "enc:v1:dev:" + "A" * 36 + "A==",  # 39 characters of payload + padding: not base64
        "enc:v1:dev:" + "A" * 39 + "=",
        "enc:v1:dev:" + "A" * 40 + "\n",
        "enc:v2:dev:" + "A" * 40,
        "enc:v1::" + "A" * 40,
        "enc:v1:" + "k" * 65 + ":" + "A" * 40,
        "enc:v1:dev:" + "A+/=" * 10,
        "plain@example.com",
    ]
    in_sql = db.execute(
        text("SELECT s ~ :p FROM unnest(CAST(:s AS text[])) AS s"),
        {"s": samples, "p": crypto.ENVELOPE_SQL_PATTERN},
    ).scalars()
    assert list(in_sql) == [crypto.is_wellformed_envelope(s) for s in samples]
    assert [crypto.is_wellformed_envelope(s) for s in samples[:6]] == [True] * 5 + [True]


def test_the_type_refuses_to_wrap_an_envelope_twice(db: Session) -> None:
    org = make_org(db)
    envelope = crypto.encrypt("x@example.com", table="candidates", column="email")
    with pytest.raises(Exception, match="already an encryption envelope"):
        make_candidate(db, org, email=envelope)


# --- the documented envelope ----------------------------------------------------------------


def _documented_vectors() -> list[dict[str, str]]:
    doc = (ROOT / "docs" / "encryption.md").read_text()
    vectors = []
    for block in re.findall(r"```vector\n(.*?)```", doc, flags=re.DOTALL):
        fields = dict(line.split(":", 1) for line in block.strip("\n").split("\n"))
        vectors.append({k.strip(): v.strip() for k, v in fields.items()})
    return vectors


DOC_KEY = bytes(range(32))


def test_the_code_reproduces_the_documented_test_vectors() -> None:
    doc = (ROOT / "docs" / "encryption.md").read_text()
    assert base64.b64encode(DOC_KEY).decode() in doc
    assert crypto.ENVELOPE_SQL_PATTERN in doc  # the documented CHECK is the enforced one
    vectors = _documented_vectors()
    assert len(vectors) == 3
    provider = crypto.StaticKeyProvider({"2026-01": DOC_KEY}, "2026-01")
    for vector in vectors:
        table, column = vector["column"].split(".")
        nonce = bytes.fromhex(vector["nonce (hex)"])
        made = crypto.encrypt(
            vector["plaintext"], table=table, column=column, provider=provider, nonce=nonce
        )
        assert made == vector["envelope"]
        read = crypto.decrypt(vector["envelope"], table=table, column=column, provider=provider)
        assert read == vector["plaintext"]
        # The spec alone (no project code) gives the same bytes: what another app writes.
        payload = base64.urlsafe_b64decode(vector["envelope"].split(":", 3)[3])
        assert payload[:12] == nonce
        sealed = AESGCM(DOC_KEY).encrypt(
            nonce, vector["plaintext"].encode(), vector["column"].encode()
        )
        assert payload[12:] == sealed and len(sealed) == len(vector["plaintext"].encode()) + 16
    first = vectors[0]
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(first["envelope"], table="candidates", column="phone", provider=provider)
    assert crypto.blind_index("  Jane.Doe@Example.com ", key=b"blind-index-test-key") == (
        "4611c7fbdf14c9b8fb743d41a8ea4123490935d0acf0d8ef1220136b8177fb7a"
    )
    assert "4611c7fbdf14c9b8fb743d41a8ea4123490935d0acf0d8ef1220136b8177fb7a" in doc


def test_key_ids_that_the_check_would_refuse_are_refused_at_configuration() -> None:
    for bad in ("", "has space", "a:b", "k" * 65):
        with pytest.raises(ConfigurationError, match="key id"):
            crypto.StaticKeyProvider({bad: bytes(32)}, bad)
