"""A live dashboard: the real app under Uvicorn on a free port, on a database of its own
(committed data, so worker processes can see it), and a small cookie-keeping HTTP client."""

from __future__ import annotations

import http.cookiejar
import re
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from sqlalchemy import Engine

from are_workers.config import Settings
from are_workers.dashboard.access import Access
from are_workers.models.engine import make_engine

VIEWER_TOKEN = "viewer-" + "v" * 30
OPERATOR_TOKEN = "operator-" + "o" * 30
KEY = b"dashboard-test-key".ljust(32, b"\0")


@dataclass
class Reply:
    status: int
    body: str
    headers: dict[str, str]

    def csrf(self) -> str:
        found = re.search(r'name="csrf" value="([0-9a-f]+)"', self.body)
        assert found, "no CSRF field on the page"
        return found.group(1)


@dataclass
class Client:
    """A browser-like client: keeps cookies, does not follow redirects."""

    base: str
    jar: http.cookiejar.CookieJar = field(default_factory=http.cookiejar.CookieJar)

    def _open(self, request: urllib.request.Request) -> Reply:
        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args: object, **kwargs: object) -> None:
                return None

        opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), NoRedirect()
        )
        try:
            with opener.open(request, timeout=30) as response:
                return Reply(response.status, response.read().decode(), dict(response.headers))
        except urllib.error.HTTPError as error:
            return Reply(error.code, error.read().decode(), dict(error.headers))

    def get(self, path: str, headers: dict[str, str] | None = None) -> Reply:
        return self._open(urllib.request.Request(self.base + path, headers=headers or {}))

    def post(self, path: str, data: dict[str, str], headers: dict[str, str] | None = None) -> Reply:
        body = urllib.parse.urlencode(data).encode()
        request = urllib.request.Request(self.base + path, data=body, headers=headers or {})
        return self._open(request)

    def login(self, token: str) -> Reply:
        page = self.get("/login")
        reply = self.post("/login", {"csrf": page.csrf(), "token": token, "next": "/queues"})
        assert reply.status == 303, reply.body
        return reply


@dataclass
class LiveDashboard:
    url: str
    engine: Engine
    database_url: str
    access: Access

    def client(self) -> Client:
        return Client(self.url)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(app: object, port: int) -> tuple[object, threading.Thread]:
    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")  # type: ignore[arg-type]
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the dashboard did not start"
    return server, thread


@pytest.fixture
def live_dashboard(isolated_database: str, settings: Settings) -> Iterator[LiveDashboard]:
    from are_workers.dashboard.app import create_app

    engine = make_engine(isolated_database, pool_size=4, application_name="are-dashboard-test")
    access = Access(
        key=KEY,
        viewer_token=VIEWER_TOKEN,
        operator_token=OPERATOR_TOKEN,
        trusted_proxies=frozenset({"127.0.0.2"}),
        proxy_operators=frozenset({"alice"}),
    )
    port = free_port()
    server, thread = serve(create_app(settings, engine, access), port)
    yield LiveDashboard(f"http://127.0.0.1:{port}", engine, isolated_database, access)
    server.should_exit = True  # type: ignore[attr-defined]
    thread.join(timeout=10)
    engine.dispose()
