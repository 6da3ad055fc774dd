"""Ability estimation: EAP, MAP and ML, validated against catsim and direct integration."""

from __future__ import annotations

import math

import numpy as np
import pytest
from catsim.estimation import NumericalSearchEstimator
from catsim.item_bank import ItemBank as CatsimBank
from pydantic import ValidationError
from scipy.integrate import quad
from scipy.optimize import minimize_scalar

from are_workers.services.assessments.estimation import (
    EstimationMethod,
    EstimatorConfig,
    eap_batch,
    estimate,
    estimate_eap,
    estimate_map,
    estimate_ml,
    map_batch,
    ml_batch,
)
from are_workers.services.assessments.irt import ItemBank, ItemModel, ItemSpec

ML = EstimatorConfig(method=EstimationMethod.ML)


def _bank(n: int, *, guessing: bool, seed: int) -> tuple[ItemBank, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.lognormal(0, 0.3, n)
    b = rng.normal(0, 1, n)
    c = rng.uniform(0.05, 0.3, n) if guessing else np.zeros(n)
    return ItemBank.from_arrays(a, b, c), np.column_stack([a, b, c])


@pytest.mark.parametrize("guessing", [False, True], ids=["2PL", "3PL"])
def test_ml_agrees_with_catsim_wherever_it_exists(guessing: bool) -> None:
    bank, params = _bank(150, guessing=guessing, seed=11)
    catsim_bank = CatsimBank(params)
    catsim_ml = NumericalSearchEstimator(dodd=False)
    rng = np.random.default_rng(12)
    compared = undefined = 0
    for _ in range(400):
        length = int(rng.integers(2, 40))
        items = rng.choice(len(bank), size=length, replace=False)
        true_theta = rng.normal(0, 1.3)
        responses = bank.simulate_responses(np.full(length, true_theta), items, rng.random(length))
        ours = estimate_ml(bank, items, responses)
        theirs = catsim_ml.estimate(
            item_bank=catsim_bank,
            administered_items=items.tolist(),
            response_vector=[bool(r) for r in responses],
            est_theta=0.0,
        )
        if ours.defined:
            assert abs(ours.theta - theirs) < 0.05, (items, responses, ours, theirs)
            assert ours.se > 0
            compared += 1
        else:
            undefined += 1
            # catsim diverges the same way: infinite, or stuck at its +-6 search bound.
            assert abs(theirs) >= 5.9
            assert math.copysign(1, ours.theta) == math.copysign(1, theirs)
    assert compared > 300
    assert undefined > 0


def test_all_correct_or_all_wrong_makes_ml_undefined_and_the_engine_falls_back() -> None:
    bank, _ = _bank(30, guessing=True, seed=3)
    items = np.arange(8)
    for responses, sign, word in ((np.ones(8), 1, "highest"), (np.zeros(8), -1, "lowest")):
        result = estimate_ml(bank, items, responses.astype(int))
        assert not result.defined
        assert result.theta == sign * math.inf
        assert result.se == math.inf
        assert result.reason is not None
        assert word in result.reason

        bounded = estimate_ml(
            bank, items, responses.astype(int), ML.model_copy(update={"ml_bounded": True})
        )
        assert bounded.defined
        assert bounded.at_bound
        assert bounded.theta == sign * 6.0
        assert bounded.reason is not None
        assert bounded.reason.startswith("bounded")

        fallback = estimate(bank, items, responses.astype(int), ML)
        assert fallback.method is EstimationMethod.EAP
        assert math.isfinite(fallback.theta)
        assert sign * fallback.theta > 0
        via_map = estimate(
            bank,
            items,
            responses.astype(int),
            ML.model_copy(update={"fallback": EstimationMethod.MAP}),
        )
        assert via_map.method is EstimationMethod.MAP


def test_no_answers_gives_the_prior_or_an_undefined_ml() -> None:
    bank, _ = _bank(10, guessing=False, seed=4)
    config = EstimatorConfig(prior_mean=0.5, prior_sd=0.8)
    eap = estimate_eap(bank, [], [], config)
    assert eap.theta == pytest.approx(0.5, abs=1e-9)
    assert eap.se == pytest.approx(0.8, abs=1e-6)
    assert estimate_map(bank, [], [], config).theta == pytest.approx(0.5, abs=1e-7)
    ml = estimate_ml(bank, [], [])
    assert not ml.defined
    assert ml.reason == "no answers yet, so the likelihood is flat"


def _log_posterior(bank: ItemBank, items: np.ndarray, responses: np.ndarray, theta: float) -> float:
    loglik = bank.response_log_probabilities(items, responses, np.array([theta])).sum()
    return float(loglik - 0.5 * theta**2)


def test_eap_and_map_match_direct_integration_and_optimisation() -> None:
    bank, _ = _bank(80, guessing=True, seed=5)
    rng = np.random.default_rng(6)
    for _ in range(5):
        items = rng.choice(80, size=15, replace=False)
        responses = bank.simulate_responses(np.full(15, 0.7), items, rng.random(15))
        peak = max(_log_posterior(bank, items, responses, t) for t in np.linspace(-6, 6, 241))

        def density(theta: float, power: int, items: np.ndarray, responses: np.ndarray) -> float:
            log_post = _log_posterior(bank, items, responses, theta)
            return float(theta**power * math.exp(log_post - peak))  # noqa: B023

        mass, mean, second = (
            quad(density, -8, 8, args=(power, items, responses), points=[0.0])[0]
            for power in (0, 1, 2)
        )
        mean, second = mean / mass, second / mass
        eap = estimate_eap(bank, items, responses)
        assert eap.theta == pytest.approx(mean, abs=1e-3)
        assert eap.se == pytest.approx(math.sqrt(second - mean**2), abs=1e-3)

        mode = minimize_scalar(
            lambda t, items=items, responses=responses: -_log_posterior(bank, items, responses, t),
            bounds=(-6, 6),
            method="bounded",
            options={"xatol": 1e-8},
        ).x
        result = estimate_map(bank, items, responses)
        assert result.theta == pytest.approx(mode, abs=1e-4)
        information = bank.information(result.theta)[items].sum()
        assert result.se == pytest.approx(1 / math.sqrt(information + 1.0), rel=1e-9)


def test_graded_items_support_eap_map_and_ml() -> None:
    bank = ItemBank(
        [
            ItemSpec(
                item_id=f"g{i}",
                model=ItemModel.GRM,
                a=1.0 + 0.1 * i,
                thresholds=(-1.0 + 0.2 * i, 0.5, 1.5),
            )
            for i in range(6)
        ]
        + [ItemSpec(item_id="d", model=ItemModel.TWO_PL, a=1.2, b=0.0)]
    )
    items = np.array([0, 1, 2, 3, 6])
    responses = np.array([2, 1, 3, 2, 1])
    eap, map_, ml = (
        estimate_eap(bank, items, responses),
        estimate_map(bank, items, responses),
        estimate_ml(bank, items, responses),
    )
    assert ml.defined
    assert 0 < map_.theta < ml.theta  # the prior pulls the mode towards 0
    assert abs(eap.theta - map_.theta) < 0.2
    assert eap.se < 1.0
    # ML maximises the likelihood: its score is zero there.
    _, score, curvature = bank.log_likelihood_derivatives(items[None], responses[None], [ml.theta])
    assert abs(score[0]) < 1e-6
    assert curvature[0] < 0
    top = estimate_ml(bank, items, np.array([3, 3, 3, 3, 1]))
    assert not top.defined
    assert top.reason is not None
    assert "highest" in top.reason


def test_batch_estimates_equal_the_one_examinee_ones() -> None:
    bank, _ = _bank(60, guessing=True, seed=8)
    rng = np.random.default_rng(9)
    items = np.full((6, 16), -1)
    responses = np.full((6, 16), -1)
    for row in range(6):
        length = 4 + 2 * row
        items[row, :length] = rng.choice(60, size=length, replace=False)
        responses[row, :length] = rng.integers(0, 2, size=length)
    responses[0, :4] = 1  # an all-correct row
    for batch_fn, single_fn, config in (
        (eap_batch, estimate_eap, EstimatorConfig()),
        (map_batch, estimate_map, EstimatorConfig()),
        (ml_batch, estimate_ml, ML),
    ):
        batch = batch_fn(bank, items, responses, config)
        for row in range(6):
            valid = items[row] >= 0
            single = single_fn(bank, items[row, valid], responses[row, valid], config)
            assert batch.defined[row] == single.defined
            if single.defined:
                assert batch.theta[row] == pytest.approx(single.theta, abs=1e-7)
                assert batch.se[row] == pytest.approx(single.se, abs=1e-7)


def test_estimator_config_is_validated() -> None:
    with pytest.raises(ValidationError, match="fallback"):
        EstimatorConfig(method=EstimationMethod.ML, fallback=EstimationMethod.ML)
    with pytest.raises(ValidationError, match="theta_min"):
        EstimatorConfig(theta_min=2.0, theta_max=1.0)
    with pytest.raises(ValidationError):
        EstimatorConfig(prior_sd=0.0)
    restored = EstimatorConfig.model_validate_json(
        EstimatorConfig(method=EstimationMethod.MAP, prior_sd=1.5).model_dump_json()
    )
    assert restored == EstimatorConfig(method=EstimationMethod.MAP, prior_sd=1.5)
