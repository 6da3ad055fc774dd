"""The data map (GDPR Art. 30 record) and the generated docs stay in step with the models."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

from typer.testing import CliRunner

from are_workers.cli.compliance import compliance_app
from are_workers.services.compliance import build_data_map

ROOT = Path(__file__).resolve().parents[2]


def _gen_docs() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "gen_schema_docs", ROOT / "scripts/gen_schema_docs.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_data_map_covers_every_table_with_categories_and_retention() -> None:
    record = build_data_map()
    by_table = {entry["table"]: entry for entry in record["tables"]}
    assert record["table_count"] == len(by_table) >= 68
    candidates = by_table["candidates"]
    assert candidates["scope"] == "tenant"
    assert candidates["data_subjects"] == ["candidate"]
    assert {"contact", "identity"} <= set(candidates["categories"])
    assert candidates["retention"]["days"] == 730
    assert candidates["protection"]["encrypted_columns"] == ["email", "phone"]
    assert by_table["video_analysis_results"]["special_categories"] == ["biometric"]
    assert by_table["skills"]["scope"] == "global"
    assert by_table["skills"]["global_reason"]
    assert record["retention_precedence"][0] == "legal_hold"


def test_cli_data_map_json_and_table() -> None:
    runner = CliRunner()
    result = runner.invoke(compliance_app, ["data-map", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["table_count"] == build_data_map()["table_count"]
    result = runner.invoke(compliance_app, ["data-map"])
    assert result.exit_code == 0, result.output
    assert "candidates" in result.output
    assert "legal_hold" in result.output


def test_generated_docs_are_up_to_date() -> None:
    """CI's gate: `python scripts/gen_schema_docs.py --check`."""
    assert _gen_docs().main(["--check"]) == 0, "run: python scripts/gen_schema_docs.py"


def test_schema_md_has_a_diagram_per_module() -> None:
    markdown = _gen_docs().render_schema_md()
    from are_workers.models import MODULE_GROUPS

    for module in MODULE_GROUPS:
        assert f"### {module}\n" in markdown
    assert markdown.count("```mermaid") == len(MODULE_GROUPS)
