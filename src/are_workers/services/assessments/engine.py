"""The adaptive test as a pure state machine: ``state + answer -> new state``.

Why a pure step: an actor loads the session state (JSON) and the bank, calls :func:`step`
with the answer, and stores what comes back, all in one transaction. Nothing here touches
the database, the clock or global randomness: ``now`` is passed in, and the random choices
(randomesque, Sympson-Hetter) come from a generator seeded by ``(state.seed, answers so
far)``, so re-running the same step on the same input yields the same next item. The caller
deduplicates answers by response id; this module rejects answers that cannot be applied.

The same selection and estimation kernels also drive :func:`simulate`, a lock-step batch
simulator used for validation against catsim and for exposure-parameter calibration, and
:func:`simulate_sessions`, which replays complete sessions through :func:`step` itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal, Self

import numpy as np
import numpy.typing as npt
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from are_workers.errors import InvalidInputError
from are_workers.services.assessments.estimation import (
    EstimationMethod,
    EstimatorConfig,
    eap_batch,
    eap_from_log_likelihood,
    estimate,
    estimate_batch,
    final_config,
    log_likelihood_on_grid,
    quadrature_grid,
)
from are_workers.services.assessments.irt import FloatArray, IntArray, ItemBank
from are_workers.services.assessments.norms import NormTable, ScoreScale
from are_workers.services.assessments.selection import (
    ExposureSnapshot,
    SelectionConfig,
    area_counts_of,
    content_target_shares,
    select_batch,
    select_next_item,
)


class SessionStatus(StrEnum):
    """Whether a session still accepts answers."""

    IN_PROGRESS = "in_progress"
    FINISHED = "finished"


class StopReason(StrEnum):
    """Why a session finished."""

    SE_REACHED = "se_reached"
    MAX_ITEMS = "max_items"
    TIME_LIMIT = "time_limit"
    BANK_EXHAUSTED = "bank_exhausted"
    CLOSED = "closed"


class StoppingRule(BaseModel):
    """When a test ends.

    The test stops at the first of: ``max_items`` answers; SE at or below ``se_threshold``
    once ``min_items`` are answered; the time limit. ``grace_seconds`` tolerates answers
    that were given in time but arrive a little late (network, queueing).
    """

    model_config = ConfigDict(frozen=True)

    se_threshold: float | None = Field(default=0.3, gt=0, allow_inf_nan=False)
    min_items: int = Field(default=5, ge=1)
    max_items: int = Field(default=30, ge=1)
    time_limit_seconds: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    grace_seconds: float = Field(default=5.0, ge=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.min_items > self.max_items:
            raise ValueError("min_items must not exceed max_items")
        return self


#: SD of the N(0, SD) prior of the running EAP that chooses a test's items (the reported
#: score is the prior-free WLE). Why wide: with a N(0, 1) prior the early estimates of
#: candidates far from the middle stay near 0 for several answers, so a short test spends
#: them on items too hard (or too easy) to say much, and with the 3PL's guessing floor the
#: final score of the weakest candidates kept an inward bias. A weakly informative prior
#: keeps every estimate finite (all right or all wrong) but lets the answers, not the prior,
#: steer from the first item; chosen on simulations with other seeds than the bench's.
SELECTION_PRIOR_SD = 3.0


class CatConfig(BaseModel):
    """Everything that defines how one adaptive test behaves (stored with the test)."""

    model_config = ConfigDict(frozen=True)

    estimator: EstimatorConfig = Field(
        default_factory=lambda: EstimatorConfig(prior_sd=SELECTION_PRIOR_SD)
    )
    selection: SelectionConfig = Field(default_factory=SelectionConfig)
    stopping: StoppingRule = Field(default_factory=StoppingRule)
    scale: ScoreScale = Field(default_factory=ScoreScale)


class AdministeredItem(BaseModel):
    """One presented item; ``response`` stays ``None`` until it is answered."""

    model_config = ConfigDict(frozen=True)

    item_id: str
    response: int | None = None
    presented_at: AwareDatetime
    answered_at: AwareDatetime | None = None


class SessionState(BaseModel):
    """The whole state of one session; round-trips through JSON unchanged.

    At most one item is pending (presented, unanswered), and it is always the last one.
    ``theta``/``se`` are the current estimate by ``estimate_method`` (after a fallback from
    an undefined ML, the fallback's name).
    """

    model_config = ConfigDict(frozen=True)

    schema_version: Literal[1] = 1
    status: SessionStatus = SessionStatus.IN_PROGRESS
    stop_reason: StopReason | None = None
    seed: int = Field(ge=0)
    started_at: AwareDatetime
    finished_at: AwareDatetime | None = None
    items: tuple[AdministeredItem, ...] = ()
    theta: float = Field(allow_inf_nan=False)
    se: float = Field(gt=0, allow_inf_nan=False)
    estimate_method: EstimationMethod

    @property
    def pending_item_id(self) -> str | None:
        """The item awaiting an answer, if any."""
        if self.items and self.items[-1].response is None:
            return self.items[-1].item_id
        return None

    @property
    def answered(self) -> tuple[AdministeredItem, ...]:
        """Answered items in presentation order."""
        return tuple(item for item in self.items if item.response is not None)


class Answer(BaseModel):
    """One answer as submitted: the item and the chosen category (1 = correct)."""

    model_config = ConfigDict(frozen=True)

    item_id: str
    response: int


class AssessmentResult(BaseModel):
    """What is reported for a finished session.

    ``theta``/``se`` are the score by ``estimate_method``, the test's ``final`` estimator
    (WLE unless configured otherwise), recomputed from all answers; ``eap_theta``/``eap_se``
    are the EAP with the test's prior on the same answers, kept for comparison (EAP shrinks
    towards the prior mean, so it must not be what decides about a candidate).
    """

    model_config = ConfigDict(frozen=True)

    theta: float
    se: float
    estimate_method: EstimationMethod
    eap_theta: float | None = None
    eap_se: float | None = None
    scaled_score: float
    scaled_se: float
    percentile: float | None
    norm_table: str | None
    items_answered: int
    stop_reason: StopReason | None
    items_per_area: dict[str, int]


# --- the step API ----------------------------------------------------------------------------


def step_rng(seed: int, answers_so_far: int) -> np.random.Generator:
    """The generator for one step: a function of the session seed and its progress only."""
    return np.random.default_rng([seed, answers_so_far])


#: Separate stream for the per-session Sympson-Hetter draws ("SH" in ASCII).
_SYMPSON_HETTER_STREAM = 0x5348


def sympson_hetter_draws(seed: int, n_items: int) -> FloatArray:
    """The session's Sympson-Hetter uniforms, one per bank item, fixed for the session."""
    return np.random.default_rng([seed, _SYMPSON_HETTER_STREAM]).random(n_items)


def deadline(config: CatConfig, state: SessionState) -> datetime | None:
    """When the session's time runs out (``None`` without a time limit)."""
    limit = config.stopping.time_limit_seconds
    return None if limit is None else state.started_at + timedelta(seconds=limit)


def is_expired(config: CatConfig, state: SessionState, now: datetime) -> bool:
    """True when answers can no longer be accepted (time limit plus grace has passed)."""
    end = deadline(config, state)
    return end is not None and now > end + timedelta(seconds=config.stopping.grace_seconds)


def validate_setup(bank: ItemBank, config: CatConfig) -> None:
    """Reject a test definition that cannot run on this bank, with a readable reason."""
    content_target_shares(bank, config.selection.content_targets)
    if config.selection.max_exposure_rate is not None:
        needed = config.stopping.max_items
        r_max = config.selection.max_exposure_rate
        if len(bank) * r_max < needed:
            raise InvalidInputError(
                f"An exposure cap of {r_max} with up to {needed} items per test needs at least "
                f"{math.ceil(needed / r_max)} items in the bank; it has {len(bank)}.",
                code="invalid_test_definition",
            )


def start_session(
    bank: ItemBank,
    config: CatConfig,
    *,
    seed: int,
    now: datetime,
    exposure: ExposureSnapshot | None = None,
) -> SessionState:
    """A new session with its first item already chosen (at the prior mean)."""
    _require_aware(now)
    validate_setup(bank, config)
    _require_exposure(config, exposure)
    first = estimate(bank, [], [], config.estimator)
    state = SessionState(
        seed=seed,
        started_at=now,
        theta=first.theta,
        se=first.se,
        estimate_method=first.method,
    )
    return _present_next(bank, config, state, now=now, exposure=exposure, rng=step_rng(seed, 0))


def step(
    bank: ItemBank,
    config: CatConfig,
    state: SessionState,
    answer: Answer,
    *,
    now: datetime,
    exposure: ExposureSnapshot | None = None,
    rng: np.random.Generator | int | None = None,
) -> SessionState:
    """Apply one answer: score it, re-estimate, stop or present the next item.

    Raises ``InvalidInputError`` (never retried; the message is shown to people) when the
    session is finished or out of time, the item is unknown, was not presented in this
    session or is already answered, or the response is not a category of the item.
    ``rng`` overrides the default per-step generator (an ``int`` seeds a new one).
    """
    _require_aware(now)
    _validate_answer(bank, config, state, answer, now)
    items = tuple(
        item.model_copy(update={"response": answer.response, "answered_at": now})
        if item.item_id == answer.item_id
        else item
        for item in state.items
    )
    answered = [item for item in items if item.response is not None]
    rows = bank.indices(item.item_id for item in answered)
    responses = np.array([item.response for item in answered], dtype=np.int64)
    ability = estimate(bank, rows, responses, config.estimator)
    updated = state.model_copy(
        update={
            "items": items,
            "theta": _finite(ability.theta, config.estimator.prior_mean),
            "se": _finite(ability.se, config.estimator.prior_sd),
            "estimate_method": ability.method,
        }
    )
    reason = _stop_reason(config, updated, now)
    if reason is not None:
        return _finish(updated, reason, now)
    _require_exposure(config, exposure)
    if rng is None:
        generator = step_rng(state.seed, len(answered))
    elif isinstance(rng, np.random.Generator):
        generator = rng
    else:
        generator = np.random.default_rng(rng)
    return _present_next(bank, config, updated, now=now, exposure=exposure, rng=generator)


def close_session(
    config: CatConfig,
    state: SessionState,
    *,
    now: datetime,
    reason: StopReason = StopReason.TIME_LIMIT,
) -> SessionState:
    """Finish a session without a new answer (time ran out, candidate left, recruiter closed).

    The current estimate stands; a pending item stays in the record, unanswered, because it
    was seen and counts towards its exposure. Closing a finished session is a no-op.
    """
    _require_aware(now)
    if state.status is SessionStatus.FINISHED:
        return state
    if reason is StopReason.TIME_LIMIT and not is_expired(config, state, now):
        end = deadline(config, state)
        raise InvalidInputError(
            f"This assessment cannot be closed for time before its deadline ({end}).",
            code="session_not_expired",
        )
    return _finish(state, reason, now)


def final_result(
    bank: ItemBank, config: CatConfig, state: SessionState, norms: NormTable | None = None
) -> AssessmentResult:
    """Theta, SE, scaled score and (with a norm table) percentile of a finished session."""
    if state.status is not SessionStatus.FINISHED:
        raise InvalidInputError(
            "This assessment is still in progress, so there is no result yet.",
            code="session_in_progress",
        )
    counts: dict[str, int] = dict.fromkeys(bank.area_names, 0)
    rows: list[int] = []
    responses: list[int] = []
    for item in state.answered:
        row = bank.index_of.get(item.item_id)
        if row is not None and item.response is not None:
            counts[bank.area_names[bank.area_codes[row]]] += 1
            rows.append(row)
            responses.append(item.response)
    score = estimate(bank, rows, responses, final_config(config.estimator))
    theta = _finite(score.theta, state.theta)
    se = _finite(score.se, state.se)
    eap = eap_batch(bank, np.array([rows]), np.array([responses]), config.estimator).row()
    return AssessmentResult(
        theta=theta,
        se=se,
        estimate_method=score.method,
        eap_theta=eap.theta,
        eap_se=eap.se,
        scaled_score=config.scale.score(theta),
        scaled_se=config.scale.standard_error(se),
        percentile=norms.percentile(theta) if norms is not None else None,
        norm_table=norms.name if norms is not None else None,
        items_answered=len(state.answered),
        stop_reason=state.stop_reason,
        items_per_area=counts,
    )


def _validate_answer(
    bank: ItemBank, config: CatConfig, state: SessionState, answer: Answer, now: datetime
) -> None:
    if state.status is SessionStatus.FINISHED:
        raise InvalidInputError(
            "This assessment is already finished; no more answers are accepted.",
            code="session_closed",
        )
    if is_expired(config, state, now):
        raise InvalidInputError(
            "The time limit for this assessment has passed; this answer was not recorded.",
            code="session_expired",
        )
    if answer.item_id not in bank.index_of:
        raise InvalidInputError(
            f"Question '{answer.item_id}' is not part of this assessment.", code="unknown_item"
        )
    presented = {item.item_id: item for item in state.items}
    if answer.item_id not in presented:
        raise InvalidInputError(
            f"Question '{answer.item_id}' was not presented in this session.",
            code="item_not_administered",
        )
    if presented[answer.item_id].response is not None:
        raise InvalidInputError(
            f"Question '{answer.item_id}' has already been answered.",
            code="item_already_answered",
        )
    bank.validate_response(answer.item_id, answer.response)


def _stop_reason(config: CatConfig, state: SessionState, now: datetime) -> StopReason | None:
    rule = config.stopping
    answered = len(state.answered)
    if answered >= rule.max_items:
        return StopReason.MAX_ITEMS
    if (
        rule.se_threshold is not None
        and answered >= rule.min_items
        and state.se <= rule.se_threshold
    ):
        return StopReason.SE_REACHED
    end = deadline(config, state)
    if end is not None and now >= end:
        return StopReason.TIME_LIMIT
    return None


def _present_next(
    bank: ItemBank,
    config: CatConfig,
    state: SessionState,
    *,
    now: datetime,
    exposure: ExposureSnapshot | None,
    rng: np.random.Generator,
) -> SessionState:
    seen = bank.indices(item.item_id for item in state.items)
    draws = sympson_hetter_draws(state.seed, len(bank)) if config.selection.sympson_hetter else None
    row = select_next_item(
        bank,
        state.theta,
        seen,
        config=config.selection,
        rng=rng,
        exposure=exposure,
        acceptance_draws=draws,
    )
    if row is None:
        return _finish(state, StopReason.BANK_EXHAUSTED, now)
    presented = AdministeredItem(item_id=bank.item_ids[row], presented_at=now)
    return state.model_copy(update={"items": (*state.items, presented)})


def _finish(state: SessionState, reason: StopReason, now: datetime) -> SessionState:
    return state.model_copy(
        update={"status": SessionStatus.FINISHED, "stop_reason": reason, "finished_at": now}
    )


def _require_aware(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware (use datetime.now(UTC))")


def _require_exposure(config: CatConfig, exposure: ExposureSnapshot | None) -> None:
    if config.selection.max_exposure_rate is not None and exposure is None:
        raise ValueError("this test has an exposure cap: pass the current ExposureSnapshot")


def _finite(value: float, default: float) -> float:
    """Guard the stored state against non-finite numbers (JSON cannot carry them)."""
    return value if math.isfinite(value) else default


# --- simulation -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SimulationResult:
    """Outcome of simulated tests: one row per examinee, items padded with -1.

    ``theta``/``se`` are the running estimate that steered the test (``config.estimator``'s
    method); ``score``/``score_se`` the reported score by its ``final`` estimator (``None``
    when the simulation was asked not to compute it, as exposure calibration does).
    """

    theta: FloatArray
    se: FloatArray
    items: IntArray
    responses: IntArray
    exposure_rates: FloatArray
    score: FloatArray | None = None
    score_se: FloatArray | None = None

    @property
    def test_lengths(self) -> IntArray:
        """Items answered per examinee."""
        return np.asarray((self.items >= 0).sum(axis=-1), dtype=np.int64)

    def rmse(self, true_theta: npt.ArrayLike) -> float:
        """Root mean squared error of the reported scores (running estimates without them)."""
        estimates = self.theta if self.score is None else self.score
        return float(np.sqrt(np.mean((estimates - np.asarray(true_theta)) ** 2)))


def simulate(
    bank: ItemBank,
    true_theta: npt.ArrayLike,
    config: CatConfig,
    *,
    rng: np.random.Generator,
    uniforms: npt.ArrayLike | None = None,
    final_scores: bool = True,
) -> SimulationResult:
    """Run many adaptive tests in lock step (all examinees answer item k together).

    ``uniforms[e, k]`` drives examinee ``e``'s ``k``-th answer (drawn from ``rng`` if
    omitted), which lets a comparison give two engines identical random answers.
    ``final_scores=False`` skips the reported scores (only exposure is wanted). The time
    limit is ignored. The exposure cap depends on the order in which sessions run, so it
    is not supported here; use :func:`simulate_sessions`.
    """
    if config.selection.max_exposure_rate is not None:
        raise ValueError("the exposure cap is order-dependent: use simulate_sessions")
    validate_setup(bank, config)
    thetas = np.asarray(true_theta, dtype=np.float64)
    n_examinees = thetas.shape[0]
    max_items = min(config.stopping.max_items, len(bank))
    draws = (
        rng.random((n_examinees, max_items))
        if uniforms is None
        else np.asarray(uniforms, dtype=np.float64)
    )
    est = config.estimator
    grid = quadrature_grid(est.theta_min, est.theta_max, est.quadrature_points)
    incremental_eap = est.method == EstimationMethod.EAP
    loglik = np.zeros((n_examinees, grid.shape[0]))
    items = np.full((n_examinees, max_items), -1, dtype=np.int64)
    responses = np.full((n_examinees, max_items), -1, dtype=np.int64)
    available = np.ones((n_examinees, len(bank)), dtype=bool)
    start = estimate(bank, [], [], est)
    theta_hat = np.full(n_examinees, start.theta)
    se_hat = np.full(n_examinees, start.se)
    active = np.ones(n_examinees, dtype=bool)
    acceptance = rng.random((n_examinees, len(bank))) if config.selection.sympson_hetter else None
    rule = config.stopping
    for k in range(max_items):
        rows = np.flatnonzero(active)
        if rows.size == 0:
            break
        chosen = select_batch(
            bank,
            theta_hat[rows],
            available[rows],
            area_counts_of(bank, items[rows, :k]),
            config=config.selection,
            rng=rng,
            acceptance_draws=None if acceptance is None else acceptance[rows],
        )
        exhausted = chosen < 0
        active[rows[exhausted]] = False
        rows, chosen = rows[~exhausted], chosen[~exhausted]
        answers = bank.simulate_responses(thetas[rows], chosen, draws[rows, k])
        items[rows, k] = chosen
        responses[rows, k] = answers
        available[rows, chosen] = False
        if incremental_eap:
            loglik[rows] += log_likelihood_on_grid(bank, chosen[:, None], answers[:, None], grid)
            result = eap_from_log_likelihood(loglik[rows], grid, est.prior_mean, est.prior_sd)
        else:
            result = estimate_batch(bank, items[rows, : k + 1], responses[rows, : k + 1], est)
        theta_hat[rows] = result.theta
        se_hat[rows] = result.se
        answered = k + 1
        done = np.full(rows.shape, answered >= rule.max_items)
        if rule.se_threshold is not None and answered >= rule.min_items:
            done |= result.se <= rule.se_threshold
        active[rows[done]] = False
    counts = np.bincount(items[items >= 0], minlength=len(bank))
    final = estimate_batch(bank, items, responses, final_config(est)) if final_scores else None
    return SimulationResult(
        theta=theta_hat,
        se=se_hat,
        items=items,
        responses=responses,
        exposure_rates=counts / n_examinees,
        score=None if final is None else final.theta,
        score_se=None if final is None else final.se,
    )


def simulate_sessions(
    bank: ItemBank,
    true_theta: npt.ArrayLike,
    config: CatConfig,
    *,
    seed: int,
    uniforms: npt.ArrayLike | None = None,
    now: datetime,
) -> SimulationResult:
    """Run sessions one after another through :func:`start_session`/:func:`step`.

    Slower than :func:`simulate` but exercises the production path end to end, including
    the exposure cap with running counts (each session sees the counts left by the ones
    before it, as it would in production with sessions that do not overlap).
    """
    thetas = np.asarray(true_theta, dtype=np.float64)
    n_examinees = thetas.shape[0]
    max_items = min(config.stopping.max_items, len(bank))
    draws = (
        np.random.default_rng(seed).random((n_examinees, max_items))
        if uniforms is None
        else np.asarray(uniforms, dtype=np.float64)
    )
    counts: dict[str, int] = {}
    items = np.full((n_examinees, max_items), -1, dtype=np.int64)
    responses = np.full((n_examinees, max_items), -1, dtype=np.int64)
    theta_hat = np.zeros(n_examinees)
    se_hat = np.zeros(n_examinees)
    score = np.zeros(n_examinees)
    score_se = np.zeros(n_examinees)
    for e in range(n_examinees):
        exposure = ExposureSnapshot(sessions=e + 1, administrations=counts)
        state = start_session(bank, config, seed=seed + e, now=now, exposure=exposure)
        while state.status is SessionStatus.IN_PROGRESS:
            pending = state.pending_item_id
            assert pending is not None
            counts[pending] = counts.get(pending, 0) + 1
            k = len(state.items) - 1
            row = bank.index_of[pending]
            response = int(bank.simulate_responses(thetas[e], row, draws[e, k]))
            items[e, k], responses[e, k] = row, response
            state = step(
                bank,
                config,
                state,
                Answer(item_id=pending, response=response),
                now=now,
                exposure=ExposureSnapshot(sessions=e + 1, administrations=counts),
            )
        theta_hat[e], se_hat[e] = state.theta, state.se
        result = final_result(bank, config, state)
        score[e], score_se[e] = result.theta, result.se
    rates = np.array([counts.get(item_id, 0) for item_id in bank.item_ids]) / n_examinees
    return SimulationResult(
        theta=theta_hat,
        se=se_hat,
        items=items,
        responses=responses,
        exposure_rates=rates,
        score=score,
        score_se=score_se,
    )
