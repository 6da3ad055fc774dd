"""Warm's WLE: against an independent high-precision reference, finite for extreme patterns,
and without the shrinkage of EAP in the tails (fixed seeds, loose bounds; the bench carries
the real numbers)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pytest
from scipy.optimize import brentq, minimize_scalar

from are_workers.services.assessments import (
    CatConfig,
    EstimationMethod,
    EstimatorConfig,
    ItemBank,
    ItemModel,
    ItemSpec,
    StoppingRule,
    estimate,
    estimate_eap,
    estimate_wle,
    simulate,
    simulate_sessions,
)
from are_workers.services.assessments.estimation import wle_batch


def _logistic(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _category_terms(spec: ItemSpec, theta: float) -> list[tuple[float, float, float]]:
    """(P, P', P'') of every category, written out per item in scalar arithmetic."""
    if spec.model is ItemModel.GRM:
        bounds = list(spec.thresholds or ())
        floors = [0.0] * len(bounds)
    else:
        bounds = [float(spec.b or 0.0)]
        floors = [spec.c]
    cumulative = [(1.0, 0.0, 0.0)]
    for b, c in zip(bounds, floors, strict=True):
        s = _logistic(spec.a * (theta - b))
        d1 = (1 - c) * spec.a * s * (1 - s)
        cumulative.append((c + (1 - c) * s, d1, d1 * spec.a * (1 - 2 * s)))
    cumulative.append((0.0, 0.0, 0.0))
    return [
        tuple(lo - hi for lo, hi in zip(cumulative[k], cumulative[k + 1], strict=True))  # type: ignore[misc]
        for k in range(len(cumulative) - 1)
    ]


def _warm_reference(specs: list[ItemSpec], responses: list[int]) -> float:
    """Root of Warm's equation ``sum P'_x/P_x + J/(2I) = 0`` by Brent's method (xtol 1e-14)."""

    def equation(theta: float) -> float:
        score = information = warm_j = 0.0
        for spec, x in zip(specs, responses, strict=True):
            for k, (p, d1, d2) in enumerate(_category_terms(spec, theta)):
                information += d1 * d1 / p
                warm_j += d1 * d2 / p
                if k == x:
                    score += d1 / p
        return score + warm_j / (2 * information)

    return float(brentq(equation, -5.9, 5.9, xtol=1e-14, rtol=1e-15, maxiter=500))


RNG = np.random.default_rng(3)
TWO_PL = [
    ItemSpec(item_id=f"i{i}", a=float(RNG.uniform(0.6, 2)), b=float(RNG.normal())) for i in range(8)
]
THREE_PL = [
    ItemSpec(
        item_id=f"i{i}",
        model=ItemModel.THREE_PL,
        a=float(RNG.uniform(0.6, 2)),
        b=float(RNG.normal()),
        c=0.2,
    )
    for i in range(8)
]
GRADED = [
    ItemSpec(
        item_id=f"g{i}",
        model=ItemModel.GRM,
        a=float(RNG.uniform(0.6, 2)),
        thresholds=tuple(float(t) for t in np.sort(RNG.normal(size=3))),
    )
    for i in range(6)
]


@pytest.mark.parametrize(
    ("specs", "responses"),
    [
        (TWO_PL, [1, 0, 1, 1, 0, 1, 1, 0]),
        (TWO_PL, [1] * 8),
        (TWO_PL, [0] * 8),
        (THREE_PL, [1, 0, 1, 1, 0, 1, 1, 0]),
        (THREE_PL, [0] * 8),
        (THREE_PL, [1] * 8),
        (GRADED, [0, 1, 2, 3, 2, 1]),
        (GRADED, [3] * 6),
        (GRADED, [0] * 6),
    ],
    ids=[
        "2pl",
        "2pl-all-correct",
        "2pl-all-wrong",
        "3pl",
        "3pl-all-wrong",
        "3pl-all-correct",
        "grm",
        "grm-all-highest",
        "grm-all-lowest",
    ],
)
def test_wle_matches_a_high_precision_reference(
    specs: list[ItemSpec], responses: list[int]
) -> None:
    bank = ItemBank(specs)
    result = estimate_wle(bank, list(range(len(specs))), responses)
    assert result.method is EstimationMethod.WLE
    assert result.defined and not result.at_bound
    assert math.isfinite(result.theta) and math.isfinite(result.se)
    assert result.theta == pytest.approx(_warm_reference(specs, responses), abs=1e-9)


def test_wle_of_the_2pl_maximises_likelihood_times_root_information() -> None:
    """For the 1PL/2PL (exponential family) Warm's estimator is the posterior mode under
    Jeffreys' prior: a second, independent route to the same number."""
    responses = [1, 0, 1, 1, 0, 1, 1, 0]

    def negative(theta: float) -> float:
        total = 0.0
        information = 0.0
        for spec, x in zip(TWO_PL, responses, strict=True):
            p = _logistic(spec.a * (theta - float(spec.b or 0.0)))
            total += math.log(p if x else 1 - p)
            information += spec.a**2 * p * (1 - p)
        return -(total + 0.5 * math.log(information))

    mode = minimize_scalar(negative, bounds=(-5, 5), method="bounded", options={"xatol": 1e-12})
    result = estimate_wle(ItemBank(TWO_PL), list(range(8)), responses)
    assert result.theta == pytest.approx(mode.x, abs=1e-7)
    assert result.se == pytest.approx(
        1
        / math.sqrt(
            ItemBank(TWO_PL).test_information(np.arange(8)[None], np.array([result.theta]))[0]
        )
    )


def test_rasch_wle_is_symmetric() -> None:
    """Difficulties symmetric around 0: half right is 0, and mirror patterns mirror."""
    bank = ItemBank.from_arrays(np.ones(6), [-1.5, -1, -0.5, 0.5, 1, 1.5])
    items = list(range(6))
    assert estimate_wle(bank, items, [1, 1, 1, 0, 0, 0]).theta == pytest.approx(0, abs=1e-12)
    high = estimate_wle(bank, items, [1] * 6).theta
    low = estimate_wle(bank, items, [0] * 6).theta
    assert high == pytest.approx(-low, abs=1e-10)
    assert 2 < high < 6


def test_wle_is_bounded_and_batch_agrees_with_single() -> None:
    rng = np.random.default_rng(8)
    bank = ItemBank.from_arrays(rng.lognormal(0, 0.3, 60), rng.normal(size=60), np.full(60, 0.2))
    items = np.array([rng.choice(60, 12, replace=False) for _ in range(40)])
    responses = rng.integers(0, 2, items.shape)
    responses[0] = 1
    config = EstimatorConfig(theta_min=-4, theta_max=4)
    batch = wle_batch(bank, items, responses, config)
    assert np.all((batch.theta >= -4) & (batch.theta <= 4))
    for e in range(5):
        single = estimate_wle(bank, items[e], responses[e], config)
        assert single.theta == pytest.approx(batch.theta[e], abs=1e-12)


def test_no_answers_falls_back_to_eap() -> None:
    bank = ItemBank(TWO_PL)
    result = estimate(bank, [], [], EstimatorConfig(method=EstimationMethod.WLE))
    assert result.method is EstimationMethod.EAP
    assert result.theta == pytest.approx(0.0)


def _shifted_run(length: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    bank = ItemBank.from_arrays(rng.lognormal(0, 0.3, 300), rng.normal(0, 1, 300))
    true_theta = rng.normal(1.0, 1.5, 1000)
    config = CatConfig(
        estimator=EstimatorConfig(theta_min=-4, theta_max=4),
        stopping=StoppingRule(se_threshold=None, min_items=1, max_items=length),
    )
    result = simulate(bank, true_theta, config, rng=np.random.default_rng(seed + 1))
    assert result.score is not None
    return true_theta, result.score, result.theta


@pytest.mark.slow
def test_wle_does_not_shrink_an_able_pool_like_eap() -> None:
    """Pool centred 1 SD above the prior with a wider spread, 10 items: EAP under-scores the top
    decile by far more than WLE does."""
    true_theta, wle, eap = _shifted_run(10, 21)
    top = true_theta >= np.quantile(true_theta, 0.9)
    bottom = true_theta <= np.quantile(true_theta, 0.1)
    wle_top, eap_top = (
        float(np.mean(wle[top] - true_theta[top])),
        float(np.mean(eap[top] - true_theta[top])),
    )
    # Part of the top decile lies beyond the search bound 4, which no estimator reaches.
    assert eap_top < -0.9  # the shrinkage the issue is about
    assert wle_top > eap_top + 0.6
    assert abs(wle_top) < 0.45
    assert abs(float(np.mean(wle[bottom] - true_theta[bottom]))) < 0.3


def test_sessions_report_the_wle_and_keep_the_eap() -> None:
    rng = np.random.default_rng(4)
    bank = ItemBank.from_arrays(rng.lognormal(0, 0.3, 80), rng.normal(size=80))
    config = CatConfig(stopping=StoppingRule(se_threshold=None, min_items=1, max_items=8))
    theta = np.array([2.5, -2.5, 0.0])
    result = simulate_sessions(bank, theta, config, seed=3, now=datetime(2026, 1, 1, tzinfo=UTC))
    assert result.score is not None
    for e in range(3):
        rows, answers = result.items[e], result.responses[e]
        assert result.score[e] == pytest.approx(estimate_wle(bank, rows, answers).theta)
        running = estimate_eap(bank, rows, answers, config.estimator)
        assert result.theta[e] == pytest.approx(running.theta)
