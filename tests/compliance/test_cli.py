"""``are-workers compliance ...`` commands against a database of their own."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from are_workers.cli.compliance import compliance_app
from are_workers.config import get_settings
from are_workers.services.compliance import audit, audit_keys
from tests.factories import make_org


@pytest.fixture
def cli(
    isolated_database: str, storage_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[CliRunner]:
    from are_workers.models.engine import reset_engine

    monkeypatch.setenv("ARE_DATABASE_URL", isolated_database)
    monkeypatch.setenv("ARE_ERASURE_JOURNAL_DIR", str(tmp_path / "journal"))
    # Logs go to the test's stderr, configured once (structlog caches its stream).
    from are_workers.logs import configure_logging

    configure_logging("WARNING", json=False)
    monkeypatch.setattr("are_workers.cli.compliance._configure", lambda: None)
    get_settings.cache_clear()
    reset_engine()
    yield CliRunner()
    get_settings.cache_clear()
    reset_engine()


def test_retention_audit_keys_and_requests_commands(cli: CliRunner, owner_engine: Engine) -> None:
    with Session(owner_engine) as db:
        org_id = make_org(db).id
        for _ in range(3):
            audit.record(db, organization_id=org_id, action="candidate.viewed")
        db.execute(
            text(
                "INSERT INTO file_access_log (organization_id, actor, action, accessed_at)"
                " VALUES (:o, 'worker', 'view', now() - interval '400 days')"
            ),
            {"o": org_id},
        )
        db.commit()
    org = str(org_id)

    result = cli.invoke(compliance_app, ["retention", "dry-run", "--org", org, "--json"])
    assert result.exit_code == 0, result.output
    targets = {t["target"]: t["rows"] for t in json.loads(result.stdout)["targets"]}
    assert targets["file_access_log"] == 1
    result = cli.invoke(compliance_app, ["retention", "run", "--org", org])
    assert result.exit_code == 0 and "queued compliance.retention_sweep" in result.output
    result = cli.invoke(compliance_app, ["retention", "confirm", str(uuid.uuid4())])
    assert result.exit_code == 1

    result = cli.invoke(compliance_app, ["seal-audit"])
    assert result.exit_code == 0 and "sealed 3 row(s); exported 1 head(s)" in result.output
    result = cli.invoke(compliance_app, ["verify-audit", "--org", org])
    assert result.exit_code == 0 and "ok" in result.output
    kid = audit_keys.key_id(audit_keys.public_key())
    assert f"trusted audit key id: {kid}" in result.output
    result = cli.invoke(compliance_app, ["sign-pruning-records"])
    assert result.exit_code == 0 and "no pruning records in the table" in result.output
    with owner_engine.begin() as conn:
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(
            text("UPDATE audit_log SET action = 'x' WHERE seq = 1 AND organization_id = :o"),
            {"o": org_id},
        )
    result = cli.invoke(compliance_app, ["verify-audit", "--json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)[0]["first_broken"]["seq"] == 1

    result = cli.invoke(compliance_app, ["audit-partitions"])
    assert result.exit_code == 0 and "dry run: nothing changed" in result.output
    assert "younger than 365 days" in result.output
    result = cli.invoke(compliance_app, ["audit-partitions", "--apply", "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["rows_dropped"] == 0

    result = cli.invoke(compliance_app, ["key-usage", "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout) == {}
    result = cli.invoke(compliance_app, ["rotate-keys"])
    assert result.exit_code == 0 and "compliance.rotate_keys" in result.output
    result = cli.invoke(compliance_app, ["process-dsr", str(uuid.uuid4())])
    assert result.exit_code == 1
    result = cli.invoke(compliance_app, ["reapply-erasures", "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout) == []

    result = cli.invoke(compliance_app, ["bias-audit", "run", "--org", org, "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["reports"] == 0
    result = cli.invoke(compliance_app, ["bias-audit", "report", "--org", org, "--format", "csv"])
    assert result.exit_code == 0 and result.output.startswith("decision,model,")
    with owner_engine.connect() as conn:
        queued = conn.execute(text("SELECT actor FROM task_runs ORDER BY actor")).scalars().all()
    assert queued == ["compliance.retention_sweep", "compliance.rotate_keys"]


def test_platform_retention_commands(cli: CliRunner, owner_engine: Engine) -> None:
    from are_workers.services.compliance.retention import PLATFORM_SWEEP_ACTOR

    with owner_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO task_runs (actor, queue, status, finished_at) VALUES "
                "('system.noop', 'default', 'succeeded', now() - interval '100 days')"
            )
        )
        tripped = conn.execute(
            text(
                "INSERT INTO retention_runs (organization_id, status, finished_at, horizons) "
                "VALUES (NULL, 'failed', now(), "
                """'{"breaker": {"task_runs": {"planned": 5000}}}') RETURNING id"""
            )
        ).scalar_one()
        completed = conn.execute(
            text(
                "INSERT INTO retention_runs (organization_id, status, finished_at) "
                "VALUES (NULL, 'completed', now()) RETURNING id"
            )
        ).scalar_one()

    result = cli.invoke(compliance_app, ["retention", "dry-run", "--platform", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["scope"] == "platform"
    assert {t["target"]: t["rows"] for t in report["targets"]}["task_runs"] == 1
    result = cli.invoke(compliance_app, ["retention", "dry-run", "--platform"])
    assert result.exit_code == 0 and "the platform (global tables)" in result.output
    for both_or_neither in (["--platform", "--org", str(uuid.uuid4())], []):
        result = cli.invoke(compliance_app, ["retention", "run", *both_or_neither])
        assert result.exit_code == 2 and "either --org ID or --platform" in result.output
    result = cli.invoke(compliance_app, ["retention", "run", "--platform"])
    assert result.exit_code == 0 and f"queued {PLATFORM_SWEEP_ACTOR}" in result.output
    result = cli.invoke(compliance_app, ["retention", "confirm", str(tripped)])
    assert result.exit_code == 0 and f"queued {PLATFORM_SWEEP_ACTOR}" in result.output
    result = cli.invoke(compliance_app, ["retention", "confirm", str(completed)])
    assert result.exit_code == 1 and "no retention run stopped by the breaker" in result.output
    with owner_engine.connect() as conn:
        queued = conn.execute(
            text(
                "SELECT organization_id, args FROM task_runs WHERE actor = :a "
                "AND status = 'queued' ORDER BY created_at"
            ),
            {"a": PLATFORM_SWEEP_ACTOR},
        ).all()
    confirmation = {"confirmed_run_id": str(tripped)}
    assert [tuple(row) for row in queued] == [(None, {}), (None, confirmation)]
