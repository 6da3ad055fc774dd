"""The audit head-signing key pair: who may sign, and what a verifier needs.

Signed heads and signed pruning records are the audit trail's evidence kept outside the
database. The Ed25519 *private* key makes them; whoever holds it could forge them, so only
the jobs that sign load it (``signing_key``): ``compliance.export_audit_head`` and
``compliance.maintain_audit_partitions``, on queue class ``signing`` (``ARE_QUEUE_SIGNING``),
so the pool that holds the key can be kept small, and the one-off
``compliance sign-pruning-records``. Everything that verifies needs only the public key
(``public_key``: ``ARE_AUDIT_HEAD_PUBLIC_KEY`` or ``ARE_AUDIT_HEAD_PUBLIC_KEY_FILE``).

Outside production both come from a key pair generated once under ``<data dir>/keys``
(owner-only permissions).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_public_key,
)

from are_workers.config import Settings, get_settings
from are_workers.errors import ConfigurationError


class HeadSignatureError(ConfigurationError):
    """An exported head or pruning record does not verify: altered, or signed by another key."""


def _dev_key_path(settings: Settings) -> Path:
    return settings.data_dir / "keys" / "audit-head-ed25519.key"


SIGNING_JOBS = ("compliance.export_audit_head", "compliance.maintain_audit_partitions")


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _dev_pair(settings: Settings) -> Ed25519PrivateKey:
    """The development key pair under ``<data dir>/keys`` (created on first use)."""
    path = _dev_key_path(settings)
    if not path.exists():
        key = Ed25519PrivateKey.generate()
        raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        with contextlib.suppress(FileExistsError):  # another process made it first
            _write_private(path, base64.b64encode(raw))
    key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(path.read_bytes()))
    public = path.with_suffix(".pub")
    if not public.exists():
        raw_public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        public.write_bytes(base64.b64encode(raw_public))
    return key


def signing_key(settings: Settings | None = None) -> Ed25519PrivateKey:
    """The head-signing key, for the jobs that sign only: configured, or (outside
    production) the development pair's."""
    settings = settings or get_settings()
    if settings.audit_head_signing_key:
        try:
            seed = base64.b64decode(
                settings.audit_head_signing_key.get_secret_value(), validate=True
            )
            key = Ed25519PrivateKey.from_private_bytes(seed)
        except ValueError:
            raise ConfigurationError(
                "ARE_AUDIT_HEAD_SIGNING_KEY must be base64 of a 32-byte Ed25519 seed"
            ) from None
        if _configured_public(settings) not in (None, _raw(key.public_key())):
            raise ConfigurationError(
                "ARE_AUDIT_HEAD_SIGNING_KEY does not match ARE_AUDIT_HEAD_PUBLIC_KEY: "
                "verifiers would refuse everything this process signs"
            )
        return key
    if settings.environment == "production":
        raise ConfigurationError(
            "ARE_AUDIT_HEAD_SIGNING_KEY is not set. Only the signing jobs need it "
            f"({', '.join(SIGNING_JOBS)}, on queue class 'signing'): set it in that pool's "
            "environment, and ARE_AUDIT_HEAD_PUBLIC_KEY everywhere else."
        )
    return _dev_pair(settings)


def _raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _configured_public(settings: Settings) -> bytes | None:
    if settings.audit_head_public_key:
        try:
            raw = base64.b64decode(settings.audit_head_public_key, validate=True)
            return _raw(Ed25519PublicKey.from_public_bytes(raw))
        except ValueError:
            raise ConfigurationError(
                "ARE_AUDIT_HEAD_PUBLIC_KEY must be base64 of a 32-byte Ed25519 public key"
            ) from None
    if settings.audit_head_public_key_file:
        path = settings.audit_head_public_key_file
        try:
            data = path.read_bytes()
            if data.lstrip().startswith(b"-----BEGIN"):
                loaded = load_pem_public_key(data)
                if not isinstance(loaded, Ed25519PublicKey):
                    raise ValueError("not an Ed25519 key")
                return _raw(loaded)
            return _raw(Ed25519PublicKey.from_public_bytes(base64.b64decode(data.strip())))
        except (OSError, ValueError) as exc:
            raise ConfigurationError(
                f"ARE_AUDIT_HEAD_PUBLIC_KEY_FILE ({path}) must hold an Ed25519 public key, "
                f"PEM or base64 of its 32 bytes: {exc}"
            ) from None
    return None


def public_key(settings: Settings | None = None) -> Ed25519PublicKey:
    """The key verification trusts; never derived from a configured private key."""
    settings = settings or get_settings()
    raw = _configured_public(settings)
    if raw is not None:
        return Ed25519PublicKey.from_public_bytes(raw)
    if settings.environment == "production":
        raise ConfigurationError(
            "ARE_AUDIT_HEAD_PUBLIC_KEY (or ARE_AUDIT_HEAD_PUBLIC_KEY_FILE) must be set in "
            "production: it is what audit verification trusts"
        )
    if settings.audit_head_signing_key:  # development with a configured seed
        return signing_key(settings).public_key()
    public = _dev_key_path(settings).with_suffix(".pub")
    if not public.exists():
        _dev_pair(settings)
    return Ed25519PublicKey.from_public_bytes(base64.b64decode(public.read_bytes()))


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]
