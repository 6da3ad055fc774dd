"""Micro-batching: many worker threads, one forward pass.

Why: Dramatiq runs several threads per worker process, each embedding one resume's handful
of chunks. Run separately, N threads make N small forward passes that fight over the same
cores; batched, they make one larger pass, which on CPU and even more on GPU costs far less
than N small ones. Callers :meth:`~MicroBatcher.submit` texts and get a future; one
background thread collects requests until the batch would exceed ``max_batch_tokens``
(padded, as the model sees it) or the oldest request has waited ``max_wait_ms``, then runs
one forward pass and hands each caller its rows.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from are_workers.ml.embedder import Embedder, get_embedder

if TYPE_CHECKING:
    from are_workers.config import Settings

__all__ = ["MicroBatcher", "get_batcher"]


@dataclass(slots=True)
class _Request:
    texts: list[str]
    lengths: list[int]
    future: Future[np.ndarray] = field(default_factory=Future)
    rows: list[np.ndarray] = field(default_factory=list)
    pending_pieces: int = 0
    enqueued_at: float = field(default_factory=time.monotonic)


@dataclass(slots=True)
class _Piece:
    """A request, or a slice of one too large for a single batch."""

    request: _Request
    index: int
    texts: list[str]
    lengths: list[int]


class MicroBatcher:
    """Thread-safe front of an :class:`~are_workers.ml.embedder.Embedder`.

    Requests are served in arrival order (no reordering by length: fairness over padding, and
    per-request latency stays bounded by ``max_wait_ms`` plus one pass). A request larger than
    one batch is split into pieces that run in consecutive batches.
    """

    def __init__(
        self,
        embedder: Embedder,
        *,
        max_batch_tokens: int | None = None,
        max_wait_ms: float = 5.0,
        max_batch_size: int = 256,
        name: str = "embedder",
    ) -> None:
        self.embedder = embedder
        self.max_batch_tokens = max_batch_tokens or embedder.max_batch_tokens
        self.max_wait = max_wait_ms / 1000.0
        self.max_batch_size = max_batch_size
        self._queue: queue.Queue[_Piece | None] = queue.Queue()
        self._carry: _Piece | None = None
        self._batches = 0
        self._texts = 0
        self._closed = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name=f"{name}-batcher", daemon=True)
        self._thread.start()

    # --- public API -----------------------------------------------------------------------------

    @property
    def forward_passes(self) -> int:
        """Batches run so far; each is exactly one ``encode_batch`` (one forward pass)."""
        return self._batches

    @property
    def texts_embedded(self) -> int:
        return self._texts

    def submit(self, texts: Sequence[str]) -> Future[np.ndarray]:
        """Queue ``texts``; the future resolves to their vectors, shape ``(len(texts), dim)``."""
        request = _Request(texts=list(texts), lengths=[])
        if not request.texts:
            request.future.set_result(np.zeros((0, self.embedder.info.dimension), np.float32))
            return request.future
        request.lengths = self.embedder.token_lengths(request.texts)  # on the caller's thread
        pieces = self._split(request)
        request.pending_pieces = len(pieces)
        request.rows = [np.empty(0)] * len(pieces)
        with self._lock:
            if self._closed:
                raise RuntimeError("MicroBatcher is closed")
            for piece in pieces:
                self._queue.put(piece)
        return request.future

    def embed(self, texts: Sequence[str], timeout: float | None = None) -> np.ndarray:
        """:meth:`submit` and wait."""
        return self.submit(texts).result(timeout=timeout)

    def close(self, timeout: float | None = 10.0) -> None:
        """Finish queued work, then stop the background thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
        self._thread.join(timeout)

    def __enter__(self) -> MicroBatcher:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # --- internals ------------------------------------------------------------------------------

    def _split(self, request: _Request) -> list[_Piece]:
        pieces: list[_Piece] = []
        start = 0
        while start < len(request.texts):
            end, widest = start, 0
            while end < len(request.texts):
                widest_if_added = max(widest, request.lengths[end])
                count = end - start + 1
                if end > start and (
                    count * widest_if_added > self.max_batch_tokens or count > self.max_batch_size
                ):
                    break
                widest = widest_if_added
                end += 1
            pieces.append(
                _Piece(request, len(pieces), request.texts[start:end], request.lengths[start:end])
            )
            start = end
        return pieces

    def _fits(self, batch: list[_Piece], widest: int, candidate: _Piece) -> bool:
        count = sum(len(piece.texts) for piece in batch) + len(candidate.texts)
        width = max(widest, *candidate.lengths)
        return count * width <= self.max_batch_tokens and count <= self.max_batch_size

    def _collect(self) -> list[_Piece] | None:
        """Block for the first piece, then gather more until full or the wait runs out."""
        first = self._carry if self._carry is not None else self._queue.get()
        self._carry = None
        if first is None:
            return None
        batch, widest = [first], max(first.lengths)
        deadline = first.request.enqueued_at + self.max_wait
        while True:
            remaining = deadline - time.monotonic()
            try:
                piece = (
                    self._queue.get(timeout=remaining)
                    if remaining > 0
                    else self._queue.get_nowait()
                )
            except queue.Empty:
                break
            if piece is None:  # closing: run what we have, then stop on the next round
                self._queue.put(None)
                break
            if not self._fits(batch, widest, piece):
                self._carry = piece
                break
            batch.append(piece)
            widest = max(widest, *piece.lengths)
        return batch

    def _loop(self) -> None:
        while (batch := self._collect()) is not None:
            texts = [text for piece in batch for text in piece.texts]
            try:
                vectors = self.embedder.encode_batch(texts)
            except BaseException as exc:  # every waiting caller must hear about it
                for piece in batch:
                    if not piece.request.future.done():
                        piece.request.future.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
                continue
            self._batches += 1
            self._texts += len(texts)
            row = 0
            for piece in batch:
                request = piece.request
                request.rows[piece.index] = vectors[row : row + len(piece.texts)]
                row += len(piece.texts)
                request.pending_pieces -= 1
                if request.pending_pieces == 0 and not request.future.done():
                    request.future.set_result(np.concatenate(request.rows, axis=0))


_batchers: dict[int, MicroBatcher] = {}
_batchers_lock = threading.Lock()


def get_batcher(settings: Settings | None = None) -> MicroBatcher:
    """The process-wide micro-batcher over :func:`~are_workers.ml.embedder.get_embedder`.

    One per process id: threads do not survive ``fork``, so a child builds its own.
    """
    if settings is None:
        from are_workers.config import get_settings

        settings = get_settings()
    pid = os.getpid()
    batcher = _batchers.get(pid)
    if batcher is None:
        with _batchers_lock:
            batcher = _batchers.get(pid)
            if batcher is None:
                # The embedder's budget: the setting, capped on CPU (see CPU_MAX_BATCH_TOKENS).
                batcher = MicroBatcher(
                    get_embedder(settings), max_wait_ms=settings.embedding_max_wait_ms
                )
                _batchers[pid] = batcher
    return batcher
