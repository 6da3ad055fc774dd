"""Traces from enqueue to execution, across a real worker process.

The test process is the enqueuer: it opens a span, enqueues, and records its spans in
memory. The worker pool (supervisor and child) exports by OTLP/HTTP to a receiver in this
process, so the spans checked are the ones a collector would get, decoded from protobuf.
"""

from __future__ import annotations

import gzip
import importlib.util
import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import text

from are_workers import client, ledger
from tests.integration.conftest import Stack
from tests.procs import start_worker, stop_worker, wait_status, wait_until

pytestmark = [pytest.mark.multiprocess, pytest.mark.slow]

TRACING_INSTALLED = importlib.util.find_spec("opentelemetry.sdk") is not None


@pytest.fixture(autouse=True)
def _needs_the_tracing_extra() -> None:
    if not TRACING_INSTALLED:
        message = "the 'tracing' extra is not installed (scripts/test.sh installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


@dataclass
class Span:
    name: str
    trace_id: str
    span_id: str
    parent_id: str
    kind: int
    start: int
    end: int
    attributes: dict[str, Any]
    status: int
    events: list[str]
    process: str


@dataclass
class Receiver:
    """An OTLP/HTTP trace receiver: what the workers export, decoded."""

    server: ThreadingHTTPServer
    spans: list[Span] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def named(self, name: str, **attributes: Any) -> list[Span]:
        with self.lock:
            return [
                s
                for s in self.spans
                if s.name == name and all(s.attributes.get(k) == v for k, v in attributes.items())
            ]

    def children(self, parent: Span) -> dict[str, Span]:
        with self.lock:
            return {s.name: s for s in self.spans if s.parent_id == parent.span_id}


def _value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


def _decode(body: bytes) -> list[Span]:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    spans = []
    for resource_spans in request.resource_spans:
        resource = {kv.key: _value(kv.value) for kv in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            for s in scope_spans.spans:
                spans.append(
                    Span(
                        name=s.name,
                        trace_id=s.trace_id.hex(),
                        span_id=s.span_id.hex(),
                        parent_id=s.parent_span_id.hex(),
                        kind=s.kind,
                        start=s.start_time_unix_nano,
                        end=s.end_time_unix_nano,
                        attributes={kv.key: _value(kv.value) for kv in s.attributes},
                        status=s.status.code,
                        events=[e.name for e in s.events],
                        process=str(resource.get("are.process")),
                    )
                )
    return spans


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceResponse,
    )

    holder: list[Receiver] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            assert self.path == "/v1/traces", self.path
            spans = _decode(body)
            with holder[0].lock:
                holder[0].spans.extend(spans)
            reply = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder.append(Receiver(server))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield holder[0]
    server.shutdown()


@pytest.fixture
def enqueuer_spans() -> Iterator[Any]:
    """The test process as an instrumented app: a real SDK provider, spans kept in memory."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):  # the global provider can be set only once
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()


def _traceparent(engine: Any, job_id: Any) -> str | None:
    """What an app reads back through the client (and ``are-workers jobs show``)."""
    with engine.connect() as conn:
        view = client.job_status(conn, job_id)
    assert view is not None
    return view.traceparent


def _job_span(receiver: Receiver, job_id: Any, children: set[str]) -> tuple[Span, dict[str, Span]]:
    """The worker's job span for ``job_id``, once it and ``children`` have been exported."""

    def found() -> tuple[Span, dict[str, Span]] | None:
        with receiver.lock:
            jobs = [s for s in receiver.spans if s.name.startswith("job ")
                    and s.attributes.get("are.job_id") == str(job_id)]  # fmt: skip
        if len(jobs) != 1:
            return None
        kids = receiver.children(jobs[0])
        return (jobs[0], kids) if children <= set(kids) else None

    return wait_until(found, timeout=30, what=f"the spans of job {job_id}")


def test_a_job_continues_its_enqueuers_trace_through_claim_actor_and_commit(
    stack: Stack, receiver: Receiver, enqueuer_spans: Any
) -> None:
    from opentelemetry import trace
    from opentelemetry.trace import SpanKind, StatusCode

    env = dict(stack.env, ARE_OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url)
    env["OTEL_BSP_SCHEDULE_DELAY"] = "50"  # export every 50 ms instead of every 5 s
    worker = start_worker(env, log=stack.log, modules=("tests.integration.traced_actors",))
    tracer = trace.get_tracer("tests")
    try:
        with (
            tracer.start_as_current_span("upload request") as request,
            stack.engine.begin() as conn,
        ):
            writes = ledger.enqueue(conn, "test.traced_effect", {"key": "t"}, queue="default")
            noop = client.enqueue(conn, "system.noop", {})  # finishes in the batch
            corrupt = ledger.enqueue(conn, "test.corrupt", {}, queue="default")
        with stack.engine.begin() as conn:
            outside = ledger.enqueue(conn, "test.effect", {"key": "outside"}, queue="default")
        for job in (writes, noop):
            wait_status(stack.engine, job, {"succeeded"})
        wait_status(stack.engine, corrupt, {"failed"})
        wait_status(stack.engine, outside, {"succeeded"})
        trace_id = format(request.get_span_context().trace_id, "032x")

        # The enqueuer: one PRODUCER span per job, children of the caller's span, and each
        # row carries its own enqueue span as traceparent.
        produced = {s.attributes["are.job_id"]: s for s in enqueuer_spans.get_finished_spans()
                    if s.name.startswith("enqueue ")}  # fmt: skip
        for job in (writes, noop, corrupt):
            span = produced[str(job)]
            assert span.kind == SpanKind.PRODUCER
            assert span.parent.span_id == request.get_span_context().span_id
            context = span.get_span_context()
            assert _traceparent(stack.engine, job) == (
                f"00-{trace_id}-{context.span_id:016x}-{int(context.trace_flags):02x}"
            )

        # The worker: job → claim, actor, commit, in that order, in the enqueuer's trace.
        for job, actor in ((writes, "test.traced_effect"), (noop, "system.noop")):
            enqueue_span = format(produced[str(job)].get_span_context().span_id, "016x")
            job_span, steps = _job_span(receiver, job, {"claim", f"actor {actor}", "commit"})
            assert job_span.trace_id == trace_id and job_span.parent_id == enqueue_span
            assert job_span.kind == 5 and job_span.process == "worker"  # CONSUMER
            claim, run, commit = steps["claim"], steps[f"actor {actor}"], steps["commit"]
            assert all(s.trace_id == trace_id for s in (claim, run, commit))
            assert job_span.start == claim.start <= claim.end <= run.start <= run.end
            assert run.end <= commit.start <= commit.end <= job_span.end
            assert commit.attributes["are.outcome"] == "succeeded"
            assert job_span.attributes["are.outcome"] == "succeeded"
            assert job_span.attributes["are.attempt"] == 1

        # What the actor does joins the trace: its own span, and the job it enqueued.
        _, steps = _job_span(receiver, writes, {"actor test.traced_effect"})
        inner = receiver.named("inner work")
        assert [s.parent_id for s in inner] == [steps["actor test.traced_effect"].span_id]
        with stack.engine.connect() as conn:
            follow_up = conn.execute(
                text("SELECT id FROM task_runs WHERE args->>'key' = 't-follow-up'")
            ).scalar_one()
        wait_status(stack.engine, follow_up, {"succeeded"})
        follow_job, _ = _job_span(receiver, follow_up, {"claim", "commit"})
        assert follow_job.trace_id == trace_id

        # A failed job: the actor span holds the exception, the failure is recorded in a span.
        job_span, steps = _job_span(receiver, corrupt, {"claim", "record failure"})
        assert job_span.trace_id == trace_id and job_span.status == StatusCode.ERROR.value
        assert steps["actor test.corrupt"].events == ["exception"]
        assert steps["record failure"].attributes["are.outcome"] == "failed"

        # Enqueued outside any trace: no traceparent, and the job starts a trace of its own.
        assert _traceparent(stack.engine, outside) is None
        job_span, _ = _job_span(receiver, outside, {"claim", "commit"})
        assert job_span.parent_id == "" and job_span.trace_id != trace_id

        # The relay (a thread of the supervisor) and the sweeper export spans too.
        wait_until(lambda: receiver.named("sweeper.sweep"), timeout=30, what="a sweep span")
        wait_until(
            lambda: sum(s.attributes["are.jobs"] for s in receiver.named("relay.publish")) >= 5,
            timeout=30,
            what="the relay's spans for the 5 jobs",
        )
        assert {s.process for s in receiver.named("relay.publish")} == {"supervisor"}
    finally:
        assert stop_worker(worker) == 0, stack.log.read_text()[-3000:]


def test_a_malformed_traceparent_only_starts_a_new_trace(stack: Stack, receiver: Receiver) -> None:
    """Other languages' enqueuers write the column by hand: a bad value must not hurt."""
    env = dict(stack.env, ARE_OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url)
    env["OTEL_BSP_SCHEDULE_DELAY"] = "50"
    worker = start_worker(env, log=stack.log)
    try:
        job_id = uuid.uuid4()
        with stack.engine.begin() as conn:
            ledger.enqueue(conn, "test.effect", {"key": "bad"}, queue="default", job_id=job_id)
            conn.execute(
                text("UPDATE task_runs SET traceparent = 'not-a-trace' WHERE id = :i"),
                {"i": str(job_id)},
            )
        wait_status(stack.engine, job_id, {"succeeded"})
        job_span, _ = _job_span(receiver, job_id, {"claim", "commit"})
        assert job_span.parent_id == ""
    finally:
        assert stop_worker(worker) == 0, stack.log.read_text()[-3000:]
