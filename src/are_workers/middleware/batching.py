"""Opportunistic batching of a worker process's ledger writes across its threads.

Why: claims, and completions of jobs that wrote nothing else to the database, must each be
durable, and a durable commit per job is what limits a pool of fast jobs. Threads hand their
item to a batcher; one background thread writes whatever has arrived in one statement and
one commit while the next items queue up behind it. There is no waiting window: a lone item
goes at once, and batches form only under load.

The writer keeps one connection in autocommit mode: ``write`` should be one statement, which
then commits by itself when it returns (one round trip per batch, instead of a pool checkout
with its ping, BEGIN, the statement and COMMIT). After an error the connection is dropped
and the next batch opens a fresh one.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import Generic, TypeVar

from sqlalchemy import Connection, Engine

K = TypeVar("K", bound=Hashable)
R = TypeVar("R")


class Batcher(Generic[K, R]):
    """Runs ``write(conn, keys) -> {key: result}`` for batches of keys; each statement commits."""

    def __init__(
        self,
        engine_getter: Callable[[], Engine],
        write: Callable[[Connection, list[K]], dict[K, R]],
        *,
        name: str,
        max_batch: int = 64,
    ) -> None:
        self._engine_getter = engine_getter
        self._write = write
        self.name = name
        self.max_batch = max_batch
        self.batches = 0
        self._requests: queue.SimpleQueue[tuple[K, Future[R | None]]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._conn: Connection | None = None

    def submit(self, key: K) -> R | None:
        """Blocks until the batch holding ``key`` committed; ``None`` if the write skipped it."""
        return self.submit_nowait(key).result()

    def submit_nowait(self, key: K) -> Future[R | None]:
        """The same, without waiting: the future resolves once the batch committed.

        Its callbacks run on the batcher's thread, so they must be quick and never wait.
        """
        self._ensure_thread()
        future: Future[R | None] = Future()
        self._requests.put((key, future))
        return future

    def _ensure_thread(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                    self._thread.start()

    def _connection(self) -> Connection:
        if self._conn is None:
            self._conn = (
                self._engine_getter().connect().execution_options(isolation_level="AUTOCOMMIT")
            )
        return self._conn

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.invalidate()
                conn.close()
            except Exception:  # noqa: S110 - the connection is already broken; a new one follows
                pass

    def _run(self) -> None:
        while True:
            batch = [self._requests.get()]
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._requests.get_nowait())
                except queue.Empty:
                    break
            try:
                results = self._write(self._connection(), [key for key, _ in batch])
                self.batches += 1
            except Exception as exc:  # every waiting thread sees the failure
                self._drop_connection()
                for _, future in batch:
                    future.set_exception(exc)
                continue
            for key, future in batch:
                future.set_result(results.get(key))
