"""One worker child: a Dramatiq ``Worker`` with N threads on some queues.

Run by the supervisor (``are-workers worker``) as ``python -m are_workers.worker_process``.
Models load here, after the process starts (never inherited across a fork), and the child
reports ready only after warm-up. SIGTERM drains: no new messages, running jobs finish.
"""

from __future__ import annotations

import argparse
import fcntl
import importlib
import os
import signal
import sys
import threading
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)


def run_child(
    queues: list[str],
    threads: int,
    modules: list[str],
    ready_file: Path | None,
    recycle_lock: Path | None,
    drain_seconds: float = 600.0,
) -> int:
    import dramatiq
    import dramatiq.worker

    from are_workers import tracing
    from are_workers.broker import get_broker, ledger_middleware, recycle_middleware
    from are_workers.config import get_settings
    from are_workers.logs import configure_logging
    from are_workers.middleware.recycle import RECYCLE_EXIT_CODE
    from are_workers.tasks import base, registry

    settings = get_settings()
    configure_logging(settings.log_level, json=settings.log_json, file=settings.log_file)
    tracing.configure(settings, process="worker")
    broker = get_broker()
    registry.load_all()
    for module in modules:
        importlib.import_module(module)

    queue_classes = {
        settings.queue_default: "default",
        settings.queue_ml: "ml",
        settings.queue_media: "media",
        settings.queue_compliance: "compliance",
    }
    for queue in queues:
        for fn in base.WARMUPS.get(queue_classes.get(queue, queue), []):
            log.info("warmup", fn=fn.__qualname__)
            fn()

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    worker = dramatiq.Worker(broker, queues=set(queues), worker_threads=threads, worker_timeout=200)
    if ledger_middleware(broker).acks is not None and not dramatiq.worker.QUEUE_PREFETCH:
        # Dramatiq prefetches 2 messages per thread, counting those not yet acked. Finished
        # messages whose ack waits for their completion no longer count (DeferredAcks takes
        # them out), but the consumer still backs off whenever its prefetch is full; 4 per
        # thread was measured with them counting and is kept (not re-measured without).
        worker.queue_prefetch = min(threads * 4, 65535)
    worker.start()
    if ready_file:
        ready_file.write_text(str(os.getpid()))
    log.info("worker_child_ready", queues=queues, threads=threads)

    recycle = recycle_middleware(broker)
    while not stop.is_set() and not recycle.retire.is_set():
        recycle.retire.wait(0.05)

    lock_handle = None
    if recycle.retire.is_set() and recycle_lock is not None and not stop.is_set():
        lock_handle = open(recycle_lock, "w")  # noqa: SIM115 - held until the process exits
        fcntl.flock(lock_handle, fcntl.LOCK_EX)  # one child retires at a time
    log.info("worker_child_draining")
    worker.stop(timeout=int(drain_seconds * 1000))
    broker.close()
    if ready_file:
        ready_file.unlink(missing_ok=True)
    return RECYCLE_EXIT_CODE if recycle.retire.is_set() and not stop.is_set() else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="are_workers.worker_process")
    parser.add_argument("--queues", required=True)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--module", action="append", default=[])
    parser.add_argument("--ready-file", type=Path)
    parser.add_argument("--recycle-lock", type=Path)
    parser.add_argument("--drain-seconds", type=float, default=600.0)
    args = parser.parse_args(argv)
    return run_child(
        [q for q in args.queues.split(",") if q],
        args.threads,
        args.module,
        args.ready_file,
        args.recycle_lock,
        args.drain_seconds,
    )


if __name__ == "__main__":
    sys.exit(main())
