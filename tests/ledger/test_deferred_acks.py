"""DeferredAcks: a message is acked only after its job's completion settled, never before."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future

import dramatiq
from dramatiq.broker import Consumer, MessageProxy

from are_workers.middleware.deferred_acks import DeferredAcks


class FakeConsumer(Consumer):
    def __init__(self, failures: int = 0) -> None:
        self.acked: list[str] = []
        self.failures = failures
        self.closed = False

    def __next__(self) -> MessageProxy | None:
        return None

    def ack(self, message: MessageProxy) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("broker away")
        self.acked.append(message.message_id)

    def nack(self, message: MessageProxy) -> None:
        raise AssertionError("not used")

    def close(self) -> None:
        self.closed = True


def _message(message_id: str) -> MessageProxy:
    return MessageProxy(
        dramatiq.Message(
            queue_name="q", actor_name="a", args=(), kwargs={}, options={}, message_id=message_id
        )
    )


def _wait_for(predicate, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


class CountingPipelines:
    def __init__(self) -> None:
        self.opened = 0
        self.lock = threading.Lock()

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        with self.lock:
            self.opened += 1
        yield


def test_an_ack_waits_for_the_completion_then_goes_in_a_pipeline() -> None:
    pipelines = CountingPipelines()
    acks = DeferredAcks(pipelines)
    inner = FakeConsumer()
    consumer = acks.wrap(inner)
    settled: Future[None] = Future()
    message = _message("job-1")
    acks.defer(message, settled)
    consumer.ack(message)  # what the worker thread does right after the job
    time.sleep(0.1)
    assert inner.acked == []  # the completion has not committed: no ack yet
    assert not acks.flush(timeout=0.05)
    settled.set_result(None)
    assert acks.flush(timeout=5)
    assert inner.acked == ["job-1"] and pipelines.opened == 1


def test_messages_that_were_not_deferred_are_acked_at_once() -> None:
    acks = DeferredAcks(CountingPipelines())
    inner = FakeConsumer()
    acks.wrap(inner).ack(_message("job-2"))
    assert inner.acked == ["job-2"]


def test_a_duplicate_delivery_does_not_take_another_deliverys_completion() -> None:
    acks = DeferredAcks(CountingPipelines())
    inner = FakeConsumer()
    consumer = acks.wrap(inner)
    first, duplicate = _message("job-3"), _message("job-3")
    settled: Future[None] = Future()
    acks.defer(first, settled)
    consumer.ack(duplicate)  # dropped at claim: acked at once
    consumer.ack(first)
    assert inner.acked == ["job-3"]
    settled.set_result(None)
    assert acks.flush(timeout=5)
    assert inner.acked == ["job-3", "job-3"]


def test_a_failed_ack_is_sent_again() -> None:
    acks = DeferredAcks(CountingPipelines())
    acks.retry_seconds = 0.01
    inner = FakeConsumer(failures=2)
    consumer = acks.wrap(inner)
    settled: Future[None] = Future()
    message = _message("job-4")
    acks.defer(message, settled)
    consumer.ack(message)
    settled.set_result(None)
    _wait_for(lambda: inner.acked == ["job-4"])
    assert acks.flush(timeout=5)


def test_close_sends_the_pending_acks_first() -> None:
    acks = DeferredAcks(CountingPipelines())
    inner = FakeConsumer()
    consumer = acks.wrap(inner)
    settled: Future[None] = Future()
    message = _message("job-5")
    acks.defer(message, settled)
    consumer.ack(message)
    threading.Timer(0.2, settled.set_result, (None,)).start()
    consumer.close()
    assert inner.acked == ["job-5"] and inner.closed


def test_finished_messages_awaiting_their_ack_leave_room_to_prefetch(broker_url: str) -> None:
    """Dramatiq's Redis consumer fetches only while fewer than ``prefetch`` messages are in
    hand, and counts every unacked one. A finished job whose ack waits for its completion's
    commit must not count: otherwise the consumer backs off while work waits in Redis."""
    import uuid

    from dramatiq.brokers.redis import RedisBroker

    namespace = f"are-test-{uuid.uuid4().hex[:8]}"
    broker = RedisBroker(url=broker_url, namespace=namespace, middleware=[])
    try:
        broker.declare_queue("q")
        for n in range(3):
            broker.enqueue(dramatiq.Message("q", "a", (n,), {}, {}))
        acks = DeferredAcks(contextlib.nullcontext)
        consumer = acks.wrap(broker.consume("q", prefetch=2, timeout=50))
        first, second = next(consumer), next(consumer)
        assert first is not None and second is not None
        settled: Future[None] = Future()
        for message in (first, second):
            acks.defer(message, settled)
            consumer.ack(message)  # finished, its completion not yet committed
        third = next(consumer)
        assert third is not None and third.args == (2,)  # fetched now, not after a backoff
        unacked = f"{namespace}:__acks__.{broker.broker_id}.q"  # Dramatiq's in-hand set
        assert broker.client.scard(unacked) == 3  # nothing acked early
        settled.set_result(None)
        acks.defer(third, Future())
        assert acks.flush(timeout=0.2) is False  # the third still settles
        _wait_for(lambda: broker.client.scard(unacked) == 1)
    finally:
        for key in broker.client.scan_iter(f"{namespace}*"):
            broker.client.delete(key)
        broker.close()
