"""Next-item selection: maximum Fisher information under content and exposure constraints.

The order of the filters is deliberate:

1. *available*: never an item the examinee has already seen;
2. *exposure cap* (``max_exposure_rate``): an item is eligible only if administering it keeps
   its running exposure rate (administrations / sessions started, this one included) at or
   below ``r_max``, a hard guarantee rather than Sympson-Hetter's expected one. When no
   available item passes, which happens only while ``sessions * r_max`` is small (a new
   bank), the least-exposed items are used so a test never fails for lack of items; that
   early excess washes out as sessions accumulate. With ``n_items * r_max`` comfortably
   above the test length (per content area too) every item ends at or below ``r_max``.
   Sessions running concurrently read the same counts, so each may overshoot by the number
   of overlapping sessions; the flags in ``calibration`` catch that;
3. *content balancing* (Kingsbury and Zara): restrict to the content area furthest below its
   target share, so every test covers the skills in the proportions the test defines;
4. *Sympson-Hetter*: each item passes with its calibrated probability ``k_i``, drawn once
   per session (``acceptance_draws``), so an item rejected for an examinee stays rejected
   for the rest of that test, as in the classic procedure; the most informative item that
   passed wins, which is the same as walking down the information order drawing for each.
   Drawing per session (not per step) keeps ``P(administered) = k_i * P(selected)``, the
   relation the exposure calibration relies on;
5. *randomesque*: pick uniformly among the ``n`` most informative remaining items.

Everything is vectorised over examinees so that simulations (exposure calibration,
validation) run the very code that live sessions use.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Self

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, model_validator

from are_workers.errors import InvalidInputError
from are_workers.services.assessments.irt import BoolArray, FloatArray, IntArray, ItemBank

#: Areas without a target are chosen only when every targeted area has run out of items.
_UNTARGETED_DEFICIT = -1e9


class SelectionConfig(BaseModel):
    """How the next item is chosen (stored with the test definition).

    ``content_targets`` maps content areas to their target share of the test; shares are
    normalised, and areas of the bank that are not listed are only used as a last resort.
    """

    model_config = ConfigDict(frozen=True)

    randomesque_n: int = Field(default=1, ge=1)
    sympson_hetter: bool = False
    max_exposure_rate: float | None = Field(default=None, gt=0, le=1)
    content_targets: dict[str, float] | None = None

    @model_validator(mode="after")
    def _check_targets(self) -> Self:
        if self.content_targets is not None:
            if not self.content_targets:
                raise ValueError("content_targets must name at least one content area")
            if any(
                not (share > 0 and np.isfinite(share)) for share in self.content_targets.values()
            ):
                raise ValueError("content target shares must be positive finite numbers")
        return self


class ExposureSnapshot(BaseModel):
    """Running exposure counts, read by the caller when the step runs.

    ``sessions`` counts the sessions started so far *including the current one*;
    ``administrations`` counts how often each item has been administered (items not listed:
    0). Only used by the exposure cap.
    """

    sessions: int = Field(ge=1)
    administrations: dict[str, int] = Field(default_factory=dict)

    def counts(self, bank: ItemBank) -> IntArray:
        """Administration counts in bank order (ids no longer in the bank are ignored)."""
        counts = np.zeros(len(bank), dtype=np.int64)
        for item_id, count in self.administrations.items():
            row = bank.index_of.get(item_id)
            if row is not None:
                counts[row] = count
        return counts


def content_target_shares(bank: ItemBank, targets: Mapping[str, float] | None) -> FloatArray | None:
    """Target share per bank content area (bank order), or ``None`` without balancing."""
    if targets is None:
        return None
    unknown = sorted(set(targets) - set(bank.area_names))
    if unknown:
        raise InvalidInputError(
            f"The test's content targets name areas with no items in the bank: {unknown}.",
            code="invalid_test_definition",
        )
    total = sum(targets.values())
    return np.array([targets.get(name, 0.0) / total for name in bank.area_names])


def area_counts_of(bank: ItemBank, administered: npt.ArrayLike) -> IntArray:
    """How many administered items each examinee has per content area: ``(E, areas)``."""
    item_arr = np.atleast_2d(np.asarray(administered, dtype=np.int64))
    valid = item_arr >= 0
    codes = bank.area_codes[np.where(valid, item_arr, 0)]
    n_areas = len(bank.area_names)
    one_hot = (codes[..., None] == np.arange(n_areas)) & valid[..., None]
    return np.asarray(one_hot.sum(axis=-2), dtype=np.int64)


def select_batch(
    bank: ItemBank,
    theta: npt.ArrayLike,
    available: BoolArray,
    area_counts: IntArray,
    *,
    config: SelectionConfig,
    rng: np.random.Generator,
    exposure_counts: IntArray | None = None,
    sessions: int = 0,
    acceptance_draws: FloatArray | None = None,
) -> IntArray:
    """Next item (bank row) for each examinee, ``-1`` where nothing is left.

    ``available`` is ``(E, n_items)`` (False for administered/withdrawn items),
    ``area_counts`` ``(E, areas)`` from :func:`area_counts_of`. ``exposure_counts`` and
    ``sessions`` feed the exposure cap and are required when it is configured.
    ``acceptance_draws`` (``(E, n_items)`` uniforms fixed for each session) drive
    Sympson-Hetter; without them fresh draws are taken from ``rng`` at every step.
    """
    theta_arr = np.atleast_1d(np.asarray(theta, dtype=np.float64))
    candidates = np.array(available, dtype=bool, copy=True)
    if config.max_exposure_rate is not None:
        if exposure_counts is None or sessions < 1:
            raise ValueError("the exposure cap needs exposure_counts and sessions >= 1")
        candidates = _apply_exposure_cap(
            candidates, exposure_counts, sessions, config.max_exposure_rate
        )
    shares = content_target_shares(bank, config.content_targets)
    if shares is not None:
        candidates = _restrict_to_neediest_area(bank, candidates, area_counts, shares)
    if config.sympson_hetter:
        draws = rng.random(candidates.shape) if acceptance_draws is None else acceptance_draws
        accepted = draws < bank.exposure_k
        survivors = candidates & accepted
        # If every candidate was rejected, keep them all rather than end the test.
        candidates = np.where(survivors.any(axis=-1, keepdims=True), survivors, candidates)
    information = np.where(candidates, bank.information(theta_arr), -np.inf)
    return _pick(information, config.randomesque_n, rng)


def select_next_item(
    bank: ItemBank,
    theta: float,
    administered: Sequence[int] | IntArray,
    *,
    config: SelectionConfig,
    rng: np.random.Generator,
    exposure: ExposureSnapshot | None = None,
    acceptance_draws: FloatArray | None = None,
) -> int | None:
    """Next item (bank row) for one examinee, or ``None`` when the bank has nothing left.

    ``acceptance_draws``: this session's Sympson-Hetter uniforms, one per bank item.
    """
    administered_arr = np.asarray(administered, dtype=np.int64).reshape(1, -1)
    available = np.ones((1, len(bank)), dtype=bool)
    available[0, administered_arr[0]] = False
    counts = exposure.counts(bank) if exposure is not None else None
    chosen = select_batch(
        bank,
        np.array([theta]),
        available,
        area_counts_of(bank, administered_arr),
        config=config,
        rng=rng,
        exposure_counts=counts,
        sessions=exposure.sessions if exposure is not None else 0,
        acceptance_draws=None if acceptance_draws is None else acceptance_draws[None, :],
    )
    return int(chosen[0]) if chosen[0] >= 0 else None


def _apply_exposure_cap(
    candidates: BoolArray, counts: IntArray, sessions: int, r_max: float
) -> BoolArray:
    """Keep items whose exposure after one more administration stays within ``r_max``."""
    under_cap = (counts + 1) <= r_max * sessions * (1 + 1e-12)
    capped = candidates & under_cap
    starved = ~capped.any(axis=-1) & candidates.any(axis=-1)
    if starved.any():
        masked_counts = np.where(candidates[starved], counts, np.iinfo(np.int64).max)
        least = masked_counts == masked_counts.min(axis=-1, keepdims=True)
        capped[starved] = candidates[starved] & least
    return capped


def _restrict_to_neediest_area(
    bank: ItemBank, candidates: BoolArray, area_counts: IntArray, shares: FloatArray
) -> BoolArray:
    """Keep only candidates of the area with the largest shortfall against its target.

    Shortfall after the next item: ``share * (administered + 1) - count``. Ties go to the
    area with the larger share, then to the earlier area in bank order (deterministic).
    """
    n_areas = shares.shape[0]
    per_area = (bank.area_codes[None, :, None] == np.arange(n_areas)) & candidates[..., None]
    has_items = per_area.any(axis=-2)
    administered = area_counts.sum(axis=-1, keepdims=True)
    deficit = shares * (administered + 1) - area_counts + 1e-9 * shares
    deficit = np.where(shares > 0, deficit, _UNTARGETED_DEFICIT)
    deficit = np.where(has_items, deficit, -np.inf)
    neediest = np.argmax(deficit, axis=-1)
    return np.asarray(candidates & (bank.area_codes[None, :] == neediest[:, None]))


def _pick(information: FloatArray, n_best: int, rng: np.random.Generator) -> IntArray:
    """Row-wise argmax (``n_best == 1``) or a uniform pick among the ``n_best`` largest."""
    has_any = np.isfinite(information).any(axis=-1)
    if n_best == 1:
        return np.where(has_any, np.argmax(information, axis=-1), -1)
    k = min(n_best, information.shape[-1])
    top = np.argpartition(-information, k - 1, axis=-1)[:, :k]
    top_info = np.take_along_axis(information, top, axis=-1)
    order = np.argsort(-top_info, axis=-1, kind="stable")
    top = np.take_along_axis(top, order, axis=-1)
    n_valid = np.isfinite(np.take_along_axis(top_info, order, axis=-1)).sum(axis=-1)
    draw = np.minimum((rng.random(information.shape[0]) * n_valid).astype(np.int64), k - 1)
    chosen = np.take_along_axis(top, draw[:, None], axis=-1)[:, 0]
    return np.where(has_any, chosen, -1)
