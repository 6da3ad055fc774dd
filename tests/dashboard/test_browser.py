"""The dashboard in a real browser: Playwright driving the Chromium that Debian ships, against
the live app, a real worker process (relay included) and a Redis of the test's own.

Marked ``browser``. Without Playwright or Chromium the test skips, except under CI
(``CI=true``), where it fails: CI installs both (``.ci/run``).
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from are_workers import ledger
from tests.dashboard.conftest import OPERATOR_TOKEN, VIEWER_TOKEN, LiveDashboard
from tests.procs import PrivateRedis, start_worker, stop_worker, wait_status, wait_until, worker_env

pytestmark = [pytest.mark.browser, pytest.mark.multiprocess, pytest.mark.slow]

CHROMIUM = os.environ.get("ARE_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """A Chromium launched by Playwright; missing pieces fail under CI and skip elsewhere."""
    problem = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        problem = "Playwright is not installed (the dev extra pins it)"
    if problem is None and not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        problem = f"no Chromium at {CHROMIUM} (apt-get install -y chromium)"
    if problem is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser tests must run under CI: {problem}")
        pytest.skip(problem)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        yield browser
        browser.close()


def _dead_job(engine: Engine, actor: str = "system.noop", **args: Any) -> uuid.UUID:
    with engine.begin() as conn:
        job_id = ledger.enqueue(conn, actor, args)
        conn.execute(
            text(
                "UPDATE task_runs SET status = 'dead', attempts = 6, finished_at = now(), "
                "published_at = now(), error_type = 'WorkerLost', error_message = "
                "'The worker running this job died 3 times.' WHERE id = :i"
            ),
            {"i": job_id},
        )
    return job_id


def _stopped_retention_run(engine: Engine) -> uuid.UUID:
    with engine.begin() as conn:
        return uuid.UUID(
            str(
                conn.execute(
                    text(
                        """
                        INSERT INTO retention_runs (organization_id, status, dry_run, counts,
                                                    horizons, finished_at)
                        VALUES (NULL, 'failed', false, '{}',
                                '{"breaker": {"file_access_log": {"planned": 250000,
                                  "baseline": 1200, "allowed": 12000}}}', now())
                        RETURNING id
                        """
                    )
                ).scalar_one()
            )
        )


def _login(context: Any, url: str, token: str) -> Any:
    page = context.new_page()
    page.goto(url + "/queues")
    assert "/login" in page.url
    page.fill("#token", token)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(url + "/queues")
    return page


def _screenshot(page: Any, name: str) -> None:
    folder = os.environ.get("ARE_DASHBOARD_SCREENSHOTS")
    if folder:
        page.screenshot(path=str(Path(folder) / f"dashboard-{name}.png"), full_page=False)


def test_operator_flows_in_a_real_browser(
    live_dashboard: LiveDashboard, chromium: Any, tmp_path: Path
) -> None:
    engine, url = live_dashboard.engine, live_dashboard.url
    redis = PrivateRedis(tmp_path / "redis").start()
    env = worker_env(live_dashboard.database_url, redis.url, tmp_path / "data")
    worker = start_worker(env, queues="default", threads=2, log=tmp_path / "worker.log")
    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = _login(context, url, OPERATOR_TOKEN)

        # Every page opens from the navigation; the worker registry shows the real worker.
        for name in ("Queues", "Workers", "Jobs", "Schedules", "Compliance"):
            page.click(f"nav >> text={name}")
            assert page.inner_text("h1") == name
        page.click("nav >> text=Workers")
        wait_until(lambda: page.reload() or "live" in page.inner_text("table"),
                   timeout=20, what="the worker on the Workers page")  # fmt: skip
        assert "default" in page.inner_text("table")

        # Replay a dead job: a real worker runs it to success.
        dead = _dead_job(engine)
        page.goto(f"{url}/jobs/{dead}")
        assert page.inner_text("#job-status") == "dead"
        page.click("button:has-text('Replay')")
        assert "Re-queued" in page.inner_text(".flash")
        wait_status(engine, dead, {"succeeded"}, timeout=30)
        page.reload()
        assert page.inner_text("#job-status") == "succeeded"

        # Cancel a running job.
        with engine.begin() as conn:
            sleeper = ledger.enqueue(conn, "system.sleep", {"seconds": 6})
        wait_status(engine, sleeper, {"running"}, timeout=30)
        page.goto(f"{url}/jobs/{sleeper}")
        assert page.inner_text("#job-status") == "running"
        page.click("button:has-text('Cancel')")
        assert page.inner_text("#job-status") == "cancelled"

        # Pause a schedule (platform-wide), then see it paused.
        page.goto(f"{url}/schedules")
        row = page.locator("#schedule-audit-seal")
        row.locator("input[name=reason]").fill("maintenance window")
        row.locator("button:has-text('Pause')").click()
        assert "Paused audit-seal" in page.inner_text(".flash")
        assert "paused" in page.locator("#schedule-audit-seal").inner_text()
        _screenshot(page, "schedules")

        # Confirm a retention run the circuit breaker stopped.
        run_id = _stopped_retention_run(engine)
        page.goto(f"{url}/compliance")
        page.locator(f"#retention-{run_id} >> text=Review and confirm").click()
        assert "250000" in page.inner_text("table")
        page.click("button:has-text('Confirm and run the sweep')")
        assert "Confirmed" in page.inner_text(".flash")
        assert "confirmed" in page.locator(f"#retention-{run_id}").inner_text()
        with engine.connect() as conn:
            sweep = conn.execute(
                text("SELECT actor, organization_id FROM task_runs "
                     "WHERE idempotency_key = :k"), {"k": f"confirm:{run_id}"},
            ).one()  # fmt: skip
        assert (
            sweep.actor == "compliance.retention_sweep_platform" and sweep.organization_id is None
        )
        _screenshot(page, "compliance")

        # Refused: a POST without a session, and a viewer's POST with a valid CSRF token.
        another = _dead_job(engine)
        anonymous = chromium.new_context()
        refused = anonymous.request.post(f"{url}/jobs/{another}/replay", form={"csrf": "x"})
        assert refused.status == 403
        anonymous.close()
        viewer_context = chromium.new_context()
        viewer = _login(viewer_context, url, VIEWER_TOKEN)
        viewer.goto(f"{url}/jobs/{another}")
        assert viewer.locator("button:has-text('Replay')").count() == 0
        csrf = viewer.locator("input[name=csrf]").first.get_attribute("value")
        refused = viewer_context.request.post(f"{url}/jobs/{another}/replay", form={"csrf": csrf})
        assert refused.status == 403 and "operator token" in refused.text()
        viewer_context.close()
        with engine.connect() as conn:
            status = conn.execute(
                text("SELECT status::text FROM task_runs WHERE id = :i"), {"i": another}
            ).scalar_one()
        assert status == "dead"
    finally:
        context.close()
        stop_worker(worker)
        redis.kill()
    # The cancelled job's attempt ended after the cancel: its result did not commit.
    time.sleep(0.1)
    with engine.connect() as conn:
        status = conn.execute(
            text("SELECT status::text FROM task_runs WHERE id = :i"), {"i": sleeper}
        ).scalar_one()
    assert status == "cancelled"
