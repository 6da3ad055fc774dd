"""``are-workers compliance ...``: compliance commands (the data map, for now).

Registered in the main CLI as ``compliance``; kept in its own Typer app so the compliance
work can grow here without touching ``cli/main.py``.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from are_workers.cli.output import console, print_json

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
