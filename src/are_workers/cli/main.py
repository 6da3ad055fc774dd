"""``are-workers``: services, database, workers, jobs, and the domain commands."""

from __future__ import annotations

import os
import time
from typing import Annotated, Any

import typer
from rich.table import Table

from are_workers.cli.output import cli_settings, console, friendly_errors, print_json

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

app = typer.Typer(
    name="are-workers",
    help="Background AI workers of the Applicant Recruitment Engine.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
services_app = typer.Typer(help="Embedded Postgres+pgvector and Redis (used when no URL is set).")
db_app = typer.Typer(help="Schema migrations (Alembic is the only way the schema is made).")
jobs_app = typer.Typer(help="Inspect and operate on jobs in the ledger.")
storage_app = typer.Typer(help="Stored objects and the storage key contract.")
app.add_typer(services_app, name="services")
app.add_typer(storage_app, name="storage")
app.add_typer(db_app, name="db")
app.add_typer(jobs_app, name="jobs")


def _register_domain_commands() -> None:
    from are_workers.cli import dashboard, pipeline, portfolio, scheduler
    from are_workers.cli.compliance import compliance_app
    from are_workers.cli.media import media_app

    pipeline.register(app)
    portfolio.register(app)
    scheduler.register(app)
    dashboard.register(app)
    app.add_typer(media_app, name="media")
    app.add_typer(compliance_app, name="compliance", help="GDPR/SOC 2: data map, retention, DSRs.")


_register_domain_commands()


@app.callback()
def main() -> None:
    """Configuration comes from ARE_* environment variables (see README)."""


# --- services ------------------------------------------------------------------------------


@services_app.command("up")
def services_up() -> None:
    """Start the embedded services (detached; they outlive this command)."""
    from are_workers import embedded

    with friendly_errors():
        settings = cli_settings()
        if settings.database_url is None:
            console.print(f"postgres: {embedded.start_postgres(settings)}")
        if settings.broker_url is None:
            console.print(f"redis:    {embedded.start_redis(settings)}")


@services_app.command("down")
def services_down() -> None:
    """Stop the embedded services."""
    from are_workers import embedded

    settings = cli_settings()
    console.print(f"postgres stopped: {embedded.stop_postgres(settings)}")
    console.print(f"redis stopped:    {embedded.stop_redis(settings)}")


@services_app.command("status")
def services_status(json_output: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Show whether the embedded services run, with their URLs."""
    from are_workers import embedded

    rows = embedded.status(cli_settings())
    if json_output:
        print_json([r.__dict__ | {"location": str(r.location)} for r in rows])
        return
    for r in rows:
        state = "[green]running[/]" if r.running else "[red]stopped[/]"
        console.print(f"{r.name:9} {state} pid={r.pid} {r.url or ''}")


# --- database ------------------------------------------------------------------------------


def _alembic_config():  # type: ignore[no-untyped-def]
    from pathlib import Path

    from alembic.config import Config

    for base in (Path.cwd(), Path(__file__).resolve().parents[3]):
        if (base / "alembic.ini").exists():
            return Config(str(base / "alembic.ini"))
    raise typer.BadParameter("alembic.ini not found: run from the project root")


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply migrations (as the owner role)."""
    from alembic import command

    cli_settings()
    command.upgrade(_alembic_config(), revision)


@db_app.command("downgrade")
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION (e.g. base)."""
    from alembic import command

    cli_settings()
    command.downgrade(_alembic_config(), revision)


@db_app.command("check")
def db_check() -> None:
    """Fail if the models and the migrations disagree."""
    from alembic import command

    cli_settings()
    command.check(_alembic_config())


# --- workers -------------------------------------------------------------------------------


@app.command()
def worker(
    queues: Annotated[str, typer.Option(help="Comma-separated queues.")] = "",
    processes: Annotated[int, typer.Option(min=1)] = 1,
    threads: Annotated[int, typer.Option(min=1)] = 4,
    module: Annotated[list[str] | None, typer.Option(help="Extra actor modules.")] = None,
    relay: Annotated[bool, typer.Option(help="Run the outbox relay here too.")] = True,
    drain_seconds: Annotated[float, typer.Option(help="SIGTERM: wait this long.")] = 600.0,
) -> None:
    """Run a supervised worker pool (see docs/operations.md for pool shapes)."""
    from are_workers.supervisor import Supervisor

    settings = cli_settings(service=True, process="supervisor")
    chosen = [q for q in queues.split(",") if q] or settings.all_queues
    Supervisor(
        settings, queues=chosen, processes=processes, threads=threads,
        modules=module or [], relay=relay, drain_seconds=drain_seconds,
    ).run()  # fmt: skip


@app.command("relay")
def relay_cmd() -> None:
    """Run only the outbox relay and sweeper (when workers run with --no-relay)."""
    import signal

    from are_workers.broker import get_broker
    from are_workers.models.engine import get_engine
    from are_workers.relay import Relay

    settings = cli_settings(service=True, process="relay")
    relay = Relay(get_engine(), get_broker(), settings)
    signal.signal(signal.SIGTERM, lambda *_: relay.stop_event.set())
    try:
        relay.run()
    except KeyboardInterrupt:
        relay.stop_event.set()


@app.command()
def health() -> None:
    """Exit 0 when a worker pool on this machine is up and warmed (for HEALTHCHECK)."""
    from are_workers.supervisor import health_file

    path = health_file(cli_settings())
    try:
        os.kill(int(path.read_text()), 0)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        console.print("[red]not ready[/]")
        raise typer.Exit(1) from None
    console.print("[green]ready[/]")


# --- jobs ------------------------------------------------------------------------------------


@app.command()
def status(json_output: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Queue depths, ledger counts by status, and recent failures with their errors."""
    from are_workers import ledger
    from are_workers.models.engine import get_engine

    cli_settings()
    with get_engine().connect() as conn:
        data: dict[str, Any] = {
            "queues": ledger.queue_depths(conn),
            "counts": ledger.status_counts(conn),
            "failures": ledger.recent_failures(conn),
        }
    if json_output:
        print_json(data)
        return
    table = Table("queue", "ready", "running", "retrying", "oldest ready (s)", title="Queues")
    for q in data["queues"]:
        table.add_row(q["queue"], str(q["ready"]), str(q["running"]), str(q["retrying"]),
                      f"{q['oldest_age_s']:.1f}")  # fmt: skip
    console.print(table)
    console.print("Jobs by status: " + ", ".join(f"{k}={v}" for k, v in data["counts"].items()))
    if data["failures"]:
        failures = Table("job", "actor", "status", "error", title="Recent failures")
        for f in data["failures"]:
            failures.add_row(f["id"], f["actor"], f["status"], f["error_message"] or "")
        console.print(failures)


@storage_app.command("check-keys")
def storage_check_keys(json_output: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Report stored-object keys that break the contract (``<organization_id>/…``).

    Workers refuse such rows (the file fails with "storage location is invalid"); fix the
    keys upstream, or move the objects under their organization's prefix. Exits 1 when any
    key does not fit, so a deploy check can gate on it.
    """
    from are_workers.models.engine import get_engine
    from are_workers.services import storage

    cli_settings()
    with get_engine().connect() as conn:
        problems = [vars(p) for p in storage.misfit_keys(conn)]
    if json_output:
        print_json({"misfit_keys": problems, "count": len(problems)})
    elif not problems:
        console.print("Every storage key begins with its row's organization id.")
    else:
        table = Table("table", "row", "organization", "key", "problem", title="Misfit keys")
        for p in problems:
            table.add_row(p["table"], p["row_id"], p["organization_id"] or "-",
                          p["storage_key"], p["problem"])  # fmt: skip
        console.print(table)
    if problems:
        raise typer.Exit(1)


@app.command()
def enqueue(
    actor: str,
    arg: Annotated[list[str] | None, typer.Option(help="key=value (IDs and scalars)")] = None,
    org: Annotated[str | None, typer.Option(help="Organization id.")] = None,
    key: Annotated[str | None, typer.Option(help="Idempotency key.")] = None,
    priority: int = 0,
) -> None:
    """Enqueue a job by actor name (commits to the ledger; the relay publishes it)."""
    from are_workers import client
    from are_workers.models.engine import session_scope

    cli_settings()
    args = dict(a.split("=", 1) for a in (arg or []))
    with friendly_errors(), session_scope() as session:
        job_id = client.enqueue(
            session, actor, args, organization_id=org, idempotency_key=key, priority=priority
        )
    console.print(str(job_id))


@jobs_app.command("show")
def jobs_show(job_id: str, json_output: Annotated[bool, typer.Option("--json")] = False) -> None:
    """One job's ledger row."""
    from are_workers import ledger
    from are_workers.models.engine import get_engine

    cli_settings()
    with get_engine().connect() as conn:
        view = ledger.get_job(conn, job_id)
    if view is None:
        console.print(f"[red]no job {job_id}[/]")
        raise typer.Exit(1)
    data = view.as_dict()
    if json_output:
        print_json(data)
    else:
        for k, v in data.items():
            console.print(f"[bold]{k:16}[/] {v}")


@jobs_app.command("replay")
def jobs_replay(job_id: str) -> None:
    """Re-queue a dead, failed or cancelled job."""
    from are_workers import ledger
    from are_workers.models.engine import session_scope

    cli_settings()
    with session_scope() as session:
        ok = ledger.replay(session, job_id)
    console.print("re-queued" if ok else "[red]not dead/failed/cancelled (or unknown)[/]")
    raise typer.Exit(0 if ok else 1)


@jobs_app.command("cancel")
def jobs_cancel(job_id: str) -> None:
    """Cancel a queued, retrying or running job."""
    from are_workers import ledger
    from are_workers.models.engine import session_scope

    cli_settings()
    with session_scope() as session:
        ok = ledger.cancel(session, job_id)
    console.print("cancelled" if ok else "[red]not cancellable (already finished or unknown)[/]")
    raise typer.Exit(0 if ok else 1)


@jobs_app.command("prune")
def jobs_prune(older_than_days: Annotated[int, typer.Option(min=1)] = 30) -> None:
    """Delete succeeded jobs older than N days (failed and dead ones are kept)."""
    from are_workers import ledger
    from are_workers.models.engine import session_scope

    cli_settings()
    with session_scope() as session:
        count = ledger.prune(session, older_than_days=older_than_days)
    console.print(f"pruned {count} job(s)")


@app.command("smoke")
def smoke(jobs: Annotated[int, typer.Option(min=1)] = 20) -> None:
    """Run N no-op jobs through the real relay, broker and a worker; print the timing."""
    from are_workers import client
    from are_workers.models.engine import session_factory, session_scope
    from are_workers.supervisor import Supervisor

    settings = cli_settings()
    with session_scope() as session:
        ids = [client.enqueue(session, "system.noop", {"n": i}) for i in range(jobs)]
    import threading

    sup = Supervisor(settings, queues=[settings.queue_default], processes=1, threads=4)
    thread = threading.Thread(target=sup.run, daemon=True)
    started = time.perf_counter()
    thread.start()
    views = client.wait_for(session_factory(), ids, timeout=120)
    sup.stopping.set()
    thread.join()
    ok = sum(v.status == "succeeded" for v in views)
    console.print(f"{ok}/{jobs} succeeded in {time.perf_counter() - started:.1f}s")
    raise typer.Exit(0 if ok == jobs else 1)


if __name__ == "__main__":
    app()
