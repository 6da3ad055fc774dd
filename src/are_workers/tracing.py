"""Traces from enqueue to execution (OpenTelemetry); a no-op without the ``tracing`` extra.

Why the ledger row carries the trace: an enqueue is an INSERT, and the job may run minutes
later in another process, or have been enqueued by an app in another language. The enqueuer
writes its W3C ``traceparent`` on the row (``docs/job-ledger.md``); the worker that claims
the row continues that trace::

    <the caller's span>
      enqueue <actor>         PRODUCER, in the enqueuing process, around the INSERT
        job <actor>           CONSUMER, in the worker: from the claim to the recorded outcome
          claim                 the claim's UPDATE (batched with other threads' claims)
          actor <actor>         the actor; spans the actor's code makes nest under it
          commit                the completion (with the job's writes), or
          record failure        the failed attempt, after the job's writes rolled back

The relay's batches and the sweeper's sweeps make spans of their own.

Export: OTLP/HTTP when ``ARE_OTEL_EXPORTER_OTLP_ENDPOINT`` or the standard
``OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT`` is set (the other ``OTEL_*`` variables, such as the
sampler, headers and service name, are honoured by the SDK), and nothing otherwise: then the
worker makes no spans at all. Upstream apps configure OpenTelemetry themselves; the enqueue
only reads their current span. Without OpenTelemetry installed, every function here does
nothing and the core never imports it.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import structlog

from are_workers.errors import ConfigurationError

if TYPE_CHECKING:
    from are_workers.config import Settings
    from are_workers.ledger import Claim

_trace: Any
try:
    from opentelemetry import context as _otel_context
    from opentelemetry import trace as _otel_trace
    from opentelemetry.trace import SpanKind, Status, StatusCode
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    _trace = _otel_trace
except ImportError:  # the 'tracing' extra is not installed: everything is a no-op
    _trace = None

log = structlog.get_logger(__name__)

TRACER_NAME = "are_workers"
#: W3C trace context, version 00: ``00-<32 hex trace id>-<16 hex span id>-<2 hex flags>``.
TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}")


class _State:
    enabled = False  # set once by configure(): this process exports spans


_state = _State()


def available() -> bool:
    """Whether the OpenTelemetry API is installed (the ``tracing`` extra)."""
    return _trace is not None


def enabled() -> bool:
    """Whether this process exports spans (``configure`` found an exporter to use)."""
    return _state.enabled


def trace_id_of(traceparent: str | None) -> str | None:
    """The trace id in a ``traceparent`` (for log lines and pages), None if malformed."""
    match = TRACEPARENT.match(traceparent or "")
    if match is None or set(match.group(1)) == {"0"}:
        return None
    return match.group(1)


def _endpoint(settings: Settings) -> str | None:
    if settings.otel_exporter_otlp_endpoint:
        return settings.otel_exporter_otlp_endpoint
    return os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )


def configure(settings: Settings, *, process: str) -> bool:
    """Export this process's spans by OTLP/HTTP when an endpoint is configured.

    ``process`` names the kind of process in the spans' resource (``are.process``). Returns
    whether spans are exported. Our own variable without the extra installed is an error
    (it asked for traces); the standard ``OTEL_*`` ones may be set cluster-wide for other
    programs, so without the extra they only earn a warning.
    """
    endpoint = _endpoint(settings)
    if endpoint is None or os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    if os.environ.get("OTEL_TRACES_EXPORTER", "otlp").lower() == "none":
        return False
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        if settings.otel_exporter_otlp_endpoint:
            raise ConfigurationError(
                "ARE_OTEL_EXPORTER_OTLP_ENDPOINT is set but OpenTelemetry is not installed: "
                "install the 'tracing' extra (pip install 'are-workers[tracing]') or unset it."
            ) from None
        log.warning("tracing_not_installed", hint="pip install 'are-workers[tracing]'")
        return False
    if _state.enabled:
        return True
    attributes: dict[str, str] = {"are.process": process}
    if not os.environ.get("OTEL_SERVICE_NAME") and "service.name=" not in os.environ.get(
        "OTEL_RESOURCE_ATTRIBUTES", ""
    ):
        attributes["service.name"] = "are-workers"
    provider = TracerProvider(resource=Resource.create(attributes))
    # Our variable is a base URL, like OTEL_EXPORTER_OTLP_ENDPOINT; without it the exporter
    # reads the OTEL_EXPORTER_OTLP_* variables itself.
    exporter = (
        OTLPSpanExporter(endpoint=settings.otel_exporter_otlp_endpoint.rstrip("/") + "/v1/traces")
        if settings.otel_exporter_otlp_endpoint
        else OTLPSpanExporter()
    )
    provider.add_span_processor(BatchSpanProcessor(exporter))
    _trace.set_tracer_provider(provider)
    _state.enabled = True
    log.info("tracing_configured", process=process)
    return True


def _tracer() -> Any:
    return _trace.get_tracer(TRACER_NAME)


def _format(span_context: Any) -> str:
    return (
        f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}-"
        f"{int(span_context.trace_flags):02x}"
    )


@contextmanager
def enqueue_span(actor: str, job_id: Any) -> Iterator[str | None]:
    """Around a ledger INSERT: yields the ``traceparent`` to store on the row.

    None outside any trace (no current span, or no OpenTelemetry): a job enqueued outside a
    trace starts a trace of its own in the worker.
    """
    if _trace is None or not _trace.get_current_span().get_span_context().is_valid:
        yield None
        return
    with _tracer().start_as_current_span(
        f"enqueue {actor}",
        kind=SpanKind.PRODUCER,
        attributes={"are.actor": actor, "are.job_id": str(job_id)},
    ) as span:
        yield _format(span.get_span_context())


class _NoSpan:
    """What :func:`span` yields when nothing is traced."""

    def set_attribute(self, key: str, value: Any) -> None:
        return None


_NO_SPAN = _NoSpan()


@contextmanager
def span(name: str, **attributes: Any) -> Iterator[Any]:
    """An internal span of this process (the relay's batch, the sweeper's sweep)."""
    if not _state.enabled:
        yield _NO_SPAN
        return
    with _tracer().start_as_current_span(name, attributes=attributes) as current:
        yield current


class JobTrace:
    """The spans of one job in a worker, opened and closed by the ledger middleware.

    The claim happens before the worker knows the job's trace (the ``traceparent`` comes
    back from the claim's ``UPDATE … RETURNING``), so the job and claim spans are started
    with the claim's start time once it returns.
    """

    def __init__(self, job: Any, actor: Any, token: Any) -> None:
        self._job = job
        self._actor: Any = actor
        self._token: Any = token
        self._phase: Any = None

    @classmethod
    def start(cls, claim: Claim, *, queue: str, claim_started_ns: int) -> JobTrace:
        tracer = _tracer()
        parent = TraceContextTextMapPropagator().extract({"traceparent": claim.traceparent or ""})
        attributes = {
            "are.job_id": str(claim.job_id),
            "are.actor": claim.actor,
            "are.attempt": claim.attempt,
            "are.queue": queue,
            "are.recovered": claim.recovered,
        }
        if claim.organization_id is not None:
            attributes["are.organization_id"] = str(claim.organization_id)
        job = tracer.start_span(
            f"job {claim.actor}",
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes=attributes,
            start_time=claim_started_ns,
        )
        in_job = _trace.set_span_in_context(job)
        tracer.start_span("claim", context=in_job, start_time=claim_started_ns).end()
        actor = tracer.start_span(f"actor {claim.actor}", context=in_job)
        token = _otel_context.attach(_trace.set_span_in_context(actor, in_job))
        return cls(job, actor, token)

    def actor_ended(self, exception: BaseException | None) -> None:
        """The actor returned or raised (on its own thread: the context is detached here)."""
        if self._actor is None:
            return
        if exception is not None:
            self._actor.record_exception(exception)
            self._actor.set_status(Status(StatusCode.ERROR, type(exception).__name__))
        self._actor.end()
        self._actor = None
        _otel_context.detach(self._token)

    def phase(self, name: str) -> None:
        """Open the span of what follows the actor: ``commit`` or ``record failure``.

        A phase still open (a commit that raised, followed by recording the failure) ends
        here, as failed.
        """
        if self._phase is not None:
            self._phase.set_status(Status(StatusCode.ERROR, f"{name} followed"))
            self._phase.end()
        context = _trace.set_span_in_context(self._job)
        self._phase = _tracer().start_span(name, context=context)

    def end(self, outcome: str, error: BaseException | None = None) -> None:
        """Close the phase and the job: ``outcome`` is the ledger status (or lease_lost)."""
        for current in (self._phase, self._job):
            if current is None:
                continue
            current.set_attribute("are.outcome", outcome)
            if error is not None:
                current.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}"))
            current.end()
        self._phase = self._job = None


class _NoJobTrace(JobTrace):
    def __init__(self) -> None:
        pass

    def actor_ended(self, exception: BaseException | None) -> None:
        return None

    def phase(self, name: str) -> None:
        return None

    def end(self, outcome: str, error: BaseException | None = None) -> None:
        return None


NO_TRACE: JobTrace = _NoJobTrace()


def start_job(claim: Claim, *, queue: str, claim_started_ns: int) -> JobTrace:
    """The job's spans, continuing the trace its enqueuer stored; a no-op when not exporting."""
    if not _state.enabled:
        return NO_TRACE
    return JobTrace.start(claim, queue=queue, claim_started_ns=claim_started_ns)


def now_ns() -> int:
    return time.time_ns()
