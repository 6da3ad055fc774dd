"""Scaled scores and percentile ranks from stored norm tables."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from pydantic import ValidationError

from are_workers.services.assessments.norms import NormTable, ScoreScale, percentile_rank


def test_percentile_is_the_interpolated_mid_rank_empirical_cdf() -> None:
    norms = NormTable(name="2025 applicants", thetas=(-1.0, 0.0, 0.0, 1.0, 2.0))
    # At a stored value: share below plus half the share at it.
    assert norms.percentile(-1.0) == pytest.approx(10.0)
    assert norms.percentile(0.0) == pytest.approx(40.0)
    assert norms.percentile(2.0) == pytest.approx(90.0)
    # Between stored values: linear interpolation.
    assert norms.percentile(0.5) == pytest.approx(55.0)
    assert norms.percentile(-0.25) == pytest.approx(32.5)
    # Outside the group: nobody below / above.
    assert norms.percentile(-3.0) == 0.0
    assert norms.percentile(5.0) == 100.0
    assert percentile_rank(0.5, norms) == norms.percentile(0.5)


def test_frequency_table_equals_the_expanded_sample() -> None:
    rng = np.random.default_rng(0)
    sample = np.round(rng.normal(0.2, 1.1, 2000), 1)
    values, counts = np.unique(sample, return_counts=True)
    raw = NormTable.from_sample("raw", sample)
    table = NormTable(
        name="binned", thetas=tuple(values.tolist()), counts=tuple(int(c) for c in counts)
    )
    for theta in (-2.05, -0.3, 0.0, 0.77, 1.9):
        assert table.percentile(theta) == pytest.approx(raw.percentile(theta), abs=1e-9)
    # Not a normal-curve formula: a skewed group gives its own percentiles.
    skewed = NormTable.from_sample("skewed", rng.exponential(1.0, 5000) - 1.0)
    assert skewed.percentile(0.0) == pytest.approx(100 * (1 - np.exp(-1.0)), abs=2.0)
    assert skewed.percentile(-1.5) == 0.0


def test_percentiles_increase_with_theta() -> None:
    norms = NormTable.from_sample("n", np.random.default_rng(1).normal(size=500))
    ranks = [norms.percentile(t) for t in np.linspace(-4, 4, 200)]
    assert all(b >= a for a, b in itertools.pairwise(ranks))


def test_norm_tables_are_validated() -> None:
    with pytest.raises(ValidationError, match="sorted"):
        NormTable(name="x", thetas=(1.0, 0.0))
    with pytest.raises(ValidationError, match="finite"):
        NormTable(name="x", thetas=(0.0, float("inf")))
    with pytest.raises(ValidationError, match="one count per theta"):
        NormTable(name="x", thetas=(0.0, 1.0), counts=(3,))
    with pytest.raises(ValidationError, match="not all 0"):
        NormTable(name="x", thetas=(0.0,), counts=(0,))
    with pytest.raises(ValidationError):
        NormTable(name="x", thetas=())
    with pytest.raises(ValueError, match="finite"):
        NormTable(name="x", thetas=(0.0,)).percentile(float("nan"))
    table = NormTable(name="x", thetas=(0.0, 1.0), counts=(2, 3))
    assert NormTable.model_validate_json(table.model_dump_json()) == table


def test_score_scale_is_linear_and_optionally_clamped() -> None:
    scale = ScoreScale()
    assert scale.score(0.0) == 500.0
    assert scale.score(-1.25) == 375.0
    assert scale.standard_error(0.3) == pytest.approx(30.0)
    clamped = ScoreScale(intercept=100, slope=15, minimum=55, maximum=145, decimals=0)
    assert clamped.score(-4.0) == 55
    assert clamped.score(1.234) == 119
    assert ScoreScale(slope=-10).standard_error(0.5) == 5.0
    with pytest.raises(ValidationError, match="slope"):
        ScoreScale(slope=0)
