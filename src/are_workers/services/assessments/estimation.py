"""Ability estimation: EAP, MAP, (optionally bounded) ML and Warm's WLE, each with its SE.

Why four: EAP always exists and has the smallest error over a population that matches its
prior, which matters early in a test, so it drives item selection. MAP is its mode-based
sibling. But both shrink towards the prior mean: with a fixed N(0, 1) prior the strongest
candidates of an able pool are under-scored on a short test, a fairness defect when the score
decides who is hired. The *reported* score is therefore Warm's weighted likelihood estimate
(WLE) by default: its bias is O(1/n^2) instead of ML's O(1/n) outward bias and EAP's inward
shrinkage, and unlike ML it stays finite when every answer is in the lowest or highest
category. ML is kept (prior-free, what catsim computes); where it diverges it returns an
explicit *undefined* result so the caller can fall back to EAP/MAP.

Every estimator is written for a batch of examinees (item/response matrices padded with -1),
because simulations, exposure calibration and validation run thousands of tests in lock
step; the one-examinee functions are thin wrappers around the same kernels.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Self

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, model_validator

from are_workers.services.assessments.irt import (
    BoolArray,
    FloatArray,
    IntArray,
    ItemBank,
    WarmKernel,
)

#: Newton refinements stop when a step is below this (theta units).
_NEWTON_TOLERANCE = 1e-9
_NEWTON_MAX_ITERATIONS = 60


class EstimationMethod(StrEnum):
    """Which estimator produced an ability estimate."""

    EAP = "eap"
    MAP = "map"
    ML = "ml"
    WLE = "wle"


class EstimatorConfig(BaseModel):
    """How abilities are estimated in a test (stored with the test definition).

    ``theta_min``/``theta_max`` bound the quadrature grid (EAP) and the search range (MAP,
    ML); ``quadrature_points`` equally spaced points over it (121 on [-6, 6] is a 0.1 step,
    fine enough for posterior SDs down to about 0.1). ``ml_bounded`` makes ML return the
    bound, as catsim's bounded search does, instead of *undefined* when the likelihood keeps
    rising past it. ``fallback`` estimates whenever ML or WLE is undefined (no answers).
    ``final`` produces the reported score of a finished session (WLE: no shrinkage towards
    the prior); ``method`` only steers item selection and the SE stopping rule.
    """

    model_config = ConfigDict(frozen=True)

    method: EstimationMethod = EstimationMethod.EAP
    prior_mean: float = Field(default=0.0, allow_inf_nan=False)
    prior_sd: float = Field(default=1.0, gt=0, allow_inf_nan=False)
    quadrature_points: int = Field(default=121, ge=11, le=2001)
    theta_min: float = Field(default=-6.0, allow_inf_nan=False)
    theta_max: float = Field(default=6.0, allow_inf_nan=False)
    ml_bounded: bool = False
    fallback: EstimationMethod = EstimationMethod.EAP
    final: EstimationMethod = EstimationMethod.WLE

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.theta_min >= self.theta_max:
            raise ValueError("theta_min must be below theta_max")
        if self.fallback in {EstimationMethod.ML, EstimationMethod.WLE}:
            raise ValueError("the fallback estimator must be eap or map (it must always exist)")
        return self


@dataclass(frozen=True, slots=True)
class AbilityEstimate:
    """One examinee's estimate.

    ``defined`` is False only for ML when the likelihood has no finite maximum (and for
    ML/WLE without any answer); ``theta``
    is then ``±inf`` and ``se`` is ``inf``. ``at_bound`` marks a bounded-ML (or MAP) result
    that sits on the search bound.
    """

    theta: float
    se: float
    method: EstimationMethod
    defined: bool = True
    at_bound: bool = False
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class BatchEstimate:
    """Estimates for many examinees at once (arrays of shape ``(E,)``)."""

    theta: FloatArray
    se: FloatArray
    defined: BoolArray
    at_bound: BoolArray
    method: EstimationMethod

    def row(self, index: int = 0, reason: str | None = None) -> AbilityEstimate:
        """The estimate of one examinee."""
        return AbilityEstimate(
            theta=float(self.theta[index]),
            se=float(self.se[index]),
            method=self.method,
            defined=bool(self.defined[index]),
            at_bound=bool(self.at_bound[index]),
            reason=reason,
        )


@lru_cache(maxsize=32)
def quadrature_grid(theta_min: float, theta_max: float, points: int) -> FloatArray:
    """Equally spaced quadrature points (cached: every step of every session reuses them)."""
    grid = np.linspace(theta_min, theta_max, points)
    grid.flags.writeable = False
    return grid


def log_prior(grid: FloatArray, mean: float, sd: float) -> FloatArray:
    """Normal log-density (up to a constant) on ``grid``."""
    return np.asarray(-0.5 * ((grid - mean) / sd) ** 2)


def log_likelihood_on_grid(
    bank: ItemBank, items: npt.ArrayLike, responses: npt.ArrayLike, grid: FloatArray
) -> FloatArray:
    """Log-likelihood of each examinee's responses at each grid point: ``(E, Q)``."""
    return np.asarray(bank.response_log_probabilities(items, responses, grid).sum(axis=-2))


# --- EAP ------------------------------------------------------------------------------------


def eap_from_log_likelihood(
    log_likelihood: FloatArray, grid: FloatArray, mean: float, sd: float
) -> BatchEstimate:
    """Posterior mean and SD from log-likelihoods on the grid (rows are examinees).

    Split out so that simulations can accumulate the log-likelihood one item at a time
    instead of recomputing it from all answers at every step.
    """
    log_post = np.atleast_2d(log_likelihood) + log_prior(grid, mean, sd)
    weights = np.exp(log_post - log_post.max(axis=-1, keepdims=True))
    weights /= weights.sum(axis=-1, keepdims=True)
    theta = weights @ grid
    variance = np.einsum("eq,eq->e", weights, (grid[np.newaxis, :] - theta[:, np.newaxis]) ** 2)
    n = theta.shape[0]
    return BatchEstimate(
        theta=theta,
        se=np.sqrt(variance),
        defined=np.ones(n, dtype=bool),
        at_bound=np.zeros(n, dtype=bool),
        method=EstimationMethod.EAP,
    )


def eap_batch(
    bank: ItemBank, items: npt.ArrayLike, responses: npt.ArrayLike, config: EstimatorConfig
) -> BatchEstimate:
    """EAP for every row of the padded ``items``/``responses`` matrices."""
    grid = quadrature_grid(config.theta_min, config.theta_max, config.quadrature_points)
    loglik = log_likelihood_on_grid(bank, np.atleast_2d(items), np.atleast_2d(responses), grid)
    return eap_from_log_likelihood(loglik, grid, config.prior_mean, config.prior_sd)


# --- MAP and ML: grid search, then a safeguarded Newton refinement ------------------------------


def _maximise(
    bank: ItemBank,
    items: IntArray,
    responses: IntArray,
    config: EstimatorConfig,
    *,
    with_prior: bool,
) -> tuple[FloatArray, BoolArray]:
    """Global maximiser of the log-likelihood (plus log-prior) within the configured bounds.

    Why a grid first: 3PL likelihoods can be multimodal, and Newton from a fixed start can
    settle on the wrong mode or run off to infinity. The grid finds the best cell, Newton
    with a bisection fallback polishes the root of the score inside it. Returns the
    maximisers and whether each sits on a bound (objective still rising towards it).
    """
    grid = quadrature_grid(config.theta_min, config.theta_max, config.quadrature_points)
    objective = log_likelihood_on_grid(bank, items, responses, grid)
    if with_prior:
        objective = objective + log_prior(grid, config.prior_mean, config.prior_sd)
    best = np.argmax(objective, axis=-1)
    last = grid.shape[0] - 1
    lo = grid[np.maximum(best - 1, 0)]
    hi = grid[np.minimum(best + 1, last)]
    theta = grid[best].copy()

    def score(at: FloatArray) -> tuple[FloatArray, FloatArray]:
        _, d1, d2 = bank.log_likelihood_derivatives(items, responses, at)
        if with_prior:
            precision = 1.0 / config.prior_sd**2
            d1 = d1 - (at - config.prior_mean) * precision
            d2 = d2 - precision
        return d1, d2

    d1_lo, _ = score(lo)
    d1_hi, _ = score(hi)
    at_lower = (best == 0) & (d1_lo <= 0)
    at_upper = (best == last) & (d1_hi >= 0)
    at_bound = at_lower | at_upper
    active = ~at_bound
    for _ in range(_NEWTON_MAX_ITERATIONS):
        if not active.any():
            break
        d1, d2 = score(theta)
        lo = np.where(active & (d1 > 0), theta, lo)
        hi = np.where(active & (d1 <= 0), theta, hi)
        with np.errstate(divide="ignore", invalid="ignore"):
            newton = theta - d1 / d2
        usable = (d2 < 0) & (newton > lo) & (newton < hi)
        proposal = np.where(usable, newton, 0.5 * (lo + hi))
        step = np.abs(proposal - theta)
        theta = np.where(active, proposal, theta)
        active &= step > _NEWTON_TOLERANCE
    theta = np.where(at_lower, config.theta_min, np.where(at_upper, config.theta_max, theta))
    return theta, at_bound


def map_batch(
    bank: ItemBank, items: npt.ArrayLike, responses: npt.ArrayLike, config: EstimatorConfig
) -> BatchEstimate:
    """Posterior mode; SE from the test information plus the prior precision."""
    item_arr = np.atleast_2d(np.asarray(items, dtype=np.int64))
    response_arr = np.atleast_2d(np.asarray(responses, dtype=np.int64))
    theta, at_bound = _maximise(bank, item_arr, response_arr, config, with_prior=True)
    information = bank.test_information(item_arr, theta, (item_arr >= 0) & (response_arr >= 0))
    se = 1.0 / np.sqrt(information + 1.0 / config.prior_sd**2)
    return BatchEstimate(
        theta=theta,
        se=se,
        defined=np.ones(theta.shape[0], dtype=bool),
        at_bound=at_bound,
        method=EstimationMethod.MAP,
    )


def extreme_patterns(
    bank: ItemBank, items: npt.ArrayLike, responses: npt.ArrayLike
) -> tuple[BoolArray, BoolArray]:
    """Rows whose every answer is in the lowest (resp. highest) category of its item.

    For those the likelihood is monotone in theta, so ML has no finite solution. Rows with
    no answers at all count as neither (ML is undefined for them for another reason).
    """
    item_arr = np.atleast_2d(np.asarray(items, dtype=np.int64))
    response_arr = np.atleast_2d(np.asarray(responses, dtype=np.int64))
    valid = (item_arr >= 0) & (response_arr >= 0)
    highest = bank.n_categories[np.where(valid, item_arr, 0)] - 1
    any_answer = valid.any(axis=-1)
    all_lowest = np.where(valid, response_arr == 0, True).all(axis=-1) & any_answer
    all_highest = np.where(valid, response_arr == highest, True).all(axis=-1) & any_answer
    return np.asarray(all_lowest, dtype=bool), np.asarray(all_highest, dtype=bool)


def ml_batch(
    bank: ItemBank, items: npt.ArrayLike, responses: npt.ArrayLike, config: EstimatorConfig
) -> BatchEstimate:
    """Maximum likelihood; SE = 1/sqrt(test information at the estimate).

    Unbounded (``config.ml_bounded`` False): rows whose likelihood keeps rising past a bound
    (all lowest/highest answers, some 3PL patterns, or no answers) get ``defined=False``,
    ``theta=±inf`` (``nan`` with no answers) and ``se=inf``. Bounded: they get the bound.
    """
    item_arr = np.atleast_2d(np.asarray(items, dtype=np.int64))
    response_arr = np.atleast_2d(np.asarray(responses, dtype=np.int64))
    valid = (item_arr >= 0) & (response_arr >= 0)
    theta, at_bound = _maximise(bank, item_arr, response_arr, config, with_prior=False)
    all_lowest, all_highest = extreme_patterns(bank, item_arr, response_arr)
    theta = np.where(all_lowest, config.theta_min, np.where(all_highest, config.theta_max, theta))
    at_bound = at_bound | all_lowest | all_highest
    information = bank.test_information(item_arr, theta, valid)
    with np.errstate(divide="ignore"):
        se = 1.0 / np.sqrt(information)
    no_answers = ~valid.any(axis=-1)
    defined: BoolArray
    if config.ml_bounded:
        defined = np.asarray(~no_answers, dtype=bool)
    else:
        defined = ~(at_bound | no_answers)
        direction = np.where(theta <= config.theta_min, -np.inf, np.inf)
        theta = np.where(defined, theta, direction)
        se = np.where(defined, se, np.inf)
    theta = np.where(no_answers, np.nan, theta)
    se = np.where(no_answers, np.inf, se)
    return BatchEstimate(
        theta=theta, se=se, defined=defined, at_bound=at_bound, method=EstimationMethod.ML
    )


# --- WLE: Warm's weighted likelihood ----------------------------------------------------------

#: Examinees per block in the WLE grid search: bounds the (block, items, grid, categories)
#: temporaries to a few tens of MB for 30-item tests.
_WLE_BLOCK = 256
#: Spacing of the WLE's search grid: fine enough to separate the 3PL's modes, coarse enough
#: that the grid costs no more than the root polish.
_WLE_GRID_STEP = 0.25
_ROOT_ITERATIONS = 60
_ROOT_TOLERANCE = 1e-12


def _warm_equation(kernel: WarmKernel, theta: FloatArray) -> FloatArray:
    """Warm's modified score ``score + J / (2 I)`` at ``theta`` (shape ``(E, Q)``)."""
    score, information, warm_j = kernel(theta)
    with np.errstate(divide="ignore", invalid="ignore"):
        correction = np.where(information > 0, warm_j / (2 * information), 0.0)
    return np.asarray(score + correction)


def _scalar_equation(kernel: WarmKernel) -> Callable[[float], float]:
    """Warm's equation of a one-row kernel as a function of one float."""

    def equation(theta: float) -> float:
        score, information, warm_j = kernel(np.array([[theta]]))
        info = float(information[0, 0])
        return float(score[0, 0]) + (float(warm_j[0, 0]) / (2 * info) if info > 0 else 0.0)

    return equation


def _illinois(
    function: Callable[[FloatArray], FloatArray],
    lo: FloatArray,
    hi: FloatArray,
    f_lo: FloatArray,
    f_hi: FloatArray,
) -> FloatArray:
    """Roots of ``function`` (one per row) bracketed by ``f(lo) > 0 > f(hi)``.

    Rows without such a bracket (a root on an end, or the caller's bound cases) get the end
    with the smaller ``|f|`` and are not waited for.

    The Illinois variant of regula falsi: as safe as bisection (the bracket only shrinks) and
    superlinear, about eight evaluations to 1e-12 where bisection needs forty.
    """
    lo, hi, f_lo, f_hi = lo.copy(), hi.copy(), f_lo.copy(), f_hi.copy()
    done = ~((f_lo > 0) & (f_hi < 0))
    side = np.zeros(lo.shape[0], dtype=np.int8)
    # Unbracketed rows keep the end closer to a root (a root on a grid point lands here).
    x = np.where(done, np.where(np.abs(f_lo) <= np.abs(f_hi), lo, hi), 0.5 * (lo + hi))
    for _ in range(_ROOT_ITERATIONS):
        with np.errstate(divide="ignore", invalid="ignore"):
            proposal = np.where(
                f_lo != f_hi, hi - f_hi * (hi - lo) / (f_hi - f_lo), 0.5 * (lo + hi)
            )
        proposal = np.where((proposal > lo) & (proposal < hi), proposal, 0.5 * (lo + hi))
        x = np.where(done, x, proposal)
        f_x = function(x)
        rising = f_x > 0
        # Illinois: halve the value kept twice in a row, so the far end moves too.
        f_hi = np.where(rising & (side == 1), 0.5 * f_hi, f_hi)
        f_lo = np.where(~rising & (side == -1), 0.5 * f_lo, f_lo)
        lo, f_lo = np.where(rising, x, lo), np.where(rising, f_x, f_lo)
        hi, f_hi = np.where(rising, hi, x), np.where(rising, f_hi, f_x)
        side = np.where(rising, 1, -1).astype(np.int8)
        done |= (hi - lo < _ROOT_TOLERANCE) | (np.abs(f_x) < _ROOT_TOLERANCE)
        if done.all():
            break
    return np.asarray(x)


def _illinois_one(
    function: Callable[[float], float], lo: float, hi: float, f_lo: float, f_hi: float
) -> float:
    """:func:`_illinois` for one row in plain floats.

    Why a second copy: a reported score is one examinee, and there the dozen array
    operations per iteration of the batch version cost more than the equation itself.
    """
    if not (f_lo > 0 > f_hi):
        return lo if abs(f_lo) <= abs(f_hi) else hi
    side = 0
    x = 0.5 * (lo + hi)
    for _ in range(_ROOT_ITERATIONS):
        x = hi - f_hi * (hi - lo) / (f_hi - f_lo) if f_lo != f_hi else 0.5 * (lo + hi)
        if not lo < x < hi:
            x = 0.5 * (lo + hi)
        f_x = function(x)
        if f_x > 0:
            if side == 1:
                f_hi *= 0.5
            lo, f_lo, side = x, f_x, 1
        else:
            if side == -1:
                f_lo *= 0.5
            hi, f_hi, side = x, f_x, -1
        if hi - lo < _ROOT_TOLERANCE or abs(f_x) < _ROOT_TOLERANCE:
            break
    return x


def wle_batch(
    bank: ItemBank, items: npt.ArrayLike, responses: npt.ArrayLike, config: EstimatorConfig
) -> BatchEstimate:
    """Warm's WLE within ``[theta_min, theta_max]``; SE = 1/sqrt(test information there).

    Why a grid first: the 3PL's weighted likelihood can have several local maxima. The
    modified score is integrated over the quadrature grid (trapezoid) to find the cell of
    the global maximum of the weighted log-likelihood, then regula falsi (Illinois) polishes
    the root inside it (to about 1e-12). A maximum beyond a bound returns the
    bound with ``at_bound`` set; rows without answers are undefined (``nan``).
    """
    item_arr = np.atleast_2d(np.asarray(items, dtype=np.int64))
    response_arr = np.atleast_2d(np.asarray(responses, dtype=np.int64))
    valid = (item_arr >= 0) & (response_arr >= 0)
    cells = math.ceil((config.theta_max - config.theta_min) / _WLE_GRID_STEP)
    grid = quadrature_grid(config.theta_min, config.theta_max, cells + 1)
    n = item_arr.shape[0]
    theta = np.empty(n)
    at_bound = np.zeros(n, dtype=bool)
    last = grid.shape[0] - 1
    for start in range(0, n, _WLE_BLOCK):
        rows = slice(start, start + _WLE_BLOCK)
        block_items, block_responses = item_arr[rows], response_arr[rows]
        e = block_items.shape[0]
        kernel = bank.warm_kernel(block_items, block_responses)
        modified = _warm_equation(kernel, np.broadcast_to(grid, (e, grid.shape[0])))
        steps = 0.5 * (modified[:, 1:] + modified[:, :-1]) * np.diff(grid)
        weighted = np.concatenate([np.zeros((e, 1)), np.cumsum(steps, axis=1)], axis=1)
        best = np.argmax(weighted, axis=1)
        index = np.arange(e)
        lower = (best == 0) & (modified[index, 0] <= 0)
        upper = (best == last) & (modified[index, last] >= 0)
        # The maximum's cell: the score is positive at its left end and negative at its right
        # (the trapezoid rises into ``best`` and falls out of it), so the root is bracketed.
        left = np.clip(np.where(modified[index, best] > 0, best, best - 1), 0, last - 1)

        lo, hi = grid[left], grid[left + 1]
        f_lo, f_hi = modified[index, left], modified[index, left + 1]
        if e == 1:
            found = np.array(
                [_illinois_one(_scalar_equation(kernel), lo[0], hi[0], f_lo[0], f_hi[0])]
            )
        else:

            def equation(at: FloatArray, kernel: WarmKernel = kernel) -> FloatArray:
                return _warm_equation(kernel, at[:, None])[:, 0]

            found = _illinois(equation, lo, hi, f_lo, f_hi)
        theta[rows] = np.where(lower, config.theta_min, np.where(upper, config.theta_max, found))
        at_bound[rows] = lower | upper
    information = bank.test_information(item_arr, theta, valid)
    with np.errstate(divide="ignore"):
        se = 1.0 / np.sqrt(information)
    no_answers = ~valid.any(axis=-1)
    return BatchEstimate(
        theta=np.where(no_answers, np.nan, theta),
        se=np.where(no_answers, np.inf, se),
        defined=np.asarray(~no_answers, dtype=bool),
        at_bound=at_bound,
        method=EstimationMethod.WLE,
    )


# --- one examinee --------------------------------------------------------------------------


def _as_row(
    items: Sequence[int] | IntArray, responses: Sequence[int] | IntArray
) -> tuple[IntArray, IntArray]:
    item_arr = np.asarray(items, dtype=np.int64).reshape(1, -1)
    response_arr = np.asarray(responses, dtype=np.int64).reshape(1, -1)
    if item_arr.shape != response_arr.shape:
        raise ValueError("items and responses must have the same length")
    return item_arr, response_arr


def estimate_eap(
    bank: ItemBank,
    items: Sequence[int] | IntArray,
    responses: Sequence[int] | IntArray,
    config: EstimatorConfig | None = None,
) -> AbilityEstimate:
    """EAP estimate and posterior SD for one examinee (bank row numbers and categories)."""
    item_arr, response_arr = _as_row(items, responses)
    return eap_batch(bank, item_arr, response_arr, config or EstimatorConfig()).row()


def estimate_map(
    bank: ItemBank,
    items: Sequence[int] | IntArray,
    responses: Sequence[int] | IntArray,
    config: EstimatorConfig | None = None,
) -> AbilityEstimate:
    """MAP estimate for one examinee."""
    item_arr, response_arr = _as_row(items, responses)
    return map_batch(bank, item_arr, response_arr, config or EstimatorConfig()).row()


def estimate_ml(
    bank: ItemBank,
    items: Sequence[int] | IntArray,
    responses: Sequence[int] | IntArray,
    config: EstimatorConfig | None = None,
) -> AbilityEstimate:
    """ML estimate for one examinee; ``defined=False`` (with a reason) where it diverges."""
    cfg = config or EstimatorConfig(method=EstimationMethod.ML)
    item_arr, response_arr = _as_row(items, responses)
    batch = ml_batch(bank, item_arr, response_arr, cfg)
    reason: str | None = None
    if item_arr.size == 0:
        reason = "no answers yet, so the likelihood is flat"
    elif batch.at_bound[0]:
        all_lowest, all_highest = extreme_patterns(bank, item_arr, response_arr)
        if all_lowest[0]:
            reason = "every answer is in the lowest category, so the likelihood keeps rising"
        elif all_highest[0]:
            reason = "every answer is in the highest category, so the likelihood keeps rising"
        else:
            bound = cfg.theta_min if batch.theta[0] <= cfg.theta_min else cfg.theta_max
            reason = f"the likelihood is still rising at the search bound {bound:g}"
        if cfg.ml_bounded:
            reason = f"bounded: {reason}"
    return batch.row(reason=reason)


def estimate_wle(
    bank: ItemBank,
    items: Sequence[int] | IntArray,
    responses: Sequence[int] | IntArray,
    config: EstimatorConfig | None = None,
) -> AbilityEstimate:
    """Warm's WLE for one examinee; finite for all-lowest and all-highest patterns too."""
    item_arr, response_arr = _as_row(items, responses)
    batch = wle_batch(bank, item_arr, response_arr, config or EstimatorConfig())
    reason = "no answers yet, so there is nothing to weight" if item_arr.size == 0 else None
    if batch.at_bound[0]:
        reason = "the weighted likelihood is still rising at the search bound"
    return batch.row(reason=reason)


def estimate(
    bank: ItemBank,
    items: Sequence[int] | IntArray,
    responses: Sequence[int] | IntArray,
    config: EstimatorConfig,
) -> AbilityEstimate:
    """The configured estimator, falling back from an undefined ML/WLE to ``config.fallback``."""
    if config.method == EstimationMethod.EAP:
        return estimate_eap(bank, items, responses, config)
    if config.method == EstimationMethod.MAP:
        return estimate_map(bank, items, responses, config)
    if config.method == EstimationMethod.WLE:
        result = estimate_wle(bank, items, responses, config)
    else:
        result = estimate_ml(bank, items, responses, config)
    if result.defined:
        return result
    if config.fallback == EstimationMethod.MAP:
        return estimate_map(bank, items, responses, config)
    return estimate_eap(bank, items, responses, config)


def final_config(config: EstimatorConfig) -> EstimatorConfig:
    """``config`` with its ``final`` estimator as the method: how a reported score is made."""
    return config.model_copy(update={"method": config.final})


def estimate_batch(
    bank: ItemBank, items: npt.ArrayLike, responses: npt.ArrayLike, config: EstimatorConfig
) -> BatchEstimate:
    """Batch form of :func:`estimate` (undefined ML/WLE rows replaced by the fallback)."""
    if config.method == EstimationMethod.EAP:
        return eap_batch(bank, items, responses, config)
    if config.method == EstimationMethod.MAP:
        return map_batch(bank, items, responses, config)
    primary = wle_batch if config.method == EstimationMethod.WLE else ml_batch
    ml = primary(bank, items, responses, config)
    if ml.defined.all():
        return ml
    fallback_fn = map_batch if config.fallback == EstimationMethod.MAP else eap_batch
    fallback = fallback_fn(bank, items, responses, config)
    return BatchEstimate(
        theta=np.where(ml.defined, ml.theta, fallback.theta),
        se=np.where(ml.defined, ml.se, fallback.se),
        defined=np.ones_like(ml.defined),
        at_bound=np.where(ml.defined, ml.at_bound, fallback.at_bound),
        method=config.method,
    )
