"""The periodic calibration on a simulated answer history: runs, drift and exposure flags,
and the update policy (live parameters untouched, pilot items estimated)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from are_workers import __version__
from are_workers.errors import NotFoundError
from are_workers.job_context import as_job
from are_workers.models.assessments import AssessmentItem, ItemModel, ItemStatus
from are_workers.models.organizations import Organization
from are_workers.services.assessments.calibration import CalibrationConfig
from are_workers.services.assessments.recalibration import (
    AUDIT_ACTION,
    RecalibrationPolicy,
    calibrate_banks,
)
from tests.assessments.factories import Bank, make_assessment, make_bank
from tests.factories import make_candidate, make_org
from tests.media_db.conftest import assert_pseudonymous, audit_rows

POLICY = RecalibrationPolicy(
    calibration=CalibrationConfig(min_responses=100, slope_prior_sd=0.5),
    min_sessions=200,
)
DRIFTED = "q004"  # stored at b = -0.6, answered as if 1.2 logits harder
EASY = "q007"  # everyone gets it right: no variance, cannot be calibrated


@dataclass
class History:
    org: Organization
    bank: Bank
    pilot: AssessmentItem
    true_b: dict[str, float]


Answers = Callable[[np.random.Generator, float, np.ndarray], np.ndarray]


def _dichotomous(bank: Bank) -> Answers:
    """Right/wrong answers by the 2PL at the items' true difficulties (EASY always right)."""
    a = np.array([item.a for item in bank.items])
    b = np.array([_true_b(item) for item in bank.items])
    easy = np.array([item.code == EASY for item in bank.items])

    def answer(rng: np.random.Generator, theta: float, chosen: np.ndarray) -> np.ndarray:
        p = 1 / (1 + np.exp(-a[chosen] * (theta - b[chosen])))
        return ((rng.random(chosen.size) < p) | easy[chosen]).astype(int)

    return answer


def _simulate(
    db: Session,
    org: Organization,
    bank: Bank,
    *,
    n_sessions: int,
    seed: int,
    answers: Answers | None = None,
    per_session: int = 20,
) -> None:
    """Past sessions of ``per_session`` random items each, stored as the scoring step stores
    them."""
    rng = np.random.default_rng(seed)
    answer = answers or _dichotomous(bank)
    assessment = make_assessment(db, org, bank)
    candidate = make_candidate(db, org)
    session_ids = [uuid.uuid4() for _ in range(n_sessions)]
    db.execute(
        text(
            """INSERT INTO assessment_sessions (id, organization_id, assessment_id, candidate_id,
                                               status, started_at, expires_at, completed_at)
               SELECT s, :org, :assessment, :candidate, 'completed', now() - interval '2 hours',
                      now() - interval '1 hour', now() - interval '90 minutes'
               FROM unnest(CAST(:ids AS uuid[])) AS s"""
        ),
        {"org": org.id, "assessment": assessment.id, "candidate": candidate.id,
         "ids": [str(s) for s in session_ids]},
    )  # fmt: skip
    items = bank.items
    rows: list[tuple[str, str, int, int]] = []
    for session_id in session_ids:
        theta = rng.normal()
        chosen = rng.choice(len(items), size=per_session, replace=False)
        for position, (j, category) in enumerate(
            zip(chosen, answer(rng, theta, chosen), strict=True)
        ):
            rows.append((str(session_id), str(items[j].id), position, int(category)))
    sessions_, item_ids, positions, categories = (list(c) for c in zip(*rows, strict=True))
    db.execute(
        text(
            """INSERT INTO assessment_responses (organization_id, session_id, item_id, position,
                                                 category, theta_after, se_after)
               SELECT :org, s, i, p, c, 0.0, 1.0
               FROM unnest(CAST(:s AS uuid[]), CAST(:i AS uuid[]), CAST(:p AS int[]),
                           CAST(:c AS int[])) AS v(s, i, p, c)"""
        ),
        {"org": org.id, "s": sessions_, "i": item_ids, "p": positions, "c": categories},
    )


def _true_b(item: AssessmentItem) -> float:
    if item.code == DRIFTED:
        return item.b + 1.2
    if item.code == "pilot":
        return 0.8
    return item.b


@pytest.fixture
def history(db: Session) -> History:
    org = make_org(db)
    bank = make_bank(db, org, n=30, seed=11)
    pilot = AssessmentItem(
        organization_id=org.id, bank_id=bank.id, code="pilot", content={}, model=ItemModel.TWO_PL,
        a=1.0, b=0.0, status=ItemStatus.PILOT,
    )  # fmt: skip
    db.add(pilot)
    db.flush()
    bank.items.append(pilot)
    bank.item(EASY).b = -3.0
    bank.item(DRIFTED).b = -0.6
    db.flush()
    true_b = {item.code: _true_b(item) for item in bank.items}
    _simulate(db, org, bank, n_sessions=800, seed=5)
    exposure = [("q001", 100, 90), ("q002", 100, 20), ("q003", 10, 10)]
    for code, sessions_count, administered in exposure:
        db.execute(
            text("""INSERT INTO item_exposure (organization_id, item_id, selected_count,
                                               administered_count, sessions_count)
                    VALUES (:org, :item, :n, :n, :s)"""),
            {"org": org.id, "item": bank.item(code).id, "n": administered, "s": sessions_count},
        )  # fmt: skip
    return History(org, bank, pilot, true_b)


def _item(db: Session, item_id: uuid.UUID) -> object:
    return db.execute(
        text("SELECT status::text AS status, a, b, calibrated_at, exposure_rate "
             "FROM assessment_items WHERE id = :i"), {"i": item_id},
    ).one()  # fmt: skip


def test_a_calibration_run_records_estimates_flags_and_updates_by_policy(
    db: Session, history: History
) -> None:
    job_id = uuid.uuid4()
    drifted = history.bank.item(DRIFTED)
    stored_b = drifted.b
    with as_job(db, job_id):
        [summary] = calibrate_banks(db, history.org.id, policy=POLICY)
    assert summary["status"] == "completed" and summary["sample_size"] == 800
    assert summary["drift_flags"] == 1 and summary["pilot_updated"] == 1

    run = db.execute(
        text("SELECT * FROM item_calibration_runs WHERE id = :r"), {"r": summary["run_id"]}
    ).one()
    assert (run.status, run.method, run.sample_size, run.task_run_id) == (
        "completed", "mml-em-2pl", 800, job_id,
    )  # fmt: skip
    assert run.finished_at is not None
    assert run.summary["scale"] == "anchored" and len(run.summary["anchors"]) >= 15
    assert DRIFTED not in run.summary["anchors"]
    skipped = {skip["item_id"]: skip["reason"] for skip in run.summary["skipped"]}
    assert skipped[EASY].startswith("no variance: every one of the")
    estimates = run.summary["estimates"]
    drifted_estimate = estimates[DRIFTED]
    assert abs(drifted_estimate["b"] - history.true_b[DRIFTED]) < 3 * drifted_estimate["se"]["b"]
    # Anchors are held at their stored values; the rest land on the bank's scale.
    anchor = run.summary["anchors"][0]
    assert estimates[anchor]["anchor"]
    assert estimates[anchor]["b"] == pytest.approx(history.bank.item(anchor).b)

    flags = db.execute(
        text("SELECT item_id, parameter, previous_value, new_value, statistic, "
             "status::text AS status FROM item_drift_flags WHERE calibration_run_id = :r"),
        {"r": summary["run_id"]},
    ).all()  # fmt: skip
    assert {(f.item_id, f.parameter) for f in flags} == {(drifted.id, "b")}
    flag = flags[0]
    assert flag.previous_value == stored_b and flag.status == "open"
    assert flag.new_value == estimates[DRIFTED]["b"]
    assert flag.statistic == run.summary["drift"][0]["z"]["b"] >= POLICY.drift_min_z

    # Drift flags the item (no longer selected) but leaves its live parameters alone.
    row = _item(db, drifted.id)
    assert row.status == "flagged" and row.b == stored_b and row.calibrated_at is None
    # The pilot item gets its first estimates (and stays a pilot until someone promotes it).
    pilot = _item(db, history.pilot.id)
    assert pilot.status == "pilot" and pilot.calibrated_at is not None
    assert abs(pilot.b - history.true_b["pilot"]) < 3 * estimates["pilot"]["se"]["b"]

    # Exposure: rates refreshed; only an item above the cap over enough sessions is listed.
    assert _item(db, history.bank.item("q001").id).exposure_rate == pytest.approx(0.9)
    assert _item(db, history.bank.item("q003").id).exposure_rate == pytest.approx(1.0)
    [over] = run.summary["overexposed"]
    assert (over["item_id"], over["rate"], over["r_max"]) == ("q001", 0.9, 0.3)
    assert over["suggested_sympson_hetter_k"] == pytest.approx(0.3 / 0.9)

    # The run is an audited automated decision: method, sample by count, run by id.
    (audited,) = audit_rows(db, history.org.id, AUDIT_ACTION)
    assert (audited.entity_type, audited.entity_id) == ("item_calibration_runs", run.id)
    assert (audited.model_name, audited.model_version) == (
        "are-irt-calibration+mml-em-2pl",
        __version__,
    )
    assert audited.subject_ref is None and audited.task_run_id == job_id
    assert audited.input_refs["bank_id"] == str(history.bank.id)
    assert (audited.input_refs["sample_size"], audited.input_refs["items"]) == (800, 31)
    assert audited.output_refs["calibrated"] is True
    assert (audited.output_refs["drift_flags"], audited.output_refs["pilot_updated"]) == (1, 1)
    assert_pseudonymous(audited, DRIFTED, str(estimates[DRIFTED]["b"]))  # no codes, no estimates


def test_a_second_run_does_not_flag_the_same_drift_again(db: Session, history: History) -> None:
    calibrate_banks(db, history.org.id, history.bank.id, policy=POLICY)
    [again] = calibrate_banks(db, history.org.id, history.bank.id, policy=POLICY)
    assert again["status"] == "completed" and again["drift_flags"] == 0
    assert db.execute(text("SELECT count(*) FROM item_drift_flags")).scalar_one() == 1


def test_too_few_examinees_are_recorded_as_a_skipped_run(db: Session) -> None:
    org = make_org(db)
    bank = make_bank(db, org, n=30, seed=2)
    _simulate(db, org, bank, n_sessions=60, seed=3)
    [summary] = calibrate_banks(db, org.id, policy=POLICY)
    assert summary["status"] == "completed" and summary["drift_flags"] == 0
    run_summary = db.execute(
        text("SELECT summary FROM item_calibration_runs WHERE id = :r"), {"r": summary["run_id"]}
    ).scalar_one()
    assert run_summary["skipped"] == (
        "only 60 examinees answered in the window; at least 200 are needed"
    )
    statuses = db.execute(
        text("SELECT DISTINCT status::text FROM assessment_items WHERE bank_id = :b"),
        {"b": bank.id},
    ).scalars()
    assert set(statuses) == {"active"}
    (audited,) = audit_rows(db, org.id, AUDIT_ACTION)
    assert audited.entity_id == uuid.UUID(summary["run_id"])
    assert audited.output_refs["calibrated"] is False
    assert audited.input_refs["sample_size"] == 60


def test_another_organizations_bank_is_not_found(db: Session, history: History) -> None:
    intruder = make_org(db)
    with pytest.raises(NotFoundError, match="does not exist in this organization"):
        calibrate_banks(db, intruder.id, history.bank.id, policy=POLICY)
    assert calibrate_banks(db, intruder.id, policy=POLICY) == []  # it has no banks
    assert db.execute(text("SELECT count(*) FROM item_calibration_runs")).scalar_one() == 0
    assert audit_rows(db, intruder.id) == []


# --- graded items ------------------------------------------------------------------------------

GRADED_DRIFTED = "g003"  # every threshold answered as if 1.0 logit higher


def _graded_bank(db: Session, org: Organization) -> tuple[Bank, dict[str, tuple[float, ...]]]:
    """Twelve active GRM items with four categories, one of them drifted, plus a pilot."""
    rng = np.random.default_rng(21)
    bank = make_bank(db, org, n=1, seed=21)
    db.delete(bank.items.pop())
    true: dict[str, tuple[float, ...]] = {}
    for i in range(13):
        code = "gpilot" if i == 12 else f"g{i:03d}"
        spread = np.sort(rng.normal(0, 1, 3)) + np.array([-0.3, 0, 0.3])
        thresholds = tuple(float(t) for t in spread)
        true[code] = tuple(t + 1.0 for t in thresholds) if code == GRADED_DRIFTED else thresholds
        item = AssessmentItem(
            organization_id=org.id, bank_id=bank.id, code=code, content={},
            model=ItemModel.GRM, a=float(rng.uniform(1.0, 2.0)),
            thresholds=[0.0, 0.5, 1.0] if code == "gpilot" else list(thresholds),
            status=ItemStatus.PILOT if code == "gpilot" else ItemStatus.ACTIVE,
        )  # fmt: skip
        db.add(item)
        bank.items.append(item)
    db.flush()
    return bank, true


def _graded_answers(bank: Bank, true: dict[str, tuple[float, ...]]) -> Answers:
    a = np.array([item.a for item in bank.items])
    bounds = np.array([true[item.code] for item in bank.items])

    def answer(rng: np.random.Generator, theta: float, chosen: np.ndarray) -> np.ndarray:
        above = 1 / (1 + np.exp(-a[chosen, None] * (theta - bounds[chosen])))
        return (above >= rng.random(chosen.size)[:, None]).sum(axis=1)

    return answer


def test_graded_items_are_calibrated_drift_flagged_and_pilots_updated(db: Session) -> None:
    org = make_org(db)
    bank, true = _graded_bank(db, org)
    pilot_a = 1.3
    bank.item("gpilot").a = pilot_a
    db.flush()
    _simulate(
        db, org, bank, n_sessions=1500, seed=9, answers=_graded_answers(bank, true),
        per_session=8,
    )  # fmt: skip
    drifted = bank.item(GRADED_DRIFTED)
    stored = list(drifted.thresholds or [])
    [summary] = calibrate_banks(db, org.id, policy=POLICY)
    assert summary["status"] == "completed" and summary["sample_size"] == 1500
    assert summary["drift_flags"] == 1 and summary["pilot_updated"] == 1
    run = db.execute(
        text("SELECT method, summary FROM item_calibration_runs WHERE id = :r"),
        {"r": summary["run_id"]},
    ).one()
    assert run.method == "mml-em-grm" and run.summary["model"] == "GRM"
    graded = run.summary["graded"]
    assert graded["converged"] and GRADED_DRIFTED in graded["linking"]["excluded"]

    # Recovery on the bank's scale (loose bounds; the drifted item is compared with the
    # thresholds it was answered by, the pilot with its true slope).
    estimates = graded["estimates"]
    slopes = {item.code: item.a for item in bank.items} | {"gpilot": pilot_a}
    a_error = [estimates[code]["a"] - slopes[code] for code in true]
    b_error = [
        e - t
        for code in true
        for e, t in zip(estimates[code]["thresholds"], true[code], strict=True)
    ]
    assert float(np.sqrt(np.mean(np.square(a_error)))) < 0.25
    assert float(np.sqrt(np.mean(np.square(b_error)))) < 0.2

    # Drift: one row for the thresholds (the one that moved most), significant, item flagged.
    [flag] = db.execute(
        text("SELECT item_id, parameter, previous_value, new_value, statistic "
             "FROM item_drift_flags WHERE calibration_run_id = :r"), {"r": summary["run_id"]},
    ).all()  # fmt: skip
    assert (flag.item_id, flag.parameter) == (drifted.id, "thresholds")
    assert flag.previous_value in stored and flag.new_value - flag.previous_value > 0.5
    assert flag.statistic >= POLICY.drift_min_z
    [entry] = graded["drift"]
    assert entry["code"] == GRADED_DRIFTED and set(entry["exceeded"]) <= {"b1", "b2", "b3"}
    row = db.execute(
        text("SELECT status::text AS status, thresholds FROM assessment_items WHERE id = :i"),
        {"i": drifted.id},
    ).one()
    assert row.status == "flagged" and row.thresholds == stored  # live values untouched

    # The pilot gets its slope and ordered thresholds; it stays a pilot.
    pilot = db.execute(
        text("SELECT status::text AS status, a, thresholds, calibrated_at "
             "FROM assessment_items WHERE code = 'gpilot' AND bank_id = :b"), {"b": bank.id},
    ).one()  # fmt: skip
    assert pilot.status == "pilot" and pilot.calibrated_at is not None
    assert pilot.thresholds == estimates["gpilot"]["thresholds"]
    assert np.max(np.abs(np.array(pilot.thresholds) - true["gpilot"])) < 0.4
    (audited,) = audit_rows(db, org.id, AUDIT_ACTION)
    assert audited.model_name == "are-irt-calibration+mml-em-grm"
    assert audited.output_refs["drift_flags"] == 1 and audited.output_refs["calibrated"] is True
