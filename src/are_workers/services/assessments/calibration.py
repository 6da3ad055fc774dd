"""Offline calibration: item parameters by marginal maximum likelihood (Bock-Aitkin EM),
parameter-drift and over-exposure flags, and Sympson-Hetter exposure parameters.

Why MML/EM: CAT response data are sparse (each examinee sees a few percent of the bank) and
the missingness depends only on observed answers, so it is ignorable for likelihood-based
estimation; integrating ability out over a quadrature grid gives consistent item estimates
without needing ability estimates first. The E-step is two matrix products over the
(examinee x item) matrix with NaN for "not administered", and the M-step is a vectorised
Fisher-scoring step for all items at once, so 200 items x 5,000 examinees take seconds.

Identification: the latent distribution is N(0, 1) unless anchor items (stored parameters
held fixed) are given, in which case its mean and SD are estimated so that new estimates
land on the anchors' scale; for the 1PL (Rasch, a = 1) the SD is always estimated.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Self

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, model_validator
from scipy.special import expit

from are_workers.errors import InvalidInputError
from are_workers.services.assessments.engine import CatConfig, simulate
from are_workers.services.assessments.irt import FloatArray, ItemBank, ItemModel, ItemSpec

#: Keeps slopes away from 0 and from the absurd values of Heywood-like cases.
_LOG_SLOPE_BOUNDS = (math.log(0.05), math.log(8.0))
_INTERCEPT_BOUND = 30.0
_GUESS_LOGIT_BOUNDS = (-12.0, 1.0)


class CalibrationModel(StrEnum):
    """Models that can be calibrated (the GRM by :func:`graded.calibrate_graded`)."""

    ONE_PL = "1PL"
    TWO_PL = "2PL"
    THREE_PL = "3PL"
    GRM = "GRM"


class CalibrationConfig(BaseModel):
    """Settings of one calibration run.

    ``slope_prior_sd``: SD of a normal prior on log(a) centred at 0 (``None``: no prior);
    a weak prior (e.g. 0.5) keeps sparsely answered items from drifting to extreme slopes.
    ``guessing_prior``: Beta(alpha, beta) prior on c for the 3PL; (5, 17) has its mode at
    0.2, the chance level of five-option items, and is what keeps c estimable at all.
    """

    model_config = ConfigDict(frozen=True)

    model: CalibrationModel = CalibrationModel.TWO_PL
    quadrature_points: int = Field(default=41, ge=11, le=201)
    theta_min: float = -5.0
    theta_max: float = 5.0
    min_responses: int = Field(default=100, ge=1)
    max_iterations: int = Field(default=500, ge=1)
    tolerance: float = Field(default=1e-4, gt=0)
    m_step_iterations: int = Field(default=8, ge=1)
    slope_prior_sd: float | None = Field(default=None, gt=0)
    guessing_prior: tuple[float, float] = (5.0, 17.0)

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.theta_min >= self.theta_max:
            raise ValueError("theta_min must be below theta_max")
        if min(self.guessing_prior) < 1:
            raise ValueError("guessing prior Beta parameters must be >= 1 (a proper mode)")
        return self


class ItemEstimate(BaseModel):
    """Calibrated parameters of one item (logistic metric, ``b = -d / a``).

    Graded items carry their ``thresholds``; their ``b`` is the mean threshold (the item's
    location) and ``proportion_correct`` the mean category over the highest one.
    """

    item_id: str
    a: float
    b: float
    c: float
    n_responses: int
    proportion_correct: float
    at_bound: bool = False
    thresholds: list[float] | None = None

    def to_spec(self, model: CalibrationModel, **fields: object) -> ItemSpec:
        """An :class:`ItemSpec` with these parameters (extra fields: content area, ...)."""
        if model is CalibrationModel.GRM:
            return ItemSpec(
                item_id=self.item_id,
                model=ItemModel.GRM,
                a=self.a,
                thresholds=tuple(self.thresholds or ()),
                **fields,
            )
        return ItemSpec(
            item_id=self.item_id, model=ItemModel(model), a=self.a, b=self.b, c=self.c, **fields
        )


class SkippedItem(BaseModel):
    """An item left out of the calibration, and why."""

    item_id: str
    n_responses: int
    reason: str


class CalibrationResult(BaseModel):
    """Estimates, skipped items and convergence of one run."""

    model: CalibrationModel
    items: list[ItemEstimate]
    skipped: list[SkippedItem]
    converged: bool
    iterations: int
    max_parameter_change: float
    log_likelihood: float
    log_likelihood_history: list[float]
    n_examinees: int
    latent_mean: float
    latent_sd: float

    def by_id(self) -> dict[str, ItemEstimate]:
        """Estimates keyed by item id."""
        return {item.item_id: item for item in self.items}


class DriftThresholds(BaseModel):
    """Largest tolerated absolute change per parameter before an item is flagged.

    ``b`` also bounds each threshold of a graded item.
    """

    model_config = ConfigDict(frozen=True)

    a: float = Field(default=0.3, gt=0)
    b: float = Field(default=0.3, gt=0)
    c: float = Field(default=0.05, gt=0)


class DriftFlag(BaseModel):
    """An item whose re-estimated parameters moved beyond the thresholds."""

    item_id: str
    stored: dict[str, float]
    estimated: dict[str, float]
    exceeded: list[str]


class ExposureFlag(BaseModel):
    """An item administered to a larger share of sessions than allowed."""

    item_id: str
    administrations: int
    sessions: int
    rate: float
    r_max: float


class ExposureCalibration(BaseModel):
    """Sympson-Hetter parameters and the simulated exposures that justify them."""

    exposure_k: dict[str, float]
    iterations: int
    converged: bool
    max_exposure_history: list[float]
    target_rate: float


# --- MML / EM ---------------------------------------------------------------------------------


def calibrate(
    responses: npt.ArrayLike,
    item_ids: Sequence[str] | None = None,
    config: CalibrationConfig | None = None,
    *,
    anchors: Mapping[str, ItemSpec] | None = None,
) -> CalibrationResult:
    """Estimate item parameters from a sparse 0/1 response matrix (NaN = not administered).

    Rows are examinees, columns items. Items with fewer than ``min_responses`` answers or
    with no variance are skipped and reported; examinees without any remaining answer are
    dropped. ``anchors`` (by item id) are held at their stored parameters.
    """
    cfg = config or CalibrationConfig()
    if cfg.model is CalibrationModel.GRM:
        if anchors:
            raise InvalidInputError("Anchored calibration of graded items is not supported yet.")
        from are_workers.services.assessments.graded import calibrate_graded

        return calibrate_graded(responses, item_ids, cfg)
    data = np.asarray(responses, dtype=np.float64)
    if data.ndim != 2:
        raise InvalidInputError("Responses must be a matrix (examinees x items).")
    ids = list(item_ids) if item_ids is not None else [f"item-{j}" for j in range(data.shape[1])]
    if len(ids) != data.shape[1]:
        raise InvalidInputError("There must be one item id per response column.")
    observed = ~np.isnan(data)
    if np.any((data[observed] != 0) & (data[observed] != 1)):
        raise InvalidInputError("Responses must be 0, 1 or NaN (not administered).")

    n_obs = observed.sum(axis=0)
    n_correct = np.where(observed, data, 0).sum(axis=0)
    skipped: list[SkippedItem] = []
    keep: list[int] = []
    for j, item_id in enumerate(ids):
        reason = None
        if n_obs[j] < cfg.min_responses:
            reason = f"only {n_obs[j]} responses, fewer than the minimum {cfg.min_responses}"
        elif n_correct[j] in {0, n_obs[j]} and item_id not in (anchors or {}):
            kind = "correct" if n_correct[j] else "incorrect"
            reason = f"no variance: every one of the {n_obs[j]} responses is {kind}"
        if reason is None:
            keep.append(j)
        else:
            skipped.append(SkippedItem(item_id=item_id, n_responses=int(n_obs[j]), reason=reason))
    if not keep:
        raise InvalidInputError("No item has enough responses to be calibrated.")

    cols = np.asarray(keep)
    obs = observed[:, cols]
    persons = obs.any(axis=1)
    obs = obs[persons].astype(np.float64)
    correct = np.where(observed[persons][:, cols], data[persons][:, cols], 0.0)
    kept_ids = [ids[j] for j in keep]
    fixed = np.array([item_id in (anchors or {}) for item_id in kept_ids])

    state = _EmState.initial(correct, obs, cfg, kept_ids, anchors or {})
    estimate_mean = bool(fixed.any())
    estimate_sd = estimate_mean or cfg.model is CalibrationModel.ONE_PL
    history: list[float] = []
    converged = False
    change = math.inf
    iteration = 0
    for iteration in range(1, cfg.max_iterations + 1):  # noqa: B007
        expected_correct, expected_n, loglik, moments = _e_step(correct, obs, state, cfg)
        history.append(loglik)
        previous = state.parameters()
        _m_step(state, expected_correct, expected_n, cfg, fixed)
        if estimate_mean:
            state.mean = moments[0]
        if estimate_sd:
            state.sd = moments[1]
        change = float(np.max(np.abs(state.parameters() - previous)))
        if change < cfg.tolerance:
            converged = True
            break
    *_, final_loglik, _ = _e_step(correct, obs, state, cfg)
    history.append(final_loglik)

    a = np.exp(state.log_a)
    b = -state.d / a
    c = expit(state.logit_c) if cfg.model is CalibrationModel.THREE_PL else np.zeros_like(a)
    at_bound = (state.log_a <= _LOG_SLOPE_BOUNDS[0] + 1e-9) | (
        state.log_a >= _LOG_SLOPE_BOUNDS[1] - 1e-9
    )
    items = [
        ItemEstimate(
            item_id=item_id,
            a=float(a[j]),
            b=float(b[j]),
            c=float(c[j]),
            n_responses=int(obs[:, j].sum()),
            proportion_correct=float(correct[:, j].sum() / obs[:, j].sum()),
            at_bound=bool(at_bound[j] and not fixed[j]),
        )
        for j, item_id in enumerate(kept_ids)
    ]
    return CalibrationResult(
        model=cfg.model,
        items=items,
        skipped=skipped,
        converged=converged,
        iterations=iteration,
        max_parameter_change=change,
        log_likelihood=final_loglik,
        log_likelihood_history=history,
        n_examinees=int(persons.sum()),
        latent_mean=state.mean,
        latent_sd=state.sd,
    )


class _EmState:
    """Item parameters in the unconstrained metric the M-step works in."""

    def __init__(
        self, log_a: FloatArray, d: FloatArray, logit_c: FloatArray, mean: float, sd: float
    ) -> None:
        self.log_a = log_a
        self.d = d
        self.logit_c = logit_c
        self.mean = mean
        self.sd = sd

    @classmethod
    def initial(
        cls,
        correct: FloatArray,
        observed: FloatArray,
        cfg: CalibrationConfig,
        item_ids: Sequence[str],
        anchors: Mapping[str, ItemSpec],
    ) -> _EmState:
        n_items = correct.shape[1]
        alpha, beta = cfg.guessing_prior
        c0 = (alpha - 1) / (alpha + beta - 2) if cfg.model is CalibrationModel.THREE_PL else 0.0
        p = (correct.sum(axis=0) + 0.5) / (observed.sum(axis=0) + 1.0)
        p_star = np.clip((p - c0) / (1 - c0), 0.02, 0.98)
        log_a = np.zeros(n_items)
        d = np.log(p_star / (1 - p_star)) * 1.3  # logit of p-value, rescaled for a ~ 1
        logit_c = np.full(n_items, math.log(c0 / (1 - c0)) if c0 > 0 else -np.inf)
        for j, item_id in enumerate(item_ids):
            spec = anchors.get(item_id)
            if spec is not None:
                log_a[j] = math.log(spec.a)
                d[j] = -spec.a * float(spec.b if spec.b is not None else 0.0)
                logit_c[j] = math.log(spec.c / (1 - spec.c)) if spec.c > 0 else -np.inf
        return cls(log_a, d, logit_c, 0.0, 1.0)

    def parameters(self) -> FloatArray:
        """a, b, c stacked: what the convergence criterion compares between cycles."""
        a = np.exp(self.log_a)
        return np.concatenate([a, -self.d / a, expit(self.logit_c)])

    def probabilities(self, nodes: FloatArray) -> FloatArray:
        """P(correct) per item and node: ``(items, Q)``."""
        c = expit(self.logit_c)[:, None]
        s = expit(np.exp(self.log_a)[:, None] * nodes[None, :] + self.d[:, None])
        return np.asarray(c + (1 - c) * s)


def _nodes(cfg: CalibrationConfig) -> FloatArray:
    return np.linspace(cfg.theta_min, cfg.theta_max, cfg.quadrature_points)


def _e_step(
    correct: FloatArray, observed: FloatArray, state: _EmState, cfg: CalibrationConfig
) -> tuple[FloatArray, FloatArray, float, tuple[float, float]]:
    """Expected correct counts and expected examinee counts per item and node.

    Also returns the marginal log-likelihood and the posterior mean/SD of the latent
    distribution (used when its mean/SD are free).
    """
    nodes = _nodes(cfg)
    prob = np.clip(state.probabilities(nodes), 1e-12, 1 - 1e-12)
    log_p, log_q = np.log(prob), np.log1p(-prob)
    log_prior = -0.5 * ((nodes - state.mean) / state.sd) ** 2
    log_prior -= np.log(np.exp(log_prior).sum())
    loglik = correct @ (log_p - log_q) + observed @ log_q + log_prior
    peak = loglik.max(axis=1, keepdims=True)
    weights = np.exp(loglik - peak)
    total = weights.sum(axis=1, keepdims=True)
    marginal = float((np.log(total) + peak).sum())
    weights /= total
    expected_correct = correct.T @ weights
    expected_n = observed.T @ weights
    mass = weights.sum(axis=0) / weights.shape[0]
    mean = float(mass @ nodes)
    sd = float(math.sqrt(max(mass @ (nodes - mean) ** 2, 1e-6)))
    return expected_correct, expected_n, marginal, (mean, sd)


def _m_step(
    state: _EmState,
    expected_correct: FloatArray,
    expected_n: FloatArray,
    cfg: CalibrationConfig,
    fixed: npt.NDArray[np.bool_],
) -> None:
    """Fisher-scoring ascent of every free item's expected complete-data log-posterior."""
    nodes = _nodes(cfg)
    model = cfg.model
    free_slope = model is not CalibrationModel.ONE_PL
    free_guess = model is CalibrationModel.THREE_PL
    names = ["log_a"] * free_slope + ["d"] + ["logit_c"] * free_guess
    alpha, beta = cfg.guessing_prior

    def objective(log_a: FloatArray, d: FloatArray, logit_c: FloatArray) -> FloatArray:
        c = expit(logit_c)[:, None]
        p = c + (1 - c) * expit(np.exp(log_a)[:, None] * nodes + d[:, None])
        p = np.clip(p, 1e-12, 1 - 1e-12)
        value = (expected_correct * np.log(p) + (expected_n - expected_correct) * np.log1p(-p)).sum(
            axis=1
        )
        if free_slope and cfg.slope_prior_sd is not None:
            value -= 0.5 * (log_a / cfg.slope_prior_sd) ** 2
        if free_guess:
            cc = expit(logit_c)
            value += (alpha - 1) * np.log(cc) + (beta - 1) * np.log1p(-cc)
        return np.asarray(value)

    free = ~fixed
    for _ in range(cfg.m_step_iterations):
        a = np.exp(state.log_a)[:, None]
        c = expit(state.logit_c)[:, None]
        s = expit(a * nodes + state.d[:, None])
        p = np.clip(c + (1 - c) * s, 1e-12, 1 - 1e-12)
        residual = (expected_correct - expected_n * p) / (p * (1 - p))
        weight = expected_n / (p * (1 - p))
        slope_part = (1 - c) * s * (1 - s)
        partials = {
            "log_a": slope_part * nodes * a,
            "d": slope_part,
            "logit_c": (1 - s) * c * (1 - c),
        }
        columns = [partials[name] for name in names]
        gradient = np.stack([(residual * col).sum(axis=1) for col in columns], axis=1)
        info = np.stack(
            [
                np.stack([(weight * ci * cj).sum(axis=1) for cj in columns], axis=1)
                for ci in columns
            ],
            axis=1,
        )
        if free_slope and cfg.slope_prior_sd is not None:
            k = names.index("log_a")
            gradient[:, k] -= state.log_a / cfg.slope_prior_sd**2
            info[:, k, k] += 1.0 / cfg.slope_prior_sd**2
        if free_guess:
            k = names.index("logit_c")
            cc = c[:, 0]
            gradient[:, k] += (alpha - 1) * (1 - cc) - (beta - 1) * cc
            info[:, k, k] += (alpha + beta - 2) * cc * (1 - cc)
        info += np.eye(len(names)) * 1e-8
        delta = np.linalg.solve(info, gradient[..., None])[..., 0]
        delta = np.clip(delta, -1.0, 1.0)
        delta[~free] = 0.0
        before = objective(state.log_a, state.d, state.logit_c)
        step = np.ones(delta.shape[0])
        for _halving in range(10):
            trial = _apply(state, names, delta * step[:, None])
            after = objective(*trial)
            worse = after < before - 1e-10
            if not worse.any():
                break
            step = np.where(worse, step / 2, step)
        state.log_a, state.d, state.logit_c = _apply(state, names, delta * step[:, None])
        if np.max(np.abs(delta * step[:, None])) < 1e-7:
            break


def _apply(
    state: _EmState, names: Sequence[str], delta: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """New (bounded) parameters after a step ``delta`` over the free ``names``."""
    log_a, d, logit_c = state.log_a.copy(), state.d.copy(), state.logit_c.copy()
    for k, name in enumerate(names):
        if name == "log_a":
            log_a = np.clip(log_a + delta[:, k], *_LOG_SLOPE_BOUNDS)
        elif name == "d":
            d = np.clip(d + delta[:, k], -_INTERCEPT_BOUND, _INTERCEPT_BOUND)
        else:
            logit_c = np.clip(logit_c + delta[:, k], *_GUESS_LOGIT_BOUNDS)
    return log_a, d, logit_c


# --- flags ------------------------------------------------------------------------------------


def drift_flags(
    stored: Sequence[ItemSpec],
    result: CalibrationResult,
    thresholds: DriftThresholds | None = None,
) -> list[DriftFlag]:
    """Items whose re-estimated parameters moved beyond the thresholds from the stored values.

    Only items present in both are compared (skipped items cannot drift-check). Graded items
    compare ``a`` and each threshold (``b1``, ``b2``, ...; a changed number of categories is
    flagged as ``categories``). Re-estimate with stable items as ``anchors`` so that a
    shift of the population is not mistaken for drift of every item.
    """
    limits = thresholds or DriftThresholds()
    estimates = result.by_id()
    flags: list[DriftFlag] = []
    for spec in stored:
        new = estimates.get(spec.item_id)
        if new is None:
            continue
        if spec.model is ItemModel.GRM:
            old_values, new_values, exceeded = _graded_drift(spec, new, limits)
        elif spec.b is None:
            continue
        else:
            old_values = {"a": spec.a, "b": spec.b, "c": spec.c}
            new_values = {"a": new.a, "b": new.b, "c": new.c}
            exceeded = [
                name
                for name, limit in (("a", limits.a), ("b", limits.b), ("c", limits.c))
                if abs(new_values[name] - old_values[name]) > limit
            ]
        if exceeded:
            flags.append(
                DriftFlag(
                    item_id=spec.item_id,
                    stored=old_values,
                    estimated=new_values,
                    exceeded=exceeded,
                )
            )
    return flags


def _graded_drift(
    spec: ItemSpec, new: ItemEstimate, limits: DriftThresholds
) -> tuple[dict[str, float], dict[str, float], list[str]]:
    old_thresholds = list(spec.thresholds or ())
    new_thresholds = list(new.thresholds or ())
    old_values = {"a": spec.a} | {f"b{k + 1}": t for k, t in enumerate(old_thresholds)}
    new_values = {"a": new.a} | {f"b{k + 1}": t for k, t in enumerate(new_thresholds)}
    exceeded = ["a"] if abs(new.a - spec.a) > limits.a else []
    if len(old_thresholds) != len(new_thresholds):
        return old_values, new_values, [*exceeded, "categories"]
    exceeded += [
        f"b{k + 1}"
        for k, (old, est) in enumerate(zip(old_thresholds, new_thresholds, strict=True))
        if abs(est - old) > limits.b
    ]
    return old_values, new_values, exceeded


def overexposure_flags(
    administrations: Mapping[str, int], sessions: int, r_max: float
) -> list[ExposureFlag]:
    """Items administered in more than ``r_max`` of ``sessions``, most exposed first."""
    if sessions < 1:
        return []
    flags = [
        ExposureFlag(
            item_id=item_id,
            administrations=count,
            sessions=sessions,
            rate=count / sessions,
            r_max=r_max,
        )
        for item_id, count in administrations.items()
        if count / sessions > r_max
    ]
    return sorted(flags, key=lambda flag: (-flag.rate, flag.item_id))


# --- Sympson-Hetter exposure parameters ---------------------------------------------------------


def calibrate_sympson_hetter(
    bank: ItemBank,
    config: CatConfig,
    simulees: npt.ArrayLike,
    *,
    r_max: float,
    seed: int = 0,
    max_iterations: int = 25,
    margin: float = 0.1,
) -> ExposureCalibration:
    """Sympson-Hetter ``k_i`` by iterated simulation so that no item exceeds ``r_max``.

    Each round simulates the test (with Sympson-Hetter on, the current ``k``) for the
    ``simulees`` and sets ``k_i <- min(1, k_i * target / rate_i)``, the fixed point of the
    classic ``k = r / P(selected)`` rule (the engine draws acceptance once per session, so
    ``P(administered) = k * P(selected)`` holds). Every round reuses the same random numbers,
    so the rates respond to ``k`` alone. ``target = r_max * (1 - margin)`` leaves room for
    sampling noise: with 1,000 simulees a rate has an SD of about 0.013, and the maximum
    over hundreds of items lands a few SDs above its expectation on a fresh sample.
    Stops (``converged``) once the simulated maximum is within half the margin of the
    target and no ``k`` moved by more than 0.02.
    """
    if not 0 < r_max <= 1:
        raise ValueError("r_max must be in (0, 1]")
    sh_config = config.model_copy(
        update={"selection": config.selection.model_copy(update={"sympson_hetter": True})}
    )
    thetas = np.asarray(simulees, dtype=np.float64)
    target = r_max * (1 - margin)
    k = np.ones(len(bank))
    history: list[float] = []
    converged = False
    iteration = 0
    for iteration in range(1, max_iterations + 1):  # noqa: B007
        current = bank.with_exposure_k(k)
        # Common random numbers: every round sees the same answers and draws, so the
        # rates respond to k alone and the iteration settles instead of chasing noise.
        rng = np.random.default_rng(seed)
        rates = simulate(current, thetas, sh_config, rng=rng, final_scores=False).exposure_rates
        history.append(float(rates.max()))
        ratio = np.where(rates > 0, target / np.maximum(rates, 1e-12), 1.0)
        new_k = np.minimum(1.0, k * ratio)
        new_k = np.where(rates > 0, new_k, k)
        moved = float(np.max(np.abs(new_k - k)))
        k = new_k
        if history[-1] <= (target + r_max) / 2 and moved < 0.02:
            converged = True
            break
    return ExposureCalibration(
        exposure_k={item_id: float(k[i]) for i, item_id in enumerate(bank.item_ids)},
        iterations=iteration,
        converged=converged,
        max_exposure_history=history,
        target_rate=target,
    )
