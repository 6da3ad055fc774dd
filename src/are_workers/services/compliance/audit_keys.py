"""The audit head-signing key pair: who may sign, and what a verifier needs.

Signed heads and signed pruning records are the audit trail's evidence kept outside the
database. The Ed25519 *private* key makes them; whoever holds it could forge them, so only
the jobs that sign load it (``signing_key``). Everything that verifies needs only the public
key (``public_key``).
"""

from __future__ import annotations

import base64
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
)

from are_workers.config import Settings, get_settings
from are_workers.errors import ConfigurationError


class HeadSignatureError(ConfigurationError):
    """An exported head or pruning record does not verify: altered, or signed by another key."""


def _dev_key_path(settings: Settings) -> Path:
    return settings.data_dir / "keys" / "audit-head-ed25519.key"


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def signing_key(settings: Settings | None = None) -> Ed25519PrivateKey:
    """The head-signing key: configured, or (outside production) generated once under
    ``<data dir>/keys``."""
    settings = settings or get_settings()
    if settings.audit_head_signing_key:
        try:
            seed = base64.b64decode(
                settings.audit_head_signing_key.get_secret_value(), validate=True
            )
            return Ed25519PrivateKey.from_private_bytes(seed)
        except ValueError:
            raise ConfigurationError(
                "ARE_AUDIT_HEAD_SIGNING_KEY must be base64 of a 32-byte Ed25519 seed"
            ) from None
    path = _dev_key_path(settings)
    if not path.exists():
        key = Ed25519PrivateKey.generate()
        raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        _write_private(path, base64.b64encode(raw))
    return Ed25519PrivateKey.from_private_bytes(base64.b64decode(path.read_bytes()))


def public_key(settings: Settings | None = None) -> Ed25519PublicKey:
    """The key verification trusts."""
    return signing_key(settings).public_key()


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]
