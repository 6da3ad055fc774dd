"""Answers scored by a real worker process through the ledger and a real Redis.

One test, because it is slow to start a worker: an accepted answer commits its score with
the job's completion, and a refused one fails the job with the reason for people, which the
failure hook also notes on the session after the attempt was rolled back.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from are_workers import client
from are_workers.models.engine import make_engine
from are_workers.services.assessments import sessions
from tests.assessments.factories import (
    add_response,
    make_assessment,
    make_bank,
    make_norm_group,
    make_session,
    pending_item,
)
from tests.factories import make_org
from tests.procs import PrivateRedis, start_worker, stop_worker, wait_status, worker_env

pytestmark = [pytest.mark.multiprocess, pytest.mark.slow]


@pytest.fixture
def engine_and_env(
    isolated_database: str, tmp_path: Path
) -> Iterator[tuple[Engine, dict[str, str]]]:
    engine = make_engine(isolated_database, pool_size=2, application_name="are-assessment-test")
    redis = PrivateRedis(tmp_path / "redis").start()
    yield engine, worker_env(isolated_database, redis.url, tmp_path / "data")
    redis.kill()
    engine.dispose()


def test_a_worker_scores_an_answer_and_refuses_one_for_an_unseen_question(
    engine_and_env: tuple[Engine, dict[str, str]], tmp_path: Path
) -> None:
    engine, env = engine_and_env
    with Session(engine) as db, db.begin():
        org = make_org(db)
        bank = make_bank(db, org, n=20)
        assessment = make_assessment(db, org, bank)
        make_norm_group(db, org, assessment)
        session_id = make_session(db, org, assessment).id
        org_id = org.id
        sessions.begin_session(db, org_id, session_id)
        first = pending_item(db, session_id)
        # Any question but the one presented. The answer to it is scored first, while only
        # the first question has been presented: once the good answer is scored the next
        # question is chosen, and it may be this one (a wide selection prior reaches the
        # bank's extreme items after one answer).
        unseen = max((i for i in bank.items if i.id != first), key=lambda i: abs(i.b)).id
        good = add_response(db, org_id, session_id, first, answer={"option": "a"})
        bad = add_response(db, org_id, session_id, unseen, answer={"option": "a"})
        bad_job = client.score_assessment_response(db, organization_id=org_id, response_id=bad)

    log = tmp_path / "worker.log"
    worker = start_worker(env, log=log)
    try:
        failed = wait_status(engine, bad_job, {"failed"}, timeout=60)
        with Session(engine) as db, db.begin():
            good_job = client.score_assessment_response(
                db, organization_id=org_id, response_id=good
            )
        assert wait_status(engine, good_job, {"succeeded"}, timeout=60).attempts == 1
    finally:
        assert stop_worker(worker) == 0, log.read_text()[-3000:]

    assert failed.attempts == 1 and "was not presented in this session" in failed.error_message
    with engine.connect() as conn:
        scored = conn.execute(
            text("SELECT category, theta_after FROM assessment_responses WHERE id = :r"),
            {"r": good},
        ).one()
        assert scored.category == 1 and scored.theta_after is not None
        row = conn.execute(
            text("SELECT status::text AS status, items_administered, state "
                 "FROM assessment_sessions WHERE id = :s"), {"s": session_id},
        ).one()  # fmt: skip
        assert row.status == "open" and row.items_administered == 2
        rejection = row.state["rejected_responses"][str(bad)]
        assert rejection["code"] == "item_not_administered"
        assert rejection["job_id"] == str(bad_job)
        result = conn.execute(
            text("SELECT result FROM task_runs WHERE id = :j"), {"j": good_job}
        ).scalar_one()
        assert result["response_id"] == str(good) and result["items_answered"] == 1
