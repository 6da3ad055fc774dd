"""The CAT step function: validation, stopping rules, determinism and state round trips."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from are_workers.errors import InvalidInputError
from are_workers.services.assessments import (
    Answer,
    CatConfig,
    EstimationMethod,
    EstimatorConfig,
    ExposureSnapshot,
    ItemBank,
    ItemModel,
    ItemSpec,
    NormTable,
    SelectionConfig,
    SessionState,
    SessionStatus,
    StoppingRule,
    StopReason,
    close_session,
    estimate_wle,
    final_result,
    start_session,
    step,
)

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def _bank(n: int = 80) -> ItemBank:
    rng = np.random.default_rng(0)
    specs = [
        ItemSpec(
            item_id=f"q{i:03d}",
            model=ItemModel.THREE_PL,
            a=float(rng.lognormal(0, 0.3)),
            b=float(rng.normal()),
            c=0.15,
            content_area=("numeric", "verbal")[i % 2],
        )
        for i in range(n)
    ]
    specs.append(
        ItemSpec(
            item_id="essay",
            model=ItemModel.GRM,
            a=1.5,
            thresholds=(-1.0, 0.0, 1.0),
            content_area="verbal",
        )
    )
    return ItemBank(specs)


def _run(
    bank: ItemBank, config: CatConfig, true_theta: float, seed: int = 1
) -> tuple[SessionState, list[SessionState]]:
    """A whole session; every state goes through JSON on its way to the next step."""
    rng = np.random.default_rng(seed)
    state = start_session(bank, config, seed=seed, now=T0)
    history = [state]
    now = T0
    while state.status is SessionStatus.IN_PROGRESS:
        item_id = state.pending_item_id
        assert item_id is not None
        row = bank.index_of[item_id]
        response = int(bank.simulate_responses(true_theta, row, rng.random()))
        now += timedelta(seconds=30)
        stored = SessionState.model_validate_json(state.model_dump_json())
        assert stored == state
        state = step(bank, config, stored, Answer(item_id=item_id, response=response), now=now)
        history.append(state)
    return state, history


def test_a_session_runs_to_max_items_and_is_scored() -> None:
    bank = _bank()
    config = CatConfig(
        selection=SelectionConfig(content_targets={"numeric": 0.5, "verbal": 0.5}, randomesque_n=2),
        stopping=StoppingRule(se_threshold=None, max_items=12),
    )
    final, history = _run(bank, config, true_theta=1.0)
    assert final.status is SessionStatus.FINISHED
    assert final.stop_reason is StopReason.MAX_ITEMS
    assert final.finished_at == T0 + timedelta(seconds=30 * 12)
    ids = [item.item_id for item in final.items]
    assert len(ids) == len(set(ids)) == 12
    assert all(item.response is not None for item in final.items)
    assert [len(s.answered) for s in history] == list(range(13))
    assert all(s.se > 0 for s in history)
    norms = NormTable.from_sample("pilot", np.random.default_rng(5).normal(size=400))
    result = final_result(bank, config, final, norms)
    assert result.items_answered == 12
    assert result.items_per_area == {"numeric": 6, "verbal": 6}
    # The reported score is the WLE on all answers; the running EAP is kept for comparison.
    rows = bank.indices(item.item_id for item in final.answered)
    answers = [item.response for item in final.answered]
    wle = estimate_wle(bank, rows, answers)
    assert result.estimate_method is EstimationMethod.WLE
    assert result.theta == pytest.approx(wle.theta)
    assert result.eap_theta == pytest.approx(final.theta)
    assert result.eap_se == pytest.approx(final.se)
    assert result.scaled_score == pytest.approx(500 + 100 * wle.theta)
    assert result.scaled_se == pytest.approx(100 * wle.se)
    assert result.percentile == pytest.approx(norms.percentile(wle.theta))
    assert result.norm_table == "pilot"
    assert final_result(bank, config, final).percentile is None


def test_steps_are_deterministic_given_the_seed() -> None:
    bank = _bank()
    config = CatConfig(
        selection=SelectionConfig(randomesque_n=4, sympson_hetter=True),
        stopping=StoppingRule(se_threshold=None, max_items=10),
    )
    first, _ = _run(bank, config, true_theta=-0.5, seed=9)
    again, _ = _run(bank, config, true_theta=-0.5, seed=9)
    other, _ = _run(bank, config, true_theta=-0.5, seed=10)
    assert first == again
    assert [i.item_id for i in first.items] != [i.item_id for i in other.items]
    # Replaying one step (e.g. a redelivered message) gives the identical state.
    state = start_session(bank, config, seed=3, now=T0)
    answer = Answer(item_id=state.pending_item_id or "", response=1)
    later = T0 + timedelta(seconds=5)
    assert step(bank, config, state, answer, now=later) == step(
        bank, config, state, answer, now=later
    )
    # An explicit generator or seed overrides the per-step default.
    assert step(bank, config, state, answer, now=later, rng=42) == step(
        bank, config, state, answer, now=later, rng=np.random.default_rng(42)
    )


def test_se_threshold_stops_only_after_min_items() -> None:
    bank = _bank()
    config = CatConfig(stopping=StoppingRule(se_threshold=0.45, min_items=8, max_items=40))
    final, history = _run(bank, config, true_theta=0.2)
    assert final.stop_reason is StopReason.SE_REACHED
    assert final.se <= 0.45
    assert len(final.answered) >= 8
    assert all(s.se > 0.45 or len(s.answered) < 8 for s in history[:-1])


def test_a_small_bank_runs_out_of_items() -> None:
    bank = ItemBank.from_arrays([1.0, 1.2, 0.8], [0.0, 0.5, -0.5])
    config = CatConfig(stopping=StoppingRule(se_threshold=None, min_items=1, max_items=10))
    final, _ = _run(bank, config, true_theta=0.0)
    assert final.stop_reason is StopReason.BANK_EXHAUSTED
    assert len(final.answered) == 3


def test_ml_sessions_fall_back_until_the_pattern_is_mixed() -> None:
    bank = ItemBank(_bank().specs[:-1])  # dichotomous items only
    config = CatConfig(
        estimator=EstimatorConfig(method=EstimationMethod.ML),
        stopping=StoppingRule(se_threshold=None, max_items=6),
    )
    state = start_session(bank, config, seed=1, now=T0)
    assert state.estimate_method is EstimationMethod.EAP
    responses = [1, 1, 0, 1, 0, 1]
    methods = []
    for response in responses:
        state = step(
            bank,
            config,
            state,
            Answer(item_id=state.pending_item_id or "", response=response),
            now=T0,
        )
        methods.append(state.estimate_method)
    assert methods[:2] == [EstimationMethod.EAP, EstimationMethod.EAP]
    assert methods[2:] == [EstimationMethod.ML] * 4


def _answer_pending(
    bank: ItemBank, config: CatConfig, state: SessionState, now: datetime
) -> SessionState:
    return step(
        bank, config, state, Answer(item_id=state.pending_item_id or "", response=1), now=now
    )


@pytest.mark.parametrize(
    ("make_answer", "code", "message"),
    [
        (lambda s: Answer(item_id="nope", response=1), "unknown_item", "'nope' is not part"),
        (
            lambda s: Answer(
                item_id=next(
                    i for i in ("q000", "q001", "q002") if i not in {x.item_id for x in s.items}
                ),
                response=1,
            ),
            "item_not_administered",
            "was not presented in this session",
        ),
        (
            lambda s: Answer(item_id=s.items[0].item_id, response=0),
            "item_already_answered",
            "already been answered",
        ),
        (
            lambda s: Answer(item_id=s.pending_item_id or "", response=2),
            "invalid_response",
            "from 0 to 1",
        ),
        (
            lambda s: Answer(item_id=s.pending_item_id or "", response=-1),
            "invalid_response",
            "not valid",
        ),
    ],
)
def test_invalid_answers_are_rejected_with_a_clear_message(
    make_answer: Callable[[SessionState], Answer], code: str, message: str
) -> None:
    bank = _bank()
    config = CatConfig()
    state = _answer_pending(bank, config, start_session(bank, config, seed=2, now=T0), T0)
    with pytest.raises(InvalidInputError, match=message) as caught:
        step(bank, config, state, make_answer(state), now=T0)
    assert caught.value.code == code


def test_finished_and_expired_sessions_accept_no_answers() -> None:
    bank = _bank()
    config = CatConfig(stopping=StoppingRule(time_limit_seconds=600, grace_seconds=10))
    state = start_session(bank, config, seed=4, now=T0)
    pending = Answer(item_id=state.pending_item_id or "", response=1)
    # Too late even with the grace period.
    with pytest.raises(InvalidInputError, match="time limit") as caught:
        step(bank, config, state, pending, now=T0 + timedelta(seconds=611))
    assert caught.value.code == "session_expired"
    # Late, but within grace: accepted, and the time limit ends the session.
    done = step(bank, config, state, pending, now=T0 + timedelta(seconds=605))
    assert done.stop_reason is StopReason.TIME_LIMIT
    with pytest.raises(InvalidInputError, match="already finished") as caught:
        step(bank, config, done, pending, now=T0 + timedelta(seconds=606))
    assert caught.value.code == "session_closed"
    with pytest.raises(InvalidInputError, match="still in progress"):
        final_result(bank, config, state)


def test_sessions_can_be_closed_for_time_or_on_request() -> None:
    bank = _bank()
    config = CatConfig(stopping=StoppingRule(time_limit_seconds=60, grace_seconds=0))
    state = _answer_pending(bank, config, start_session(bank, config, seed=5, now=T0), T0)
    with pytest.raises(InvalidInputError) as caught:
        close_session(config, state, now=T0 + timedelta(seconds=30))
    assert caught.value.code == "session_not_expired"
    closed = close_session(config, state, now=T0 + timedelta(seconds=61))
    assert closed.status is SessionStatus.FINISHED
    assert closed.stop_reason is StopReason.TIME_LIMIT
    assert closed.pending_item_id == state.pending_item_id  # seen, so it stays on record
    assert close_session(config, closed, now=T0 + timedelta(hours=1)) == closed
    abandoned = close_session(config, state, now=T0, reason=StopReason.CLOSED)
    assert abandoned.stop_reason is StopReason.CLOSED
    assert final_result(bank, config, abandoned).items_answered == 1


def test_graded_items_are_administered_and_scored() -> None:
    bank = ItemBank(
        [
            ItemSpec(
                item_id=f"g{i}",
                model=ItemModel.GRM,
                a=1.3,
                thresholds=(-1.5 + i * 0.3, 0.0 + i * 0.3, 1.2),
            )
            for i in range(4)
        ]
    )
    config = CatConfig(stopping=StoppingRule(se_threshold=None, min_items=1, max_items=4))
    state = start_session(bank, config, seed=0, now=T0)
    for response in (3, 2, 3, 1):
        state = step(
            bank,
            config,
            state,
            Answer(item_id=state.pending_item_id or "", response=response),
            now=T0,
        )
    assert state.stop_reason is StopReason.MAX_ITEMS
    assert state.theta > 0.5


def test_setup_and_inputs_are_checked() -> None:
    bank = _bank(20)
    capped = CatConfig(
        selection=SelectionConfig(max_exposure_rate=0.2), stopping=StoppingRule(max_items=10)
    )
    with pytest.raises(InvalidInputError, match="needs at least 50 items"):
        start_session(bank, capped, seed=0, now=T0, exposure=ExposureSnapshot(sessions=1))
    fine_cap = CatConfig(
        selection=SelectionConfig(max_exposure_rate=0.5), stopping=StoppingRule(max_items=5)
    )
    with pytest.raises(ValueError, match="ExposureSnapshot"):
        start_session(bank, fine_cap, seed=0, now=T0)
    with pytest.raises(ValueError, match="timezone-aware"):
        start_session(bank, CatConfig(), seed=0, now=datetime(2026, 1, 1))
    with pytest.raises(InvalidInputError, match="no items in the bank"):
        start_session(
            bank, CatConfig(selection=SelectionConfig(content_targets={"art": 1.0})), seed=0, now=T0
        )
    # A state that refers to an item no longer in the bank cannot be continued silently.
    state = start_session(bank, CatConfig(), seed=0, now=T0)
    smaller = ItemBank([spec for spec in bank.specs if spec.item_id != state.pending_item_id])
    with pytest.raises(InvalidInputError) as caught:
        step(
            smaller,
            CatConfig(),
            state,
            Answer(item_id=state.pending_item_id or "", response=1),
            now=T0,
        )
    assert caught.value.code == "unknown_item"


def test_state_json_is_stable_and_complete() -> None:
    bank = _bank()
    config = CatConfig(stopping=StoppingRule(se_threshold=None, min_items=1, max_items=3))
    final, _ = _run(bank, config, true_theta=0.0)
    payload = final.model_dump(mode="json")
    assert payload["status"] == "finished"
    assert payload["stop_reason"] == "max_items"
    assert payload["schema_version"] == 1
    assert {"item_id", "response", "presented_at", "answered_at"} <= set(payload["items"][0])
    assert SessionState.model_validate(payload) == final
    assert CatConfig.model_validate_json(config.model_dump_json()) == config
