"""Who may use the dashboard, and how a browser proves it on every request.

* **Two roles.** A viewer token reads every page; an operator token also acts (replay,
  cancel, pause, confirm). Or a reverse proxy that authenticates people passes an identity
  header, believed only from the configured proxy addresses; identities listed as operators
  may act, the others read.
* **Development** generates both tokens when unset and prints them at start (the server then
  binds 127.0.0.1 only). **Production** refuses to start without tokens or a trusted proxy,
  naming the variables.
* **Sessions** are a signed cookie (HttpOnly, SameSite=Strict) holding a random nonce, the
  role and the operator id. A session names the token it came from by its operator id, so a
  rotated token ends every session opened with the old one.
* **CSRF.** Every POST carries a token derived from the session's nonce (an HMAC under the
  server's key) and, when the browser sends one, an ``Origin`` of this host.
* **Operator ids** are pseudonyms: an HMAC of the token (or the proxy identity) under the
  blind-index key, stable across restarts, naming nobody. Audit rows carry them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Literal

from are_workers.config import Settings
from are_workers.errors import ConfigurationError

Role = Literal["viewer", "operator"]
SESSION_COOKIE = "are_dashboard"
SESSION_SECONDS = 12 * 3600
MIN_TOKEN_LENGTH = 24


@dataclass(frozen=True)
class Identity:
    """Who is asking: a role and a stable pseudonymous operator id (``op-`` + 16 hex)."""

    role: Role
    operator_id: str
    via: Literal["token", "proxy"]

    @property
    def can_act(self) -> bool:
        return self.role == "operator"

    @property
    def actor_uuid(self) -> uuid.UUID:
        """The operator id as the audit log's ``actor_id`` (a UUID column)."""
        return uuid.UUID(hex=hashlib.sha256(self.operator_id.encode()).hexdigest()[:32])


@dataclass
class Access:
    """The dashboard's access rules, built once at start from the settings."""

    key: bytes
    viewer_token: str | None = None
    operator_token: str | None = None
    trusted_proxies: frozenset[str] = frozenset()
    identity_header: str = "X-Forwarded-User"
    proxy_operators: frozenset[str] = frozenset()
    generated: dict[str, str] = field(default_factory=dict)

    # --- identities ---------------------------------------------------------------------

    def operator_id(self, kind: str, secret: str) -> str:
        digest = hmac.new(self.key, f"dashboard-operator:{kind}:{secret}".encode(), "sha256")
        return "op-" + digest.hexdigest()[:16]

    def by_token(self, token: str) -> Identity | None:
        for role, expected in (("operator", self.operator_token), ("viewer", self.viewer_token)):
            if expected and hmac.compare_digest(token.encode(), expected.encode()):
                return Identity(role, self.operator_id("token", token), "token")  # type: ignore[arg-type]
        return None

    def by_proxy(self, client_host: str | None, header_value: str | None) -> Identity | None:
        if not header_value or client_host not in self.trusted_proxies:
            return None
        who = header_value.strip()
        role: Role = "operator" if who in self.proxy_operators else "viewer"
        return Identity(role, self.operator_id("proxy", who), "proxy")

    def current_ids(self) -> dict[str, Role]:
        """Operator ids of the tokens configured now (sessions from older tokens end)."""
        ids: dict[str, Role] = {}
        if self.viewer_token:
            ids[self.operator_id("token", self.viewer_token)] = "viewer"
        if self.operator_token:
            ids[self.operator_id("token", self.operator_token)] = "operator"
        return ids

    # --- sessions and CSRF ----------------------------------------------------------------

    def _sign(self, payload: bytes) -> str:
        return hmac.new(self.key, b"dashboard-session:" + payload, "sha256").hexdigest()

    def make_session(self, identity: Identity | None, nonce: str | None = None) -> str:
        body = {
            "n": nonce or secrets.token_urlsafe(18),
            "r": identity.role if identity and identity.via == "token" else "",
            "o": identity.operator_id if identity and identity.via == "token" else "",
            "t": int(time.time()),
        }
        payload = base64.urlsafe_b64encode(json.dumps(body, separators=(",", ":")).encode())
        return payload.decode() + "." + self._sign(payload)

    def read_session(self, cookie: str | None) -> tuple[str, Identity | None] | None:
        """The session's nonce and identity; ``None`` for a missing, forged or old cookie."""
        if not cookie or "." not in cookie:
            return None
        payload, signature = cookie.rsplit(".", 1)
        if not hmac.compare_digest(signature, self._sign(payload.encode())):
            return None
        try:
            body = json.loads(base64.urlsafe_b64decode(payload.encode()))
        except ValueError:
            return None
        if int(body.get("t", 0)) + SESSION_SECONDS < time.time():
            return None
        identity = None
        role = self.current_ids().get(body.get("o", ""))
        if role is not None and role == body.get("r"):
            identity = Identity(role, body["o"], "token")
        return str(body["n"]), identity

    def csrf_token(self, nonce: str) -> str:
        return hmac.new(self.key, f"dashboard-csrf:{nonce}".encode(), "sha256").hexdigest()[:40]

    def csrf_ok(self, nonce: str, submitted: str | None) -> bool:
        return bool(submitted) and hmac.compare_digest(self.csrf_token(nonce), str(submitted))


def build_access(settings: Settings, key: bytes) -> Access:
    """The access rules, or a configuration error naming what production is missing.

    Outside production, unset tokens are generated (``Access.generated`` holds them, for
    printing once at start).
    """
    viewer = settings.dashboard_viewer_token
    operator = settings.dashboard_operator_token
    access = Access(
        key=key,
        viewer_token=viewer.get_secret_value() if viewer else None,
        operator_token=operator.get_secret_value() if operator else None,
        trusted_proxies=frozenset(settings.dashboard_trusted_proxies),
        identity_header=settings.dashboard_identity_header,
        proxy_operators=frozenset(settings.dashboard_proxy_operators),
    )
    for name, token in (
        ("ARE_DASHBOARD_VIEWER_TOKEN", access.viewer_token),
        ("ARE_DASHBOARD_OPERATOR_TOKEN", access.operator_token),
    ):
        if token is not None and len(token) < MIN_TOKEN_LENGTH:
            raise ConfigurationError(
                f"{name} is too short: use at least {MIN_TOKEN_LENGTH} random characters "
                "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)."
            )
    if access.viewer_token and access.viewer_token == access.operator_token:
        raise ConfigurationError(
            "ARE_DASHBOARD_VIEWER_TOKEN and ARE_DASHBOARD_OPERATOR_TOKEN must differ."
        )
    if settings.environment == "production":
        tokens = access.viewer_token and access.operator_token
        if not tokens and not access.trusted_proxies:
            raise ConfigurationError(
                "The dashboard refuses to start in production without access control: set "
                "ARE_DASHBOARD_VIEWER_TOKEN and ARE_DASHBOARD_OPERATOR_TOKEN, or "
                "ARE_DASHBOARD_TRUSTED_PROXIES (the authenticating proxy's addresses) with "
                "ARE_DASHBOARD_IDENTITY_HEADER."
            )
        return access
    if not access.trusted_proxies:
        if access.viewer_token is None:
            access.viewer_token = access.generated["viewer"] = secrets.token_urlsafe(24)
        if access.operator_token is None:
            access.operator_token = access.generated["operator"] = secrets.token_urlsafe(24)
    return access


def server_key() -> bytes:
    """The key behind sessions, CSRF tokens and operator ids: derived from the blind-index
    key (required in production, generated once in development), so every replica of the
    dashboard agrees and an operator keeps one id across restarts."""
    from are_workers.crypto import subject_ref

    return hashlib.sha256(subject_ref("are-workers.dashboard").encode()).digest()
