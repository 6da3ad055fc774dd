"""Settings of the compliance tasks and the scheduler, read from ``ARE_*`` variables.

Kept apart from ``are_workers.config.Settings`` for now so the compliance work could land
without touching the shared settings class; each field is meant to move there unchanged
(same variable name, same default). Invalid values fail with the variable's name, as the
main settings do.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path

from are_workers.errors import ConfigurationError


@dataclass(frozen=True)
class ComplianceSettings:
    #: ``ARE_SCHEDULER_TICK_SECONDS``: how often the leader looks for due schedules.
    scheduler_tick_seconds: float = 15.0
    #: ``ARE_SCHEDULER_CATCH_UP_DAYS``: a tick missed longer ago than this is not caught up
    #: when the scheduler has no record of the schedule's previous run (a new schedule, or
    #: its last job pruned from the ledger). Keep it below the ledger's prune age.
    scheduler_catch_up_days: float = 7.0
    #: ``ARE_RETENTION_BATCH_SIZE``: rows per set-based DELETE/UPDATE (one commit each).
    retention_batch_size: int = 10_000
    #: ``ARE_RETENTION_BREAKER_FACTOR``: a sweep that would remove more than this many times
    #: the largest of the recent runs' counts for a table stops and asks for confirmation.
    retention_breaker_factor: float = 10.0
    #: ``ARE_RETENTION_BREAKER_MIN_ROWS``: below this many rows per table the breaker never
    #: trips (small tables legitimately vary a lot, and a first run has no history).
    retention_breaker_min_rows: int = 1_000
    #: ``ARE_RETENTION_BREAKER_HISTORY``: how many recent completed runs form the baseline.
    retention_breaker_history: int = 5
    #: ``ARE_EXPORT_EXPIRY_DAYS``: a data subject export bundle is deleted after this long.
    export_expiry_days: int = 30
    #: ``ARE_AUDIT_HEAD_DIR``: where signed audit chain heads are written. Point it at
    #: storage the database owner cannot rewrite (a WORM bucket mount, another host).
    #: Empty: ``<storage dir>/audit-heads``.
    audit_head_dir: Path | None = None
    #: ``ARE_AUDIT_HEAD_SIGNING_KEY``: base64 Ed25519 private key (32-byte seed) that signs
    #: exported heads. The database never holds it. Empty outside production: a key is
    #: generated once under ``<data dir>/keys``.
    audit_head_signing_key: str | None = None
    #: ``ARE_ERASURE_JOURNAL_DIR``: the append-only list of erased subjects (ids only) that
    #: ``compliance reapply-erasures`` replays after a database restore. Keep it outside the
    #: database's backups. Empty: ``<data dir>/compliance/erasure-journal``.
    erasure_journal_dir: Path | None = None
    #: ``ARE_AUDIT_SEAL_BATCH_SIZE``: audit rows sealed per statement.
    audit_seal_batch_size: int = 5_000
    #: ``ARE_BIAS_MIN_GROUP_SIZE``: categories smaller than this are reported as too small
    #: to rate, not flagged (NYC LL 144 audits may exclude categories under 2 % of data).
    bias_min_group_size: int = 10
    #: ``ARE_BIAS_SHORTLIST_SCORE``: an AI evaluation at or above this overall score counts
    #: as "selected" by the AI (shortlisted).
    bias_shortlist_score: float = 0.7
    #: ``ARE_KEY_ROTATION_BATCH_SIZE``: values re-encrypted per statement.
    key_rotation_batch_size: int = 1_000

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> ComplianceSettings:
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for spec in fields(cls):
            name = f"ARE_{spec.name.upper()}"
            raw = env.get(name)
            if raw is None or raw == "":
                continue
            kind = type(spec.default) if spec.default is not None else str
            try:
                if spec.name in {"audit_head_dir", "erasure_journal_dir"}:
                    values[spec.name] = Path(raw)
                elif kind is int:
                    values[spec.name] = int(raw)
                elif kind is float:
                    values[spec.name] = float(raw)
                else:
                    values[spec.name] = raw
            except ValueError:
                raise ConfigurationError(
                    f"{name}: {raw!r} is not a valid {kind.__name__}"
                ) from None
            value = values[spec.name]
            if isinstance(value, int | float) and value <= 0:
                raise ConfigurationError(f"{name}: must be positive, not {raw!r}")
        return cls(**values)  # type: ignore[arg-type]


@lru_cache(maxsize=1)
def compliance_settings() -> ComplianceSettings:
    return ComplianceSettings.from_env()
