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
