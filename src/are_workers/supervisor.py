"""``are-workers worker``: supervises worker children, runs the relay, serves metrics.

Why not Dramatiq's CLI: it stops every child when one dies, and its recycling restarts all
of them (and reloads every model) at once. For ML pools we want the opposite: restart only
the child that died (with backoff if it keeps dying), recycle one child at a time after N
jobs or a memory ceiling, and report ready only once every child has warmed up.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from are_workers.config import Settings
from are_workers.middleware.recycle import RECYCLE_EXIT_CODE

log = structlog.get_logger(__name__)


@dataclass
class Child:
    index: int
    process: subprocess.Popen[bytes] | None = None
    ready_file: Path | None = None
    restarts: int = 0
    crashes_in_row: int = 0
    next_start: float = 0.0
    jobs_started_at: float = field(default_factory=time.monotonic)


def run_dir(settings: Settings) -> Path:
    return settings.data_dir / "run"


def health_file(settings: Settings) -> Path:
    return run_dir(settings) / "worker.ready"


class Supervisor:
    def __init__(
        self,
        settings: Settings,
        *,
        queues: list[str],
        processes: int,
        threads: int,
        modules: list[str] | None = None,
        relay: bool = True,
        drain_seconds: float = 600.0,
    ) -> None:
        self.settings = settings
        self.queues = queues
        self.threads = threads
        self.modules = modules or []
        self.relay_enabled = relay
        self.drain_seconds = drain_seconds
        self.children = [Child(i) for i in range(processes)]
        self.stopping = threading.Event()
        self.dir = run_dir(settings) / str(os.getpid())

    # --- children -------------------------------------------------------------------

    def _spawn(self, child: Child) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        child.ready_file = self.dir / f"child-{child.index}.ready"
        child.ready_file.unlink(missing_ok=True)
        argv = [
            sys.executable, "-m", "are_workers.worker_process",
            "--queues", ",".join(self.queues),
            "--threads", str(self.threads),
            "--ready-file", str(child.ready_file),
            "--recycle-lock", str(self.dir / "recycle.lock"),
            "--drain-seconds", str(self.drain_seconds),
        ]  # fmt: skip
        for module in self.modules:
            argv += ["--module", module]
        env = dict(os.environ)
        env["PROMETHEUS_MULTIPROC_DIR"] = str(self._metrics_dir())
        child.process = subprocess.Popen(argv, env=env)
        child.jobs_started_at = time.monotonic()
        log.info("worker_child_started", index=child.index, pid=child.process.pid)

    def _metrics_dir(self) -> Path:
        path = self.dir / "metrics"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _reap(self, child: Child) -> None:
        assert child.process is not None
        code = child.process.poll()
        if code is None:
            if child.crashes_in_row and time.monotonic() - child.jobs_started_at > 60:
                child.crashes_in_row = 0
            return
        child.process = None
        if self.stopping.is_set():
            return
        child.restarts += 1
        if code in (0, RECYCLE_EXIT_CODE):
            log.info("worker_child_recycled", index=child.index, code=code)
            child.next_start = time.monotonic()
        else:
            child.crashes_in_row += 1
            backoff = min(30.0, 0.5 * 2 ** (child.crashes_in_row - 1))
            log.error("worker_child_died", index=child.index, code=code, restart_in=backoff)
            child.next_start = time.monotonic() + backoff

    def all_ready(self) -> bool:
        return all(
            c.process is not None and c.ready_file is not None and c.ready_file.exists()
            for c in self.children
        )

    # --- main loop --------------------------------------------------------------------

    def run(self) -> int:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, lambda *_: self.stopping.set())
            signal.signal(signal.SIGINT, lambda *_: self.stopping.set())
        relay = self._start_relay() if self.relay_enabled else None
        metrics = self._start_metrics_server()
        health = health_file(self.settings)
        health.parent.mkdir(parents=True, exist_ok=True)
        try:
            while not self.stopping.is_set():
                for child in self.children:
                    if child.process is None and time.monotonic() >= child.next_start:
                        self._spawn(child)
                    elif child.process is not None:
                        self._reap(child)
                if self.all_ready():
                    if not health.exists():
                        health.write_text(str(os.getpid()))
                        log.info("worker_ready", processes=len(self.children))
                else:
                    health.unlink(missing_ok=True)
                self.stopping.wait(0.2)
        finally:
            health.unlink(missing_ok=True)
            self._stop_children()
            if relay is not None:
                relay.stop()
            if metrics is not None:
                metrics.shutdown()
        return 0

    def _stop_children(self) -> None:
        live = [c.process for c in self.children if c.process is not None]
        for proc in live:
            proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.drain_seconds
        for proc in live:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("worker_child_killed_after_drain_timeout", pid=proc.pid)
                proc.kill()
                proc.wait()

    def _start_relay(self):  # type: ignore[no-untyped-def]
        from are_workers.broker import get_broker
        from are_workers.models.engine import get_engine
        from are_workers.relay import Relay

        relay = Relay(get_engine(), get_broker(), self.settings)
        relay.start()
        return relay

    def _start_metrics_server(self):  # type: ignore[no-untyped-def]
        if not self.settings.metrics_port:
            return None
        from are_workers.observability import serve_metrics

        return serve_metrics(self.settings.metrics_port, self._metrics_dir())
