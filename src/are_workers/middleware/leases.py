"""Keeps the leases of this process's running jobs alive.

Why a thread of its own, with its own connection: a job may sit for minutes inside torch,
CTranslate2 or OpenCV, which Dramatiq's time limit cannot interrupt. Those calls release the
GIL, so this thread keeps renewing every running job's lease in one UPDATE; if the process
dies, renewals stop, the lease expires and the sweeper hands the job to another worker.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable

import structlog
from sqlalchemy import Engine

from are_workers import ledger, worker_registry
from are_workers.worker_registry import Registration

log = structlog.get_logger(__name__)


class LeaseKeeper:
    def __init__(
        self,
        engine_getter: Callable[[], Engine],
        *,
        worker_id: str,
        lease_seconds: int,
        interval_seconds: float,
    ) -> None:
        self._engine_getter = engine_getter
        self.worker_id = worker_id
        self.lease_seconds = lease_seconds
        self.interval_seconds = interval_seconds
        self._jobs: set[uuid.UUID] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: Set when the process is a worker: each heartbeat then updates its registry row.
        self.registration: Registration | None = None

    def add(self, job_id: uuid.UUID) -> None:
        with self._lock:
            self._jobs.add(job_id)

    def discard(self, job_id: uuid.UUID) -> None:
        with self._lock:
            self._jobs.discard(job_id)

    def running(self) -> list[uuid.UUID]:
        with self._lock:
            return list(self._jobs)

    def renew_now(self) -> int:
        jobs = self.running()
        if not jobs:
            return 0
        with self._engine_getter().begin() as conn:
            return ledger.renew_leases(
                conn, jobs, worker_id=self.worker_id, lease=self.lease_seconds
            )

    def report(self) -> None:
        """Tell the worker registry this process is alive and how many jobs it runs."""
        if self.registration is not None:
            with self._engine_getter().begin() as conn:
                worker_registry.heartbeat(conn, self.registration, len(self.running()))

    def _run(self) -> None:
        while not self._stop.wait(self.interval_seconds):
            try:
                self.renew_now()
            except Exception:  # a DB blip must not kill the heartbeat; the next tick retries
                log.warning("lease_renewal_failed", exc_info=True)
            try:
                self.report()
            except Exception:
                log.warning("worker_registry_report_failed", exc_info=True)

    def start(self) -> None:
        if self.registration is not None:
            try:
                with self._engine_getter().begin() as conn:
                    worker_registry.register(conn, self.registration)
            except Exception:  # the registry is for people; never stop a worker over it
                log.warning("worker_registry_register_failed", exc_info=True)
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="are-leases", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self.registration is not None:
            try:
                with self._engine_getter().begin() as conn:
                    worker_registry.stopped(conn, self.registration.worker_id)
            except Exception:
                log.warning("worker_registry_stop_failed", exc_info=True)
