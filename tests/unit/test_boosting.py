"""The judge's boosted trees: pure logic on generated rows."""

from __future__ import annotations

import json

import numpy as np

from are_workers.services.matching import boosting


def _rows(n: int = 4000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    x = rng.uniform(0, 1, size=(n, 3))
    # Support needs a high similarity *and* a line of doing: an interaction no single
    # weight on either feature can express.
    y = ((x[:, 0] > 0.7) & (x[:, 1] > 0.5)).astype(float)
    return x, y


def _logloss(logit: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(1 / (1 + np.exp(-logit)), 1e-9, 1 - 1e-9)
    return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean())


def test_trees_learn_an_interaction_from_a_flat_start() -> None:
    x, y = _rows()
    trees = boosting.fit(x, y, np.zeros(len(y)), ("sim", "doing", "noise"), rounds=60)
    logit = trees.predict(x)
    assert _logloss(logit, y) < 0.25 * _logloss(np.zeros(len(y)), y)
    # Predicted at the corners of the interaction, not just fitted in sample.
    corners = np.array([[0.9, 0.9, 0.5], [0.9, 0.1, 0.5], [0.1, 0.9, 0.5]])
    high, only_similar, only_doing = trees.predict(corners)
    assert high > 2 and only_similar < -2 and only_doing < -2


def test_trees_start_from_the_margin_they_are_given() -> None:
    rng = np.random.default_rng(11)
    x = rng.uniform(0, 1, size=(6000, 3))
    margin = 4 * x[:, 0] - 2  # a scorer that is already calibrated: labels drawn from it
    y = (rng.uniform(size=len(x)) < 1 / (1 + np.exp(-margin))).astype(float)
    corrected = boosting.fit(x, y, margin, ("a", "b", "c"), rounds=20).predict(x)
    from_flat = boosting.fit(x, y, np.zeros(len(y)), ("a", "b", "c"), rounds=20).predict(x)
    # Little left to correct (the trees fit only the labels' noise), against a flat start.
    assert float(np.abs(corrected).mean()) < 0.2 * float(np.abs(from_flat).mean())


def test_a_missing_value_goes_right_in_training_and_scoring_alike() -> None:
    x, y = _rows()
    x[: len(x) // 2, 0] = np.nan
    y[: len(y) // 2] = 1.0  # unmeasured rows are all positive
    trees = boosting.fit(x, y, np.zeros(len(y)), ("a", "b", "c"), rounds=40)
    scored = trees.predict(np.array([[np.nan, 0.2, 0.2], [0.1, 0.2, 0.2]]))
    assert scored[0] > 2 and scored[1] < -2


def test_trees_round_trip_through_json_exactly() -> None:
    x, y = _rows()
    x[::7, 2] = np.nan
    trees = boosting.fit(x, y, np.zeros(len(y)), ("a", "b", "c"), rounds=25)
    again = boosting.Trees.from_json(json.loads(json.dumps(trees.to_json())))
    assert again.columns == trees.columns
    assert np.allclose(again.predict(x), trees.predict(x), atol=1e-4)


def test_the_same_rows_give_the_same_trees() -> None:
    x, y = _rows()
    one = boosting.fit(x, y, np.zeros(len(y)), ("a", "b", "c"), rounds=10)
    two = boosting.fit(x, y, np.zeros(len(y)), ("a", "b", "c"), rounds=10)
    assert one.to_json() == two.to_json()
