"""Regenerate the dashboard screenshots in docs/ (``dashboard-*.png``).

A database of its own on the embedded Postgres, filled with the synthetic ledger of
``tests/dashboard/seed.py`` (50,000 rows by default) plus one bias audit report, served by
the real app; Playwright drives Debian's Chromium (``/usr/bin/chromium``). The PNGs are kept
small (a 1200 by 760 viewport, under 200 KB each).

    python scripts/dashboard_screenshots.py [--rows 50000]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("ARE_LOG_JSON", "false")
os.environ.setdefault("ARE_LOG_LEVEL", "WARNING")
os.environ.setdefault("ARE_ENVIRONMENT", "test")

_BIAS_GROUPS = [
    {"group": "female", "count": 412, "selection_rate": 0.31, "impact_ratio": 0.94},
    {"group": "male", "count": 455, "selection_rate": 0.33, "impact_ratio": 1.0},
    {"group": "non-binary", "count": 6, "selection_rate": None, "impact_ratio": None,
     "suppressed": True},
    {"group": "unknown", "count": 57},
]  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    args = parser.parse_args()

    from alembic import command
    from alembic.config import Config
    from playwright.sync_api import sync_playwright
    from sqlalchemy import text
    from tests.conftest import create_database, drop_database
    from tests.dashboard.conftest import KEY, OPERATOR_TOKEN, VIEWER_TOKEN, free_port, serve
    from tests.dashboard.seed import seed_ledger

    from are_workers.config import get_settings
    from are_workers.dashboard.access import Access
    from are_workers.dashboard.app import create_app
    from are_workers.embedded import ensure_database_url
    from are_workers.models.engine import make_engine
    from are_workers.models.schemas import BiasAuditMetrics

    server_url = ensure_database_url()
    url = create_database(server_url, "are_dashboard_screenshots")
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = url
    command.upgrade(config, "head")
    engine = make_engine(url, pool_size=4, application_name="dashboard-screenshots")
    try:
        with engine.begin() as conn:
            orgs = seed_ledger(conn, args.rows)
            conn.execute(
                text(
                    "INSERT INTO bias_audit_reports (organization_id, period_start, period_end, "
                    "sample_size, metrics, status) VALUES (:o, now() - interval '1 year', now(), "
                    "930, CAST(:m AS jsonb), 'draft')"
                ),
                {"o": orgs[0], "m": json.dumps(BiasAuditMetrics.model_validate(
                    {"source": "ai_recommendation", "dimension": "gender", "groups": _BIAS_GROUPS}
                ).model_dump(mode="json"))},
            )  # fmt: skip
            dead = conn.execute(
                text("SELECT id FROM task_runs WHERE status = 'dead' ORDER BY created_at DESC")
            ).first()[0]
        access = Access(key=KEY, viewer_token=VIEWER_TOKEN, operator_token=OPERATOR_TOKEN)
        port = free_port()
        server, thread = serve(create_app(get_settings(), engine, access), port)
        base = f"http://127.0.0.1:{port}"
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium")
            page = browser.new_page(viewport={"width": 1200, "height": 760})
            page.goto(base + "/login")
            page.fill("#token", OPERATOR_TOKEN)
            page.click("form[action='/login'] button[type=submit]")
            for name, path in (
                ("queues", "/queues"),
                ("jobs", "/jobs?status=dead"),
                ("job", f"/jobs/{dead}"),
                ("schedules", "/schedules"),
                ("compliance", "/compliance"),
                ("workers", "/workers"),
            ):
                page.goto(base + path)
                target = args.out / f"dashboard-{name}.png"
                page.screenshot(path=str(target))
                print(f"{target}: {target.stat().st_size // 1024} KB")
            page.goto(base + "/compliance")
            page.locator("h2:has-text('Latest bias audit')").scroll_into_view_if_needed()
            page.mouse.wheel(0, 300)
            page.screenshot(path=str(args.out / "dashboard-bias.png"))
            browser.close()
        server.should_exit = True  # type: ignore[attr-defined]
        thread.join(timeout=10)
    finally:
        engine.dispose()
        drop_database(server_url, "are_dashboard_screenshots")
    return 0


if __name__ == "__main__":
    sys.exit(main())
