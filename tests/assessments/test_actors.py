"""The actors themselves: their catalogue options, and their bodies run under a real ledger
claim (``current_job()`` set up as the middleware does, in the test's savepoint)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from are_workers.errors import InvalidInputError, NotFoundError
from are_workers.job_context import running_job
from are_workers.services.assessments import sessions
from are_workers.tasks import assessments as actors
from are_workers.tasks import registry
from tests.assessments.conftest import Tenant
from tests.assessments.factories import add_response, make_session, pending_item
from tests.factories import make_org


def test_actors_are_registered_with_their_catalogue_options() -> None:
    assert "are_workers.tasks.assessments" in registry.ACTOR_MODULES
    assert actors.score_response.actor_name == "assessments.score_response"
    assert actors.score_response.queue_name == "default"
    assert actors.score_response.options["time_limit"] == 60_000
    assert actors.score_response.options["on_permanent_failure"] is actors.record_rejection
    assert actors.calibrate_items.actor_name == "assessments.calibrate_items"


def test_score_response_actor_stores_a_summary_without_scores(db: Session, tenant: Tenant) -> None:
    session = make_session(db, tenant.org, tenant.assessment)
    sessions.begin_session(db, tenant.org.id, session.id)
    rid = add_response(
        db, tenant.org.id, session.id, pending_item(db, session.id), answer={"option": "a"}
    )
    args = {"response_id": str(rid)}
    with running_job(db, "assessments.score_response", args, tenant.org.id) as ctx:
        actors.score_response.fn(**args)
    assert ctx.result is not None
    assert ctx.result["response_id"] == str(rid) and ctx.result["items_answered"] == 1
    assert ctx.result["next_item_id"] == str(pending_item(db, session.id))
    assert not {"theta", "se", "category", "result"} & set(ctx.result)  # the ledger is for ops


def test_the_failure_hook_records_the_rejection_for_the_jobs_organization(
    db: Session, tenant: Tenant
) -> None:
    session = make_session(db, tenant.org, tenant.assessment)
    sessions.begin_session(db, tenant.org.id, session.id)
    pending = pending_item(db, session.id)
    other = next(item for item in tenant.bank.items if item.id != pending)
    rid = add_response(db, tenant.org.id, session.id, other.id, answer={"option": "a"})
    args = {"response_id": str(rid)}
    with running_job(db, "assessments.score_response", args, tenant.org.id) as ctx:
        nested = db.begin_nested()
        with pytest.raises(InvalidInputError) as caught:
            actors.score_response.fn(**args)
        nested.rollback()
        actors.record_rejection(db, caught.value, args, ctx)
    state = db.execute(
        text("SELECT state FROM assessment_sessions WHERE id = :s"), {"s": session.id}
    ).scalar_one()
    entry = state["rejected_responses"][str(rid)]
    assert entry["code"] == "item_not_administered" and entry["job_id"] == str(ctx.job_id)
    assert entry["message"] == caught.value.user_message


def test_a_job_of_another_organization_finds_nothing(db: Session, tenant: Tenant) -> None:
    session = make_session(db, tenant.org, tenant.assessment)
    sessions.begin_session(db, tenant.org.id, session.id)
    rid = add_response(
        db, tenant.org.id, session.id, pending_item(db, session.id), answer={"option": "a"}
    )
    args = {"response_id": str(rid)}
    intruder = make_org(db)
    with running_job(db, "assessments.score_response", args, intruder.id) as ctx:
        with pytest.raises(NotFoundError):
            actors.score_response.fn(**args)
        actors.record_rejection(db, NotFoundError("x"), args, ctx)
    state = db.execute(
        text("SELECT state FROM assessment_sessions WHERE id = :s"), {"s": session.id}
    ).scalar_one()
    assert "rejected_responses" not in state


def test_bad_ids_and_missing_organizations_are_permanent_errors(db: Session) -> None:
    org = make_org(db)
    cases = [
        ("assessments.score_response", None, {"response_id": str(uuid.uuid4())},
         "without an organization"),
        ("assessments.score_response", org.id, {"response_id": "not-a-uuid"},
         "is not a valid id"),
        ("assessments.calibrate_items", org.id, {"bank_id": "nope"}, "is not a valid id"),
    ]  # fmt: skip
    for actor, org_id, args, message in cases:
        fn = (
            actors.score_response.fn
            if actor.endswith("score_response")
            else actors.calibrate_items.fn
        )
        with (
            running_job(db, actor, {}, org_id),
            pytest.raises(InvalidInputError, match=message),
        ):
            fn(**args)


def test_calibrate_items_actor_summarises_each_bank(db: Session, tenant: Tenant) -> None:
    with running_job(db, "assessments.calibrate_items", {}, tenant.org.id) as ctx:
        actors.calibrate_items.fn()
    assert ctx.result is not None
    [bank] = ctx.result["banks"]
    assert bank["bank_id"] == str(tenant.bank.id) and bank["status"] == "completed"
    task_run = db.execute(
        text("SELECT task_run_id FROM item_calibration_runs WHERE id = :r"), {"r": bank["run_id"]}
    ).scalar_one()
    assert task_run == ctx.job_id
