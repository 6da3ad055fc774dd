"""Who may read and act on the dashboard: tokens, the trusted proxy, sessions and CSRF; every
action audited under a pseudonymous operator id (on the platform chain when it concerns no
one organization); and no personal data on a page."""

from __future__ import annotations

import http.client
import uuid
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from are_workers import ledger
from are_workers.config import Settings
from are_workers.dashboard.access import Access, build_access
from are_workers.errors import ConfigurationError
from are_workers.services.compliance.audit import PLATFORM_ORGANIZATION_ID
from tests.dashboard.conftest import KEY, OPERATOR_TOKEN, VIEWER_TOKEN, LiveDashboard


def _org(engine: Engine) -> uuid.UUID:
    org = uuid.uuid4()
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO organizations (id, name, slug) VALUES (:i, 'Acme', :s)"),
            {"i": org, "s": f"acme-{org.hex[:8]}"},
        )
    return org


def _job(engine: Engine, org: uuid.UUID | None, status: str = "dead", **extra: Any) -> uuid.UUID:
    with engine.begin() as conn:
        job_id = ledger.enqueue(conn, "system.noop", extra.pop("args", {}), organization_id=org)
        conn.execute(
            text(
                "UPDATE task_runs SET status = CAST(:s AS task_status), attempts = 6, "
                "error_type = :t, error_message = :m, finished_at = now() WHERE id = :i"
            ),
            {"s": status, "i": job_id, "t": extra.get("error_type", "RuntimeError"),
             "m": extra.get("error_message", "Gave up after 6 attempts.")},
        )  # fmt: skip
    return job_id


def _status(engine: Engine, job_id: uuid.UUID) -> str:
    with engine.connect() as conn:
        return str(
            conn.execute(
                text("SELECT status::text FROM task_runs WHERE id = :i"), {"i": job_id}
            ).scalar_one()
        )


def _audit_rows(engine: Engine, org: uuid.UUID) -> list[Any]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT action, actor_type::text AS actor_type, actor_id, entity_id, "
                    "input_refs FROM audit_log WHERE organization_id = :o ORDER BY occurred_at"
                ),
                {"o": org},
            )
        )


# --- configuration ---------------------------------------------------------------------------


def test_production_refuses_to_start_without_tokens_or_a_proxy(settings: Settings) -> None:
    production = settings.model_copy(
        update={"environment": "production", "dashboard_viewer_token": None,
                "dashboard_operator_token": None, "dashboard_trusted_proxies": []}
    )  # fmt: skip
    with pytest.raises(ConfigurationError) as refused:
        build_access(production, KEY)
    message = str(refused.value)
    assert "ARE_DASHBOARD_VIEWER_TOKEN" in message and "ARE_DASHBOARD_OPERATOR_TOKEN" in message
    assert "ARE_DASHBOARD_TRUSTED_PROXIES" in message


def test_production_starts_with_tokens_or_with_a_trusted_proxy(settings: Settings) -> None:
    from pydantic import SecretStr

    with_tokens = settings.model_copy(
        update={"environment": "production", "dashboard_viewer_token": SecretStr(VIEWER_TOKEN),
                "dashboard_operator_token": SecretStr(OPERATOR_TOKEN)}
    )  # fmt: skip
    assert build_access(with_tokens, KEY).generated == {}
    behind_proxy = settings.model_copy(
        update={"environment": "production", "dashboard_trusted_proxies": ["10.0.0.5"]}
    )
    access = build_access(behind_proxy, KEY)
    assert access.generated == {} and access.viewer_token is None


def test_development_generates_both_tokens_and_refuses_short_ones(settings: Settings) -> None:
    from pydantic import SecretStr

    access = build_access(settings.model_copy(update={"environment": "development"}), KEY)
    assert set(access.generated) == {"viewer", "operator"}
    assert access.viewer_token != access.operator_token
    short = settings.model_copy(update={"dashboard_operator_token": SecretStr("secret")})
    with pytest.raises(ConfigurationError, match="ARE_DASHBOARD_OPERATOR_TOKEN is too short"):
        build_access(short, KEY)


def test_operator_ids_are_stable_pseudonyms_of_the_token() -> None:
    access = Access(key=KEY, viewer_token=VIEWER_TOKEN, operator_token=OPERATOR_TOKEN)
    first = access.by_token(OPERATOR_TOKEN)
    again = Access(key=KEY, viewer_token=VIEWER_TOKEN, operator_token=OPERATOR_TOKEN)
    assert first is not None and first.role == "operator"
    assert first.operator_id == again.by_token(OPERATOR_TOKEN).operator_id  # type: ignore[union-attr]
    assert OPERATOR_TOKEN not in first.operator_id and first.operator_id.startswith("op-")
    assert access.by_token("guess-" + "x" * 30) is None


# --- requests --------------------------------------------------------------------------------


def test_unauthenticated_requests_are_sent_to_sign_in_or_refused(
    live_dashboard: LiveDashboard,
) -> None:
    client = live_dashboard.client()
    page = client.get("/queues")
    assert page.status == 303 and page.headers["location"].startswith("/login")
    job_id = _job(live_dashboard.engine, None)
    form = client.get("/login").csrf()
    refused = client.post(f"/jobs/{job_id}/replay", {"csrf": form})
    assert refused.status == 403 and "sign in" in refused.body
    assert _status(live_dashboard.engine, job_id) == "dead"
    wrong = client.post("/login", {"csrf": form, "token": "not-a-token-at-all-xxxxxxxxxx"})
    assert wrong.status == 403 and "not valid" in wrong.body


def test_a_viewer_reads_every_page_but_cannot_act(live_dashboard: LiveDashboard) -> None:
    engine = live_dashboard.engine
    job_id = _job(engine, _org(engine))
    client = live_dashboard.client()
    client.login(VIEWER_TOKEN)
    for path in ("/queues", "/workers", "/jobs", f"/jobs/{job_id}", "/schedules", "/compliance"):
        page = client.get(path)
        assert page.status == 200, (path, page.body[:500])
        assert "Replay</button>" not in page.body and "Pause</button>" not in page.body
    csrf = client.get(f"/jobs/{job_id}").csrf()
    refused = client.post(f"/jobs/{job_id}/replay", {"csrf": csrf})
    assert refused.status == 403 and "operator token" in refused.body
    refused = client.post("/schedules/audit-seal/pause", {"csrf": csrf})
    assert refused.status == 403
    assert _status(engine, job_id) == "dead"


def test_posts_need_the_sessions_csrf_token_and_the_same_origin(
    live_dashboard: LiveDashboard,
) -> None:
    engine = live_dashboard.engine
    job_id = _job(engine, _org(engine))
    client = live_dashboard.client()
    client.login(OPERATOR_TOKEN)
    assert client.post(f"/jobs/{job_id}/replay", {}).status == 403
    assert client.post(f"/jobs/{job_id}/replay", {"csrf": "0" * 40}).status == 403
    other = live_dashboard.client()
    stolen = other.get("/login").csrf()  # another browser's session
    assert client.post(f"/jobs/{job_id}/replay", {"csrf": stolen}).status == 403
    csrf = client.get(f"/jobs/{job_id}").csrf()
    cross = client.post(
        f"/jobs/{job_id}/replay", {"csrf": csrf}, headers={"Origin": "http://evil.example"}
    )
    assert cross.status == 403
    assert _status(engine, job_id) == "dead"
    done = client.post(f"/jobs/{job_id}/replay", {"csrf": csrf})
    assert done.status == 303 and "Re-queued" in done.headers["location"].replace("+", " ")
    assert _status(engine, job_id) == "queued"


def test_actions_are_audited_on_the_jobs_organization_with_the_operator_id(
    live_dashboard: LiveDashboard,
) -> None:
    engine = live_dashboard.engine
    org = _org(engine)
    job_id = _job(engine, org)
    client = live_dashboard.client()
    client.login(OPERATOR_TOKEN)
    csrf = client.get(f"/jobs/{job_id}").csrf()
    client.post(f"/jobs/{job_id}/replay", {"csrf": csrf})
    client.post(f"/jobs/{job_id}/cancel", {"csrf": csrf})
    assert _status(engine, job_id) == "cancelled"
    rows = _audit_rows(engine, org)
    operator = live_dashboard.access.by_token(OPERATOR_TOKEN)
    assert operator is not None
    assert [r.action for r in rows] == ["dashboard.job_replayed", "dashboard.job_cancelled"]
    assert {r.actor_id for r in rows} == {operator.actor_uuid}
    assert {r.input_refs["operator"] for r in rows} == {operator.operator_id}
    assert {str(r.entity_id) for r in rows} == {str(job_id)}
    page = client.get(f"/jobs/{job_id}")
    assert "dashboard.job_cancelled by " + operator.operator_id in page.body


def test_platform_wide_actions_go_on_the_platform_chain_which_seals_and_verifies(
    live_dashboard: LiveDashboard,
) -> None:
    from are_workers.scheduler import run_due
    from are_workers.services.compliance import audit_chain

    engine = live_dashboard.engine
    client = live_dashboard.client()
    client.login(OPERATOR_TOKEN)
    csrf = client.get("/schedules").csrf()
    reply = client.post("/schedules/audit-seal/pause", {"csrf": csrf, "reason": "maintenance"})
    assert reply.status == 303
    with engine.connect() as conn:
        override = conn.execute(
            text("SELECT paused, reason FROM schedule_overrides WHERE organization_id IS NULL "
                 "AND schedule_name = 'audit-seal'")
        ).one()  # fmt: skip
    assert override.paused and override.reason == "maintenance"
    assert "paused" in client.get("/schedules").body
    client.post("/schedules/audit-seal/resume", {"csrf": csrf})
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM schedule_overrides")).scalar_one() == 0
    actions = [r.action for r in _audit_rows(engine, PLATFORM_ORGANIZATION_ID)]
    assert actions == ["dashboard.schedule_paused", "dashboard.schedule_resumed"]

    with Session(engine) as session:
        audit_chain.seal_all(session)
        session.commit()
        report = audit_chain.verify(session, PLATFORM_ORGANIZATION_ID, heads=[])
    assert report.ok and report.rows_checked == 2
    with engine.begin() as conn:  # the verification schedule covers the platform chain,
        runs = run_due(conn)  # the tenant schedules skip its reserved organization
    platform_runs = {r.schedule for r in runs if r.organization_id == PLATFORM_ORGANIZATION_ID}
    assert platform_runs == {"audit-verify"}


def test_bulk_replay_previews_a_count_then_replays_after_confirming(
    live_dashboard: LiveDashboard,
) -> None:
    engine = live_dashboard.engine
    org, other = _org(engine), _org(engine)
    mine = [_job(engine, org) for _ in range(3)] + [_job(engine, org, "failed")]
    theirs = _job(engine, other)
    succeeded = _job(engine, org, "succeeded")
    client = live_dashboard.client()
    client.login(OPERATOR_TOKEN)
    preview = client.get(f"/jobs/bulk-replay?org={org}")
    assert preview.status == 200 and "4 dead or failed job(s) match" in preview.body
    assert {_status(engine, j) for j in mine} == {"dead", "failed"}
    unconfirmed = client.post("/jobs/bulk-replay", {"csrf": preview.csrf(), "org": str(org)})
    assert unconfirmed.status == 400
    done = client.post(
        "/jobs/bulk-replay", {"csrf": preview.csrf(), "org": str(org), "confirm": "yes"}
    )
    assert done.status == 303
    assert {_status(engine, j) for j in mine} == {"queued"}
    assert _status(engine, theirs) == "dead" and _status(engine, succeeded) == "succeeded"
    (row,) = _audit_rows(engine, org)
    assert row.action == "dashboard.jobs_bulk_replayed" and row.input_refs["count"] == 4


def test_a_trusted_proxys_identity_header_is_believed_only_from_its_address(
    live_dashboard: LiveDashboard,
) -> None:
    port = int(live_dashboard.url.rsplit(":", 1)[1])

    def get(source: str, who: str) -> tuple[int, str]:
        conn = http.client.HTTPConnection("127.0.0.1", port, source_address=(source, 0))
        conn.request("GET", "/jobs", headers={"X-Forwarded-User": who})
        response = conn.getresponse()
        body = response.read().decode()
        conn.close()
        return response.status, body

    status, _ = get("127.0.0.1", "alice")  # not the proxy: the header is ignored
    assert status == 303
    status, body = get("127.0.0.2", "bob")
    assert status == 200 and "viewer · op-" in body
    status, body = get("127.0.0.2", "alice")
    assert status == 200 and "operator · op-" in body and "bob" not in body


def test_a_rotated_token_ends_the_sessions_opened_with_the_old_one(
    live_dashboard: LiveDashboard,
) -> None:
    client = live_dashboard.client()
    client.login(OPERATOR_TOKEN)
    assert client.get("/queues").status == 200
    live_dashboard.access.operator_token = "rotated-" + "r" * 30
    assert client.get("/queues").status == 303


def test_pages_show_ids_and_codes_but_no_personal_data(live_dashboard: LiveDashboard) -> None:
    engine = live_dashboard.engine
    org = _org(engine)
    candidate = uuid.uuid4()
    job_id = _job(
        engine,
        org,
        "failed",
        args={"candidate_id": str(candidate), "note": "Jane Doe"},
        error_type="InvalidInputError:corrupt_file",
        error_message="Could not read 'Jane Doe CV.pdf' for jane.doe@example.com, "
        f"+44 20 7946 0958, /home/jane/cv.pdf (candidate {candidate}).",
    )
    client = live_dashboard.client()
    client.login(VIEWER_TOKEN)
    body = client.get(f"/jobs/{job_id}").body
    for personal in ("Jane", "jane.doe@example.com", "7946", "/home/jane"):
        assert personal not in body, personal
    assert "InvalidInputError:corrupt_file" in body and str(candidate) in body
    assert "[text, 8 characters]" in body and "[e-mail]" in body
    listing = client.get(f"/jobs?org={org}&status=failed").body
    assert str(job_id)[:8] in listing and "Jane" not in listing


def test_the_job_list_pages_by_keyset_and_filters(live_dashboard: LiveDashboard) -> None:
    engine = live_dashboard.engine
    org = _org(engine)
    ids = {_job(engine, org, "succeeded") for _ in range(55)}
    client = live_dashboard.client()
    client.login(VIEWER_TOKEN)
    first = client.get(f"/jobs?org={org}&status=succeeded")
    assert first.status == 200 and 'rel="next"' in first.body
    next_url = first.body.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0]
    second = client.get(next_url.replace("&amp;", "&"))
    shown = {i for i in ids if str(i) in first.body} | {i for i in ids if str(i) in second.body}
    assert shown == ids and 'rel="next"' not in second.body
    assert client.get("/jobs?status=bogus").status == 400
    assert client.get("/jobs?after=garbage").status == 400


def test_pages_send_security_headers_and_no_script(live_dashboard: LiveDashboard) -> None:
    client = live_dashboard.client()
    client.login(VIEWER_TOKEN)
    page = client.get("/queues")
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script" not in policy
    assert page.headers["server-timing"].startswith("app;dur=")
    assert "<script" not in page.body
