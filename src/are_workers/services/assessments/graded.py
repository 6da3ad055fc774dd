"""Calibration of graded items (Samejima's GRM) by marginal maximum likelihood (Bock-Aitkin EM).

Why a module of its own: the dichotomous path (``calibration``) works on a 0/1 matrix where
one expected count per item and node suffices; graded items need one per *category*, and
their thresholds must stay ordered. The E-step is the same idea, two matrix products over a
one-hot (examinee x item-category) matrix with "not administered" as all zeros, and the
M-step is a Fisher-scoring step per item, vectorised over the items that share a number of
categories, with step halving that keeps the intercepts strictly decreasing.

Parameterisation: ``P(X >= k) = logistic(a * theta + d_k)`` with ``d_1 > ... > d_m``, reported
as thresholds ``b_k = -d_k / a`` (the bank's metric). The latent distribution is N(0, 1).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from scipy.special import expit

from are_workers.errors import InvalidInputError
from are_workers.services.assessments.calibration import (
    CalibrationConfig,
    CalibrationModel,
    CalibrationResult,
    ItemEstimate,
    SkippedItem,
)
from are_workers.services.assessments.irt import FloatArray

_SLOPE_BOUNDS = (0.05, 8.0)
_INTERCEPT_BOUND = 30.0
_PROBABILITY_FLOOR = 1e-12


def calibrate_graded(
    responses: npt.ArrayLike,
    item_ids: Sequence[str] | None = None,
    config: CalibrationConfig | None = None,
    *,
    n_categories: Sequence[int] | None = None,
) -> CalibrationResult:
    """GRM slopes and thresholds from a sparse category matrix (NaN = not administered).

    Rows are examinees, columns items, entries the category ``0..m``. ``n_categories`` per item
    defaults to the highest observed category + 1. Items with fewer than ``min_responses``
    answers, or with a category nobody chose (its threshold is not identified), are skipped
    and reported. ``config.model`` is ignored (the model is the GRM); its quadrature,
    iteration and tolerance settings apply.
    """
    cfg = config or CalibrationConfig()
    data = np.asarray(responses, dtype=np.float64)
    if data.ndim != 2:
        raise InvalidInputError("Responses must be a matrix (examinees x items).")
    ids = list(item_ids) if item_ids is not None else [f"item-{j}" for j in range(data.shape[1])]
    if len(ids) != data.shape[1]:
        raise InvalidInputError("There must be one item id per response column.")
    observed = ~np.isnan(data)
    values = data[observed]
    if np.any((values < 0) | (values != np.round(values))):
        raise InvalidInputError("Responses must be whole category numbers from 0, or NaN.")
    categories = _category_counts(data, observed, n_categories)

    skipped: list[SkippedItem] = []
    keep: list[int] = []
    for j, item_id in enumerate(ids):
        n_obs = int(observed[:, j].sum())
        chosen = np.bincount(data[observed[:, j], j].astype(np.int64), minlength=categories[j])
        reason = None
        if n_obs < cfg.min_responses:
            reason = f"only {n_obs} responses, fewer than the minimum {cfg.min_responses}"
        elif len(chosen) > categories[j]:
            reason = f"a response above the highest category {categories[j] - 1}"
        elif categories[j] < 2:
            reason = "a graded item needs at least two categories"
        elif np.any(chosen == 0):
            missing = ", ".join(str(k) for k in np.flatnonzero(chosen == 0))
            reason = f"category {missing} was never chosen, so its threshold is not identified"
        if reason is None:
            keep.append(j)
        else:
            skipped.append(SkippedItem(item_id=item_id, n_responses=n_obs, reason=reason))
    if not keep:
        raise InvalidInputError("No graded item has enough responses to be calibrated.")

    cols = np.asarray(keep)
    persons = observed[:, cols].any(axis=1)
    sub = data[persons][:, cols]
    sub_observed = observed[persons][:, cols]
    kept_categories = categories[cols]
    width = int(kept_categories.max())
    one_hot = np.zeros((sub.shape[0], len(keep), width))
    rows, items = np.nonzero(sub_observed)
    one_hot[rows, items, sub[rows, items].astype(np.int64)] = 1.0
    flat = one_hot.reshape(sub.shape[0], -1)
    exists = np.arange(width)[None, :] < kept_categories[:, None]

    nodes = np.linspace(cfg.theta_min, cfg.theta_max, cfg.quadrature_points)
    log_prior = -0.5 * nodes**2
    log_prior -= np.log(np.exp(log_prior).sum())
    slope, intercepts = _initial(one_hot, kept_categories)
    history: list[float] = []
    converged = False
    change = math.inf
    iteration = 0
    for iteration in range(1, cfg.max_iterations + 1):  # noqa: B007
        expected, loglik = _e_step(flat, slope, intercepts, exists, nodes, log_prior)
        history.append(loglik)
        before = np.concatenate([slope, np.nan_to_num(intercepts / slope[:, None])], axis=None)
        for m in np.unique(kept_categories):
            group = np.flatnonzero(kept_categories == m)
            slope[group], intercepts[group, : m - 1] = _m_step(
                expected[group, :m],
                slope[group],
                intercepts[group, : m - 1],
                nodes,
                cfg.m_step_iterations,
            )
        after = np.concatenate([slope, np.nan_to_num(intercepts / slope[:, None])], axis=None)
        change = float(np.max(np.abs(after - before)))
        if change < cfg.tolerance:
            converged = True
            break
    _, final_loglik = _e_step(flat, slope, intercepts, exists, nodes, log_prior)
    history.append(final_loglik)

    estimates = []
    for i, j in enumerate(keep):
        m = int(kept_categories[i])
        thresholds = [float(-d / slope[i]) for d in intercepts[i, : m - 1]]
        answered = sub_observed[:, i]
        mean_category = float(sub[answered, i].mean())
        estimates.append(
            ItemEstimate(
                item_id=ids[j],
                a=float(slope[i]),
                b=float(np.mean(thresholds)),
                c=0.0,
                thresholds=thresholds,
                n_responses=int(answered.sum()),
                proportion_correct=mean_category / (m - 1),
                at_bound=bool(slope[i] <= _SLOPE_BOUNDS[0] or slope[i] >= _SLOPE_BOUNDS[1]),
            )
        )
    return CalibrationResult(
        model=CalibrationModel.GRM,
        items=estimates,
        skipped=skipped,
        converged=converged,
        iterations=iteration,
        max_parameter_change=change,
        log_likelihood=final_loglik,
        log_likelihood_history=history,
        n_examinees=int(persons.sum()),
        latent_mean=0.0,
        latent_sd=1.0,
    )


def _category_counts(
    data: FloatArray, observed: npt.NDArray[np.bool_], n_categories: Sequence[int] | None
) -> npt.NDArray[np.int64]:
    if n_categories is not None:
        counts = np.asarray(n_categories, dtype=np.int64)
        if counts.shape != (data.shape[1],):
            raise InvalidInputError("There must be one category count per response column.")
        return counts
    highest = np.where(observed, data, -1).max(axis=0, initial=-1)
    return np.asarray(highest + 1, dtype=np.int64)


def _initial(
    one_hot: FloatArray, categories: npt.NDArray[np.int64]
) -> tuple[FloatArray, FloatArray]:
    """a = 1 and intercepts from the logits of the cumulative proportions (rescaled)."""
    counts = one_hot.sum(axis=0)  # (items, width)
    at_least = np.cumsum(counts[:, ::-1], axis=1)[:, ::-1]  # n(X >= k)
    share = (at_least[:, 1:] + 0.5) / (at_least[:, :1] + 1.0)
    share = np.clip(share, 0.01, 0.99)
    intercepts = np.log(share / (1 - share)) * 1.3
    width = one_hot.shape[2]
    intercepts = np.where(np.arange(width - 1)[None, :] < (categories - 1)[:, None], intercepts, 0)
    return np.ones(one_hot.shape[1]), intercepts


def _category_probabilities(
    slope: FloatArray, intercepts: FloatArray, nodes: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """P(X = k) per (item, category, node) and the logistic slopes ``w_k`` of P(X >= k).

    ``intercepts`` has shape ``(items, m)``: every item here has ``m + 1`` categories.
    """
    n = slope.shape[0]
    star = expit(slope[:, None, None] * nodes[None, None, :] + intercepts[:, :, None])
    cumulative = np.concatenate(
        [np.ones((n, 1, nodes.shape[0])), star, np.zeros((n, 1, nodes.shape[0]))], axis=1
    )
    weights = cumulative * (1 - cumulative)  # 0 for the fixed ends
    return cumulative[:, :-1] - cumulative[:, 1:], weights


def _e_step(
    flat: FloatArray,
    slope: FloatArray,
    intercepts: FloatArray,
    exists: npt.NDArray[np.bool_],
    nodes: FloatArray,
    log_prior: FloatArray,
) -> tuple[FloatArray, float]:
    """Expected category counts per (item, category, node) and the marginal log-likelihood."""
    n_items, width = exists.shape
    log_prob = np.zeros((n_items, width, nodes.shape[0]))
    for m in np.unique(exists.sum(axis=1)):
        group = np.flatnonzero(exists.sum(axis=1) == m)
        prob, _ = _category_probabilities(slope[group], intercepts[group, : m - 1], nodes)
        log_prob[group, :m] = np.log(np.maximum(prob, _PROBABILITY_FLOOR))
    loglik = flat @ log_prob.reshape(n_items * width, -1) + log_prior
    peak = loglik.max(axis=1, keepdims=True)
    weights = np.exp(loglik - peak)
    total = weights.sum(axis=1, keepdims=True)
    marginal = float((np.log(total) + peak).sum())
    weights /= total
    expected = (flat.T @ weights).reshape(n_items, width, -1)
    return expected, marginal


def _objective(
    expected: FloatArray, slope: FloatArray, intercepts: FloatArray, nodes: FloatArray
) -> FloatArray:
    prob, _ = _category_probabilities(slope, intercepts, nodes)
    return np.asarray((expected * np.log(np.maximum(prob, _PROBABILITY_FLOOR))).sum(axis=(1, 2)))


def _m_step(
    expected: FloatArray,
    slope: FloatArray,
    intercepts: FloatArray,
    nodes: FloatArray,
    iterations: int,
) -> tuple[FloatArray, FloatArray]:
    """Fisher scoring for items with ``m + 1`` categories: parameters ``(a, d_1..d_m)``.

    ``dP_k/d d_k = w_k``, ``dP_k/d d_{k+1} = -w_{k+1}``, ``dP_k/da = theta (w_k - w_{k+1})``;
    the gradient is ``sum r_k / P_k * dP_k`` and the expected information
    ``sum N * dP_k dP_k^T / P_k`` with ``N`` the expected examinees at the node.
    """
    slope, intercepts = slope.copy(), intercepts.copy()
    n, m = intercepts.shape
    people = expected.sum(axis=1)  # (items, nodes)
    for _ in range(iterations):
        prob, weights = _category_probabilities(slope, intercepts, nodes)
        prob = np.maximum(prob, _PROBABILITY_FLOOR)
        jacobian = np.zeros((n, m + 1, m + 1, nodes.shape[0]))  # item, category, param, node
        jacobian[:, :, 0] = nodes * (weights[:, :-1] - weights[:, 1:])
        for k in range(1, m + 1):
            jacobian[:, k, k] = weights[:, k]  # category k rises with d_k
            jacobian[:, k - 1, k] = -weights[:, k]  # category k-1 falls with it
        gradient = np.einsum("ikq,ikpq->ip", expected / prob, jacobian)
        info = np.einsum("iq,ikpq,ikrq->ipr", people, jacobian / prob[:, :, None], jacobian)
        info += np.eye(m + 1) * 1e-8
        delta = np.clip(np.linalg.solve(info, gradient[..., None])[..., 0], -1.0, 1.0)
        before = _objective(expected, slope, intercepts, nodes)
        step = np.ones(n)
        for _halving in range(12):
            new_slope = np.clip(slope + step * delta[:, 0], *_SLOPE_BOUNDS)
            new_intercepts = np.clip(
                intercepts + step[:, None] * delta[:, 1:], -_INTERCEPT_BOUND, _INTERCEPT_BOUND
            )
            ordered = np.all(np.diff(new_intercepts, axis=1) < 0, axis=1)
            better = _objective(expected, new_slope, new_intercepts, nodes) >= before - 1e-10
            bad = ~(ordered & better)
            if not bad.any():
                break
            step = np.where(bad, step / 2, step)
        accept = ordered & better
        slope = np.where(accept, new_slope, slope)
        intercepts = np.where(accept[:, None], new_intercepts, intercepts)
        if np.max(np.abs(delta * step[:, None])) < 1e-7:
            break
    return slope, intercepts
