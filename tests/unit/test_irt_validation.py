"""End-to-end validation: precision against catsim, and the exposure cap in live sessions."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from catsim.estimation import NumericalSearchEstimator
from catsim.initialization import FixedPointInitializer
from catsim.item_bank import ItemBank as CatsimBank
from catsim.selection import MaxInfoSelector
from catsim.simulation import Simulator
from catsim.stopping import TestLengthStopper as LengthStopper

from are_workers.services.assessments import (
    CatConfig,
    ItemBank,
    SelectionConfig,
    StoppingRule,
    simulate,
    simulate_sessions,
)


@pytest.mark.slow
@pytest.mark.parametrize("guessing", [False, True], ids=["2PL", "3PL"])
def test_rmse_after_20_items_is_within_5_percent_of_catsim(guessing: bool) -> None:
    """500 examinees, same bank, same true thetas, same random answers.

    catsim draws one uniform per answer from ``default_rng(seed)``, examinee after examinee,
    and answers correctly when ``P >= u``; feeding our simulator the same uniforms in the
    same order gives both engines identical luck.
    """
    rng = np.random.default_rng(2024 + guessing)
    n_items, n_examinees, length, seed = 300, 500, 20, 77
    a = rng.lognormal(0, 0.3, n_items)
    b = rng.normal(0, 1, n_items)
    c = rng.uniform(0.1, 0.25, n_items) if guessing else np.zeros(n_items)
    true_theta = rng.normal(0, 1, n_examinees)

    reference = Simulator(CatsimBank(np.column_stack([a, b, c])), true_theta, seed=seed)
    reference.simulate(
        FixedPointInitializer(0.0),
        MaxInfoSelector(),
        NumericalSearchEstimator(),
        LengthStopper(max_items=length),
    )
    catsim_items = np.array(reference.administered_items)
    assert catsim_items.shape == (n_examinees, length)

    uniforms = np.random.default_rng(seed).random((n_examinees, length))
    config = CatConfig(stopping=StoppingRule(se_threshold=None, min_items=1, max_items=length))
    ours = simulate(
        ItemBank.from_arrays(a, b, c),
        true_theta,
        config,
        rng=np.random.default_rng(0),
        uniforms=uniforms,
    )
    assert np.all(ours.test_lengths == length)
    # Same first item (both start at theta = 0) and the same answer to it: same luck.
    np.testing.assert_array_equal(ours.items[:, 0], catsim_items[:, 0])
    np.testing.assert_array_equal(
        ours.responses[:, 0], np.array([r[0] for r in reference.response_vectors])
    )
    catsim_rmse = float(
        np.sqrt(np.mean((np.array(reference.latest_estimations) - true_theta) ** 2))
    )
    assert ours.rmse(true_theta) <= 1.05 * catsim_rmse, (ours.rmse(true_theta), catsim_rmse)


def test_exposure_cap_holds_in_sequential_sessions() -> None:
    rng = np.random.default_rng(11)
    n_items = 150
    bank = ItemBank.from_arrays(
        rng.lognormal(0, 0.3, n_items),
        rng.normal(0, 1, n_items),
        content_areas=[("numeric", "verbal", "logic")[j % 3] for j in range(n_items)],
    )
    r_max = 0.2
    config = CatConfig(
        selection=SelectionConfig(
            max_exposure_rate=r_max, content_targets={"numeric": 0.4, "verbal": 0.3, "logic": 0.3}
        ),
        stopping=StoppingRule(se_threshold=None, min_items=1, max_items=10),
    )
    theta = rng.normal(size=200)
    result = simulate_sessions(bank, theta, config, seed=5, now=datetime(2026, 1, 1, tzinfo=UTC))
    assert np.all(result.test_lengths == 10)
    assert result.exposure_rates.max() <= r_max
    assert result.exposure_rates.sum() == pytest.approx(10.0)
    # Capping costs some precision but the test still measures: the running EAP (what the
    # stopping rule sees; its wide N(0, 3) selection prior barely shrinks) and the reported
    # WLE, which trades some RMSE over an N(0, 1) population for no shrinkage, on 10 items.
    assert float(np.sqrt(np.mean((result.theta - theta) ** 2))) < 0.65
    assert result.rmse(theta) < 0.6
    uncapped = simulate(
        bank,
        theta,
        config.model_copy(
            update={"selection": config.selection.model_copy(update={"max_exposure_rate": None})}
        ),
        rng=np.random.default_rng(0),
    )
    assert uncapped.exposure_rates.max() > 0.9
