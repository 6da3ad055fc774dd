"""``are-workers scheduler`` and ``are-workers schedules``.

Kept out of ``cli/main.py``: ``register(app)`` adds both commands, so the scheduler can
grow here without touching the main CLI module.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from are_workers.cli.output import console, friendly_errors, print_json


def _configure(*, service: bool) -> None:
    from are_workers.config import get_settings
    from are_workers.logs import configure_logging

    settings = get_settings()
    configure_logging(
        settings.log_level, json=service and settings.log_json, file=settings.log_file
    )
    if service:
        from are_workers import tracing

        tracing.configure(settings, process="scheduler")


def scheduler(
    once: Annotated[
        bool, typer.Option("--once", help="Enqueue whatever is due, then exit (for CronJobs).")
    ] = False,
    tick_seconds: Annotated[
        float | None,
        typer.Option(min=0.05, help="Seconds between checks (ARE_SCHEDULER_TICK_SECONDS)."),
    ] = None,
    only: Annotated[str | None, typer.Option(help="Only this schedule (with --once).")] = None,
) -> None:
    """Run the scheduler: one leader among any number of replicas enqueues due runs."""
    import signal

    from are_workers.config import get_settings
    from are_workers.models.engine import get_engine
    from are_workers.scheduler import Scheduler, schedule_named

    with friendly_errors():
        _configure(service=not once)
        if only is not None:
            schedule_named(only)
        sched = Scheduler(
            get_engine(), tick_seconds=tick_seconds or get_settings().scheduler_tick_seconds
        )
        if once:
            enqueued = sched.run_once(only=only)
            if enqueued is None:
                console.print("another scheduler replica is the leader: nothing done")
                return
            for run in enqueued:
                scope = str(run.organization_id) if run.organization_id else "platform"
                tick = f"{run.tick:%Y-%m-%d %H:%M:%S}"
                console.print(f"{run.schedule:18} {scope:36} {tick} {run.job_id}")
            console.print(f"{len(enqueued)} run(s) enqueued")
            return
        signal.signal(signal.SIGTERM, lambda *_: sched.stop_event.set())
        try:
            sched.run()
        except KeyboardInterrupt:
            sched.stop_event.set()


def schedules(
    org: Annotated[str | None, typer.Option(help="Show one organization's view.")] = None,
    json_output: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List the schedules with their effective cron, pause state, next and last runs."""
    from sqlalchemy import text

    from are_workers.models.engine import get_engine
    from are_workers.scheduler import DEFAULT_SCHEDULES, effective, last_runs, load_overrides
    from are_workers.scheduler import next_tick as next_of

    with friendly_errors():
        _configure(service=False)
        org_id = uuid.UUID(org) if org else None
        rows: list[dict[str, Any]] = []
        with get_engine().connect() as conn:
            now: datetime = conn.execute(text("SELECT now()")).scalar_one()
            overrides = load_overrides(conn)
            for schedule in DEFAULT_SCHEDULES:
                tenant = org_id if schedule.scope == "organization" else None
                rule = effective(schedule, tenant, overrides, now)
                runs = last_runs(conn, schedule)
                last = runs.get(tenant) if tenant or schedule.scope == "platform" else None
                if last is None and tenant is None and schedule.scope == "organization" and runs:
                    last = max(runs.values(), key=lambda r: r.tick)
                rows.append(
                    {
                        "name": schedule.name,
                        "actor": schedule.actor,
                        "scope": schedule.scope,
                        "cron": rule.cron,
                        "cron_source": rule.source,
                        "paused": rule.paused,
                        "pause_reason": rule.reason,
                        "next_run": None if rule.paused else next_of(rule.cron, now).isoformat(),
                        "last_run": last.tick.isoformat() if last else None,
                        "last_status": last.status if last else None,
                        "last_job_id": str(last.job_id) if last else None,
                        "description": schedule.description,
                    }
                )
    if json_output:
        print_json(rows)
        return
    table = Table(title="Schedules" + (f" for organization {org}" if org else ""))
    for heading in ("name", "scope", "cron", "next run", "last run", "status"):
        table.add_column(heading)
    for row in rows:
        table.add_row(
            row["name"],
            row["scope"],
            f"{row['cron']} ({row['cron_source']})",
            "[yellow]paused[/]" if row["paused"] else row["next_run"][:16],
            (row["last_run"] or "never")[:16],
            row["last_status"] or "-",
        )
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add ``scheduler`` and ``schedules`` to the main CLI."""
    app.command("scheduler")(scheduler)
    app.command("schedules")(schedules)
