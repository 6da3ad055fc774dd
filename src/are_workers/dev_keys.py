"""Development keys: random per installation, made once in the data dir, owner-only.

Why not a fixed development key in the source: anyone could read data a development
install encrypted (or recompute its blind indexes), and a laptop database copied somewhere
would be as good as plaintext. Production never reaches this module: its keys are
configured, and ``Settings`` refuses to start without them.
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
from pathlib import Path

from are_workers.config import Settings
from are_workers.errors import ConfigurationError


def keys_dir(settings: Settings) -> Path:
    return settings.data_dir / "keys"


_cache: dict[Path, bytes] = {}


def dev_secret(settings: Settings, name: str, *, variable: str, nbytes: int = 32) -> bytes:
    """The random development secret ``name`` (``nbytes``), created with mode 0600."""
    if settings.environment == "production":
        raise ConfigurationError(f"{variable} must be set in production")
    cached = _cache.get(keys_dir(settings) / f"{name}.key")
    if cached is not None:
        return cached
    folder = keys_dir(settings)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / f"{name}.key"
    if not path.exists():
        with contextlib.suppress(FileExistsError):  # another process made it first
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(base64.b64encode(secrets.token_bytes(nbytes)))
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)  # never readable by anyone but the owner
    secret = base64.b64decode(path.read_bytes())
    if len(secret) != nbytes:
        raise ConfigurationError(f"{path} is damaged: delete it, or set {variable}")
    _cache[path] = secret
    return secret
