"""The running job: its session, its ledger claim and its hooks, in a context variable.

Why a neutral module: services stamp audit and usage rows with the running job's id, and
actors register work that must follow the job's transaction (a file to delete if it rolls
back, a message to send once it commits). Neither should import the middleware that runs
jobs, so the middleware *sets* the context here and everyone else only reads it.

Hooks run in the order they were added:

* ``after_commit(fn)``: once the job's transaction committed together with its
  ``succeeded`` row (never when it rolled back or the lease was lost).
* ``after_rollback(fn)``: whenever the job's writes did not commit: the actor raised, the
  commit failed, or another worker had taken the job over. Use it to remove side effects
  outside the database (files written before the commit).
"""

from __future__ import annotations

import contextvars
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog

from are_workers.tracing import NO_TRACE, JobTrace

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from are_workers.ledger import Claim

log = structlog.get_logger(__name__)

Hook = Callable[[], None]


@dataclass
class JobContext:
    """What an actor may use while it runs: its session, its ledger claim and its hooks."""

    session: Session
    claim: Claim
    started: float = field(default_factory=time.perf_counter)
    result: dict[str, Any] | None = None  # stored on the ledger row when the job succeeds
    #: The job's spans, continuing its enqueuer's trace (a no-op when not exporting traces).
    trace: JobTrace = field(default=NO_TRACE, repr=False)
    _after_commit: list[Hook] = field(default_factory=list, repr=False)
    _after_rollback: list[Hook] = field(default_factory=list, repr=False)

    @property
    def job_id(self) -> uuid.UUID:
        return self.claim.job_id

    @property
    def organization_id(self) -> uuid.UUID | None:
        return self.claim.organization_id

    @property
    def is_last_attempt(self) -> bool:
        return self.claim.attempt >= self.claim.max_attempts

    def require_organization(self) -> uuid.UUID:
        """The job's tenant; tenant jobs enqueued without one fail permanently, clearly."""
        if self.claim.organization_id is None:
            from are_workers.errors import InvalidInputError

            raise InvalidInputError(
                f"This {self.claim.actor} job was enqueued without an organization; jobs "
                "that touch tenant data always belong to one.",
                code="missing_organization",
            )
        return self.claim.organization_id

    @property
    def has_hooks(self) -> bool:
        return bool(self._after_commit or self._after_rollback)

    def after_commit(self, hook: Hook) -> None:
        self._after_commit.append(hook)

    def after_rollback(self, hook: Hook) -> None:
        self._after_rollback.append(hook)

    def run_after_commit(self) -> None:
        _run(self._after_commit, "after_commit")
        self._after_commit.clear()
        self._after_rollback.clear()

    def run_after_rollback(self) -> None:
        _run(self._after_rollback, "after_rollback")
        self._after_rollback.clear()
        self._after_commit.clear()


def _run(hooks: list[Hook], kind: str) -> None:
    # A failing hook must not hide the job's outcome or stop the hooks after it.
    for hook in hooks:
        try:
            hook()
        except Exception:
            log.error("job_hook_failed", hook=kind, exc_info=True)


_current: contextvars.ContextVar[JobContext | None] = contextvars.ContextVar(
    "are_workers_job", default=None
)


def current_job() -> JobContext:
    """The running job. Only valid inside an actor (or :func:`running_job`)."""
    ctx = _current.get()
    if ctx is None:
        raise RuntimeError("current_job() called outside a job managed by the ledger")
    return ctx


def active_job() -> JobContext | None:
    """The running job, or None outside one."""
    return _current.get()


def current_job_id() -> uuid.UUID | None:
    """The running job's id, for stamping audit and usage rows; None outside a job."""
    ctx = _current.get()
    return ctx.job_id if ctx is not None else None


def set_current(ctx: JobContext | None) -> contextvars.Token[JobContext | None]:
    """For the ledger middleware: make ``ctx`` the running job of this thread."""
    return _current.set(ctx)


@contextmanager
def as_job(
    session: Session,
    job_id: uuid.UUID,
    *,
    actor: str = "inline",
    organization_id: uuid.UUID | None = None,
) -> Iterator[JobContext]:
    """Run the block as job ``job_id`` without a ledger row: audit and usage rows written
    inside it name that job (what a redelivery of the same job would write)."""
    from are_workers.ledger import Claim

    claim = Claim(job_id, actor, 1, organization_id, {}, recovered=False)
    ctx = JobContext(session=session, claim=claim)
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)


@contextmanager
def running_job(
    session: Session,
    actor: str,
    args: dict[str, Any] | None = None,
    organization_id: uuid.UUID | None = None,
    *,
    commit_hooks: bool = False,
) -> Iterator[JobContext]:
    """Enqueue and claim a ledger job in ``session``, and run the block as that job.

    For tests and one-off scripts that call an actor's function directly. With
    ``commit_hooks`` the block's end runs the ``after_commit`` hooks (or, when it raised,
    the ``after_rollback`` ones), as the middleware would around a real commit.
    """
    from are_workers import ledger

    job_id = ledger.enqueue(session, actor, args or {}, organization_id=organization_id)
    claim = ledger.claim(session, job_id, worker_id="inline/0", lease_seconds=300, crash_cap=3)
    if claim is None:  # pragma: no cover - a fresh job is always claimable
        raise RuntimeError(f"could not claim the {actor} job just enqueued")
    ctx = JobContext(session=session, claim=claim)
    token = _current.set(ctx)
    try:
        yield ctx
    except BaseException:
        if commit_hooks:
            ctx.run_after_rollback()
        raise
    else:
        if commit_hooks:
            ctx.run_after_commit()
    finally:
        _current.reset(token)
