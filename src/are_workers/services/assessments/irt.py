"""Item response models: 1PL, 2PL, 3PL and Samejima's graded response model (GRM).

Why one representation for all four: a dichotomous item is a graded item with one category
boundary, and the 3PL's guessing floor only ever touches the *first* boundary. Storing every
item as ``a``, ``c`` and a row of ordered boundaries (padded with ``+inf``) lets probability,
log-likelihood, derivative and information code be written once, vectorised over items,
examinees and quadrature points, with a closed-form fast path for all-dichotomous banks.

Conventions: the logistic metric (no D = 1.7 scaling); responses are category numbers
``0..m`` (``1`` = correct for dichotomous items); item banks are immutable once validated.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Sequence
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field
from scipy.special import expit

from are_workers.errors import InvalidInputError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: Probabilities are floored here before taking logs so a response the model deems
#: (numerically) impossible costs a large but finite penalty instead of ``-inf``.
_PROBABILITY_FLOOR = 1e-300

#: How many problems an invalid-bank message lists before summarising the rest.
_MAX_LISTED_PROBLEMS = 10


class ItemModel(StrEnum):
    """The response model of one item."""

    ONE_PL = "1PL"
    TWO_PL = "2PL"
    THREE_PL = "3PL"
    GRM = "GRM"


class ItemSpec(BaseModel):
    """One item as stored (one DB row): parameters, content area and exposure parameter.

    Plain data on purpose: checks that need the whole bank (1PL items share one slope,
    thresholds are ordered, ``c`` only for 3PL) run in :class:`ItemBank`, which names the item
    in its error.
    """

    model_config = ConfigDict(frozen=True)

    item_id: str = Field(min_length=1)
    model: ItemModel = ItemModel.TWO_PL
    a: float = 1.0
    b: float | None = None
    c: float = 0.0
    thresholds: tuple[float, ...] | None = None
    content_area: str = "general"
    exposure_k: float = 1.0


def _item_problems(spec: ItemSpec) -> list[str]:
    """Everything wrong with one item, each phrased for the person fixing the bank."""
    problems: list[str] = []
    if not (math.isfinite(spec.a) and spec.a > 0):
        problems.append(f"discrimination a={spec.a} must be a positive finite number")
    if not math.isfinite(spec.c) or spec.c < 0 or spec.c >= 1:
        problems.append(f"guessing c={spec.c} must be in [0, 1)")
    elif spec.c != 0 and spec.model is not ItemModel.THREE_PL:
        problems.append(f"guessing c={spec.c} is only allowed for 3PL items")
    if not (math.isfinite(spec.exposure_k) and 0 <= spec.exposure_k <= 1):
        problems.append(f"exposure parameter k={spec.exposure_k} must be in [0, 1]")
    if spec.model is ItemModel.GRM:
        thresholds = spec.thresholds or ()
        if not thresholds:
            problems.append("a GRM item needs at least one threshold")
        elif not all(math.isfinite(t) for t in thresholds):
            problems.append(f"thresholds {list(thresholds)} must all be finite")
        elif any(hi <= lo for lo, hi in itertools.pairwise(thresholds)):
            problems.append(f"thresholds {list(thresholds)} must be strictly increasing")
    elif spec.b is None or not math.isfinite(spec.b):
        problems.append(f"difficulty b={spec.b} must be a finite number")
    return problems


class ItemBank:
    """A validated, immutable item bank in array form.

    Why arrays: selection evaluates information for every item at every step, and
    calibration and simulation do it for thousands of examinees at once; per-item Python
    objects would dominate the run time. ``boundaries`` has one row per item,
    ``[-inf, b_1, ..., b_m, +inf, ...]``, so the probability of category ``x`` is always
    ``P*(boundary x) - P*(boundary x + 1)``.
    """

    def __init__(self, items: Sequence[ItemSpec]) -> None:
        if not items:
            raise InvalidInputError("The item bank is empty.", code="invalid_item_bank")
        problems: list[str] = []
        seen: set[str] = set()
        for spec in items:
            if spec.item_id in seen:
                problems.append(f"item '{spec.item_id}': the id is used more than once")
            seen.add(spec.item_id)
            problems.extend(f"item '{spec.item_id}': {p}" for p in _item_problems(spec))
        one_pl_slopes = {spec.a for spec in items if spec.model is ItemModel.ONE_PL}
        if len(one_pl_slopes) > 1:
            problems.append(
                f"1PL items must share one discrimination, found {sorted(one_pl_slopes)}"
            )
        if problems:
            listed = "; ".join(problems[:_MAX_LISTED_PROBLEMS])
            more = len(problems) - _MAX_LISTED_PROBLEMS
            suffix = f" (and {more} more)" if more > 0 else ""
            raise InvalidInputError(
                f"The item bank is invalid: {listed}{suffix}.", code="invalid_item_bank"
            )

        self.specs: tuple[ItemSpec, ...] = tuple(items)
        self.item_ids: tuple[str, ...] = tuple(spec.item_id for spec in items)
        self.index_of: dict[str, int] = {item_id: i for i, item_id in enumerate(self.item_ids)}
        inner: list[tuple[float, ...]] = [
            tuple(spec.thresholds or ()) if spec.model is ItemModel.GRM else (float(spec.b or 0),)
            for spec in items
        ]
        n_boundaries = max(len(row) for row in inner)
        boundaries = np.full((len(items), n_boundaries + 2), np.inf)
        boundaries[:, 0] = -np.inf
        for i, row in enumerate(inner):
            boundaries[i, 1 : len(row) + 1] = row
        self.boundaries: FloatArray = _frozen(boundaries)
        self.a: FloatArray = _frozen(np.array([spec.a for spec in items], dtype=np.float64))
        self.c: FloatArray = _frozen(np.array([spec.c for spec in items], dtype=np.float64))
        self.n_categories: IntArray = _frozen(
            np.array([len(row) + 1 for row in inner], dtype=np.int64)
        )
        self.exposure_k: FloatArray = _frozen(
            np.array([spec.exposure_k for spec in items], dtype=np.float64)
        )
        self.area_names: tuple[str, ...] = tuple(dict.fromkeys(s.content_area for s in items))
        area_index = {name: i for i, name in enumerate(self.area_names)}
        self.area_codes: IntArray = _frozen(
            np.array([area_index[s.content_area] for s in items], dtype=np.int64)
        )
        self.is_dichotomous: bool = bool(np.all(self.n_categories == 2))

    # --- construction helpers ---------------------------------------------------------------

    @classmethod
    def from_arrays(
        cls,
        a: npt.ArrayLike,
        b: npt.ArrayLike,
        c: npt.ArrayLike | None = None,
        *,
        item_ids: Iterable[str] | None = None,
        content_areas: Iterable[str] | None = None,
        exposure_k: npt.ArrayLike | None = None,
    ) -> ItemBank:
        """A dichotomous bank from parameter vectors (simulations, calibration output)."""
        a_arr = np.asarray(a, dtype=np.float64)
        b_arr = np.asarray(b, dtype=np.float64)
        n = a_arr.shape[0]
        c_arr = np.zeros(n) if c is None else np.asarray(c, dtype=np.float64)
        k_arr = np.ones(n) if exposure_k is None else np.asarray(exposure_k, dtype=np.float64)
        ids = list(item_ids) if item_ids is not None else [f"item-{i}" for i in range(n)]
        areas = list(content_areas) if content_areas is not None else ["general"] * n
        model = ItemModel.THREE_PL if np.any(c_arr != 0) else ItemModel.TWO_PL
        return cls(
            [
                ItemSpec(
                    item_id=ids[i],
                    model=model,
                    a=float(a_arr[i]),
                    b=float(b_arr[i]),
                    c=float(c_arr[i]),
                    content_area=areas[i],
                    exposure_k=float(k_arr[i]),
                )
                for i in range(n)
            ]
        )

    def with_exposure_k(self, exposure_k: npt.ArrayLike) -> ItemBank:
        """The same bank with new Sympson-Hetter parameters (after an exposure calibration)."""
        k = np.asarray(exposure_k, dtype=np.float64)
        return ItemBank(
            [
                spec.model_copy(update={"exposure_k": float(k[i])})
                for i, spec in enumerate(self.specs)
            ]
        )

    def __len__(self) -> int:
        return len(self.item_ids)

    @property
    def b(self) -> FloatArray:
        """First category boundary: the difficulty of dichotomous items."""
        return self.boundaries[:, 1]

    def indices(self, item_ids: Iterable[str]) -> IntArray:
        """Row numbers of ``item_ids``; unknown ids raise ``InvalidInputError``."""
        rows: list[int] = []
        for item_id in item_ids:
            try:
                rows.append(self.index_of[item_id])
            except KeyError:
                raise InvalidInputError(
                    f"Question '{item_id}' is not part of this item bank.", code="unknown_item"
                ) from None
        return np.asarray(rows, dtype=np.int64)

    # --- model functions over the whole bank ------------------------------------------------

    def information(self, theta: float | npt.ArrayLike) -> FloatArray:
        """Fisher information of every item at ``theta``: shape ``theta.shape + (n_items,)``."""
        theta_arr = np.asarray(theta, dtype=np.float64)[..., np.newaxis]
        if self.is_dichotomous:
            return dichotomous_information(theta_arr, self.a, self.b, self.c)
        return graded_information(theta_arr, self.a, self.c, self.boundaries)

    def category_probabilities(self, theta: float | npt.ArrayLike) -> FloatArray:
        """P(X = k | theta) for every item: shape ``theta.shape + (n_items, max categories)``."""
        theta_arr = np.asarray(theta, dtype=np.float64)[..., np.newaxis, np.newaxis]
        cumulative = _cumulative(theta_arr, self.a[:, None], self.c[:, None], self.boundaries)
        return cumulative[..., :-1] - cumulative[..., 1:]

    def expected_score(self, theta: float | npt.ArrayLike) -> FloatArray:
        """Expected category number per item (P(correct) for dichotomous items)."""
        probs = self.category_probabilities(theta)
        return np.asarray(probs @ np.arange(probs.shape[-1], dtype=np.float64))

    def simulate_responses(
        self, theta: npt.ArrayLike, items: npt.ArrayLike, uniforms: npt.ArrayLike
    ) -> IntArray:
        """Responses of examinees at ``theta`` to ``items``, driven by ``uniforms`` in [0, 1).

        Why uniforms and not an rng: simulations compare engines on *the same* random
        answers; for dichotomous items this is catsim's rule ``correct iff P >= u``.
        """
        theta_arr = np.asarray(theta, dtype=np.float64)
        item_arr = np.asarray(items, dtype=np.int64)
        u = np.asarray(uniforms, dtype=np.float64)
        cumulative = _cumulative(
            theta_arr[..., np.newaxis],
            self.a[item_arr][..., np.newaxis],
            self.c[item_arr][..., np.newaxis],
            self.boundaries[item_arr],
        )
        # Category = number of real boundaries whose P* is at least u (P* falls with k).
        real = np.isfinite(self.boundaries[item_arr][..., 1:])
        reached = (cumulative[..., 1:] >= u[..., np.newaxis]) & real
        return np.asarray(reached.sum(axis=-1), dtype=np.int64)

    # --- likelihood pieces for estimation ---------------------------------------------------

    def response_log_probabilities(
        self, items: npt.ArrayLike, responses: npt.ArrayLike, theta: npt.ArrayLike
    ) -> FloatArray:
        """log P(X_i = x_i | theta) for administered ``items``/``responses`` at each ``theta``.

        ``items`` and ``responses`` share one shape ``S`` (entries ``< 0`` are padding and
        contribute 0); ``theta`` broadcasts against ``S + (1,)`` (for a quadrature grid pass
        shape ``(Q,)``, for one theta per examinee pass ``(E, 1, 1)``). Returns ``S + (Q,)``.
        """
        item_arr, response_arr, valid = _gathered(items, responses)
        theta_arr = np.asarray(theta, dtype=np.float64)
        if self.is_dichotomous:
            # One logistic per entry: P(x) = (1 - c) * logistic(±z) + c * x.
            c = self.c[item_arr][..., None]
            correct = response_arr[..., None]
            z = self.a[item_arr][..., None] * (theta_arr - self.b[item_arr][..., None])
            prob = (1 - c) * expit(np.where(correct == 1, z, -z)) + c * correct
            return np.asarray(np.where(valid, np.log(np.maximum(prob, _PROBABILITY_FLOOR)), 0.0))
        lower, upper, a, c_lower, c_upper = self._boundary_parts(item_arr, response_arr)
        u = a * (theta_arr - lower)
        v = a * (theta_arr - upper)
        sig_u, sig_v = expit(u), expit(v)
        sig_nu, sig_nv = expit(-u), expit(-v)
        prob = sig_u * sig_nv - sig_v * sig_nu + c_lower * sig_nu - c_upper * sig_nv
        log_prob = np.log(np.maximum(prob, _PROBABILITY_FLOOR))
        return np.asarray(np.where(valid, log_prob, 0.0))

    def log_likelihood_derivatives(
        self, items: npt.ArrayLike, responses: npt.ArrayLike, theta: npt.ArrayLike
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Log-likelihood and its first two theta-derivatives, summed over the last axis.

        ``items``/``responses`` have shape ``(E, L)`` (padding ``< 0``), ``theta`` shape
        ``(E,)``. Used by the Newton steps of ML and MAP estimation.
        """
        item_arr, response_arr, valid = _gathered(items, responses)
        lower, upper, a, c_lower, c_upper = self._boundary_parts(item_arr, response_arr)
        theta_arr = np.asarray(theta, dtype=np.float64)[..., np.newaxis, np.newaxis]
        u = a * (theta_arr - lower)
        v = a * (theta_arr - upper)
        sig_u, sig_v = expit(u), expit(v)
        sig_nu, sig_nv = expit(-u), expit(-v)
        prob = sig_u * sig_nv - sig_v * sig_nu + c_lower * sig_nu - c_upper * sig_nv
        prob = np.maximum(prob, _PROBABILITY_FLOOR)
        slope_u = (1 - c_lower) * a * sig_u * sig_nu
        slope_v = (1 - c_upper) * a * sig_v * sig_nv
        curve_u = slope_u * a * (sig_nu - sig_u)
        curve_v = slope_v * a * (sig_nv - sig_v)
        d1 = (slope_u - slope_v) / prob
        d2 = (curve_u - curve_v) / prob - d1**2
        ll = np.where(valid, np.log(prob), 0.0).sum(axis=-2)[..., 0]
        d1_sum = np.where(valid, d1, 0.0).sum(axis=-2)[..., 0]
        d2_sum = np.where(valid, d2, 0.0).sum(axis=-2)[..., 0]
        return ll, d1_sum, d2_sum

    def warm_terms(
        self, items: npt.ArrayLike, responses: npt.ArrayLike, theta: npt.ArrayLike
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Score, test information and Warm's ``J`` of each examinee at each ``theta``.

        ``items``/``responses`` have shape ``(E, L)`` (padding ``< 0``), ``theta`` shape
        ``(E, Q)``; each result has shape ``(E, Q)``. ``J = sum_i sum_k P'_ik P''_ik / P_ik``
        over the categories of every answered item, so the weighted-likelihood equation is
        ``score + J / (2 I) = 0`` for any of the four models (Warm 1989; Samejima 1998 for
        the GRM). Written from category probabilities rather than ``d/dtheta log I``
        because the two differ for the 3PL and the GRM.
        """
        return self.warm_kernel(items, responses)(theta)

    def warm_kernel(self, items: npt.ArrayLike, responses: npt.ArrayLike) -> WarmKernel:
        """:meth:`warm_terms` for fixed answers: the per-answer parameters gathered once.

        Why: a WLE evaluates Warm's equation a dozen times on the same answers (grid, then
        root polish); gathering and broadcasting the item parameters each time cost more
        than the arithmetic. Dichotomous banks get closed forms (two categories:
        ``I = a^2 (1-c) s^2 (1-s) / P``, score ``(x - P) a s / P``, ``J = I a (1 - 2s)``);
        padding gets ``a = 0`` so that it contributes nothing without a mask.
        """
        item_arr, response_arr, valid = _gathered(items, responses)
        mask = valid[..., 0]
        if self.is_dichotomous:
            return _dichotomous_warm_kernel(
                np.where(mask, self.a[item_arr], 0.0),
                self.b[item_arr],
                self.c[item_arr],
                response_arr.astype(np.float64),
            )
        return _graded_warm_kernel(
            self.a[item_arr], self.c[item_arr], self.boundaries[item_arr], response_arr, mask
        )

    def test_information(
        self, items: npt.ArrayLike, theta: npt.ArrayLike, valid: npt.ArrayLike | None = None
    ) -> FloatArray:
        """Summed Fisher information of ``items`` (shape ``(E, L)``) at ``theta`` (``(E,)``)."""
        item_arr = np.asarray(items, dtype=np.int64)
        mask = item_arr >= 0 if valid is None else np.asarray(valid, dtype=bool)
        safe = np.where(mask, item_arr, 0)
        theta_arr = np.asarray(theta, dtype=np.float64)[..., np.newaxis]
        if self.is_dichotomous:
            info = dichotomous_information(theta_arr, self.a[safe], self.b[safe], self.c[safe])
        else:
            info = graded_information(theta_arr, self.a[safe], self.c[safe], self.boundaries[safe])
        return np.asarray(np.where(mask, info, 0.0).sum(axis=-1))

    def _boundary_parts(
        self, items: IntArray, responses: IntArray
    ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
        """Per response: its lower/upper boundary, slope, and the guessing floor on each side."""
        lower = self.boundaries[items, responses]
        upper = self.boundaries[items, responses + 1]
        a = self.a[items]
        c = self.c[items]
        c_lower = np.where(responses == 1, c, 0.0)
        c_upper = np.where(responses == 0, c, 0.0)
        return (
            lower[..., None],
            upper[..., None],
            a[..., None],
            c_lower[..., None],
            c_upper[..., None],
        )

    def validate_response(self, item_id: str, response: int) -> None:
        """Raise ``InvalidInputError`` if ``response`` is not a category of the item."""
        highest = int(self.n_categories[self.index_of[item_id]]) - 1
        if not 0 <= response <= highest:
            raise InvalidInputError(
                f"Answer {response} is not valid for question '{item_id}': "
                f"expected a whole number from 0 to {highest}.",
                code="invalid_response",
            )

    def __repr__(self) -> str:
        kind = "dichotomous" if self.is_dichotomous else "mixed/graded"
        return f"ItemBank({len(self)} {kind} items, areas={list(self.area_names)})"


# --- model kernels (plain arrays; shared with calibration) ------------------------------------


def prob_correct(
    theta: npt.ArrayLike, a: npt.ArrayLike, b: npt.ArrayLike, c: npt.ArrayLike = 0.0
) -> FloatArray:
    """3PL probability of a correct answer (2PL with ``c = 0``, 1PL with a common ``a``)."""
    c_arr = np.asarray(c, dtype=np.float64)
    z = np.asarray(a) * (np.asarray(theta) - np.asarray(b))
    return np.asarray(c_arr + (1 - c_arr) * expit(z))


def dichotomous_information(
    theta: npt.ArrayLike, a: npt.ArrayLike, b: npt.ArrayLike, c: npt.ArrayLike
) -> FloatArray:
    """3PL Fisher information, ``a^2 (1-c) s^2 (1-s) / P`` with ``s`` the logistic part.

    This form (rather than ``P'^2 / (P Q)``) stays finite and accurate where ``P`` is close
    to 0 or 1, which happens for most of a large bank at any given theta.
    """
    a_arr = np.asarray(a, dtype=np.float64)
    c_arr = np.asarray(c, dtype=np.float64)
    s = expit(a_arr * (np.asarray(theta) - np.asarray(b)))
    p = c_arr + (1 - c_arr) * s
    return np.asarray(a_arr**2 * (1 - c_arr) * s * s * (1 - s) / p)


def graded_information(
    theta: npt.ArrayLike, a: npt.ArrayLike, c: npt.ArrayLike, boundaries: npt.ArrayLike
) -> FloatArray:
    """Samejima's item information ``sum_k (P*_k' - P*_{k+1}')^2 / P_k`` (any item kind).

    ``a``/``c`` have the item shape ``S``, ``boundaries`` ``S + (B,)``, ``theta`` broadcasts
    to ``S``. Categories that do not exist (padding) have ``P_k = 0`` and are skipped.
    """
    a_arr = np.asarray(a, dtype=np.float64)[..., None]
    c_arr = np.asarray(c, dtype=np.float64)[..., None]
    theta_arr = np.asarray(theta, dtype=np.float64)[..., None]
    bounds = np.asarray(boundaries, dtype=np.float64)
    cumulative = _cumulative(theta_arr, a_arr, c_arr, bounds)
    s = expit(a_arr * (theta_arr - bounds))
    floor = np.zeros(bounds.shape[-1])
    floor[1] = 1.0
    slope = (1 - c_arr * floor) * a_arr * s * (1 - s)
    probs = cumulative[..., :-1] - cumulative[..., 1:]
    numer = (slope[..., :-1] - slope[..., 1:]) ** 2
    terms = np.where(probs > _PROBABILITY_FLOOR, numer / np.maximum(probs, 1e-300), 0.0)
    return np.asarray(terms.sum(axis=-1))


#: Warm's terms (score, test information, ``J``) at thetas of shape ``(E, Q)``.
WarmKernel = Callable[[npt.ArrayLike], tuple[FloatArray, FloatArray, FloatArray]]


def _dichotomous_warm_kernel(
    a: FloatArray, b: FloatArray, c: FloatArray, correct: FloatArray
) -> WarmKernel:
    """Closed-form Warm terms for 1-3PL answers (parameters of shape ``(E, L)``)."""
    a, b, c, correct = (np.asarray(x)[:, :, np.newaxis] for x in (a, b, c, correct))
    information_scale = a * a * (1 - c)

    def terms(theta: npt.ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
        z = a * (np.asarray(theta, dtype=np.float64)[:, np.newaxis, :] - b)
        s, not_s = expit(z), expit(-z)
        p = c + (1 - c) * s
        s_over_p = s / np.maximum(p, _PROBABILITY_FLOOR)
        information = information_scale * s * not_s * s_over_p
        return (
            np.asarray(((correct - p) * a * s_over_p).sum(axis=1)),
            np.asarray(information.sum(axis=1)),
            np.asarray((information * a * (not_s - s)).sum(axis=1)),
        )

    return terms


def _graded_warm_kernel(
    a: FloatArray, c: FloatArray, boundaries: FloatArray, responses: IntArray, mask: BoolArray
) -> WarmKernel:
    """Warm terms over the categories of any items (``boundaries`` of shape ``(E, L, B)``)."""
    bounds = boundaries[:, :, np.newaxis, :]
    slope_a = a[:, :, np.newaxis, np.newaxis]
    floor = np.zeros(bounds.shape[-1])
    floor[1] = 1.0
    guess = c[:, :, np.newaxis, np.newaxis] * floor
    padding = np.isposinf(bounds)
    observed = responses[:, :, np.newaxis, np.newaxis]
    answered = mask[:, :, np.newaxis]

    def terms(theta: npt.ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
        theta_arr = np.asarray(theta, dtype=np.float64)[:, np.newaxis, :, np.newaxis]
        z = slope_a * (theta_arr - bounds)
        s, not_s = expit(z), expit(-z)
        cumulative = np.where(padding, 0.0, guess + (1 - guess) * s)
        slope = (1 - guess) * slope_a * s * not_s
        curve = slope * slope_a * (not_s - s)
        prob = cumulative[..., :-1] - cumulative[..., 1:]
        d_prob = slope[..., :-1] - slope[..., 1:]
        dd_prob = curve[..., :-1] - curve[..., 1:]
        exists = prob > _PROBABILITY_FLOOR
        safe = np.maximum(prob, _PROBABILITY_FLOOR)
        information = np.where(exists, d_prob**2 / safe, 0.0).sum(axis=-1)
        warm_j = np.where(exists, d_prob * dd_prob / safe, 0.0).sum(axis=-1)
        at = np.broadcast_to(observed, (*prob.shape[:-1], 1))
        p_x = np.take_along_axis(safe, at, axis=-1)[..., 0]
        dp_x = np.take_along_axis(d_prob, at, axis=-1)[..., 0]
        return (
            np.asarray(np.where(answered, dp_x / p_x, 0.0).sum(axis=1)),
            np.asarray(np.where(answered, information, 0.0).sum(axis=1)),
            np.asarray(np.where(answered, warm_j, 0.0).sum(axis=1)),
        )

    return terms


def _cumulative(
    theta: npt.ArrayLike, a: npt.ArrayLike, c: npt.ArrayLike, boundaries: npt.ArrayLike
) -> FloatArray:
    """P(X >= k) per boundary; the guessing floor applies to the first real boundary only."""
    bounds = np.asarray(boundaries, dtype=np.float64)
    s = expit(np.asarray(a) * (np.asarray(theta) - bounds))
    floor = np.zeros(bounds.shape[-1])
    floor[1] = 1.0
    c_arr = np.asarray(c, dtype=np.float64) * floor
    cumulative = c_arr + (1 - c_arr) * s
    # The +inf padding must give P* = 0 even for 3PL items (c applies to boundary 1 only).
    return np.asarray(np.where(np.isposinf(bounds), 0.0, cumulative))


def _gathered(items: npt.ArrayLike, responses: npt.ArrayLike) -> tuple[IntArray, IntArray, Any]:
    """Padding-safe copies of items/responses plus the validity mask (with a Q axis)."""
    item_arr = np.asarray(items, dtype=np.int64)
    response_arr = np.asarray(responses, dtype=np.int64)
    valid = (item_arr >= 0) & (response_arr >= 0)
    return (
        np.where(valid, item_arr, 0),
        np.where(valid, response_arr, 0),
        valid[..., np.newaxis],
    )


def _frozen(array: npt.NDArray[Any]) -> npt.NDArray[Any]:
    array.flags.writeable = False
    return array
