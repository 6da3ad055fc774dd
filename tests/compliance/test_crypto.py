"""Field encryption: envelopes with key ids, column binding, rotation, missing keys."""

from __future__ import annotations

import base64
import os

import pytest

from are_workers import crypto
from are_workers.errors import ConfigurationError, PermanentError

OLD = os.urandom(32)
NEW = os.urandom(32)


def test_round_trip_random_nonce_and_key_id_in_the_envelope() -> None:
    keys = crypto.StaticKeyProvider({"k1": OLD}, "k1")
    a = crypto.encrypt("jane@example.com", table="candidates", column="email", provider=keys)
    b = crypto.encrypt("jane@example.com", table="candidates", column="email", provider=keys)
    assert a is not None and b is not None
    assert a != b  # a fresh nonce per value
    assert a.startswith("enc:v1:k1:") and "jane" not in a
    assert crypto.envelope_key_id(a) == "k1"
    assert crypto.decrypt(a, table="candidates", column="email", provider=keys) == (
        "jane@example.com"
    )
    assert crypto.encrypt(None, table="t", column="c", provider=keys) is None
    assert crypto.decrypt(crypto.REDACTED, table="t", column="c", provider=keys) == "[redacted]"


def test_an_envelope_only_decrypts_in_its_own_column_and_unaltered() -> None:
    keys = crypto.StaticKeyProvider({"k1": OLD}, "k1")
    value = crypto.encrypt("+44 20 7946 0000", table="candidates", column="phone", provider=keys)
    assert value is not None
    with pytest.raises(crypto.DecryptionError, match="copied from another column"):
        crypto.decrypt(value, table="candidates", column="email", provider=keys)
    blob = bytearray(base64.urlsafe_b64decode(value.split(":", 3)[3]))
    blob[-1] ^= 1
    tampered = "enc:v1:k1:" + base64.urlsafe_b64encode(bytes(blob)).decode()
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(tampered, table="candidates", column="phone", provider=keys)
    with pytest.raises(crypto.DecryptionError, match="not an encryption envelope"):
        crypto.decrypt("jane@example.com", table="candidates", column="phone", provider=keys)


def test_rotation_keeps_old_values_readable_and_rewrites_under_the_active_key() -> None:
    before = crypto.StaticKeyProvider({"k1": OLD}, "k1")
    value = crypto.encrypt("secret", table="t", column="c", provider=before)
    after = crypto.StaticKeyProvider({"k1": OLD, "k2": NEW}, "k2")
    assert crypto.decrypt(value, table="t", column="c", provider=after) == "secret"
    rotated = crypto.reencrypt(value, table="t", column="c", provider=after)
    assert rotated is not None and crypto.envelope_key_id(rotated) == "k2"
    only_new = crypto.StaticKeyProvider({"k2": NEW}, "k2")
    assert crypto.decrypt(rotated, table="t", column="c", provider=only_new) == "secret"


def test_a_missing_key_is_a_permanent_error_that_names_the_key() -> None:
    value = crypto.encrypt(
        "x", table="t", column="c", provider=crypto.StaticKeyProvider({"gone": OLD}, "gone")
    )
    keys = crypto.StaticKeyProvider({"k2": NEW}, "k2")
    with pytest.raises(crypto.MissingKeyError) as caught:
        crypto.decrypt(value, table="t", column="c", provider=keys)
    assert isinstance(caught.value, PermanentError)
    assert caught.value.key_id == "gone" and "ARE_ENCRYPTION_KEYS" in caught.value.user_message


def test_bad_key_configuration_is_refused_with_the_variable_named() -> None:
    with pytest.raises(ConfigurationError, match="32 bytes"):
        crypto.StaticKeyProvider({"k": b"short"}, "k")
    with pytest.raises(ConfigurationError, match="ARE_ENCRYPTION_KEY_ID"):
        crypto.StaticKeyProvider({"k": OLD}, "other")


def test_settings_provider_reads_base64_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    from are_workers.config import get_settings

    key = crypto.new_key()
    monkeypatch.setenv("ARE_ENCRYPTION_KEYS", f'{{"2026-11": "{key}"}}')
    monkeypatch.setenv("ARE_ENCRYPTION_KEY_ID", "2026-11")
    get_settings.cache_clear()
    try:
        provider = crypto.SettingsKeyProvider()
        assert provider.active_key_id == "2026-11"
        assert provider.key("2026-11") == base64.b64decode(key)
    finally:
        get_settings.cache_clear()


def test_blind_index_is_keyed_and_normalised() -> None:
    a = crypto.blind_index(" Jane@Example.com ", key=b"k1")
    assert a == crypto.blind_index("jane@example.com", key=b"k1")
    assert a != crypto.blind_index("jane@example.com", key=b"k2")
    assert len(a) == 64
    assert crypto.subject_ref("x", key=b"k1") != crypto.blind_index("x", key=b"k1")
