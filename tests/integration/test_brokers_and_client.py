"""Broker choices, the outbox under a broker outage, completion NOTIFY, and a light client."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text

from are_workers import ledger
from are_workers.config import Settings
from are_workers.models.task_runs import LEDGER_NOTIFY_CHANNEL
from tests.integration.conftest import Stack
from tests.procs import start_worker, stop_worker, wait_status, worker_env


def _reachable(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_importing_the_client_does_not_import_heavy_ml() -> None:
    code = (
        "import sys, are_workers.client\n"
        "heavy = [m for m in ('torch', 'transformers', 'ctranslate2', 'cv2', 'faster_whisper',"
        " 'dramatiq') if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_broker_outage_on_enqueue_keeps_the_job_in_the_outbox(stack: Stack, tmp_path: Path) -> None:
    from are_workers.broker import build_broker
    from are_workers.relay import publish_due

    with stack.engine.begin() as conn:
        job = ledger.enqueue(conn, "system.noop", {})  # the caller's commit succeeds
    dead = build_broker(f"unix://{tmp_path}/nothing.sock", Settings())
    with pytest.raises(Exception, match=r"(?i)connect|No such file"):
        publish_due(stack.engine, dead, batch_size=10)
    with stack.engine.connect() as conn:
        row = conn.execute(text("SELECT status::text, published_at FROM task_runs WHERE id=:i"),
                           {"i": job}).one()  # fmt: skip
    assert row.status == "queued" and row.published_at is None
    worker = start_worker(stack.env, log=stack.log)  # the broker is back: the job runs
    try:
        wait_status(stack.engine, job, {"succeeded"})
    finally:
        stop_worker(worker)


def test_completion_is_notified_on_the_documented_channel(stack: Stack) -> None:
    dsn = stack.engine.url.render_as_string(hide_password=False).replace("+psycopg", "")
    with psycopg.connect(dsn, autocommit=True) as listener:
        listener.execute(f"LISTEN {LEDGER_NOTIFY_CHANNEL}")
        with stack.engine.begin() as conn:
            job = ledger.enqueue(conn, "system.noop", {})
            claim = ledger.claim(conn, job, worker_id="t", lease_seconds=30, crash_cap=3)
            assert claim and ledger.mark_succeeded(conn, job, claim.attempt)
        notes = list(listener.notifies(timeout=5, stop_after=1))
    payload = json.loads(notes[0].payload)
    assert payload["id"] == str(job) and payload["status"] == "succeeded"


@pytest.mark.multiprocess
@pytest.mark.parametrize(
    ("url", "port"),
    [("redis://127.0.0.1:6379/15", 6379), ("amqp://guest:guest@127.0.0.1:5672/%2F", 5672)],
    ids=["system-redis", "rabbitmq"],
)
def test_jobs_run_on_real_external_brokers(
    stack: Stack, isolated_database: str, tmp_path: Path, url: str, port: int
) -> None:
    """Someone else's broker: the test uses queues of its own and removes only their keys
    (never ``flushdb``), so whatever else lives there survives."""
    if not _reachable(port):
        pytest.skip(f"nothing listens on 127.0.0.1:{port}")
    queue = f"are-test-{uuid.uuid4().hex[:12]}"
    env = worker_env(isolated_database, url, tmp_path / "ext", ARE_QUEUE_DEFAULT=queue)
    client = None
    if url.startswith("redis"):
        import redis

        client = redis.Redis.from_url(url)
        sentinel = f"are-test-sentinel-{uuid.uuid4().hex}"
        client.set(sentinel, "not ours", ex=600)
    worker = start_worker(env, queues=queue, log=stack.log)
    try:
        with stack.engine.begin() as conn:
            jobs = [ledger.enqueue(conn, "test.effect", {"key": f"x{i}"}, queue=queue)
                    for i in range(5)]  # fmt: skip
        for job in jobs:
            wait_status(stack.engine, job, {"succeeded"})
        assert all(stack.effects(f"x{i}") == 1 for i in range(5))
    finally:
        stop_worker(worker)
        if client is not None:
            for key in client.scan_iter(match=f"*{queue}*"):
                client.delete(key)
        else:  # RabbitMQ: the queues Dramatiq declared for it (main, delay, dead letters)
            import pika

            with pika.BlockingConnection(pika.URLParameters(url)) as connection:
                channel = connection.channel()
                for name in (queue, f"{queue}.DQ", f"{queue}.XQ"):
                    channel.queue_delete(name)
    if client is not None:
        assert client.get(sentinel) == b"not ours"
        client.delete(sentinel)
