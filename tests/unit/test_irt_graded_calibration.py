"""GRM calibration (MML/EM): parameter recovery on simulated data, skipped items, drift flags."""

from __future__ import annotations

import time

import numpy as np
import pytest

from are_workers.errors import InvalidInputError
from are_workers.services.assessments import ItemBank, ItemModel, ItemSpec
from are_workers.services.assessments.calibration import (
    CalibrationConfig,
    CalibrationModel,
    calibrate,
    drift_flags,
)
from are_workers.services.assessments.graded import calibrate_graded


def _graded_bank(rng: np.random.Generator, n_items: int) -> ItemBank:
    specs = []
    for j in range(n_items):
        m = 3 if j % 2 else 4  # mixed numbers of categories: 4 and 5
        thresholds = np.sort(rng.normal(0, 1, m)) + np.linspace(-0.6, 0.6, m)
        specs.append(
            ItemSpec(
                item_id=f"g{j}",
                model=ItemModel.GRM,
                a=float(rng.lognormal(0.2, 0.25)),
                thresholds=tuple(float(t) for t in thresholds),
            )
        )
    return ItemBank(specs)


def _simulate(
    bank: ItemBank, n_examinees: int, rng: np.random.Generator, seen: float = 1.0
) -> np.ndarray:
    theta = rng.normal(size=n_examinees)
    items = np.broadcast_to(np.arange(len(bank)), (n_examinees, len(bank)))
    answers = bank.simulate_responses(theta[:, None], items, rng.random(items.shape))
    data = answers.astype(np.float64)
    data[rng.random(data.shape) >= seen] = np.nan
    return data


def test_grm_recovers_slopes_and_thresholds() -> None:
    rng = np.random.default_rng(14)
    bank = _graded_bank(rng, 20)
    data = _simulate(bank, 3000, rng, seen=0.6)
    started = time.perf_counter()
    result = calibrate_graded(data, bank.item_ids)
    elapsed = time.perf_counter() - started
    assert result.converged and result.model is CalibrationModel.GRM
    assert not result.skipped
    assert np.all(np.diff(result.log_likelihood_history[:-1]) > -1e-6)  # EM never goes down
    estimates = result.by_id()
    a_errors, b_errors = [], []
    for spec in bank.specs:
        new = estimates[spec.item_id]
        a_errors.append(new.a - spec.a)
        assert new.thresholds is not None and len(new.thresholds) == len(spec.thresholds or ())
        b_errors.extend(np.subtract(new.thresholds, spec.thresholds or ()))
    rmse_a = float(np.sqrt(np.mean(np.square(a_errors))))
    rmse_b = float(np.sqrt(np.mean(np.square(b_errors))))
    print(f"GRM recovery: RMSE a {rmse_a:.3f}, thresholds {rmse_b:.3f}, {elapsed:.1f} s")
    assert rmse_a < 0.12, rmse_a
    assert rmse_b < 0.12, rmse_b
    assert elapsed < 30
    spec = estimates["g0"].to_spec(CalibrationModel.GRM, content_area="numeric")
    assert spec.model is ItemModel.GRM and spec.thresholds == tuple(
        estimates["g0"].thresholds or ()
    )


def test_items_without_enough_data_or_an_unused_category_are_skipped() -> None:
    rng = np.random.default_rng(3)
    bank = _graded_bank(rng, 6)
    data = _simulate(bank, 600, rng)
    data[:, 1] = np.where(data[:, 1] == 2, 1, data[:, 1])  # category 2 never chosen
    data[100:, 2] = np.nan  # only 100 answers
    result = calibrate_graded(data, bank.item_ids, CalibrationConfig(min_responses=150))
    reasons = {item.item_id: item.reason for item in result.skipped}
    assert "never chosen" in reasons["g1"]
    assert "fewer than the minimum" in reasons["g2"]
    assert {item.item_id for item in result.items} == {"g0", "g3", "g4", "g5"}
    with pytest.raises(InvalidInputError, match="whole category"):
        calibrate_graded(np.array([[0.5, 1.0]] * 3))


def test_calibrate_dispatches_graded_models_and_flags_drift() -> None:
    rng = np.random.default_rng(7)
    bank = _graded_bank(rng, 10)
    data = _simulate(bank, 2000, rng)
    result = calibrate(data, bank.item_ids, CalibrationConfig(model=CalibrationModel.GRM))
    assert result.model is CalibrationModel.GRM
    assert drift_flags(bank.specs, result) == []
    drifted = list(bank.specs)
    moved = drifted[3]
    drifted[3] = moved.model_copy(
        update={
            "thresholds": tuple(
                t + (0.8 if k == 0 else 0) for k, t in enumerate(moved.thresholds or ())
            )
        }
    )
    drifted[5] = drifted[5].model_copy(update={"a": drifted[5].a + 1.0})
    flags = {flag.item_id: flag for flag in drift_flags(drifted, result)}
    assert set(flags) == {"g3", "g5"}
    assert flags["g3"].exceeded == ["b1"]
    assert flags["g5"].exceeded == ["a"]
    assert set(flags["g3"].stored) == {"a", "b1", "b2", "b3"}  # 4 categories
