from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from are_workers.models.engine import make_engine
from tests.procs import PrivateRedis, worker_env


@dataclass
class Stack:
    engine: Engine
    redis: PrivateRedis
    env: dict[str, str]
    log: Path

    def effects(self, key: str) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM test_effects WHERE key=:k"),
                                    {"k": key}).scalar_one())  # fmt: skip


@pytest.fixture
def stack(isolated_database: str, tmp_path: Path) -> Iterator[Stack]:
    """A database of its own, a Redis of its own, and the env for worker processes."""
    engine = make_engine(isolated_database, pool_size=2, application_name="are-mp-test")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE test_effects (key text NOT NULL, pid int NOT NULL)"))
    redis = PrivateRedis(tmp_path / "redis").start()
    env = worker_env(isolated_database, redis.url, tmp_path / "data")
    yield Stack(engine, redis, env, tmp_path / "worker.log")
    redis.kill()
    engine.dispose()
