"""Per-message DB session and ledger bookkeeping: claim, finish, fail, in one place.

Why one class: the session and the ledger row must agree. The claim commits on its own (so
the lease is visible to sweepers), the actor's writes and the "succeeded" update share one
transaction (so effects and completion commit together, fenced on the claimed attempt), and a
failure is recorded after the actor's transaction rolled back. Splitting those steps across
middlewares would make their order a convention instead of code.
"""

from __future__ import annotations

import functools
import json
import os
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import dramatiq
import structlog
from dramatiq.broker import MessageProxy
from dramatiq.middleware import Middleware, SkipMessage
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from are_workers import ledger, tracing
from are_workers.config import Settings
from are_workers.errors import GaveUpError, InvalidInputError, PermanentError
from are_workers.job_context import JobContext, active_job, set_current
from are_workers.middleware.batching import Batcher
from are_workers.middleware.deferred_acks import DeferredAcks
from are_workers.middleware.leases import LeaseKeeper
from are_workers.worker_registry import Registration

log = structlog.get_logger(__name__)

#: ``on_permanent_failure(session, error, parsed_kwargs, ctx)`` and ``on_dead(...)``: record
#: the outcome on the job's entity, in the transaction that marks the job failed or dead.
FailureHook = Callable[[Session, PermanentError, dict[str, Any], JobContext], None]

#: ("claim", job_id) or ("done", (job_id, attempt, result_json)): one batcher serves both.
Bookkeeping = tuple[str, Any]

#: How long a worker keeps trying to record a job's outcome while the database is down;
#: after that the lease expires and the sweeper re-queues the job.
OUTCOME_RETRY_SECONDS = 60.0


def default_worker_id() -> str:
    return f"{socket.gethostname()}/{os.getpid()}"


class UnknownActorError(PermanentError):
    code = "unknown_actor"


def _actor_options(broker: dramatiq.Broker, message: MessageProxy) -> dict[str, Any]:
    try:
        return dict(broker.get_actor(message.actor_name).options)
    except dramatiq.errors.ActorNotFound:
        return {}


def failure_hook(options: dict[str, Any], status: str) -> FailureHook | None:
    """The actor's hook for a job that ended ``failed`` or ``dead``. Without an ``on_dead``
    of its own, ``on_permanent_failure`` records the end, so an entity never stays
    "processing" after its job gave up."""
    permanent = options.get("on_permanent_failure")
    hooks = {"failed": permanent, "dead": options.get("on_dead") or permanent}
    return hooks.get(status)


def parsed_arguments(options: dict[str, Any], kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """A message's kwargs as the actor's typed arguments (its ``parse_args``); None when they
    do not parse (a malformed id names no entity whose status a hook could set)."""
    parse = options.get("parse_args")
    if parse is None:
        return dict(kwargs)
    try:
        parsed: dict[str, Any] = parse(dict(kwargs))
    except InvalidInputError:
        return None
    return parsed


def _unknown_actor(message: MessageProxy) -> UnknownActorError:
    return UnknownActorError(
        f"No worker knows the job type {message.actor_name!r}. Deploy a worker version "
        "that has it, then replay the job."
    )


class LedgerMiddleware(Middleware):
    """Claims each message's job, gives the actor a session, and records the outcome."""

    #: ``parse_args`` is set by ``job_actor``: it turns the message's kwargs into the
    #: actor's typed arguments, so failure hooks receive what the actor received.
    actor_options = {"on_permanent_failure", "on_dead", "parse_args"}

    def __init__(self, settings: Settings, engine_getter: Callable[[], Engine]) -> None:
        self.settings = settings
        self._engine_getter = engine_getter
        self.worker_id = default_worker_id()
        self.leases = LeaseKeeper(
            engine_getter,
            worker_id=self.worker_id,
            lease_seconds=settings.job_lease_seconds,
            interval_seconds=settings.heartbeat_seconds,
        )
        # Claims and side-effect-free completions share one batcher, so one commit serves
        # both kinds of bookkeeping of every thread in this process.
        self.bookkeeping: Batcher[Bookkeeping, ledger.Claim | bool] = Batcher(
            engine_getter, self._write_bookkeeping, name="are-bookkeeping"
        )
        #: Set by the broker when its consumers can hold a message's ack until the job's
        #: completion commits; then a thread need not wait for that commit.
        self.acks: DeferredAcks | None = None

    # --- worker lifecycle -----------------------------------------------------------

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self.worker_id = default_worker_id()  # after fork: our own pid
        self.leases.worker_id = self.worker_id
        self.leases.registration = Registration(
            self.worker_id,
            sorted(worker.consumer_whitelist or broker.get_declared_queues()),
            worker.worker_threads,
        )
        self.leases.start()

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        # After the drain, not before it: jobs that are finishing keep their leases.
        self.leases.stop()

    # --- per message ------------------------------------------------------------------

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        engine = self._engine_getter()
        claim_started = tracing.now_ns()
        claim = self.bookkeeping.submit(("claim", message.message_id))
        assert claim is None or isinstance(claim, ledger.Claim)
        if claim is None:
            log.info("duplicate_delivery_dropped", message_id=message.message_id)
            raise SkipMessage("job already claimed, finished or not due")
        structlog.contextvars.bind_contextvars(
            job_id=str(claim.job_id),
            message_id=message.message_id,
            actor=claim.actor,
            organization_id=str(claim.organization_id) if claim.organization_id else None,
            attempt=claim.attempt,
            trace_id=tracing.trace_id_of(claim.traceparent),
        )
        if claim.recovered:
            log.warning("job_recovered_from_dead_worker")
        self.leases.add(claim.job_id)
        trace = tracing.start_job(
            claim, queue=message.queue_name, claim_started_ns=claim_started
        )  # the actor's span is current on this thread until after_process_message
        session = Session(bind=engine, expire_on_commit=False)
        set_current(JobContext(session=session, claim=claim, trace=trace))

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        ctx = active_job()
        if ctx is None:  # the claim itself failed (e.g. DB down); the sweeper re-sends it
            return
        ctx.trace.actor_ended(exception)
        finishing_later = False
        try:
            if (
                exception is None
                and self.acks is not None
                and not ctx.session.in_transaction()
                and not ctx.has_hooks
            ):
                ctx.trace.phase("commit")
                self._finish_later(ctx, message)
                finishing_later = True
            elif exception is None:
                ctx.trace.phase("commit")
                exception = self._commit_success(ctx, ctx.result)
            if exception is not None:
                ctx.session.rollback()
                ctx.run_after_rollback()
                ctx.trace.phase("record failure")
                status = self._record_failure(broker, message, ctx, exception)
                ctx.trace.end(status or "not_recorded", exception)
        finally:
            set_current(None)  # after the failure hooks, which stamp rows with the job's id
            ctx.session.close()
            if not finishing_later:
                self.leases.discard(ctx.job_id)
            structlog.contextvars.clear_contextvars()

    def after_skip_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        structlog.contextvars.clear_contextvars()

    def before_nack(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        """Dramatiq dead-letters a message for an actor it does not know, before any claim.

        Record that on the ledger as a permanent failure, or the sweeper would re-send it
        forever.
        """
        exception = getattr(message, "_exception", None)
        if isinstance(exception, dramatiq.errors.ActorNotFound):
            with self._engine_getter().begin() as conn:
                ledger.fail_unclaimed(conn, message.message_id, error=_unknown_actor(message))

    # --- helpers ----------------------------------------------------------------------

    def _write_bookkeeping(
        self, conn: Connection, items: list[Bookkeeping]
    ) -> dict[Bookkeeping, ledger.Claim | bool]:
        finished = [item[1] for item in items if item[0] == "done"]
        to_claim = [item[1] for item in items if item[0] == "claim"]
        done, claims = ledger.finish_and_claim(
            conn,
            finished,
            to_claim,
            worker_id=self.worker_id,
            lease_seconds=self.settings.job_lease_seconds,
            crash_cap=self.settings.crash_cap,
        )
        results: dict[Bookkeeping, ledger.Claim | bool] = {
            ("claim", str(job_id)): claim for job_id, claim in claims.items()
        }
        for job_id, attempt, result in finished:
            results["done", (job_id, attempt, result)] = job_id in done
        return results

    def _commit_success(self, ctx: JobContext, result: Any) -> BaseException | None:
        """Record success; returns an error if it could not be recorded.

        A job that wrote to the database finishes in its own transaction, so its effects and
        its completion commit together. A job that never touched its session has nothing to
        commit with it, so its completion joins the process-wide batch.
        """
        try:
            payload = result if isinstance(result, dict) else None
            if not ctx.session.in_transaction():
                encoded = json.dumps(payload, default=str) if payload is not None else None
                if not self.bookkeeping.submit(("done", (ctx.job_id, ctx.claim.attempt, encoded))):
                    log.warning("lease_lost_result_discarded")
                    ctx.trace.end("lease_lost")
                    ctx.run_after_rollback()
                else:
                    log.info("job_succeeded", seconds=round(time.perf_counter() - ctx.started, 4))
                    ctx.trace.end("succeeded")
                    ctx.run_after_commit()
                return None
            if not ledger.mark_succeeded(ctx.session, ctx.job_id, ctx.claim.attempt, payload):
                ctx.session.rollback()
                log.warning("lease_lost_effects_discarded")
                ctx.trace.end("lease_lost")
                ctx.run_after_rollback()
                return None
            ctx.session.commit()
            log.info("job_succeeded", seconds=round(time.perf_counter() - ctx.started, 4))
            ctx.trace.end("succeeded")
            ctx.run_after_commit()
            return None
        except Exception as exc:  # commit failed: nothing was applied, so it is a failure
            return exc

    def _finish_later(self, ctx: JobContext, message: MessageProxy) -> None:
        """Hand a side-effect-free job's completion to the batch; its ack waits for it.

        The thread goes on to its next message at once, so that message's claim joins the
        batch that commits this completion. The message is acked only after the completion
        committed (``DeferredAcks``); until then the job keeps its lease.
        """
        payload = ctx.result if isinstance(ctx.result, dict) else None
        encoded = json.dumps(payload, default=str) if payload is not None else None
        settled: Future[None] = Future()
        assert self.acks is not None
        self.acks.defer(message, settled)
        self._submit_completion(
            ("done", (ctx.job_id, ctx.claim.attempt, encoded)),
            settled,
            started=ctx.started,
            deadline=time.monotonic() + OUTCOME_RETRY_SECONDS,
            delay=0.5,
            trace=ctx.trace,
        )

    def _submit_completion(
        self,
        item: Bookkeeping,
        settled: Future[None],
        *,
        started: float,
        deadline: float,
        delay: float,
        trace: tracing.JobTrace = tracing.NO_TRACE,
    ) -> None:
        future = self.bookkeeping.submit_nowait(item)
        future.add_done_callback(
            functools.partial(
                self._completion_written,
                item,
                settled,
                started=started,
                deadline=deadline,
                delay=delay,
                trace=trace,
            )
        )

    def _completion_written(
        self,
        item: Bookkeeping,
        settled: Future[None],
        future: Future[ledger.Claim | bool | None],
        *,
        started: float,
        deadline: float,
        delay: float,
        trace: tracing.JobTrace = tracing.NO_TRACE,
    ) -> None:
        """On the batcher's thread: log the outcome, or try again later if the write failed."""
        job_id = item[1][0]
        error = future.exception()
        if error is not None and time.monotonic() < deadline:
            log.warning("job_completion_retrying", job_id=str(job_id), error=str(error)[:500])
            retry = threading.Timer(
                delay,
                self._submit_completion,
                (item, settled),
                {
                    "started": started,
                    "deadline": deadline,
                    "delay": min(delay * 2, 10.0),
                    "trace": trace,
                },
            )
            retry.daemon = True
            retry.start()
            return
        if error is not None:  # the lease expires and the sweeper re-queues the job
            log.error("job_outcome_not_recorded", job_id=str(job_id), error=str(error)[:500])
            trace.end("not_recorded", error)
        elif future.result():
            log.info(
                "job_succeeded",
                job_id=str(job_id),
                seconds=round(time.perf_counter() - started, 4),
            )
            trace.end("succeeded")
        else:
            log.warning("lease_lost_result_discarded", job_id=str(job_id))
            trace.end("lease_lost")
        self.leases.discard(job_id)
        settled.set_result(None)

    def _record_failure(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        ctx: JobContext,
        exception: BaseException,
    ) -> str | None:
        """Record the failed attempt; returns the job's new status (None if not recorded)."""
        if isinstance(exception, dramatiq.errors.ActorNotFound):
            exception = _unknown_actor(message)
        options = _actor_options(broker, message)
        # The database may itself be what failed: keep trying to record the outcome for a
        # while; if it stays down the lease expires and the sweeper re-queues the job.
        delay = 0.5
        deadline = time.monotonic() + 60
        while True:
            session = Session(bind=self._engine_getter(), expire_on_commit=False)
            try:
                status = ledger.mark_failed(
                    session,
                    ctx.job_id,
                    ctx.claim.attempt,
                    error=exception,
                    max_attempts=ctx.claim.max_attempts,
                    backoff_base=self.settings.retry_backoff_seconds,
                    backoff_max=self.settings.retry_backoff_max_seconds,
                )
                hook = failure_hook(options, status) if status is not None else None
                if hook is not None:
                    parsed = parsed_arguments(options, dict(message.kwargs))
                    if parsed is not None:
                        error = (
                            exception
                            if isinstance(exception, PermanentError)
                            else GaveUpError(ctx.claim.attempt, type(exception).__name__)
                        )
                        hook(session, error, parsed, ctx)
                session.commit()
                log.log(
                    30 if status == "retrying" else 40,
                    "job_failed",
                    status=status,
                    error_type=type(exception).__name__,
                    error=str(exception)[:500],
                )
                return status
            except DBAPIError:
                session.rollback()
                if time.monotonic() > deadline:
                    log.error("job_outcome_not_recorded", exc_info=True)
                    return None
                time.sleep(delay)
                delay = min(delay * 2, 10)
            finally:
                session.close()
