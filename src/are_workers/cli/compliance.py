"""``are-workers compliance ...``: the data map, retention, requests, audit trail, keys, bias.

Registered in the main CLI as ``compliance``; kept in its own Typer app so the compliance
work can grow here without touching ``cli/main.py``.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from are_workers.cli.output import console, err_console, friendly_errors, print_json

compliance_app = typer.Typer(help="GDPR/SOC 2 compliance: data map, retention, erasure.")


@compliance_app.callback()
def main() -> None:
    """Compliance tooling. Everything is derived from the schema's classifications."""


@compliance_app.command("data-map")
def data_map(
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the full JSON record.")
    ] = False,
) -> None:
    """Print the GDPR Art. 30 record of processing (from the metadata; no database needed)."""
    from are_workers.services.compliance.data_map import build_data_map

    record = build_data_map()
    if json_output:
        print_json(record)
        return
    table = Table(title=f"Data map ({record['table_count']} tables)")
    for heading in ("table", "scope", "subjects", "categories", "retention", "encrypted"):
        table.add_column(heading)
    for entry in record["tables"]:
        categories = ", ".join(
            f"[bold red]{c}[/]" if c in entry["special_categories"] else c
            for c in entry["categories"]
        )
        table.add_row(
            entry["table"],
            entry["scope"],
            ", ".join(entry["data_subjects"]) or "-",
            categories or "-",
            entry["retention"]["summary"],
            ", ".join(entry["protection"]["encrypted_columns"]) or "-",
        )
    console.print(table)
    console.print("Retention precedence: " + " > ".join(record["retention_precedence"]))


# --- retention -------------------------------------------------------------------------------

retention_app = typer.Typer(help="Retention: what would go, run a sweep, confirm a stopped one.")
compliance_app.add_typer(retention_app, name="retention")
bias_app = typer.Typer(help="Bias audits (NYC LL 144): run one, export the latest report.")
compliance_app.add_typer(bias_app, name="bias-audit")

OrgOption = Annotated[str, typer.Option("--org", help="Organization id.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
SweptOrgOption = Annotated[
    str | None, typer.Option("--org", help="Organization id (its tenant tables).")
]
PlatformOption = Annotated[
    bool, typer.Option("--platform", help="The global tables (no tenant) instead.")
]


def _configure() -> None:
    from are_workers.config import get_settings
    from are_workers.logs import configure_logging

    configure_logging(get_settings().log_level, json=False)


def _uuid(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a valid {what} id") from None


def _swept(org: str | None, platform: bool) -> uuid.UUID | None:
    """The organization a retention command is about, or None for the platform."""
    if platform == (org is not None):
        raise typer.BadParameter("give either --org ID or --platform")
    return None if platform else _uuid(str(org), "organization")


def _enqueue(
    actor: str, args: dict[str, Any], org: uuid.UUID | None, key: str | None = None
) -> None:
    from are_workers import ledger
    from are_workers.models.engine import session_scope

    with session_scope() as session:
        job_id = ledger.enqueue(session, actor, args, organization_id=org, idempotency_key=key)
    console.print(f"queued {actor}: job {job_id} (follow it with `are-workers jobs show {job_id}`)")


@retention_app.command("dry-run")
def retention_dry_run(
    org: SweptOrgOption = None, platform: PlatformOption = False, json_output: JsonOption = False
) -> None:
    """Count what a sweep would delete or anonymize now (changes nothing)."""
    from are_workers.models.engine import session_scope
    from are_workers.services.compliance.retention import plan, plan_platform

    organization_id = _swept(org, platform)
    with friendly_errors():
        _configure()
        with session_scope() as session:
            report = (
                plan_platform(session)
                if organization_id is None
                else plan(session, organization_id)
            )
            rows = report.as_report()
    if json_output:
        scope = {"scope": "platform"} if organization_id is None else {"organization_id": org}
        print_json({**scope, "held": report.held, "targets": rows})
        return
    table = Table(title=f"Retention dry run for {org or 'the platform (global tables)'}")
    for heading in ("target", "action", "retention", "rule", "cutoff", "rows"):
        table.add_column(heading)
    for row in rows:
        if row["rows"]:
            table.add_row(
                row["target"],
                row["action"],
                f"{row['days']} d",
                row["rule"],
                row["cutoff"][:10],
                f"{row['rows']:,}",
            )
    console.print(table)
    total = sum(r["rows"] for r in rows)
    console.print(f"{total:,} row(s) would go; held tables: {', '.join(report.held) or 'none'}")


@retention_app.command("run")
def retention_run(org: SweptOrgOption = None, platform: PlatformOption = False) -> None:
    """Queue a retention sweep now, for one organization or for the platform."""
    from are_workers.services.compliance.retention import PLATFORM_SWEEP_ACTOR

    organization_id = _swept(org, platform)
    with friendly_errors():
        _configure()
        if organization_id is None:
            _enqueue(PLATFORM_SWEEP_ACTOR, {}, None)
        else:
            _enqueue("compliance.retention_sweep", {}, organization_id)


@retention_app.command("confirm")
def retention_confirm(run_id: str) -> None:
    """Let a sweep stopped by the circuit breaker remove what it planned (and no more)."""
    from are_workers.models.engine import session_scope
    from are_workers.services.compliance.retention_runs import confirm_stopped

    with friendly_errors():
        _configure()
        with session_scope() as session:
            confirmation = confirm_stopped(session, _uuid(run_id, "run"))
        if confirmation is None:
            err_console.print("[red]no retention run stopped by the breaker with that id[/]")
            raise typer.Exit(1)
        job_id = confirmation.job_id
        console.print(
            f"queued {confirmation.actor}: job {job_id} "
            f"(follow it with `are-workers jobs show {job_id}`)"
        )


# --- erasure and requests ----------------------------------------------------------------------


@compliance_app.command("process-dsr")
def process_dsr(request_id: str) -> None:
    """Queue a data subject request (erasure, access, portability) for a worker."""
    from sqlalchemy import text

    from are_workers.models.engine import session_scope

    with friendly_errors():
        _configure()
        rid = _uuid(request_id, "request")
        with session_scope() as session:
            org = session.execute(
                text("SELECT organization_id FROM data_subject_requests WHERE id = :i"),
                {"i": rid},
            ).scalar_one_or_none()
        if org is None:
            err_console.print(f"[red]no data subject request {request_id}[/]")
            raise typer.Exit(1)
        _enqueue("compliance.process_dsr", {"request_id": request_id}, org, key=f"dsr:{rid}")


@compliance_app.command("reapply-erasures")
def reapply_erasures(
    org: Annotated[str | None, typer.Option("--org", help="Only this organization.")] = None,
    journal: Annotated[
        Path | None, typer.Option(help="Erasure journal dir (ARE_ERASURE_JOURNAL_DIR).")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """After restoring a backup: erase again everyone the journal says was erased."""
    from are_workers.models.engine import session_scope
    from are_workers.services.compliance.erasure import reapply_erasures as reapply

    with friendly_errors():
        _configure()
        with session_scope() as session:
            report = reapply(
                session,
                directory=journal,
                organization_id=_uuid(org, "organization") if org else None,
            )
    if json_output:
        print_json(report)
        return
    counts: dict[str, int] = {}
    for item in report:
        counts[item["status"]] = counts.get(item["status"], 0) + 1
        if item["status"] == "held":
            console.print(f"[yellow]held[/] {item['subject_ref'][:12]}: {item['reason']}")
    console.print(", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "journal is empty")


# --- audit trail ---------------------------------------------------------------------------------


@compliance_app.command("verify-audit")
def verify_audit(
    org: Annotated[str | None, typer.Option("--org", help="Only this organization.")] = None,
    json_output: JsonOption = False,
) -> None:
    """Recompute the audit chain(s) against the exported heads; exit 1 at a broken link."""
    from sqlalchemy import text

    from are_workers.models.engine import session_scope
    from are_workers.services.compliance import audit_chain

    with friendly_errors():
        _configure()
        with session_scope() as session:
            orgs = (
                [_uuid(org, "organization")]
                if org
                else list(
                    session.execute(
                        text("SELECT DISTINCT organization_id FROM audit_log")
                    ).scalars()
                )
            )
            reports = [
                audit_chain.verify(session, o, heads=audit_chain.read_heads(o)).as_dict()
                for o in orgs
            ]
    if json_output:
        print_json(reports)
    else:
        trusted = {r["trusted_key_id"] for r in reports} or {
            audit_chain.key_id(audit_chain.public_key())
        }
        console.print(f"trusted audit key id: {', '.join(sorted(trusted))}")
        for report in reports:
            if report["ok"]:
                legacy = report["legacy_pruning_records"]
                console.print(
                    f"[green]ok[/] {report['organization_id']}: "
                    f"{report['rows_checked']} rows, head seq {report['head_seq']}"
                    + (f", {legacy} legacy pruning record(s)" if legacy else "")
                )
            else:
                broken = report["first_broken"]
                console.print(
                    f"[red]BROKEN[/] {report['organization_id']} at seq "
                    f"{broken['seq']} (row {broken['id']}): {broken['reason']}"
                )
    if not all(r["ok"] for r in reports):
        raise typer.Exit(1)


@compliance_app.command("seal-audit")
def seal_audit() -> None:
    """Chain the audit rows written since the last seal, then export the signed heads."""
    from are_workers.models.engine import session_scope
    from are_workers.services.compliance import audit_chain

    with friendly_errors():
        _configure()
        with session_scope() as session:
            sealed = audit_chain.seal_all(session)
            heads = audit_chain.export_heads(session)
    console.print(f"sealed {sum(sealed.values())} row(s); exported {len(heads)} head(s)")


@compliance_app.command("sign-pruning-records")
def sign_pruning_records(json_output: JsonOption = False) -> None:
    """One-off after upgrading: sign and export the pruning records drops left in the table.

    Verification accepts a pruned gap only with a record signed outside the database; drops
    made before that left only the table's anchor. Those are signed as they stand (reported
    as legacy by verify-audit), except any verification would refuse anyway.
    """
    from are_workers.models.engine import session_scope
    from are_workers.services.compliance import audit_chain, audit_keys, pruning_records

    with friendly_errors():
        _configure()
        key = audit_keys.signing_key()
        with session_scope() as session:
            audit_chain.seal_all(session)  # anchors must be sealed to show what follows them
            outcomes = [o.as_dict() for o in pruning_records.sign_legacy(session, key=key)]
    if json_output:
        print_json(outcomes)
    else:
        for outcome in outcomes:
            colour = {"signed": "green", "refused": "red"}.get(outcome["status"], "dim")
            console.print(
                f"[{colour}]{outcome['status']}[/] {outcome['organization_id']} "
                f"{outcome['partition']} {outcome['reason']}".rstrip()
            )
        if not outcomes:
            console.print("no pruning records in the table")
    if any(o["status"] == "refused" for o in outcomes):
        raise typer.Exit(1)


@compliance_app.command("audit-partitions")
def audit_partitions_command(
    apply: Annotated[
        bool, typer.Option("--apply", help="Create the coming months and drop expired ones.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """The audit log's monthly partitions: which may be dropped, and why the others stay."""
    from are_workers.models.engine import session_scope
    from are_workers.services.compliance import audit_partitions

    with friendly_errors():
        _configure()
        with session_scope() as session:
            result = audit_partitions.prune(session, dry_run=not apply).as_dict()
    if json_output:
        print_json(result)
        return
    for part in result["partitions"]:
        verdict = "drop" if part["droppable"] else "keep"
        dropped = " (dropped)" if part["partition"] in result["dropped"] else ""
        console.print(
            f"{part['partition']:22} ~{part['estimated_rows']:>10} rows  {verdict}: "
            f"{part['reason']}{dropped}"
        )
    if result["created"]:
        console.print(f"created {', '.join(result['created'])}")
    if not apply:
        console.print("dry run: nothing changed (--apply to create and drop)")


# --- keys ----------------------------------------------------------------------------------------


@compliance_app.command("key-usage")
def key_usage(json_output: JsonOption = False) -> None:
    """Which key ids the encrypted columns use (before and after a rotation)."""
    from are_workers.models.engine import session_scope
    from are_workers.services.compliance.keys import key_usage as usage

    with friendly_errors():
        _configure()
        with session_scope() as session:
            data = usage(session)
    if json_output:
        print_json(data)
        return
    for column, ids in sorted(data.items()):
        console.print(f"{column:48} " + ", ".join(f"{k}: {n}" for k, n in sorted(ids.items())))


@compliance_app.command("rotate-keys")
def rotate_keys() -> None:
    """Queue re-encryption of every encrypted column under ARE_ENCRYPTION_KEY_ID."""
    with friendly_errors():
        _configure()
        _enqueue("compliance.rotate_keys", {}, None)


# --- bias audits --------------------------------------------------------------------------------


@bias_app.command("run")
def bias_run(
    org: OrgOption,
    job: Annotated[str | None, typer.Option(help="Only this job posting.")] = None,
    period_days: Annotated[int, typer.Option(min=1)] = 365,
    json_output: JsonOption = False,
) -> None:
    """Compute and store a bias audit now (as the scheduled job does)."""
    from are_workers.models.engine import session_scope
    from are_workers.services.compliance.bias import run_bias_audit

    with friendly_errors():
        _configure()
        with session_scope() as session:
            run = run_bias_audit(
                session,
                _uuid(org, "organization"),
                period_days=period_days,
                job_id=_uuid(job, "job") if job else None,
            )
            summary = run.summary()
    if json_output:
        print_json(summary)
        return
    console.print(f"{summary['reports']} report(s); samples {summary['sample_sizes']}")
    for flag in summary["flagged"]:
        console.print(
            f"[red]flag[/] {flag['decision']} {flag['dimension']}={flag['group']}: "
            f"impact ratio {flag['impact_ratio']} < 0.8"
        )


@bias_app.command("summary")
def bias_summary(
    org: OrgOption,
    fmt: Annotated[str, typer.Option("--format", help="json, md or html")] = "json",
    distribution_date: Annotated[
        str | None, typer.Option(help="When the tool was first used (YYYY-MM-DD).")
    ] = None,
) -> None:
    """Print the public LL 144 summary of the latest bias audit (JSON, Markdown or HTML)."""
    from datetime import date

    from are_workers.models.engine import session_scope
    from are_workers.services.compliance.bias import latest_reports
    from are_workers.services.compliance.bias_summary import (
        public_summary,
        render_html,
        render_markdown,
    )

    if fmt not in {"json", "md", "html"}:
        raise typer.BadParameter("use json, md or html", param_hint="--format")
    try:
        distributed = date.fromisoformat(distribution_date) if distribution_date else None
    except ValueError:
        raise typer.BadParameter(
            f"{distribution_date!r} is not a date like 2026-01-31", param_hint="--distribution-date"
        ) from None
    with friendly_errors():
        _configure()
        with session_scope() as session:
            reports = latest_reports(session, _uuid(org, "organization"))
    summary = public_summary(reports, distribution_date=distributed)
    if fmt == "json":
        print_json(summary)
    elif fmt == "md":
        typer.echo(render_markdown(summary))
    else:
        typer.echo(render_html(summary))


@bias_app.command("report")
def bias_report(
    org: OrgOption,
    fmt: Annotated[str, typer.Option("--format", help="json or csv")] = "json",
) -> None:
    """Export the latest bias audit (every decision and dimension) as JSON or CSV."""
    import csv
    import sys

    from are_workers.models.engine import session_scope
    from are_workers.services.compliance.bias import latest_reports

    with friendly_errors():
        _configure()
        with session_scope() as session:
            reports = latest_reports(session, _uuid(org, "organization"))
    if fmt == "json":
        print_json(reports)
        return
    writer = csv.writer(sys.stdout)
    writer.writerow(
        [
            "decision",
            "model",
            "model_version",
            "period_start",
            "period_end",
            "dimension",
            "group",
            "count",
            "selection_rate",
            "scoring_rate",
            "impact_ratio",
            "too_small",
            "flag",
        ]
    )
    for report in reports:
        flagged = {f["group"] for f in report["flags"]}
        for group in report["metrics"]["groups"]:
            writer.writerow(
                [
                    report["decision"],
                    report["model_name"] or "",
                    report["model_version"] or "",
                    report["period_start"],
                    report["period_end"],
                    report["metrics"]["dimension"],
                    group["group"],
                    group["count"],
                    group.get("selection_rate"),
                    group.get("scoring_rate"),
                    group["impact_ratio"],
                    group["suppressed"],
                    group["group"] in flagged,
                ]
            )


@compliance_app.command("decision-log")
def decision_log(
    org: OrgOption,
    candidate: Annotated[str | None, typer.Option(help="Only this candidate.")] = None,
    job: Annotated[str | None, typer.Option(help="Only this job posting.")] = None,
    limit: Annotated[int, typer.Option(min=1)] = 100,
) -> None:
    """AI decisions with their model version, evidence references and human reviews (JSON)."""
    from are_workers.models.engine import session_scope
    from are_workers.services.compliance.decisions import decision_log as read_log

    with friendly_errors():
        _configure()
        with session_scope() as session:
            entries = read_log(
                session,
                _uuid(org, "organization"),
                candidate_id=_uuid(candidate, "candidate") if candidate else None,
                job_id=_uuid(job, "job") if job else None,
                limit=limit,
            )
    print_json(entries)
