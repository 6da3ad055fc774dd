"""``are-workers dashboard``: the operators' web pages on the ledger (Starlette + Jinja2).

Server-rendered HTML and one stylesheet: no JavaScript at all, so there is no build step and
the content security policy forbids scripts outright. Every read goes through
``queries.py`` (index-backed, no personal data); every action through ``actions.py``
(the ledger's own operations plus an audit row). Access rules are ``access.py``'s.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlparse

from sqlalchemy import Connection, Engine, text
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from are_workers.charts import Bar, horizontal_bar_chart_svg
from are_workers.config import Settings
from are_workers.dashboard import actions, queries
from are_workers.dashboard.access import SESSION_COOKIE, SESSION_SECONDS, Access, Identity
from are_workers.dashboard.redact import redact_message, safe_args
from are_workers.models.task_runs import TaskStatus
from are_workers.scheduler import (
    DEFAULT_SCHEDULES,
    KEY_PREFIX,
    effective,
    load_overrides,
    next_tick,
)
from are_workers.services.compliance.audit import PLATFORM_ORGANIZATION_ID

HERE = Path(__file__).resolve().parent
#: Reads give up rather than hold a connection: a page is never worth a stuck query.
READ_TIMEOUT_MS = 5_000
PAGE_SIZE = 50

Handler = Callable[[Request], Awaitable[Response]]


class ServerTiming:
    """Adds ``Server-Timing: app;dur=<ms>`` and the security headers to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                elapsed = (time.perf_counter() - started) * 1000
                headers = list(message.get("headers", []))
                headers += [
                    (b"server-timing", f"app;dur={elapsed:.1f}".encode()),
                    (b"content-security-policy",
                     b"default-src 'none'; style-src 'self'; img-src 'self' data:; "
                     b"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin"),  # no-referrer makes Origin "null"
                    (b"cache-control", b"no-store"),
                ]  # fmt: skip
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class Dashboard:
    """The pages and actions, bound to one engine and one set of access rules."""

    def __init__(self, settings: Settings, engine: Engine, access: Access) -> None:
        self.settings = settings
        self.engine = engine
        self.access = access
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        self.templates.env.filters["ago"] = _ago
        self.templates.env.filters["when"] = _when
        self.templates.env.filters["redact"] = redact_message
        self.templates.env.globals["platform_org"] = PLATFORM_ORGANIZATION_ID

    # --- plumbing -------------------------------------------------------------------------

    def read(self, fn: Callable[..., Any], *args: Any) -> Awaitable[Any]:
        def run() -> Any:
            with self.engine.connect() as conn:
                conn.execute(text(f"SET LOCAL statement_timeout = {READ_TIMEOUT_MS}"))
                try:
                    return fn(conn, *args)
                finally:
                    conn.rollback()

        return run_in_threadpool(run)

    def write(self, fn: Callable[..., Any], *args: Any) -> Awaitable[Any]:
        def run() -> Any:
            with self.engine.begin() as conn:
                return fn(conn, *args)

        return run_in_threadpool(run)

    def _session(self, request: Request) -> tuple[str, Identity | None, bool]:
        """The session's nonce and identity, and whether the cookie must be (re)set."""
        found = self.access.read_session(request.cookies.get(SESSION_COOKIE))
        if found is None:
            return uuid.uuid4().hex, None, True
        return found[0], found[1], False

    def identity(self, request: Request, session_identity: Identity | None) -> Identity | None:
        client = request.client.host if request.client else None
        proxied = self.access.by_proxy(client, request.headers.get(self.access.identity_header))
        if proxied is not None:
            return proxied
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return self.access.by_token(auth[7:].strip())
        return session_identity

    def render(
        self, request: Request, template: str, context: dict[str, Any], status: int = 200
    ) -> Response:
        base = {
            "who": request.state.identity,
            "csrf": self.access.csrf_token(request.state.nonce),
            "flash": request.query_params.get("flash"),
            "flash_ok": request.query_params.get("ok") == "1",
            "now": datetime.now(UTC),
        }
        return self.templates.TemplateResponse(
            request, template, base | context, status_code=status
        )

    def guarded(self, handler: Handler, *, act: bool = False, public: bool = False) -> Handler:
        """Session, identity and CSRF checks around a handler.

        GET without identity: to the login page. POST: needs an operator (unless ``public``,
        the login form), a CSRF token bound to the session, and a same-origin ``Origin``.
        """

        async def endpoint(request: Request) -> Response:
            nonce, session_identity, new_cookie = self._session(request)
            request.state.nonce = nonce
            request.state.identity = self.identity(request, session_identity)
            if request.method == "POST":
                form = await request.form()
                request.state.form = form
                if new_cookie or not self.access.csrf_ok(nonce, _field(form, "csrf")):
                    raise HTTPException(403, "Refused: the form's CSRF token is missing or stale.")
                if not _same_origin(request):
                    raise HTTPException(403, "Refused: cross-origin POST.")
                if not public:
                    who = request.state.identity
                    if who is None:
                        raise HTTPException(403, "Refused: sign in first.")
                    if act and not who.can_act:
                        raise HTTPException(403, "Refused: this needs the operator token.")
            elif not public and request.state.identity is None:
                response: Response = RedirectResponse(
                    "/login?" + urlencode({"next": request.url.path}), status_code=303
                )
                return self._with_cookie(response, nonce, None) if new_cookie else response
            response = await handler(request)
            if new_cookie:
                self._with_cookie(response, nonce, None)
            return response

        return endpoint

    def _with_cookie(self, response: Response, nonce: str, identity: Identity | None) -> Response:
        response.set_cookie(
            SESSION_COOKIE,
            self.access.make_session(identity, nonce),
            max_age=SESSION_SECONDS,
            httponly=True,
            samesite="strict",
            secure=self.settings.environment == "production",
        )
        return response

    # --- sign in ----------------------------------------------------------------------------

    async def login_page(self, request: Request) -> Response:
        return self.render(
            request, "login.html", {"next": _safe_next(request.query_params.get("next"))}
        )

    async def login(self, request: Request) -> Response:
        form: FormData = request.state.form
        identity = self.access.by_token(_field(form, "token") or "")
        if identity is None:
            return self.render(
                request, "login.html", {"error": "That token is not valid.", "next": "/"}, 403
            )
        response = RedirectResponse(_safe_next(_field(form, "next")), status_code=303)
        return self._with_cookie(response, request.state.nonce, identity)

    async def logout(self, request: Request) -> Response:
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    # --- pages --------------------------------------------------------------------------------

    async def home(self, request: Request) -> Response:
        return RedirectResponse("/queues", status_code=303)

    async def queues_page(self, request: Request) -> Response:
        def load(conn: Connection) -> dict[str, Any]:
            return {
                "queues": queries.rows(conn, queries.QUEUES),
                "buckets": queries.rows(conn, queries.THROUGHPUT),
            }

        data = await self.read(load)
        buckets = {b["bucket"]: b for b in data["buckets"]}
        finished = [buckets.get(i, {}).get("finished", 0) for i in range(12)]
        failed = [buckets.get(i, {}).get("failed", 0) for i in range(12)]
        labels = [f"{(i + 1) * 5} to {i * 5} min ago" for i in range(12)]
        throughput = horizontal_bar_chart_svg(
            [Bar(label, float(n)) for label, n in zip(labels, finished, strict=True)],
            title="Jobs finished per 5 minutes (last hour)",
            max_value=float(max([*finished, 1])),
            value_format="{:.0f}",
        )
        failure = horizontal_bar_chart_svg(
            [
                Bar(label, f / n if n else None, note="no jobs", highlight=bool(n) and f / n > 0.1)
                for label, n, f in zip(labels, finished, failed, strict=True)
            ],
            title="Failure rate per 5 minutes (failed or dead / finished)",
            value_format="{:.1%}",
        )
        totals = {"finished": sum(finished), "failed": sum(failed)}
        return self.render(
            request,
            "queues.html",
            {"queues": data["queues"], "throughput": throughput, "failure": failure,
             "totals": totals, "names": self.settings.queue_names},
        )  # fmt: skip

    async def workers_page(self, request: Request) -> Response:
        workers = await self.read(lambda conn: queries.rows(conn, queries.WORKERS))
        stale = 3 * self.settings.heartbeat_seconds + 5
        return self.render(request, "workers.html", {"workers": workers, "stale_after": stale})

    def _filter(self, params: Any) -> queries.JobFilter:
        status = params.get("status") or None
        if status and status not in {s.value for s in TaskStatus}:
            raise HTTPException(400, f"Unknown status {status!r}.")
        return queries.JobFilter(
            status=status,
            actor=(params.get("actor") or "").strip() or None,
            organization_id=_uuid_or_400(params.get("org"), "organization"),
            since=_time_or_400(params.get("since"), "since"),
            until=_time_or_400(params.get("until"), "until"),
        )

    async def jobs_page(self, request: Request) -> Response:
        job_filter = self._filter(request.query_params)
        after = _cursor_or_400(request.query_params.get("after"))

        def load(conn: Connection) -> dict[str, Any]:
            jobs, cursor = queries.jobs_page(conn, job_filter, after=after, page_size=PAGE_SIZE)
            return {
                "jobs": jobs,
                "cursor": cursor,
                "actors": [r["actor"] for r in queries.rows(conn, queries.ACTORS)],
            }

        data = await self.read(load)
        next_url = None
        if data["cursor"] is not None:
            at, job_id = data["cursor"]
            next_url = "/jobs?" + urlencode(
                job_filter.query_string() | {"after": f"{at.isoformat()}|{job_id}"}
            )
        return self.render(
            request,
            "jobs.html",
            {"jobs": data["jobs"], "next_url": next_url, "filter": job_filter,
             "statuses": [s.value for s in TaskStatus], "actors": data["actors"],
             "query": urlencode(job_filter.query_string()), "first_page": after is None},
        )  # fmt: skip

    async def job_page(self, request: Request) -> Response:
        job_id = _uuid_or_400(request.path_params["job_id"], "job")

        def load(conn: Connection) -> dict[str, Any] | None:
            found = queries.rows(conn, queries.JOB, {"id": job_id})
            if not found:
                return None
            job = found[0]
            org = job["organization_id"] or PLATFORM_ORGANIZATION_ID
            job["audit"] = queries.rows(conn, queries.JOB_AUDIT, {"org": org, "id": job_id})
            return job

        job = await self.read(load)
        if job is None:
            raise HTTPException(404, f"No job {job_id}.")
        timeline = sorted(
            (
                (at, what)
                for what, at in (
                    ("enqueued", job["created_at"]),
                    ("due", job["available_at"]),
                    ("published to the broker", job["published_at"]),
                    ("last attempt started", job["started_at"]),
                    ("finished", job["finished_at"]),
                    ("lease expires", job["lease_expires_at"]),
                    ("last change", job["updated_at"]),
                )
                if at is not None
            ),
            key=lambda item: item[0],
        )
        for entry in job["audit"]:
            by = entry["input_refs"].get("operator", entry["actor_type"])
            timeline.append((entry["occurred_at"], f"{entry['action']} by {by}"))
        timeline.sort(key=lambda item: item[0])
        traceparent = job["traceparent"]
        trace_id = (
            traceparent.split("-")[1] if traceparent and traceparent.count("-") >= 3 else None
        )
        return self.render(
            request,
            "job.html",
            {"job": job, "args": safe_args(job["args"]), "timeline": timeline,
             "message": redact_message(job["error_message"]), "trace_id": trace_id,
             "replayable": job["status"] in ("dead", "failed", "cancelled"),
             "cancellable": job["status"] in ("queued", "retrying", "running")},
        )  # fmt: skip

    async def job_action(self, request: Request) -> Response:
        job_id = _uuid_or_400(request.path_params["job_id"], "job")
        action = (
            actions.replay_job if request.path_params["action"] == "replay" else actions.cancel_job
        )
        outcome = await self.write(action, request.state.identity, job_id)
        return _back(f"/jobs/{job_id}", outcome)

    async def bulk_preview(self, request: Request) -> Response:
        job_filter = self._filter(request.query_params)
        count = await self.read(actions.bulk_preview, job_filter)
        return self.render(
            request,
            "bulk.html",
            {"filter": job_filter, "count": count, "cap": actions.BULK_CAP,
             "fields": job_filter.query_string()},
        )  # fmt: skip

    async def bulk_replay(self, request: Request) -> Response:
        form: FormData = request.state.form
        job_filter = self._filter(form)
        if _field(form, "confirm") != "yes":
            raise HTTPException(400, "Confirm the bulk replay (the preview page's button).")
        outcome = await self.write(actions.bulk_replay, request.state.identity, job_filter)
        return _back("/jobs?" + urlencode(job_filter.query_string()), outcome)

    async def schedules_page(self, request: Request) -> Response:
        def load(conn: Connection) -> list[dict[str, Any]]:
            now = conn.execute(text("SELECT now()")).scalar_one()
            overrides = load_overrides(conn)
            out = []
            for schedule in DEFAULT_SCHEDULES:
                rule = effective(schedule, None, overrides, now)
                platform = overrides.get((schedule.name, None))
                tenant_overrides = sum(
                    1 for (name, org) in overrides if name == schedule.name and org is not None
                )
                last = queries.rows(
                    conn,
                    queries.SCHEDULE_LAST_RUN,
                    {"actor": schedule.actor, "prefix": f"{KEY_PREFIX}{schedule.name}:%"},
                )
                out.append(
                    {"schedule": schedule, "cron": rule.cron, "paused": rule.paused,
                     "reason": platform.reason if platform else None,
                     "next": None if rule.paused else next_tick(rule.cron, now),
                     "last": last[0] if last else None, "tenant_overrides": tenant_overrides}
                )  # fmt: skip
            return out

        return self.render(request, "schedules.html", {"schedules": await self.read(load)})

    async def schedule_action(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in {s.name for s in DEFAULT_SCHEDULES}:
            raise HTTPException(404, f"No schedule named {name!r}.")
        who = request.state.identity
        if request.path_params["action"] == "pause":
            reason = (_field(request.state.form, "reason") or "").strip()[:200] or None
            outcome = await self.write(actions.pause_schedule, who, name, reason)
        else:
            outcome = await self.write(actions.resume_schedule, who, name)
        return _back("/schedules", outcome)

    async def compliance_page(self, request: Request) -> Response:
        chosen = _uuid_or_400(request.query_params.get("org"), "organization")

        def load(conn: Connection) -> dict[str, Any]:
            from sqlalchemy.orm import Session

            from are_workers.services.compliance.bias import latest_reports
            from are_workers.services.compliance.bias_summary import public_summary

            org = chosen or conn.execute(text(queries.LATEST_BIAS_ORG)).scalar_one_or_none()
            summary = None
            if org is not None:
                with Session(bind=conn) as session:
                    summary = public_summary(latest_reports(session, org))
            return {
                "dsrs": queries.rows(conn, queries.OPEN_DSRS),
                "verifications": queries.rows(conn, queries.AUDIT_VERIFICATIONS),
                "retention": queries.rows(conn, queries.RETENTION_RUNS),
                "bias_org": org,
                "bias": summary,
            }

        data = await self.read(load)
        charts = []
        if data["bias"]:
            from are_workers.services.compliance.bias_summary import impact_ratio_chart

            for tool in data["bias"]["tools"]:
                charts += [impact_ratio_chart(tool, category) for category in tool["categories"]]
        return self.render(request, "compliance.html", data | {"charts": charts})

    async def retention_confirm_page(self, request: Request) -> Response:
        run_id = _uuid_or_400(request.path_params["run_id"], "retention run")
        found = await self.read(
            lambda conn: queries.rows(conn, queries.RETENTION_RUN, {"i": run_id})
        )
        if not found or not found[0]["tripped"]:
            raise HTTPException(404, "No retention run stopped by the circuit breaker has that id.")
        return self.render(request, "retention_confirm.html", {"run": found[0]})

    async def retention_confirm(self, request: Request) -> Response:
        run_id = _uuid_or_400(request.path_params["run_id"], "retention run")
        if _field(request.state.form, "confirm") != "yes":
            raise HTTPException(400, "Confirm on the confirmation page.")
        outcome = await self.write(actions.confirm_retention, request.state.identity, run_id)
        return _back("/compliance", outcome)

    async def health(self, request: Request) -> Response:
        return PlainTextResponse("ok")

    async def error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if not hasattr(request.state, "nonce"):
            request.state.nonce = uuid.uuid4().hex
            request.state.identity = None
        return self.render(request, "error.html", {"status": exc.status_code, "detail": exc.detail},
                           exc.status_code)  # fmt: skip


def create_app(settings: Settings, engine: Engine, access: Access) -> Starlette:
    d = Dashboard(settings, engine, access)
    g = d.guarded
    routes = [
        Route("/healthz", d.health),
        Route("/", g(d.home)),
        Route("/login", g(d.login_page, public=True)),
        Route("/login", g(d.login, public=True), methods=["POST"]),
        Route("/logout", g(d.logout, public=True), methods=["POST"]),
        Route("/queues", g(d.queues_page)),
        Route("/workers", g(d.workers_page)),
        Route("/jobs", g(d.jobs_page)),
        Route("/jobs/bulk-replay", g(d.bulk_preview)),
        Route("/jobs/bulk-replay", g(d.bulk_replay, act=True), methods=["POST"]),
        Route("/jobs/{job_id}", g(d.job_page)),
        Route("/jobs/{job_id}/{action:str}", g(d.job_action, act=True), methods=["POST"]),
        Route("/schedules", g(d.schedules_page)),
        Route("/schedules/{name}/{action:str}", g(d.schedule_action, act=True), methods=["POST"]),
        Route("/compliance", g(d.compliance_page)),
        Route("/compliance/retention/{run_id}/confirm", g(d.retention_confirm_page)),
        Route(
            "/compliance/retention/{run_id}/confirm",
            g(d.retention_confirm, act=True),
            methods=["POST"],
        ),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: d.error})
    app.add_middleware(ServerTiming)
    return app


# --- small helpers -------------------------------------------------------------------------------


def _field(form: Any, name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) else None


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    return urlparse(origin).netloc == request.headers.get("host")


def _safe_next(value: str | None) -> str:
    """Only a path on this site (never ``//evil`` or a full URL)."""
    if value and value.startswith("/") and not value.startswith("//"):
        return value
    return "/queues"


def _back(path: str, outcome: actions.Outcome) -> Response:
    sep = "&" if "?" in path else "?"
    query = urlencode({"flash": outcome.message, "ok": "1" if outcome.ok else "0"})
    return RedirectResponse(f"{path}{sep}{query}", status_code=303)


def _uuid_or_400(value: str | None, what: str) -> uuid.UUID | None:
    if not value:
        return None
    try:
        return uuid.UUID(value.strip())
    except ValueError:
        raise HTTPException(400, f"{value!r} is not a valid {what} id.") from None


def _time_or_400(value: str | None, what: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise HTTPException(400, f"{what}: {value!r} is not a date and time (ISO 8601).") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _cursor_or_400(value: str | None) -> tuple[datetime, uuid.UUID] | None:
    if not value:
        return None
    at, _, job_id = value.partition("|")
    when = _time_or_400(at, "after")
    ident = _uuid_or_400(job_id, "job")
    if when is None or ident is None:
        raise HTTPException(400, "The page cursor is malformed.")
    return when, ident


def _ago(value: datetime | float | None) -> str:
    if value is None:
        return "-"
    seconds = (
        value if isinstance(value, float | int) else (datetime.now(UTC) - value).total_seconds()
    )
    seconds = max(0.0, float(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if value else "-"
