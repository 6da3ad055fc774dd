"""The thin scheduler: enqueues the periodic jobs (compliance, index upkeep), and does
nothing else.

Why this shape:

* **It only enqueues**, through the job ledger (``ledger.enqueue``), so a scheduled job is
  an ordinary job: retried, leased, visible in ``are-workers status``, published by the
  relay after commit. The scheduler needs no broker.
* **Leader election with a Postgres advisory lock.** Any number of replicas may run; the one
  holding ``pg_try_advisory_lock`` enqueues, the others wait to take over. The leader
  enqueues *on the connection that holds the lock*, inside a transaction that first checks
  the lock is still held: if the connection dies (and the lock with it), that transaction
  cannot commit, so a deposed leader never enqueues after a new one took over.
* **Deterministic run ids.** Each run is keyed ``schedule:<name>:<tick>`` (the ledger's
  idempotency key) and gets a UUIDv5 of it as its job id, so even two leaders enqueueing
  the same tick (a network partition) create one job.
* **One catch-up, not one per missed tick.** A run is due when the latest cron tick at or
  before now is later than the last run's tick: after a day of downtime an hourly schedule
  runs once. The last run is read from the ledger itself (the newest job with the
  schedule's key), so the scheduler keeps no state of its own. When the ledger holds no
  previous run (a new schedule, or its job pruned), a tick older than
  ``ARE_SCHEDULER_CATCH_UP_DAYS`` is not caught up.
* **Code defines the schedules**; ``schedule_overrides`` rows change the cron or pause a
  schedule per organization (or platform-wide, with ``organization_id`` NULL). Cron syntax
  is croniter's (a sixth field is seconds).
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import structlog
from croniter import croniter
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from are_workers import ledger
from are_workers.errors import ConfigurationError
from are_workers.services.compliance.audit import PLATFORM_ORGANIZATION_ID

log = structlog.get_logger(__name__)

Scope = Literal["organization", "platform"]

#: The advisory lock every replica competes for (64-bit, from a fixed name).
SCHEDULER_LOCK_KEY = int.from_bytes(
    hashlib.sha256(b"are-workers.scheduler").digest()[:8], "big", signed=True
)
#: Namespace of the deterministic job ids of scheduled runs.
RUN_ID_NAMESPACE = uuid.UUID("6f1c8c3e-2a51-5d0e-9a5b-8a6b1f3f0a11")
KEY_PREFIX = "schedule:"
TICK_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # sorts lexicographically in time order


@dataclass(frozen=True)
class Schedule:
    """A periodic job: which actor, how often, and for whom."""

    name: str
    actor: str
    cron: str
    scope: Scope
    description: str
    args: dict[str, Any] = field(default_factory=dict)
    #: An organization-scoped schedule that also runs for the platform chain's reserved
    #: organization (``audit.PLATFORM_ORGANIZATION_ID``); the others skip it (it has no data).
    platform_chain: bool = False


DEFAULT_SCHEDULES: tuple[Schedule, ...] = (
    Schedule(
        "retention-sweep",
        "compliance.retention_sweep",
        "30 2 * * *",
        "organization",
        "Delete or anonymize what outlived its retention (per organization).",
    ),
    Schedule(
        "audit-seal",
        "compliance.seal_audit_chain",
        "*/5 * * * *",
        "platform",
        "Hash-chain the audit rows written since the last seal.",
    ),
    Schedule(
        "audit-head-export",
        "compliance.export_audit_head",
        "0 * * * *",
        "platform",
        "Sign and export each organization's chain head outside the database.",
    ),
    Schedule(
        "audit-verify",
        "compliance.verify_audit_chain",
        "15 4 * * *",
        "organization",
        "Recompute the audit chain and report the first broken link.",
        platform_chain=True,
    ),
    Schedule(
        "bias-audit",
        "compliance.bias_audit",
        "0 5 1 * *",
        "organization",
        "Selection rates and impact ratios of AI and human decisions (LL 144).",
    ),
    Schedule(
        "dsr-deadlines",
        "compliance.process_due_dsrs",
        "0 * * * *",
        "platform",
        "Queue data subject requests that no job has picked up yet.",
    ),
    Schedule(
        "export-expiry",
        "compliance.expire_exports",
        "45 3 * * *",
        "platform",
        "Delete expired data subject export bundles.",
    ),
    Schedule(
        "retention-sweep-platform",
        "compliance.retention_sweep_platform",
        "50 2 * * *",
        "platform",
        "Delete or anonymize what outlived its retention in the global tables.",
    ),
    Schedule(
        "audit-partitions",
        "compliance.maintain_audit_partitions",
        "40 3 * * *",
        "platform",
        "Create the coming months' audit partitions; drop expired months (chain re-anchored).",
    ),
    Schedule(
        "item-calibration",
        "assessments.calibrate_items",
        "10 3 * * 0",
        "organization",
        "Re-estimate the organization's item banks (1-3PL and GRM) and flag drifted items.",
    ),
    Schedule(
        "tenant-index-sync",
        "matching.sync_tenant_index",
        "20 1 * * *",
        "organization",
        "Build a large tenant's vector index, drop a small tenant's.",
    ),
)


def schedule_named(name: str, schedules: Iterable[Schedule] = DEFAULT_SCHEDULES) -> Schedule:
    for schedule in schedules:
        if schedule.name == name:
            return schedule
    known = ", ".join(s.name for s in schedules)
    raise ConfigurationError(f"No schedule named {name!r}. Known schedules: {known}.")


# --- cron ----------------------------------------------------------------------------------


def validate_cron(expression: str) -> str:
    if not croniter.is_valid(expression):
        raise ConfigurationError(f"{expression!r} is not a valid cron expression")
    return expression


def latest_tick(expression: str, now: datetime) -> datetime:
    """The latest tick at or before ``now`` (croniter's ``get_prev`` is strictly before)."""
    return croniter(expression, now + timedelta(microseconds=1)).get_prev(datetime)


def next_tick(expression: str, now: datetime) -> datetime:
    """The first tick strictly after ``now``."""
    return croniter(expression, now).get_next(datetime)


def run_key(schedule: Schedule, tick: datetime) -> str:
    return f"{KEY_PREFIX}{schedule.name}:{tick.astimezone(UTC).strftime(TICK_FORMAT)}"


def run_id(schedule: Schedule, organization_id: uuid.UUID | None, tick: datetime) -> uuid.UUID:
    """The deterministic job id of one run (same schedule, tenant and tick → same id)."""
    return uuid.uuid5(
        RUN_ID_NAMESPACE, f"{organization_id or 'platform'}:{run_key(schedule, tick)}"
    )


def tick_of_key(key: str, schedule: Schedule) -> datetime:
    prefix = f"{KEY_PREFIX}{schedule.name}:"
    return datetime.strptime(key[len(prefix) :], TICK_FORMAT).replace(tzinfo=UTC)


# --- overrides -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Override:
    cron: str | None
    paused: bool
    paused_until: datetime | None
    reason: str | None

    def pauses(self, now: datetime) -> bool:
        if self.paused_until is not None:
            return self.paused_until > now
        return self.paused


OverrideMap = dict[tuple[str, uuid.UUID | None], Override]


def load_overrides(conn: Connection) -> OverrideMap:
    rows = conn.execute(
        text(
            "SELECT schedule_name, organization_id, cron, paused, paused_until, reason "
            "FROM schedule_overrides"
        )
    )
    return {
        (r.schedule_name, r.organization_id): Override(r.cron, r.paused, r.paused_until, r.reason)
        for r in rows
    }


@dataclass(frozen=True)
class Effective:
    """What applies to one schedule for one tenant after the overrides."""

    cron: str
    paused: bool
    source: Literal["default", "platform", "organization"]
    reason: str | None = None


def effective(
    schedule: Schedule, organization_id: uuid.UUID | None, overrides: OverrideMap, now: datetime
) -> Effective:
    """Organization override > platform override > the code's default. A platform pause
    (operations stopping a schedule everywhere) wins over everything."""
    platform = overrides.get((schedule.name, None))
    own = overrides.get((schedule.name, organization_id)) if organization_id else None
    cron, source = schedule.cron, "default"
    if platform is not None and platform.cron:
        cron, source = platform.cron, "platform"
    if own is not None and own.cron:
        cron, source = own.cron, "organization"
    if platform is not None and platform.pauses(now):
        return Effective(cron, True, "platform", platform.reason)
    if own is not None and own.pauses(now):
        return Effective(cron, True, "organization", own.reason)
    return Effective(cron, False, source)  # type: ignore[arg-type]


_PAUSE = text(
    """
    INSERT INTO schedule_overrides (organization_id, schedule_name, paused, reason)
    VALUES (NULL, :name, true, :reason)
    ON CONFLICT (organization_id, schedule_name)
    DO UPDATE SET paused = true, paused_until = NULL, reason = EXCLUDED.reason, updated_at = now()
    """
)
# A platform override that only paused is deleted on resume (the constraint wants it to
# override something); one that also sets a cron keeps its cron.
_RESUME = (
    text(
        "DELETE FROM schedule_overrides WHERE organization_id IS NULL AND schedule_name = :name "
        "AND cron IS NULL"
    ),
    text(
        "UPDATE schedule_overrides SET paused = false, paused_until = NULL, reason = NULL, "
        "updated_at = now() WHERE organization_id IS NULL AND schedule_name = :name"
    ),
)


def pause_platform(conn: ledger.Executor, name: str, reason: str | None = None) -> None:
    """Stop a schedule everywhere (a platform override); it wins over every tenant's."""
    schedule_named(name)
    conn.execute(_PAUSE, {"name": name, "reason": reason})


def resume_platform(conn: ledger.Executor, name: str) -> None:
    schedule_named(name)
    for statement in _RESUME:
        conn.execute(statement, {"name": name})


# --- the tick ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LastRun:
    tick: datetime
    job_id: uuid.UUID
    status: str


def last_runs(conn: Connection, schedule: Schedule) -> dict[uuid.UUID | None, LastRun]:
    """The newest run of ``schedule`` per tenant, from the ledger (its idempotency keys)."""
    rows = conn.execute(
        text(
            """
            SELECT DISTINCT ON (organization_id) organization_id, idempotency_key, id,
                   status::text AS status
            FROM task_runs
            WHERE actor = :actor AND idempotency_key LIKE :prefix
            ORDER BY organization_id, idempotency_key DESC
            """
        ),
        {"actor": schedule.actor, "prefix": f"{KEY_PREFIX}{schedule.name}:%"},
    )
    return {
        r.organization_id: LastRun(tick_of_key(r.idempotency_key, schedule), r.id, r.status)
        for r in rows
    }


@dataclass(frozen=True)
class Enqueued:
    schedule: str
    organization_id: uuid.UUID | None
    tick: datetime
    job_id: uuid.UUID


def due_tick(
    expression: str, now: datetime, last: LastRun | None, catch_up: timedelta
) -> datetime | None:
    """The one tick to run now, if any (missed ticks collapse into the latest)."""
    tick = latest_tick(expression, now)
    if last is not None:
        return tick if tick > last.tick else None
    return tick if now - tick <= catch_up else None


def run_due(
    conn: Connection,
    *,
    now: datetime | None = None,
    schedules: Sequence[Schedule] = DEFAULT_SCHEDULES,
    catch_up: timedelta | None = None,
    only: str | None = None,
) -> list[Enqueued]:
    """Enqueue every due run, in the caller's transaction. Safe to call at any time."""
    if catch_up is None:
        from are_workers.config import get_settings

        catch_up = timedelta(days=get_settings().scheduler_catch_up_days)
    now = now or conn.execute(text("SELECT now()")).scalar_one()
    overrides = load_overrides(conn)
    org_ids: list[uuid.UUID] = list(
        conn.execute(text("SELECT id FROM organizations ORDER BY id")).scalars()
    )
    enqueued: list[Enqueued] = []
    for schedule in schedules:
        if only is not None and schedule.name != only:
            continue
        previous = last_runs(conn, schedule)
        targets: list[uuid.UUID | None] = (
            [o for o in org_ids if schedule.platform_chain or o != PLATFORM_ORGANIZATION_ID]
            if schedule.scope == "organization"
            else [None]
        )
        for org_id in targets:
            rule = effective(schedule, org_id, overrides, now)
            if rule.paused:
                continue
            if not croniter.is_valid(rule.cron):
                log.error(
                    "schedule_cron_invalid",
                    schedule=schedule.name,
                    cron=rule.cron,
                    organization_id=str(org_id) if org_id else None,
                )
                continue
            tick = due_tick(rule.cron, now, previous.get(org_id), catch_up)
            if tick is None:
                continue
            job_id = ledger.enqueue(
                conn,
                schedule.actor,
                {**schedule.args, "scheduled_for": tick.isoformat()},
                organization_id=org_id,
                idempotency_key=run_key(schedule, tick),
                job_id=run_id(schedule, org_id, tick),
            )
            enqueued.append(Enqueued(schedule.name, org_id, tick, job_id))
    return enqueued


# --- leader election ------------------------------------------------------------------------


class LostLeadership(Exception):  # noqa: N818 - an event, not an error of the caller's
    """The advisory lock is gone (connection lost or killed); stop acting as leader."""


_HOLDS_LOCK = text(
    """
    SELECT count(*) FROM pg_locks
    WHERE locktype = 'advisory' AND granted AND pid = pg_backend_pid()
      AND objsubid = 1
      AND classid = ((CAST(:key AS bigint) >> 32) & 4294967295)::oid
      AND objid = (CAST(:key AS bigint) & 4294967295)::oid
    """
)


class Scheduler:
    """One replica. ``run()`` loops until stopped; ``run_once()`` does one tick if leader."""

    def __init__(
        self,
        engine: Engine,
        *,
        tick_seconds: float = 15.0,
        schedules: Sequence[Schedule] = DEFAULT_SCHEDULES,
        replica: str | None = None,
    ) -> None:
        import os
        import socket

        self.engine = engine
        self.tick_seconds = tick_seconds
        self.schedules = schedules
        self.replica = replica or f"{socket.gethostname()}/{os.getpid()}"
        self.stop_event = threading.Event()
        self._conn: Connection | None = None

    @property
    def is_leader(self) -> bool:
        return self._conn is not None

    def try_lead(self) -> bool:
        """Take the leader lock if it is free; keep it on a connection of our own."""
        if self._conn is not None:
            return True
        conn = self.engine.connect()
        try:
            got = conn.execute(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": SCHEDULER_LOCK_KEY}
            ).scalar_one()
            conn.commit()
        except DBAPIError:
            conn.invalidate()
            conn.close()
            return False
        if not got:
            conn.close()
            return False
        self._conn = conn
        log.info("scheduler_became_leader", replica=self.replica)
        return True

    def step_down(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.rollback()
            conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": SCHEDULER_LOCK_KEY})
            conn.commit()
        except DBAPIError:
            conn.invalidate()
        finally:
            conn.close()

    def _lose(self, reason: str) -> None:
        conn, self._conn = self._conn, None
        log.warning("scheduler_lost_leadership", replica=self.replica, reason=reason[:300])
        if conn is not None:
            try:
                conn.invalidate()
                conn.close()
            except Exception:  # noqa: S110 - the connection is already broken
                pass

    def tick(self, *, now: datetime | None = None, only: str | None = None) -> list[Enqueued]:
        """As leader: enqueue what is due, fenced on still holding the lock."""
        conn = self._conn
        if conn is None:
            raise LostLeadership("not the leader")
        try:
            with conn.begin():
                held = conn.execute(_HOLDS_LOCK, {"key": SCHEDULER_LOCK_KEY}).scalar_one()
                if not held:
                    raise LostLeadership("advisory lock no longer held")
                enqueued = run_due(conn, now=now, schedules=self.schedules, only=only)
        except DBAPIError as exc:
            self._lose(str(exc))
            raise LostLeadership(str(exc)) from exc
        except LostLeadership as exc:
            self._lose(str(exc))
            raise
        for run in enqueued:
            log.info(
                "schedule_enqueued",
                replica=self.replica,
                schedule=run.schedule,
                organization_id=str(run.organization_id) if run.organization_id else None,
                tick=run.tick.isoformat(),
                job_id=str(run.job_id),
            )
        return enqueued

    def run_once(self, *, only: str | None = None) -> list[Enqueued] | None:
        """One tick if this replica can lead; ``None`` when another replica is the leader."""
        if not self.try_lead():
            return None
        try:
            return self.tick(only=only)
        finally:
            self.step_down()

    def run(self) -> None:
        log.info("scheduler_started", replica=self.replica, tick_seconds=self.tick_seconds)
        try:
            while not self.stop_event.is_set():
                try:
                    if self.try_lead():
                        self.tick()
                except LostLeadership:
                    pass  # logged by _lose; try again next tick, maybe another replica leads
                except Exception:
                    log.exception("scheduler_tick_failed", replica=self.replica)
                self.stop_event.wait(self.tick_seconds)
        finally:
            self.step_down()
            log.info("scheduler_stopped", replica=self.replica)
