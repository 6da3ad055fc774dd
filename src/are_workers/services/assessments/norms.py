"""Reporting scales and norm-referenced percentiles.

Why an empirical norm table and not ``Phi(theta)``: the norm group of a real test (e.g. last
year's applicants for this role) is rarely normal on the theta metric, and recruiters read
percentiles literally. The table is the stored thetas (or a frequency table) of that group;
the percentile rank is the mid-rank empirical CDF, linearly interpolated between the
stored values so that it moves smoothly with theta instead of in jumps.
"""

from __future__ import annotations

import math
from typing import Self

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from are_workers.services.assessments.irt import FloatArray


class ScoreScale(BaseModel):
    """Linear reporting scale ``intercept + slope * theta`` (e.g. 500 + 100 theta).

    ``minimum``/``maximum`` optionally clamp reported scores so extreme estimates do not
    produce implausible numbers on a report.
    """

    model_config = ConfigDict(frozen=True)

    intercept: float = Field(default=500.0, allow_inf_nan=False)
    slope: float = Field(default=100.0, allow_inf_nan=False)
    minimum: float | None = Field(default=None, allow_inf_nan=False)
    maximum: float | None = Field(default=None, allow_inf_nan=False)
    decimals: int | None = Field(default=None, ge=0, le=6)

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.slope == 0:
            raise ValueError("slope must not be zero")
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError("minimum must not exceed maximum")
        return self

    def score(self, theta: float) -> float:
        """Scaled score of ``theta`` (clamped and rounded as configured)."""
        value = self.intercept + self.slope * theta
        if self.minimum is not None:
            value = max(value, self.minimum)
        if self.maximum is not None:
            value = min(value, self.maximum)
        return round(value, self.decimals) if self.decimals is not None else value

    def standard_error(self, se: float) -> float:
        """Standard error on the reporting scale."""
        value = abs(self.slope) * se
        return round(value, self.decimals) if self.decimals is not None else value


class NormTable(BaseModel):
    """A norm group's ability distribution.

    Either raw thetas (``counts`` omitted: each value counts once) or a frequency table
    (``thetas`` are distinct values or bin centres, ``counts`` their frequencies). Values
    must be sorted ascending and finite; storing them sorted keeps lookups O(log n).
    """

    model_config = ConfigDict(frozen=True)

    name: str = Field(min_length=1)
    thetas: tuple[float, ...] = Field(min_length=1)
    counts: tuple[int, ...] | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        if not all(math.isfinite(t) for t in self.thetas):
            raise ValueError(f"norm table '{self.name}': thetas must be finite")
        if any(hi < lo for lo, hi in zip(self.thetas, self.thetas[1:], strict=False)):
            raise ValueError(f"norm table '{self.name}': thetas must be sorted ascending")
        if self.counts is not None:
            if len(self.counts) != len(self.thetas):
                raise ValueError(f"norm table '{self.name}': one count per theta is required")
            if any(c < 0 for c in self.counts) or sum(self.counts) == 0:
                raise ValueError(f"norm table '{self.name}': counts must be >= 0, not all 0")
        return self

    @classmethod
    def from_sample(cls, name: str, thetas: np.typing.ArrayLike) -> NormTable:
        """A table from an unsorted sample of norm-group thetas."""
        values = np.sort(np.asarray(thetas, dtype=np.float64).ravel())
        return cls(name=name, thetas=tuple(float(v) for v in values))

    def _cdf_points(self) -> tuple[FloatArray, FloatArray]:
        """Distinct values and their mid-rank cumulative proportions."""
        values = np.asarray(self.thetas, dtype=np.float64)
        weights = (
            np.ones_like(values) if self.counts is None else np.asarray(self.counts, np.float64)
        )
        distinct, inverse = np.unique(values, return_inverse=True)
        totals = np.bincount(inverse, weights=weights)
        below = np.concatenate(([0.0], np.cumsum(totals)[:-1]))
        return distinct, (below + 0.5 * totals) / totals.sum()

    def percentile(self, theta: float) -> float:
        """Percentile rank of ``theta`` in the norm group, in [0, 100].

        At a stored value: the share of the group below it plus half the share at it.
        Between stored values: linear interpolation. Below the lowest / above the highest
        stored value: 0 / 100, since nobody in the group scored lower / higher.
        """
        if not math.isfinite(theta):
            raise ValueError("theta must be finite to look up a percentile")
        distinct, cdf = self._cdf_points()
        if theta < distinct[0]:
            return 0.0
        if theta > distinct[-1]:
            return 100.0
        return float(100.0 * np.interp(theta, distinct, cdf))


def percentile_rank(theta: float, norms: NormTable) -> float:
    """Percentile rank of ``theta`` in ``norms`` (see :meth:`NormTable.percentile`)."""
    return norms.percentile(theta)
