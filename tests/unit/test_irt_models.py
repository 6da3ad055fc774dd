"""IRT models and item-bank validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from catsim import irt as catsim_irt

from are_workers.errors import InvalidInputError
from are_workers.services.assessments.irt import (
    ItemBank,
    ItemModel,
    ItemSpec,
    dichotomous_information,
    prob_correct,
)


def _mixed_bank() -> ItemBank:
    return ItemBank(
        [
            ItemSpec(item_id="rasch", model=ItemModel.ONE_PL, a=1.0, b=-0.5),
            ItemSpec(item_id="two", model=ItemModel.TWO_PL, a=1.7, b=0.3),
            ItemSpec(item_id="three", model=ItemModel.THREE_PL, a=1.2, b=0.8, c=0.2),
            ItemSpec(item_id="graded", model=ItemModel.GRM, a=1.4, thresholds=(-1.5, -0.2, 1.1)),
        ]
    )


def test_category_probabilities_sum_to_one_and_match_the_models() -> None:
    bank = _mixed_bank()
    thetas = np.linspace(-4, 4, 17)
    probs = bank.category_probabilities(thetas)
    assert probs.shape == (17, 4, 4)
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, atol=1e-12)
    assert np.all(probs >= 0)
    # Dichotomous items: only categories 0 and 1 carry probability.
    np.testing.assert_allclose(probs[:, :3, 2:], 0.0)
    expected_3pl = 0.2 + 0.8 / (1 + np.exp(-1.2 * (thetas - 0.8)))
    np.testing.assert_allclose(probs[:, 2, 1], expected_3pl, rtol=1e-12)
    # GRM: P(X >= k) is the 2PL curve at threshold k.
    cumulative = 1 / (1 + np.exp(-1.4 * (thetas[:, None] - np.array([-1.5, -0.2, 1.1]))))
    np.testing.assert_allclose(probs[:, 3, 1:].sum(axis=-1), cumulative[:, 0], rtol=1e-12)
    np.testing.assert_allclose(probs[:, 3, 3], cumulative[:, 2], rtol=1e-12)


def test_information_matches_catsim_for_3pl_and_the_score_variance_for_grm() -> None:
    rng = np.random.default_rng(0)
    a, b, c = rng.lognormal(0, 0.3, 50), rng.normal(0, 1, 50), rng.uniform(0, 0.3, 50)
    bank = ItemBank.from_arrays(a, b, c)
    items = np.column_stack([a, b, c, np.ones(50)])
    for theta in (-2.0, 0.0, 1.3):
        np.testing.assert_allclose(
            bank.information(theta), catsim_irt.inf_hpc(theta, items), rtol=1e-10
        )
    # Fisher information = E[(d/dtheta log P(X))^2], checked by finite differences.
    graded = _mixed_bank()
    theta, h = 0.4, 1e-5
    probs = graded.category_probabilities(theta)
    upper = graded.category_probabilities(theta + h)
    lower = graded.category_probabilities(theta - h)
    exists = probs > 0
    dlog = np.zeros_like(probs)
    dlog[exists] = (np.log(upper[exists]) - np.log(lower[exists])) / (2 * h)
    expected = (probs * dlog**2).sum(axis=-1)
    np.testing.assert_allclose(graded.information(theta), expected, rtol=1e-6)


def test_generic_and_fast_dichotomous_paths_agree() -> None:
    rng = np.random.default_rng(1)
    a, b, c = rng.lognormal(0, 0.3, 30), rng.normal(0, 1, 30), rng.uniform(0, 0.3, 30)
    fast = ItemBank.from_arrays(a, b, c)
    # Adding one graded item switches the bank to the generic kernels.
    generic = ItemBank(
        [*fast.specs, ItemSpec(item_id="g", model=ItemModel.GRM, a=1.0, thresholds=(0.0, 1.0))]
    )
    grid = np.linspace(-6, 6, 61)
    items = rng.integers(0, 30, size=(4, 12))
    responses = rng.integers(0, 2, size=(4, 12))
    np.testing.assert_allclose(
        fast.response_log_probabilities(items, responses, grid),
        generic.response_log_probabilities(items, responses, grid),
        atol=1e-12,
    )
    np.testing.assert_allclose(
        fast.information(np.array([-1.0, 2.0])),
        generic.information(np.array([-1.0, 2.0]))[:, :30],
        rtol=1e-10,
    )
    np.testing.assert_allclose(prob_correct(0.5, a, b, c), fast.expected_score(0.5), rtol=1e-12)
    assert np.all(dichotomous_information(0.0, a, b, c) > 0)


def test_log_likelihood_derivatives_match_finite_differences() -> None:
    bank = _mixed_bank()
    items = np.array([[0, 1, 2, 3], [3, 2, -1, -1]])
    responses = np.array([[1, 0, 1, 2], [3, 0, -1, -1]])
    theta, h = np.array([0.2, -0.7]), 1e-5
    ll, d1, d2 = bank.log_likelihood_derivatives(items, responses, theta)
    ll_plus, d1_plus, _ = bank.log_likelihood_derivatives(items, responses, theta + h)
    ll_minus, d1_minus, _ = bank.log_likelihood_derivatives(items, responses, theta - h)
    np.testing.assert_allclose(d1, (ll_plus - ll_minus) / (2 * h), rtol=1e-6)
    np.testing.assert_allclose(d2, (d1_plus - d1_minus) / (2 * h), rtol=1e-5)
    grid_ll = bank.response_log_probabilities(items, responses, theta[:, None, None]).sum(axis=1)
    np.testing.assert_allclose(grid_ll[:, 0], ll, rtol=1e-12)


def test_simulated_responses_follow_the_model_and_catsims_rule() -> None:
    bank = _mixed_bank()
    rng = np.random.default_rng(2)
    u = rng.random(200_000)
    for row in range(4):
        answers = bank.simulate_responses(np.full(u.shape, 0.3), np.full(u.shape, row), u)
        observed = np.bincount(answers, minlength=4) / u.size
        np.testing.assert_allclose(observed, bank.category_probabilities(0.3)[row], atol=5e-3)
    # Dichotomous: correct exactly when P(correct) >= u, as catsim decides.
    p = bank.category_probabilities(0.3)[2, 1]
    assert bank.simulate_responses(0.3, 2, p - 1e-9) == 1
    assert bank.simulate_responses(0.3, 2, p + 1e-9) == 0


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        (ItemSpec(item_id="neg-a", a=-0.5, b=0.0), "item 'neg-a': discrimination a=-0.5"),
        (ItemSpec(item_id="zero-a", a=0.0, b=0.0), "item 'zero-a': discrimination a=0.0"),
        (ItemSpec(item_id="nan-a", a=math.nan, b=0.0), "item 'nan-a': discrimination a=nan"),
        (
            ItemSpec(item_id="big-c", model=ItemModel.THREE_PL, a=1.0, b=0.0, c=1.0),
            "item 'big-c': guessing c=1.0 must be in [0, 1)",
        ),
        (
            ItemSpec(item_id="neg-c", model=ItemModel.THREE_PL, a=1.0, b=0.0, c=-0.1),
            "item 'neg-c': guessing c=-0.1",
        ),
        (ItemSpec(item_id="inf-b", a=1.0, b=math.inf), "item 'inf-b': difficulty b=inf"),
        (ItemSpec(item_id="no-b", a=1.0), "item 'no-b': difficulty b=None"),
        (ItemSpec(item_id="c-2pl", a=1.0, b=0.0, c=0.2), "only allowed for 3PL"),
        (
            ItemSpec(item_id="grm", model=ItemModel.GRM, a=1.0, thresholds=(0.5, 0.1)),
            "item 'grm': thresholds [0.5, 0.1] must be strictly increasing",
        ),
        (
            ItemSpec(item_id="grm0", model=ItemModel.GRM, a=1.0, thresholds=()),
            "item 'grm0': a GRM item needs at least one threshold",
        ),
        (ItemSpec(item_id="k", a=1.0, b=0.0, exposure_k=1.5), "item 'k': exposure parameter"),
    ],
)
def test_degenerate_items_are_rejected_by_name(spec: ItemSpec, fragment: str) -> None:
    good = ItemSpec(item_id="fine", a=1.0, b=0.0)
    with pytest.raises(InvalidInputError) as caught:
        ItemBank([good, spec])
    assert fragment in caught.value.user_message
    assert caught.value.code == "invalid_item_bank"
    assert "'fine'" not in caught.value.user_message


def test_bank_level_problems_are_reported() -> None:
    with pytest.raises(InvalidInputError, match="used more than once"):
        ItemBank([ItemSpec(item_id="x", b=0.0), ItemSpec(item_id="x", b=1.0)])
    with pytest.raises(InvalidInputError, match="1PL items must share one discrimination"):
        ItemBank(
            [
                ItemSpec(item_id="p", model=ItemModel.ONE_PL, a=1.0, b=0.0),
                ItemSpec(item_id="q", model=ItemModel.ONE_PL, a=1.2, b=0.0),
            ]
        )
    with pytest.raises(InvalidInputError, match="empty"):
        ItemBank([])
    many = [ItemSpec(item_id=f"bad{i}", a=-1.0, b=0.0) for i in range(15)]
    with pytest.raises(InvalidInputError, match=r"and 5 more"):
        ItemBank(many)


def test_bank_arrays_are_read_only_and_ids_resolve() -> None:
    bank = _mixed_bank()
    with pytest.raises(ValueError, match="read-only"):
        bank.a[0] = 3.0
    np.testing.assert_array_equal(bank.indices(["graded", "rasch"]), [3, 0])
    with pytest.raises(InvalidInputError, match="'nope' is not part"):
        bank.indices(["nope"])
    with pytest.raises(InvalidInputError, match="from 0 to 3"):
        bank.validate_response("graded", 4)
    assert list(bank.n_categories) == [2, 2, 2, 4]
    assert not bank.is_dichotomous
    assert bank.with_exposure_k([0.5] * 4).exposure_k.tolist() == [0.5] * 4
