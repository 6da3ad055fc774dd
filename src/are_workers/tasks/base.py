"""``job_actor``: declares a Dramatiq actor from its catalogue entry.

Why: the queue and time limit of each job kind live once, in ``are_workers.catalog``, where
the light client reads them too. Actors stay thin: they take IDs, fetch their session from
``current_job()`` and call a service function.

The runtime owns argument parsing: a parameter annotated ``uuid.UUID`` (or a list of them)
arrives parsed, and a malformed id fails the job permanently, on its first attempt, with a
message that names the argument; it is never retried (a ``ValueError`` would be).
Failure hooks (``on_permanent_failure`` for ``failed``, ``on_dead`` for ``dead``) receive
the same parsed arguments.
"""

from __future__ import annotations

import functools
import inspect
import typing
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import dramatiq

from are_workers.broker import get_broker
from are_workers.catalog import JOB_KINDS, queue_for
from are_workers.errors import InvalidInputError
from are_workers.job_context import current_job

F = TypeVar("F", bound=Callable[..., Any])

ArgParser = Callable[[dict[str, Any]], dict[str, Any]]


def parse_uuid(value: Any, name: str) -> uuid.UUID:
    """One id argument; a malformed one is a permanent, worded error."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        raise InvalidInputError(
            f"The job's {name} is {shown}, which is not a valid id. The job was not run; "
            "enqueue it again with the id of an existing record.",
            code="invalid_id",
        ) from None


def argument_parser(fn: Callable[..., Any]) -> ArgParser:
    """Parses the keyword arguments a message carries into ``fn``'s typed arguments."""
    hints = typing.get_type_hints(fn)
    converters: dict[str, Callable[[Any], Any]] = {}
    for name in inspect.signature(fn).parameters:
        hint = hints.get(name)
        args = set(typing.get_args(hint))
        if hint is uuid.UUID or args == {uuid.UUID, type(None)}:
            converters[name] = functools.partial(_optional_uuid, name=name)
        elif hint == list[uuid.UUID] or list[uuid.UUID] in args:
            converters[name] = functools.partial(_uuid_list, name=name)

    def parse(kwargs: dict[str, Any]) -> dict[str, Any]:
        return {k: converters[k](v) if k in converters else v for k, v in kwargs.items()}

    return parse


def _optional_uuid(value: Any, *, name: str) -> uuid.UUID | None:
    return None if value is None else parse_uuid(value, name)


def _uuid_list(value: Any, *, name: str) -> list[uuid.UUID] | None:
    if value is None:
        return None
    if not isinstance(value, list | tuple):
        raise InvalidInputError(
            f"The job's {name} must be a list of ids, not {type(value).__name__}.",
            code="invalid_id",
        )
    return [parse_uuid(item, name) for item in value]


def job_actor(name: str, **options: Any) -> Callable[[F], dramatiq.Actor[Any, Any]]:
    kind = JOB_KINDS[name]

    def declare(fn: F) -> dramatiq.Actor[Any, Any]:
        parse = argument_parser(fn)
        positional = list(inspect.signature(fn).parameters)

        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> None:
            kwargs.update(zip(positional, args, strict=False))
            # The return value is the job's result on its ledger row (Dramatiq discards it).
            result = fn(**parse(kwargs))
            if result is not None:
                current_job().result = result

        declare_actor = dramatiq.actor(
            actor_name=name,
            queue_name=queue_for(name),
            broker=get_broker(),
            time_limit=kind.time_limit_s * 1000,
            parse_args=parse,
            **options,
        )
        return declare_actor(run)

    return declare


#: Warm-up functions per queue class: a worker child runs those of the queues it consumes
#: before it reports ready, so the first job does not pay for loading a model.
WARMUPS: dict[str, list[Callable[[], None]]] = {}


def warmup(queue_class: str) -> Callable[[Callable[[], None]], Callable[[], None]]:
    def register(fn: Callable[[], None]) -> Callable[[], None]:
        WARMUPS.setdefault(queue_class, []).append(fn)
        return fn

    return register
