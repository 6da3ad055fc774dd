"""The head-signing key stays with the jobs that sign; verifiers hold only the public key."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)
from sqlalchemy import text
from sqlalchemy.orm import Session

from are_workers import catalog
from are_workers.config import Settings, get_settings
from are_workers.errors import ConfigurationError
from are_workers.models.privacy import RetentionPolicy
from are_workers.services.compliance import audit_chain, audit_keys, audit_partitions
from tests.compliance.audit_rows import write_audit_rows
from tests.factories import make_org

KEY = Ed25519PrivateKey.generate()
PUBLIC = base64.b64encode(KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
SEED = base64.b64encode(KEY.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())).decode()
SECRETS: dict[str, Any] = {
    "encryption_keys": {"k1": "a" * 44},
    "blind_index_key": "a-real-secret",
    "database_url": "postgresql://are@db/are",
    "broker_url": "redis://redis:6379/0",
}


@pytest.fixture
def verifier_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A host configured with the public key only; loading the private key fails the test."""
    monkeypatch.setenv("ARE_AUDIT_HEAD_DIR", str(tmp_path))
    monkeypatch.setenv("ARE_AUDIT_HEAD_PUBLIC_KEY", PUBLIC)
    get_settings.cache_clear()

    def no_private_key(*_: object, **__: object) -> Ed25519PrivateKey:
        raise AssertionError("a verifier loaded the head-signing key")

    monkeypatch.setattr(audit_keys, "signing_key", no_private_key)
    monkeypatch.setattr(audit_chain, "signing_key", no_private_key)
    yield tmp_path
    get_settings.cache_clear()


def test_verification_needs_only_the_public_key(db: Session, verifier_only: Path) -> None:
    org = make_org(db)
    write_audit_rows(db, org.id, 3)
    audit_chain.seal(db, org.id)
    audit_chain.export_heads(db, organization_id=org.id, key=KEY)  # signed elsewhere
    heads = audit_chain.read_heads(org.id)
    report = audit_chain.verify(db, org.id, heads=heads)
    assert report.ok and report.exported_heads_checked == 1
    assert report.trusted_key_id == audit_keys.key_id(KEY.public_key())


def test_a_process_without_the_signing_key_drops_no_partition(
    db: Session, verifier_only: Path
) -> None:
    org = make_org(db)
    write_audit_rows(db, org.id, 2, days_ago=800)
    db.add(RetentionPolicy(organization_id=org.id, table_name="audit_log", retention_days=400))
    db.flush()
    audit_chain.seal(db, org.id)
    before = {p.name for p in audit_partitions.partitions(db)}
    with pytest.raises(AssertionError, match="signing key"):
        audit_partitions.prune(db)
    assert {p.name for p in audit_partitions.partitions(db)} >= before - {"audit_log_default"}
    count = db.execute(
        text("SELECT count(*) FROM audit_log WHERE organization_id = :o"), {"o": org.id}
    ).scalar_one()
    assert count == 2


def test_production_asks_for_the_private_key_only_where_it_signs() -> None:
    verifier = Settings(environment="production", audit_head_public_key=PUBLIC, **SECRETS)
    assert audit_keys.key_id(audit_keys.public_key(verifier)) == audit_keys.key_id(KEY.public_key())
    with pytest.raises(ConfigurationError, match="ARE_AUDIT_HEAD_SIGNING_KEY is not set"):
        audit_keys.signing_key(verifier)
    signer = Settings(
        environment="production",
        audit_head_public_key=PUBLIC,
        audit_head_signing_key=SEED,  # type: ignore[arg-type]
        **SECRETS,
    )
    assert audit_keys.signing_key(signer).public_key().public_bytes(
        Encoding.Raw, PublicFormat.Raw
    ) == base64.b64decode(PUBLIC)
    other = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    mismatched = Settings(
        environment="production",
        audit_head_public_key=base64.b64encode(other).decode(),
        audit_head_signing_key=SEED,  # type: ignore[arg-type]
        **SECRETS,
    )
    with pytest.raises(ConfigurationError, match="does not match"):
        audit_keys.signing_key(mismatched)


def test_a_public_key_file_is_read_as_pem_or_base64(tmp_path: Path) -> None:
    pem = tmp_path / "audit.pem"
    pem.write_bytes(KEY.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    settings = Settings(environment="production", audit_head_public_key_file=pem, **SECRETS)
    expected = audit_keys.key_id(KEY.public_key())
    assert audit_keys.key_id(audit_keys.public_key(settings)) == expected
    pem.write_text(PUBLIC)
    assert audit_keys.key_id(audit_keys.public_key(settings)) == expected
    pem.write_text("not a key")
    with pytest.raises(ConfigurationError, match="ARE_AUDIT_HEAD_PUBLIC_KEY_FILE"):
        audit_keys.public_key(settings)


def test_the_signing_jobs_have_a_queue_class_of_their_own() -> None:
    signing = {k.actor for k in catalog.JOB_KINDS.values() if k.queue_class == "signing"}
    assert signing == set(audit_keys.SIGNING_JOBS)
    assert catalog.class_for("compliance.verify_audit_chain") == "compliance"
    assert catalog.class_for("compliance.seal_audit_chain") == "compliance"  # hashes, no key
    settings = Settings(queue_signing="audit-signer")
    assert settings.queue_for_class("signing") == "audit-signer"
    assert "audit-signer" in settings.all_queues
