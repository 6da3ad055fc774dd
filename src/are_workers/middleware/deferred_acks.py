"""Acknowledges a message once its job's completion has committed, off the worker thread.

Why: a job that wrote nothing else to the database finishes through the process-wide
bookkeeping batch. If its worker thread waited for that commit and then acked, every job
would cost a thread two batch waits (its claim, its completion) and a Redis round trip. Here
the thread hands over the completion and takes its next message, whose claim then rides in
the same batch as the completion; the message is acknowledged only after the completion is
durable (never before: the broker forgets an acked message), by one thread that acks in
pipelined groups.

A worker that dies before the ack leaves the message unacked; Redis hands it to another
worker, whose claim finds the job finished (or still leased) and drops it.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import AbstractContextManager
from typing import Any

import structlog
from dramatiq.broker import Consumer, MessageProxy

log = structlog.get_logger(__name__)

#: Opens a broker pipeline around a group of acks (see ``are_workers.broker.pipelined``).
PipelineOpener = Callable[[], AbstractContextManager[Any]]


class DeferredAcks:
    """Holds back acks until a job's completion settles, then sends them in groups."""

    def __init__(self, pipelined: PipelineOpener, *, name: str = "are-acks") -> None:
        self._pipelined = pipelined
        self.name = name
        # By delivery (the proxy the worker will ack), not by job id: a duplicate delivery
        # of the same job must not pick up another delivery's completion.
        self._settling: dict[int, Future[None]] = {}
        self._ready: queue.SimpleQueue[tuple[Consumer, MessageProxy]] = queue.SimpleQueue()
        self._unsent = 0
        self._idle = threading.Condition()
        self._thread: threading.Thread | None = None
        self.retry_seconds = 1.0

    def wrap(self, consumer: Consumer) -> Consumer:
        return _DeferringConsumer(consumer, self)

    def defer(self, message: MessageProxy, settled: Future[None]) -> None:
        """Ack ``message`` only once ``settled`` resolves. Call before the worker acks it."""
        with self._idle:
            self._unsent += 1
        self._settling[id(message)] = settled

    def flush(self, timeout: float) -> bool:
        """Wait until every deferred ack was sent; False if some were still pending."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._unsent:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    # --- the consumer side ----------------------------------------------------------

    def _ack(self, consumer: Consumer, message: MessageProxy) -> None:
        settled = self._settling.pop(id(message), None)
        if settled is None:
            consumer.ack(message)
            return
        # The job is done as far as the worker is concerned: stop counting its message
        # against the consumer's prefetch (Dramatiq counts every message not yet acked).
        # Otherwise finished messages waiting for their completion's commit fill the
        # prefetch, and the consumer sleeps with backoff while messages wait in Redis.
        # The ack itself still waits; Redis keeps the message until then.
        in_hand = getattr(consumer, "queued_message_ids", None)
        if isinstance(in_hand, set):
            in_hand.discard(message.message_id)
        self._ensure_thread()
        settled.add_done_callback(lambda _: self._ready.put((consumer, message)))

    # --- the acking thread ------------------------------------------------------------

    def _ensure_thread(self) -> None:
        if self._thread is None:
            with self._idle:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        while True:
            group = [self._ready.get()]
            while True:
                try:
                    group.append(self._ready.get_nowait())
                except queue.Empty:
                    break
            self._send(group)
            with self._idle:
                self._unsent -= len(group)
                self._idle.notify_all()

    def _send(self, group: list[tuple[Consumer, MessageProxy]]) -> None:
        # Acks are idempotent, so a group that failed is simply sent again, like Dramatiq
        # retries its own acks while the broker is unreachable.
        while True:
            try:
                with self._pipelined():
                    for consumer, message in group:
                        consumer.ack(message)
                return
            except Exception:
                log.warning("ack_failed_retrying", messages=len(group), exc_info=True)
                time.sleep(self.retry_seconds)


class _DeferringConsumer(Consumer):
    """A broker consumer whose acks wait for their job's completion to settle."""

    def __init__(self, consumer: Consumer, acks: DeferredAcks) -> None:
        self._consumer = consumer
        self._acks = acks

    def __next__(self) -> MessageProxy | None:
        return next(self._consumer)

    def ack(self, message: MessageProxy) -> None:
        self._acks._ack(self._consumer, message)

    def nack(self, message: MessageProxy) -> None:
        self._consumer.nack(message)

    def requeue(self, messages: Any) -> None:
        self._consumer.requeue(messages)

    def close(self) -> None:
        # On shutdown the last completions are still settling: send their acks first, or
        # Redis would hand those messages to another worker (harmless, but wasted work).
        if not self._acks.flush(timeout=5.0):
            log.warning("acks_pending_at_close")
        self._consumer.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._consumer, name)
