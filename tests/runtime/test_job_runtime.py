"""The job runtime's contracts: typed id arguments, the job context and its hooks."""

from __future__ import annotations

import inspect
import typing
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from are_workers import ledger
from are_workers.broker import get_broker
from are_workers.errors import InvalidInputError
from are_workers.job_context import active_job, current_job_id, running_job
from are_workers.tasks import registry
from are_workers.tasks.base import argument_parser
from tests.factories import make_org

registry.load_all()


def _id_parameters() -> list[tuple[str, str]]:
    broker = get_broker()
    found = []
    for name in sorted(broker.get_declared_actors()):
        fn = inspect.unwrap(broker.get_actor(name).fn)
        hints = typing.get_type_hints(fn)
        for param, hint in hints.items():
            if uuid.UUID in {hint, *typing.get_args(hint)} or list[uuid.UUID] in {
                hint,
                *typing.get_args(hint),
            }:
                found.append((name, param))
    return found


ID_PARAMETERS = _id_parameters()


def test_every_actor_that_takes_an_entity_id_declares_it_as_a_uuid() -> None:
    actors = {name for name, _ in ID_PARAMETERS}
    for expected in ("resumes.process_file", "resumes.process_candidate", "matching.match_job",
                     "matching.embed_job", "media.transcribe_response", "media.analyze_response",
                     "media.proctor_snapshots", "portfolios.evaluate", "assessments.score_response",
                     "assessments.start_session", "compliance.process_dsr"):  # fmt: skip
        assert expected in actors


@pytest.mark.parametrize(("actor", "param"), ID_PARAMETERS)
def test_a_malformed_id_is_a_permanent_worded_error(actor: str, param: str) -> None:
    parse = get_broker().get_actor(actor).options["parse_args"]
    value: object = ["not-an-id"] if "file_ids" in param else "not-an-id"
    with pytest.raises(InvalidInputError) as caught:
        parse({param: value})
    assert caught.value.code == "invalid_id"
    assert param in caught.value.user_message and "not a valid id" in caught.value.user_message


@pytest.mark.parametrize("actor", ["resumes.process_file", "matching.match_job",
                                   "media.transcribe_response", "portfolios.evaluate"])  # fmt: skip
def test_a_malformed_id_ends_the_job_failed_on_its_first_attempt(db: Session, actor: str) -> None:
    """Fix: ``uuid.UUID(...)`` raised ValueError, which the ledger retries five times."""
    params = [p for a, p in ID_PARAMETERS if a == actor]
    org = make_org(db)
    with running_job(db, actor, dict.fromkeys(params, "12345"), org.id) as job:
        with pytest.raises(InvalidInputError) as caught:
            get_broker().get_actor(actor).fn(**dict.fromkeys(params, "12345"))
        status = ledger.mark_failed(db, job.job_id, job.claim.attempt, error=caught.value,
                                    max_attempts=6, backoff_base=1, backoff_max=1)  # fmt: skip
    assert status == "failed"
    row = db.execute(text("SELECT attempts, error_message FROM task_runs WHERE id = :i"),
                     {"i": job.job_id}).one()  # fmt: skip
    assert row.attempts == 1 and "not a valid id" in row.error_message


def test_the_parser_turns_ids_into_uuids_and_leaves_the_rest() -> None:
    def actor(file_id: uuid.UUID, others: list[uuid.UUID] | None = None, top_k: int = 3) -> None:
        return None

    parse = argument_parser(actor)
    one, two = uuid.uuid4(), uuid.uuid4()
    parsed = parse({"file_id": str(one), "others": [str(two)], "top_k": 5})
    assert parsed == {"file_id": one, "others": [two], "top_k": 5}
    assert parse({"file_id": one, "others": None}) == {"file_id": one, "others": None}


def test_the_job_context_names_the_job_and_runs_its_hooks(db: Session) -> None:
    assert active_job() is None and current_job_id() is None
    events: list[str] = []
    with running_job(db, "system.noop", {}, None, commit_hooks=True) as job:
        assert current_job_id() == job.job_id
        job.after_commit(lambda: events.append("commit"))
        job.after_rollback(lambda: events.append("rollback"))
    assert events == ["commit"] and active_job() is None

    def failing_job() -> None:
        with running_job(db, "system.noop", commit_hooks=True) as job:
            job.after_commit(lambda: events.append("commit2"))
            job.after_rollback(lambda: events.append("rollback2"))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        failing_job()
    assert events == ["commit", "rollback2"]


def test_services_do_not_import_the_middleware() -> None:
    root = Path(__file__).resolve().parents[2] / "src" / "are_workers" / "services"
    offenders = [
        str(p.relative_to(root))
        for p in root.rglob("*.py")
        if "are_workers.middleware" in p.read_text()
    ]
    assert offenders == []
