from __future__ import annotations

import pytest

from are_workers.config import Settings, get_settings
from are_workers.errors import ConfigurationError


def test_database_url_is_normalised_to_psycopg3() -> None:
    settings = Settings(database_url="postgres://u:p@db:5432/are")
    assert settings.database_url == "postgresql+psycopg://u:p@db:5432/are"


def test_invalid_broker_url_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARE_BROKER_URL", "http://localhost:6379")
    get_settings.cache_clear()
    try:
        with pytest.raises(ConfigurationError, match="ARE_BROKER_URL"):
            get_settings()
    finally:
        get_settings.cache_clear()


def test_production_refuses_placeholder_secrets() -> None:
    with pytest.raises(ValueError, match="ARE_BLIND_INDEX_KEY"):
        Settings(environment="production")


def test_production_needs_the_audit_public_key_and_not_the_signing_key() -> None:
    secrets = {"encryption_keys": {"k1": "a" * 44}, "blind_index_key": "a-real-secret"}
    with pytest.raises(ValueError, match="ARE_AUDIT_HEAD_PUBLIC_KEY"):
        Settings(environment="production", **secrets)  # type: ignore[arg-type]
    Settings(environment="production", audit_head_public_key="cHVi", **secrets)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ARE_RETENTION_BATCH_SIZE", "0"),
        ("ARE_RETENTION_BREAKER_FACTOR", "lots"),
        ("ARE_AUDIT_PARTITION_MONTHS_AHEAD", "99"),
        ("ARE_BIAS_SHORTLIST_SCORE", "1.5"),
    ],
)
def test_compliance_settings_are_checked_and_name_their_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    get_settings.cache_clear()
    try:
        with pytest.raises(ConfigurationError, match=variable):
            get_settings()
    finally:
        get_settings.cache_clear()
