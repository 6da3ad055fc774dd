"""Calibration (MML/EM), drift and exposure flags, Sympson-Hetter exposure parameters."""

from __future__ import annotations

import numpy as np
import pytest

from are_workers.errors import InvalidInputError
from are_workers.services.assessments import (
    CatConfig,
    ItemBank,
    ItemModel,
    ItemSpec,
    SelectionConfig,
    StoppingRule,
    simulate,
)
from are_workers.services.assessments.calibration import (
    CalibrationConfig,
    CalibrationModel,
    CalibrationResult,
    DriftThresholds,
    calibrate,
    calibrate_sympson_hetter,
    drift_flags,
    overexposure_flags,
)


def _responses(
    a: np.ndarray, b: np.ndarray, c: np.ndarray, theta: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    p = c + (1 - c) / (1 + np.exp(-a * (theta[:, None] - b)))
    return (rng.random(p.shape) < p).astype(np.float64)


def _rmse(result: CalibrationResult, ids: list[str], truth: np.ndarray, name: str) -> float:
    estimates = result.by_id()
    kept = [i for i, item_id in enumerate(ids) if item_id in estimates]
    values = np.array([getattr(estimates[ids[i]], name) for i in kept])
    return float(np.sqrt(np.mean((values - truth[kept]) ** 2)))


def test_2pl_parameters_are_recovered_from_sparse_data() -> None:
    rng = np.random.default_rng(0)
    n_items, n_people = 60, 4000
    a, b = rng.lognormal(0, 0.3, n_items), rng.normal(0, 1, n_items)
    data = _responses(a, b, np.zeros(n_items), rng.normal(size=n_people), rng)
    data[rng.random(data.shape) < 0.5] = np.nan  # each examinee sees about half the items
    ids = [f"i{j}" for j in range(n_items)]
    result = calibrate(data, ids, CalibrationConfig(min_responses=200))
    assert result.converged
    assert result.max_parameter_change < 1e-4
    assert not result.skipped
    assert _rmse(result, ids, a, "a") < 0.12
    assert _rmse(result, ids, b, "b") < 0.12
    # EM never lowers the marginal likelihood (no priors in this run).
    assert np.all(np.diff(result.log_likelihood_history) > -1e-6)
    assert all(item.c == 0 for item in result.items)


def test_cat_data_calibrates_with_skips_reported() -> None:
    rng = np.random.default_rng(1)
    n_items = 120
    a, b = rng.lognormal(0, 0.3, n_items), rng.normal(0, 1, n_items)
    bank = ItemBank.from_arrays(a, b)
    config = CatConfig(
        selection=SelectionConfig(randomesque_n=8),
        stopping=StoppingRule(se_threshold=None, min_items=1, max_items=20),
    )
    theta = rng.normal(size=2500)
    sim = simulate(bank, theta, config, rng=rng)
    data = np.full((theta.size, n_items), np.nan)
    rows = np.repeat(np.arange(theta.size), 20)
    data[rows, sim.items.ravel()] = sim.responses.ravel()
    result = calibrate(
        data, list(bank.item_ids), CalibrationConfig(min_responses=150, slope_prior_sd=0.5)
    )
    counts = (~np.isnan(data)).sum(axis=0)
    skipped = {s.item_id for s in result.skipped}
    assert skipped == {bank.item_ids[j] for j in np.flatnonzero(counts < 150)}
    assert all("fewer than the minimum 150" in s.reason for s in result.skipped)
    assert len(result.items) >= 40
    assert result.converged
    # Each item is seen by a narrow ability range, so slopes are the hard part.
    assert _rmse(result, list(bank.item_ids), b, "b") < 0.25
    assert _rmse(result, list(bank.item_ids), a, "a") < 0.4


def test_3pl_with_a_guessing_prior() -> None:
    rng = np.random.default_rng(2)
    n_items = 40
    a = rng.lognormal(0.2, 0.25, n_items)
    b = rng.normal(0, 1, n_items)
    c = rng.uniform(0.1, 0.3, n_items)
    data = _responses(a, b, c, rng.normal(size=5000), rng)
    ids = [f"i{j}" for j in range(n_items)]
    result = calibrate(data, ids, CalibrationConfig(model=CalibrationModel.THREE_PL))
    assert result.converged
    assert _rmse(result, ids, a, "a") < 0.3
    assert _rmse(result, ids, b, "b") < 0.3
    assert _rmse(result, ids, c, "c") < 0.08
    spec = result.items[0].to_spec(CalibrationModel.THREE_PL, content_area="numeric")
    assert spec.model is ItemModel.THREE_PL
    assert ItemBank([spec]).c[0] == pytest.approx(result.items[0].c)


def test_rasch_estimates_the_latent_sd_and_anchors_fix_the_scale() -> None:
    rng = np.random.default_rng(3)
    n_items = 30
    b = rng.normal(0, 1, n_items)
    ones = np.ones(n_items)
    rasch = calibrate(
        _responses(ones, b, np.zeros(n_items), rng.normal(0, 1.4, 3000), rng),
        config=CalibrationConfig(model=CalibrationModel.ONE_PL),
    )
    assert rasch.latent_sd == pytest.approx(1.4, abs=0.1)
    assert all(item.a == pytest.approx(1.0) for item in rasch.items)

    # A shifted population: anchors keep new estimates on the stored scale.
    a = rng.lognormal(0, 0.3, n_items)
    data = _responses(a, b, np.zeros(n_items), rng.normal(0.6, 1.0, 4000), rng)
    ids = [f"i{j}" for j in range(n_items)]
    anchors = {ids[j]: ItemSpec(item_id=ids[j], a=float(a[j]), b=float(b[j])) for j in range(10)}
    anchored = calibrate(data, ids, anchors=anchors)
    assert anchored.latent_mean == pytest.approx(0.6, abs=0.1)
    free = anchored.by_id()
    assert free[ids[0]].b == pytest.approx(b[0])  # anchors stay put
    new_b = np.array([free[ids[j]].b for j in range(10, n_items)])
    assert np.sqrt(np.mean((new_b - b[10:]) ** 2)) < 0.15
    # Without anchors the shift would have been read as every item getting easier.
    unanchored = calibrate(data, ids)
    shift = np.mean([unanchored.by_id()[ids[j]].b - b[j] for j in range(n_items)])
    assert shift < -0.4


def test_items_without_enough_or_varied_responses_are_skipped() -> None:
    rng = np.random.default_rng(4)
    data = _responses(np.ones(5), np.zeros(5), np.zeros(5), rng.normal(size=300), rng)
    data[:, 1] = 1.0
    data[:, 2] = 0.0
    data[50:, 3] = np.nan
    result = calibrate(
        data, ["ok", "easy", "hard", "rare", "ok2"], CalibrationConfig(min_responses=100)
    )
    reasons = {s.item_id: s.reason for s in result.skipped}
    assert reasons == {
        "easy": "no variance: every one of the 300 responses is correct",
        "hard": "no variance: every one of the 300 responses is incorrect",
        "rare": "only 50 responses, fewer than the minimum 100",
    }
    assert [item.item_id for item in result.items] == ["ok", "ok2"]
    assert result.n_examinees == 300
    with pytest.raises(InvalidInputError, match="0, 1 or NaN"):
        calibrate(np.array([[0.0, 2.0]]))
    with pytest.raises(InvalidInputError, match="No item has enough responses"):
        calibrate(data[:10], config=CalibrationConfig(min_responses=100))
    with pytest.raises(InvalidInputError, match="one item id per response column"):
        calibrate(data, ["a"])


def test_drift_and_overexposure_flags() -> None:
    rng = np.random.default_rng(5)
    n_items = 25
    a, b = rng.lognormal(0, 0.3, n_items), rng.normal(0, 1, n_items)
    ids = [f"i{j}" for j in range(n_items)]
    stored = [ItemSpec(item_id=ids[j], a=float(a[j]), b=float(b[j])) for j in range(n_items)]
    drifted_b = b.copy()
    drifted_b[[3, 7]] += 0.8  # two items became harder (e.g. leaked answers stopped working)
    result = calibrate(_responses(a, drifted_b, np.zeros(n_items), rng.normal(size=6000), rng), ids)
    flags = drift_flags(stored, result, DriftThresholds(a=0.5, b=0.4))
    assert {flag.item_id for flag in flags} == {"i3", "i7"}
    assert all(flag.exceeded == ["b"] for flag in flags)
    assert flags[0].estimated["b"] - flags[0].stored["b"] > 0.4

    exposure = overexposure_flags({"x": 30, "y": 20, "z": 26}, sessions=100, r_max=0.25)
    assert [(f.item_id, f.rate) for f in exposure] == [("x", 0.3), ("z", 0.26)]
    assert overexposure_flags({"x": 3}, sessions=0, r_max=0.2) == []


def test_sympson_hetter_calibration_brings_exposure_under_r_max() -> None:
    rng = np.random.default_rng(6)
    bank = ItemBank.from_arrays(rng.lognormal(0, 0.3, 150), rng.normal(0, 1, 150))
    config = CatConfig(stopping=StoppingRule(se_threshold=None, min_items=1, max_items=10))
    simulees = rng.normal(size=800)
    uncontrolled = simulate(bank, simulees, config, rng=np.random.default_rng(0))
    assert uncontrolled.exposure_rates.max() == 1.0
    r_max = 0.25
    calibration = calibrate_sympson_hetter(bank, config, simulees, r_max=r_max, seed=1, margin=0.15)
    assert calibration.max_exposure_history[0] == 1.0
    assert calibration.max_exposure_history[-1] <= r_max
    k = [calibration.exposure_k[item_id] for item_id in bank.item_ids]
    assert min(k) < 0.5
    assert max(k) == 1.0
    controlled_bank = bank.with_exposure_k(k)
    sh = config.model_copy(update={"selection": SelectionConfig(sympson_hetter=True)})
    fresh = simulate(controlled_bank, rng.normal(size=2000), sh, rng=np.random.default_rng(9))
    # A new sample carries its own sampling noise (SD about 0.01 per item here).
    assert fresh.exposure_rates.max() <= r_max + 0.03
