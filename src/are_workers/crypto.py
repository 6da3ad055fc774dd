"""Field-level encryption (AES-GCM envelopes with key ids), key providers and blind indexes.

Why application-level: columns classified ``encrypted`` (emails, phones, self-identification,
MFA secrets) must be unreadable to whoever reads the database directly — a leaked backup, a
replica, an over-privileged analyst — which disk or TLS encryption does not give. Raw SQL
shows only envelopes.

An envelope is text, so it fits the ``TEXT`` columns the schema already has::

    enc:v1:<key id>:<base64url(12-byte nonce || ciphertext || 16-byte tag)>

(``docs/encryption.md`` specifies it with test vectors, for apps that write these columns;
every encrypted column has a CHECK constraint accepting only :data:`ENVELOPE_SQL_PATTERN`.)

* a random nonce per value (AES-GCM's requirement; 96 bits is safe far beyond our volumes);
* the key id in clear, so keys rotate: old envelopes stay readable while their key is
  configured, and :func:`envelope_key_id` lets SQL find what still uses an old key
  (``split_part(col, ':', 3)``);
* the column (``table.column``) as associated data, so an envelope copied into another
  column does not decrypt.

Equality lookups (a candidate by email) use a blind index, an HMAC of the normalised value
under a key of its own, never the ciphertext (random nonces make ciphertexts unequal).

Keys come from a :class:`KeyProvider`; :class:`SettingsKeyProvider` reads
``ARE_ENCRYPTION_KEYS`` / ``ARE_ENCRYPTION_KEY_ID``. A KMS-backed provider implements the
same two methods (fetch a data key by id, name the active id) and is installed with
:func:`set_key_provider`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import threading
from collections.abc import Callable
from functools import lru_cache
from typing import Any, Protocol

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from are_workers.errors import ConfigurationError, PermanentError

ENVELOPE_PREFIX = "enc:v1:"
NONCE_BYTES = 12
KEY_BYTES = 32
#: What a key id may be: it sits in clear between the prefix and the payload.
KEY_ID_PATTERN = "[A-Za-z0-9._-]{1,64}"
#: The payload: base64url, padded, of at least nonce + tag (28 bytes, 40 characters).
_PAYLOAD_PATTERN = "([A-Za-z0-9_-]{4}){9,}([A-Za-z0-9_-]{2}==|[A-Za-z0-9_-]{3}=|[A-Za-z0-9_-]{4})"
_ENVELOPE_BODY = f"enc:v1:{KEY_ID_PATTERN}:{_PAYLOAD_PATTERN}"
#: The envelope's layout as a PostgreSQL regular expression: the CHECK constraint of every
#: encrypted column (``models/columns.py``) and the migration that added them use it.
ENVELOPE_SQL_PATTERN = f"^{_ENVELOPE_BODY}$"
_ENVELOPE_RE = re.compile(_ENVELOPE_BODY)
#: What erasure writes into an encrypted column that may not be NULL. It is not personal
#: data, so set-based SQL can write it without a key; :func:`decrypt` returns it as is.
REDACTED = "[redacted]"


class MissingKeyError(PermanentError):
    """An envelope names a key id that no configured key has (removed, or never added)."""

    code = "missing_key"

    def __init__(self, key_id: str) -> None:
        super().__init__(
            f"Encryption key {key_id!r} is not configured, so data encrypted with it cannot "
            "be read. Add it back to ARE_ENCRYPTION_KEYS (keep retired keys until "
            "`compliance.rotate_keys` has re-encrypted everything)."
        )
        self.key_id = key_id


class DecryptionError(PermanentError):
    """The envelope is malformed, or was tampered with, or belongs to another column."""

    code = "decryption_failed"


class KeyProvider(Protocol):
    """Where data keys come from: settings today, a KMS tomorrow."""

    @property
    def active_key_id(self) -> str:
        """The key new values are encrypted with."""
        ...

    def key(self, key_id: str) -> bytes:
        """The 32-byte key with this id, or :class:`MissingKeyError`."""
        ...

    def key_ids(self) -> list[str]:
        """Every key id this provider can decrypt with."""
        ...


class StaticKeyProvider:
    """Keys held in memory: the settings provider's core, and handy in tests."""

    def __init__(self, keys: dict[str, bytes], active_key_id: str) -> None:
        for key_id, key in keys.items():
            if len(key) != KEY_BYTES:
                raise ConfigurationError(
                    f"ARE_ENCRYPTION_KEYS: key {key_id!r} must be {KEY_BYTES} bytes "
                    f"(base64 of 32 random bytes), not {len(key)}"
                )
            if not re.fullmatch(KEY_ID_PATTERN, key_id):
                raise ConfigurationError(
                    f"ARE_ENCRYPTION_KEYS: key id {key_id!r} is invalid (1 to 64 letters, "
                    "digits, '.', '_' or '-': it is stored in clear in every envelope)"
                )
        if active_key_id not in keys:
            raise ConfigurationError(
                f"ARE_ENCRYPTION_KEY_ID={active_key_id!r} is not among ARE_ENCRYPTION_KEYS "
                f"({', '.join(sorted(keys)) or 'none'})"
            )
        self._keys = dict(keys)
        self._active = active_key_id

    @property
    def active_key_id(self) -> str:
        return self._active

    def key(self, key_id: str) -> bytes:
        try:
            return self._keys[key_id]
        except KeyError:
            raise MissingKeyError(key_id) from None

    def key_ids(self) -> list[str]:
        return sorted(self._keys)


class SettingsKeyProvider(StaticKeyProvider):
    """Keys from ``ARE_ENCRYPTION_KEYS`` (``{"id": "base64 key"}``).

    With no keys configured outside production (where settings refuse to start), a random
    development key made once under ``<data dir>/keys`` is used under
    ``ARE_ENCRYPTION_KEY_ID``, so a laptop needs no setup and no key is in the source.
    """

    def __init__(self) -> None:
        from are_workers.config import get_settings

        settings = get_settings()
        keys: dict[str, bytes] = {}
        for key_id, secret in settings.encryption_keys.items():
            try:
                keys[key_id] = base64.b64decode(secret.get_secret_value(), validate=True)
            except ValueError:
                raise ConfigurationError(
                    f"ARE_ENCRYPTION_KEYS: key {key_id!r} is not valid base64"
                ) from None
        if not keys and settings.environment != "production":
            from are_workers.dev_keys import dev_secret

            keys[settings.encryption_key_id] = dev_secret(
                settings, "encryption-dev", variable="ARE_ENCRYPTION_KEYS"
            )
        super().__init__(keys, settings.encryption_key_id)


_provider_lock = threading.Lock()
_provider: KeyProvider | None = None


def get_key_provider() -> KeyProvider:
    global _provider  # noqa: PLW0603 - one provider per process, swapped only by tests/KMS
    with _provider_lock:
        if _provider is None:
            _provider = SettingsKeyProvider()
        return _provider


def set_key_provider(provider: KeyProvider | None) -> None:
    """Install a provider (a KMS client, or a test's keys); ``None`` re-reads the settings."""
    global _provider  # noqa: PLW0603
    with _provider_lock:
        _provider = provider
    _aead.cache_clear()


@lru_cache(maxsize=64)
def _aead(key: bytes) -> AESGCM:
    return AESGCM(key)


def _aad(table: str, column: str) -> bytes:
    return f"{table}.{column}".encode()


def new_key() -> str:
    """A fresh key, base64-encoded as ``ARE_ENCRYPTION_KEYS`` expects."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode()


def is_envelope(value: str | None) -> bool:
    return value is not None and value.startswith(ENVELOPE_PREFIX)


def is_wellformed_envelope(value: str | None) -> bool:
    """Whether ``value`` has the envelope's layout (what the columns' CHECK accepts); says
    nothing about whether it decrypts."""
    return value is not None and _ENVELOPE_RE.fullmatch(value) is not None


def envelope_key_id(value: str) -> str:
    """The key id an envelope was made with (no key needed)."""
    if not is_envelope(value):
        raise DecryptionError("The stored value is not an encryption envelope.")
    return value[len(ENVELOPE_PREFIX) :].split(":", 1)[0]


def encrypt(
    value: str | None,
    *,
    table: str,
    column: str,
    provider: KeyProvider | None = None,
    key_id: str | None = None,
    nonce: bytes | None = None,
) -> str | None:
    """Encrypt ``value`` for ``table.column`` under the active key (or ``key_id``).

    ``nonce`` exists for the documented test vectors only: a nonce reused under one key
    breaks AES-GCM, so production code never passes one (a random one is drawn).
    """
    if value is None:
        return None
    provider = provider or get_key_provider()
    key_id = key_id or provider.active_key_id
    if nonce is None:
        nonce = os.urandom(NONCE_BYTES)
    elif len(nonce) != NONCE_BYTES:
        raise ValueError(f"an AES-GCM nonce is {NONCE_BYTES} bytes, not {len(nonce)}")
    sealed = _aead(provider.key(key_id)).encrypt(nonce, value.encode(), _aad(table, column))
    return f"{ENVELOPE_PREFIX}{key_id}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"


def decrypt(
    value: str | None, *, table: str, column: str, provider: KeyProvider | None = None
) -> str | None:
    """The plaintext of an envelope; ``None`` and the erasure marker pass through."""
    if value is None or value == REDACTED:
        return value
    key_id = envelope_key_id(value)
    provider = provider or get_key_provider()
    key = provider.key(key_id)
    try:
        blob = base64.urlsafe_b64decode(value[len(ENVELOPE_PREFIX) + len(key_id) + 1 :])
        plain = _aead(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], _aad(table, column))
    except Exception:
        raise DecryptionError(
            f"A value in {table}.{column} does not decrypt with key {key_id!r}: it was "
            "altered, or copied from another column."
        ) from None
    return plain.decode()


def reencrypt(
    value: str | None, *, table: str, column: str, provider: KeyProvider | None = None
) -> str | None:
    """The same plaintext under the active key (what key rotation writes back)."""
    provider = provider or get_key_provider()
    plain = decrypt(value, table=table, column=column, provider=provider)
    if plain is None or plain == REDACTED:
        return plain
    return encrypt(plain, table=table, column=column, provider=provider)


# --- blind index and pseudonyms -------------------------------------------------------------


def _blind_key() -> bytes:
    from are_workers.config import get_settings

    settings = get_settings()
    if settings.blind_index_key is not None:
        return settings.blind_index_key.get_secret_value().encode()
    from are_workers.dev_keys import dev_secret

    return dev_secret(settings, "blind-index-dev", variable="ARE_BLIND_INDEX_KEY")


def normalise_email(email: str) -> str:
    return email.strip().lower()


def blind_index(value: str, *, key: bytes | None = None) -> str:
    """HMAC-SHA256 (hex) of a normalised email: exact-match lookup without decrypting."""
    digest = hmac.new(key or _blind_key(), normalise_email(value).encode(), hashlib.sha256)
    return digest.hexdigest()


def text_sha256(text: str) -> str:
    """SHA-256 (hex) of a text's UTF-8 bytes: how stored chunks detect a changed text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def json_sha256(value: Any, *, default: Callable[[Any], Any] | None = None) -> str:
    """SHA-256 (hex) of a value's canonical JSON (sorted keys): how results, options and
    fingerprints are referenced by content, e.g. in audit refs that outlive erasure."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=default).encode()).hexdigest()


def subject_ref(subject_id: object, *, key: bytes | None = None) -> str:
    """The pseudonym audit rows use for a data subject: HMAC of its id, never its name.

    A different message prefix from :func:`blind_index` keeps the two HMACs unrelated even
    though they share the key.
    """
    message = f"subject-ref:{subject_id}".encode()
    return hmac.new(key or _blind_key(), message, hashlib.sha256).hexdigest()
