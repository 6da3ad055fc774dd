"""Adaptive sessions against the real schema: start, score every answer, finish, refuse.

Each test runs in a savepoint (``db``) and calls the services the actor calls, with the same
kind of session the actor gets.
"""

from __future__ import annotations

import math
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from are_workers import __version__
from are_workers.crypto import subject_ref
from are_workers.errors import InvalidInputError, NotFoundError
from are_workers.job_context import as_job
from are_workers.models.assessments import AssessmentItem, ItemModel, ItemStatus
from are_workers.services.assessments import NormTable, sessions
from tests.assessments.conftest import Tenant
from tests.assessments.factories import (
    add_response,
    answer_until_finished,
    make_assessment,
    make_bank,
    make_session,
    pending_item,
)
from tests.factories import make_org
from tests.media_db.conftest import assert_pseudonymous, audit_rows


def _session_row(db: Session, session_id: uuid.UUID) -> object:
    return db.execute(
        text(
            """SELECT status::text AS status, theta, se, percentile, items_administered,
                      completed_at, state, norm_group_id
               FROM assessment_sessions WHERE id = :id"""
        ),
        {"id": session_id},
    ).one()


_SNAPSHOT_QUERIES = [
    "SELECT status, theta, se, percentile, items_administered, completed_at, state "
    "FROM assessment_sessions WHERE id = :s",
    "SELECT engine_state, revision, next_item_id FROM adaptive_sessions "
    "WHERE assessment_session_id = :s",
    "SELECT id, category, theta_after, se_after, answer FROM assessment_responses "
    "WHERE session_id = :s ORDER BY position",
    "SELECT item_id, selected_count, administered_count, sessions_count FROM item_exposure "
    "ORDER BY item_id",
    "SELECT count(*) FROM usage_records",
    "SELECT count(*) FROM audit_log",
]


def _snapshot(db: Session, session_id: uuid.UUID) -> list[list[tuple[object, ...]]]:
    """Everything a scoring step may write, to compare before and after."""
    return [
        [tuple(row) for row in db.execute(text(sql), {"s": session_id})]
        for sql in _SNAPSHOT_QUERIES
    ]


def _started(db: Session, tenant: Tenant, **kw: float) -> uuid.UUID:
    session = make_session(db, tenant.org, tenant.assessment, **kw)
    started = sessions.begin_session(db, tenant.org.id, session.id)
    assert started["started"] and started["next_item_id"]
    return session.id


def test_a_full_adaptive_session_stores_theta_se_scaled_score_and_percentile(
    db: Session, tenant: Tenant
) -> None:
    session_id = _started(db, tenant)
    job_id = uuid.uuid4()
    outcomes = answer_until_finished(db, tenant.org.id, session_id, theta=0.8, job_id=job_id)

    assert [o["items_answered"] for o in outcomes] == list(range(1, len(outcomes) + 1))
    assert all(not o["finished"] for o in outcomes[:-1]) and outcomes[-1]["finished"]
    assert 5 <= len(outcomes) <= 12
    row = _session_row(db, session_id)
    assert row.status == "completed" and row.completed_at is not None
    assert row.items_administered == len(outcomes)
    assert row.norm_group_id == tenant.norms.id  # the assessment's only group, recorded
    result = row.state["result"]
    assert result == outcomes[-1]["result"]
    assert math.isclose(row.theta, result["theta"]) and math.isclose(row.se, result["se"])
    assert math.isclose(result["scaled_score"], 500 + 100 * row.theta)
    assert math.isclose(result["scaled_se"], 100 * row.se)
    norms = NormTable(name="n", thetas=tuple(tenant.norms.thetas))
    assert math.isclose(row.percentile, norms.percentile(row.theta))
    assert math.isclose(result["percentile"], row.percentile)
    assert result["stop_reason"] in {"se_reached", "max_items"}
    assert sum(result["items_per_area"].values()) == len(outcomes)
    # Each answer carries its own estimate; SE shrinks as evidence accumulates.
    ses = [o["se"] for o in outcomes]
    # The reported score is the WLE on all answers; the running EAP is kept next to it.
    assert result["estimate_method"] == "wle"
    assert ses[-1] < ses[0] and outcomes[-1]["theta"] == result["eap_theta"]
    # Exposure: one session for every active item, one administration per item shown.
    exposure = db.execute(
        text("SELECT sum(administered_count), min(sessions_count), max(sessions_count), "
             "count(*) FROM item_exposure")
    ).one()  # fmt: skip
    assert tuple(exposure) == (len(outcomes), 1, 1, len(tenant.bank.items))
    revision = db.execute(
        text("SELECT revision FROM adaptive_sessions WHERE assessment_session_id = :s"),
        {"s": session_id},
    ).scalar_one()
    assert revision == len(outcomes)


def test_the_same_response_twice_changes_nothing(db: Session, tenant: Tenant) -> None:
    session_id = _started(db, tenant)
    rid = add_response(
        db, tenant.org.id, session_id, pending_item(db, session_id), answer={"option": "a"}
    )
    first = sessions.score_response(db, tenant.org.id, rid)
    before = _snapshot(db, session_id)
    again = sessions.score_response(db, tenant.org.id, rid)
    assert _snapshot(db, session_id) == before
    assert again == first | {"replayed": True}
    assert first["category"] == 1 and first["next_item_id"] is not None


def test_usage_record_and_audit_entry_are_written_once(db: Session, tenant: Tenant) -> None:
    session_id = _started(db, tenant)
    job_id = uuid.uuid4()
    outcomes = answer_until_finished(db, tenant.org.id, session_id, theta=-0.3, job_id=job_id)
    with as_job(db, job_id):
        sessions.score_response(db, tenant.org.id, outcomes[-1]["response_id"])

    usage = db.execute(
        text("SELECT kind::text AS kind, quantity, unit::text AS unit, task_run_id, "
             "model_version_id FROM usage_records WHERE organization_id = :o"),
        {"o": tenant.org.id},
    ).all()  # fmt: skip
    assert len(usage) == 1
    assert (usage[0].kind, int(usage[0].quantity), usage[0].unit) == (
        "assessment_scoring",
        len(outcomes),
        "item",
    )
    assert usage[0].task_run_id == job_id and usage[0].model_version_id is not None
    audit = audit_rows(db, tenant.org.id, sessions.AUDIT_ACTION)
    assert len(audit) == 1
    entry = audit[0]
    candidate_id = db.execute(
        text("SELECT candidate_id FROM assessment_sessions WHERE id = :s"), {"s": session_id}
    ).scalar_one()
    assert (entry.actor_type, entry.action, entry.entity_id) == (
        "worker",
        "assessment.scored",
        session_id,
    )
    assert (entry.model_name, entry.model_version) == (sessions.SCORER_NAME, __version__)
    assert entry.subject_ref == subject_ref(candidate_id) and entry.task_run_id == job_id
    assert entry.input_refs["assessment_id"] == str(tenant.assessment.id)
    assert len(entry.output_refs["result_sha256"]) == 64
    # Ids and hashes only: the score itself never enters the audit log.
    assert "theta" not in entry.output_refs and "percentile" not in entry.output_refs
    assert_pseudonymous(entry, "Jane Doe")

    # And one row per scored answer: the replayed last answer added none.
    answers = audit_rows(db, tenant.org.id, sessions.RESPONSE_AUDIT_ACTION)
    assert sorted(row.entity_id for row in answers) == sorted(
        uuid.UUID(o["response_id"]) for o in outcomes
    )
    assert len(audit_rows(db, tenant.org.id)) == len(outcomes) + 1
    by_response = {str(row.entity_id): row for row in answers}
    for outcome in outcomes:
        row = by_response[outcome["response_id"]]
        assert (row.entity_type, row.model_name, row.model_version) == (
            "assessment_responses",
            sessions.SCORER_NAME,
            __version__,
        )
        assert row.subject_ref == subject_ref(candidate_id) and row.task_run_id == job_id
        assert row.input_refs["item_id"] == outcome["item_id"]
        assert row.input_refs["item_model"] == "2PL"
        assert row.input_refs["config_sha256"] == entry.input_refs["config_sha256"]
        assert row.output_refs["items_answered"] == outcome["items_answered"]
        assert row.output_refs["finished"] is outcome["finished"]
        assert not {"theta", "se", "category"} & set(row.output_refs)
        assert_pseudonymous(row, "Jane Doe", str(outcome["theta"]))


def test_answers_to_a_finished_session_are_refused(db: Session, tenant: Tenant) -> None:
    session_id = _started(db, tenant)
    answer_until_finished(db, tenant.org.id, session_id, theta=0.0)
    seen = {
        row.item_id
        for row in db.execute(
            text("SELECT item_id FROM assessment_responses WHERE session_id = :s"),
            {"s": session_id},
        )
    }
    unseen = next(item for item in tenant.bank.items if item.id not in seen)
    rid = add_response(db, tenant.org.id, session_id, unseen.id, answer={"option": "a"})
    with pytest.raises(InvalidInputError, match="already finished") as caught:
        sessions.score_response(db, tenant.org.id, rid)
    assert caught.value.code == "session_closed"


def test_an_answer_after_the_deadline_is_refused_and_the_session_expires(
    db: Session, tenant: Tenant
) -> None:
    session_id = _started(db, tenant, minutes=60, started_minutes_ago=30)
    db.execute(
        text("UPDATE assessment_sessions SET expires_at = now() - interval '1 minute' "
             "WHERE id = :s"), {"s": session_id},
    )  # fmt: skip
    rid = add_response(
        db, tenant.org.id, session_id, pending_item(db, session_id), answer={"option": "a"}
    )
    nested = db.begin_nested()  # what the ledger does: the failed attempt rolls back
    with pytest.raises(InvalidInputError, match="time limit") as caught:
        sessions.score_response(db, tenant.org.id, rid)
    nested.rollback()
    assert caught.value.code == "session_expired"

    assert sessions.record_rejection(db, tenant.org.id, rid, caught.value)
    row = _session_row(db, session_id)
    assert row.status == "expired"
    rejection = row.state["rejected_responses"][str(rid)]
    assert rejection["code"] == "session_expired" and "time limit" in rejection["message"]
    category = db.execute(
        text("SELECT category FROM assessment_responses WHERE id = :r"), {"r": rid}
    ).scalar_one()
    assert category is None  # the rejected answer stays unscored
    with pytest.raises(InvalidInputError, match="time limit"):  # and stays refused
        sessions.score_response(db, tenant.org.id, rid)


def test_an_answer_to_a_question_never_presented_is_refused(db: Session, tenant: Tenant) -> None:
    session_id = _started(db, tenant)
    pending = pending_item(db, session_id)
    other = next(item for item in tenant.bank.items if item.id != pending)
    pending_code = next(item.code for item in tenant.bank.items if item.id == pending)
    rid = add_response(db, tenant.org.id, session_id, other.id, answer={"option": "a"})
    with pytest.raises(InvalidInputError) as caught:
        sessions.score_response(db, tenant.org.id, rid)
    assert caught.value.code == "item_not_administered"
    assert caught.value.user_message == (
        f"Question '{other.code}' was not presented in this session. "
        f"The question awaiting an answer is '{pending_code}'."
    )
    assert sessions.record_rejection(db, tenant.org.id, rid, caught.value)
    row = _session_row(db, session_id)
    assert row.status == "open"  # only a deadline closes the session
    assert row.state["rejected_responses"][str(rid)]["code"] == "item_not_administered"


def test_an_answer_to_another_banks_question_is_refused(db: Session, tenant: Tenant) -> None:
    session_id = _started(db, tenant)
    stranger = make_bank(db, tenant.org, n=1, name="other bank").items[0]
    rid = add_response(db, tenant.org.id, session_id, stranger.id, answer={"option": "a"})
    with pytest.raises(InvalidInputError, match=f"'{stranger.code}' is not part of this"):
        sessions.score_response(db, tenant.org.id, rid)


def test_an_already_answered_question_is_refused(db: Session, tenant: Tenant) -> None:
    session_id = _started(db, tenant)
    item_id = pending_item(db, session_id)
    first = add_response(db, tenant.org.id, session_id, item_id, answer={"option": "a"})
    sessions.score_response(db, tenant.org.id, first)
    # A second answer row for the same question cannot even be inserted...
    nested = db.begin_nested()
    with pytest.raises(IntegrityError, match="uq_assessment_responses_session_id_item_id"):
        add_response(db, tenant.org.id, session_id, item_id, answer={"option": "b"})
    nested.rollback()
    # ...and if the first row is gone (deleted by hand), the engine state still remembers.
    db.execute(text("DELETE FROM assessment_responses WHERE id = :r"), {"r": first})
    again = add_response(db, tenant.org.id, session_id, item_id, answer={"option": "b"})
    with pytest.raises(InvalidInputError, match="has already been answered") as caught:
        sessions.score_response(db, tenant.org.id, again)
    assert caught.value.code == "item_already_answered"


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        ({"b": float("nan")}, "difficulty b=nan must be a finite number"),
        ({"b": float("inf")}, "difficulty b=inf must be a finite number"),
        ({"model": ItemModel.ONE_PL, "a": 2.0}, "1PL items must share one discrimination"),
    ],
)
def test_a_degenerate_bank_is_refused_naming_the_item(
    db: Session, bad: dict[str, object], problem: str
) -> None:
    org = make_org(db)
    bank = make_bank(db, org, n=6, model=ItemModel.ONE_PL, name="Algebra")
    item = bank.item("q003")
    for field, value in bad.items():
        setattr(item, field, value)
    db.flush()
    session = make_session(db, org, make_assessment(db, org, bank))
    with pytest.raises(InvalidInputError) as caught:
        sessions.begin_session(db, org.id, session.id)
    message = caught.value.user_message
    assert message.startswith("Item bank 'Algebra': The item bank is invalid")
    assert problem in message
    if "1PL" not in problem:
        assert "item 'q003'" in message
    assert caught.value.code == "invalid_item_bank"


def test_a_and_c_out_of_range_cannot_even_be_stored(db: Session, tenant: Tenant) -> None:
    """a <= 0 and c >= 1 are refused by the schema, so a bank never holds them."""
    for model, a, c in [(ItemModel.TWO_PL, 0.0, 0.0), (ItemModel.TWO_PL, -1.0, 0.0),
                        (ItemModel.THREE_PL, 1.0, 1.0)]:  # fmt: skip
        item = AssessmentItem(
            organization_id=tenant.org.id,
            bank_id=tenant.bank.id,
            code=f"bad-{uuid.uuid4().hex[:6]}",
            model=model,
            a=a,
            b=0.0,
            c=c,
            status=ItemStatus.ACTIVE,
        )
        nested = db.begin_nested()
        db.add(item)
        with pytest.raises(IntegrityError):
            db.flush()
        nested.rollback()


@pytest.mark.parametrize("always", [True, False])
def test_all_right_or_all_wrong_under_ml_falls_back_and_finishes(db: Session, always: bool) -> None:
    """ML has no finite maximum for these patterns; the stored estimates stay finite."""
    org = make_org(db)
    bank = make_bank(db, org, n=30)
    config = {
        "estimator": {"method": "ml", "fallback": "eap"},
        "stopping": {"se_threshold": None, "min_items": 1, "max_items": 8},
    }
    assessment = make_assessment(db, org, bank, config=config)
    session = make_session(db, org, assessment)
    sessions.begin_session(db, org.id, session.id)
    outcomes = answer_until_finished(db, org.id, session.id, always=always)
    assert len(outcomes) == 8
    row = _session_row(db, session.id)
    assert row.status == "completed"
    assert math.isfinite(row.theta) and math.isfinite(row.se) and row.se > 0
    assert (row.theta > 0) is always
    # The reported WLE is finite for these patterns, so no fallback is needed for the score.
    assert row.state["result"]["estimate_method"] == "wle"
    assert row.percentile is None  # no norm group for this assessment
    assert all(math.isfinite(o["theta"]) for o in outcomes)


def test_another_organizations_ids_are_not_found(db: Session, tenant: Tenant) -> None:
    session_id = _started(db, tenant)
    rid = add_response(
        db, tenant.org.id, session_id, pending_item(db, session_id), answer={"option": "a"}
    )
    intruder = make_org(db)
    before = _snapshot(db, session_id)
    with pytest.raises(NotFoundError, match="does not exist in this organization"):
        sessions.score_response(db, intruder.id, rid)
    with pytest.raises(NotFoundError):
        sessions.begin_session(db, intruder.id, session_id)
    error = InvalidInputError("x", code="session_expired")
    assert not sessions.record_rejection(db, intruder.id, rid, error)
    assert _snapshot(db, session_id) == before


def test_starting_twice_keeps_the_first_item(db: Session, tenant: Tenant) -> None:
    session = make_session(db, tenant.org, tenant.assessment)
    first = sessions.begin_session(db, tenant.org.id, session.id)
    second = sessions.begin_session(db, tenant.org.id, session.id)
    assert second == {**first, "started": False}
    sessions_counted = db.execute(text("SELECT max(sessions_count) FROM item_exposure")).scalar()
    assert sessions_counted == 1


def test_exposure_cap_keeps_items_under_the_rate_across_sessions(db: Session) -> None:
    """The cap reads the counters written in the same transactions as the items shown."""
    org = make_org(db)
    bank = make_bank(db, org, n=30, seed=3)
    config = {
        "selection": {"max_exposure_rate": 0.5},
        "stopping": {"se_threshold": None, "min_items": 4, "max_items": 4},
    }
    assessment = make_assessment(db, org, bank, config=config)
    for k in range(12):
        session = make_session(db, org, assessment)
        sessions.begin_session(db, org.id, session.id)
        answer_until_finished(db, org.id, session.id, theta=0.0, seed=k)
    rates = db.execute(
        text("SELECT administered_count::float8 / sessions_count FROM item_exposure")
    ).scalars()
    assert max(rates) <= 0.5


def test_a_time_limit_reached_in_grace_finishes_the_session(db: Session, tenant: Tenant) -> None:
    session_id = _started(db, tenant, minutes=30, started_minutes_ago=20)
    # The answer was given 1 s before the deadline passed: accepted, and the time is up.
    db.execute(
        text("UPDATE assessment_sessions SET expires_at = now() - interval '1 second' "
             "WHERE id = :s"), {"s": session_id},
    )  # fmt: skip
    rid = add_response(
        db, tenant.org.id, session_id, pending_item(db, session_id), answer={"option": "b"}
    )
    outcome = sessions.score_response(db, tenant.org.id, rid)
    assert outcome["finished"] and outcome["result"]["stop_reason"] == "time_limit"
    assert _session_row(db, session_id).status == "completed"


def test_a_session_past_its_deadline_is_not_started(db: Session, tenant: Tenant) -> None:
    session = make_session(db, tenant.org, tenant.assessment, minutes=10, started_minutes_ago=20)
    with pytest.raises(InvalidInputError, match="run out before it was started") as caught:
        sessions.begin_session(db, tenant.org.id, session.id)
    assert caught.value.code == "session_expired"
