"""Item selection: maximum information, randomesque, content balancing, exposure control."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from are_workers.errors import InvalidInputError
from are_workers.services.assessments.irt import ItemBank
from are_workers.services.assessments.selection import (
    ExposureSnapshot,
    SelectionConfig,
    area_counts_of,
    select_batch,
    select_next_item,
)


def _bank(n: int = 60, *, seed: int = 0, areas: tuple[str, ...] = ("general",)) -> ItemBank:
    rng = np.random.default_rng(seed)
    return ItemBank.from_arrays(
        rng.lognormal(0, 0.3, n),
        rng.normal(0, 1, n),
        rng.uniform(0, 0.25, n),
        content_areas=[areas[i % len(areas)] for i in range(n)],
    )


def test_maximum_information_never_repeats_an_item() -> None:
    bank = _bank()
    rng = np.random.default_rng(1)
    administered: list[int] = []
    for _ in range(len(bank)):
        chosen = select_next_item(bank, 0.3, administered, config=SelectionConfig(), rng=rng)
        assert chosen is not None
        assert chosen not in administered
        remaining = np.setdiff1d(np.arange(len(bank)), administered)
        best = remaining[np.argmax(bank.information(0.3)[remaining])]
        assert chosen == best
        administered.append(chosen)
    assert select_next_item(bank, 0.3, administered, config=SelectionConfig(), rng=rng) is None


def test_randomesque_picks_uniformly_among_the_n_best() -> None:
    bank = _bank()
    info = bank.information(-0.5)
    top3 = set(np.argsort(-info)[:3].tolist())
    config = SelectionConfig(randomesque_n=3)
    rng = np.random.default_rng(2)
    picks = [select_next_item(bank, -0.5, [], config=config, rng=rng) for _ in range(3000)]
    assert set(picks) == top3
    counts = np.array([picks.count(i) for i in top3])
    assert np.all(np.abs(counts / 3000 - 1 / 3) < 0.04)
    # With fewer items left than n, it still only picks from what is available.
    everything_but_two = [i for i in range(len(bank)) if i not in (4, 9)]
    for _ in range(20):
        assert select_next_item(bank, 0.0, everything_but_two, config=config, rng=rng) in {4, 9}


def test_selection_is_deterministic_given_the_generator() -> None:
    bank = _bank()
    config = SelectionConfig(randomesque_n=5, sympson_hetter=True)
    first = [
        select_next_item(bank, t, [1, 2], config=config, rng=np.random.default_rng(7))
        for t in np.linspace(-2, 2, 9)
    ]
    second = [
        select_next_item(bank, t, [1, 2], config=config, rng=np.random.default_rng(7))
        for t in np.linspace(-2, 2, 9)
    ]
    assert first == second


def test_content_balancing_follows_the_target_shares() -> None:
    bank = _bank(90, areas=("numeric", "verbal", "logic"))
    config = SelectionConfig(content_targets={"numeric": 0.5, "verbal": 0.3, "logic": 0.2})
    rng = np.random.default_rng(3)
    administered: list[int] = []
    for _ in range(20):
        chosen = select_next_item(bank, 0.0, administered, config=config, rng=rng)
        assert chosen is not None
        administered.append(chosen)
        counts = area_counts_of(bank, np.array(administered))[0]
        shares = np.array([0.5, 0.3, 0.2]) * len(administered)
        # Kingsbury-Zara keeps every area within one item of its target at every step.
        assert np.all(np.abs(counts - shares) <= 1.0)
    assert area_counts_of(bank, np.array(administered))[0].tolist() == [10, 6, 4]


def test_content_balancing_moves_on_when_an_area_runs_out() -> None:
    bank = _bank(12, areas=("a", "b", "c"))  # four items per area
    config = SelectionConfig(content_targets={"a": 0.8, "b": 0.2})
    rng = np.random.default_rng(4)
    administered: list[int] = []
    for _ in range(12):
        chosen = select_next_item(bank, 0.0, administered, config=config, rng=rng)
        assert chosen is not None
        administered.append(chosen)
    areas = [bank.area_names[bank.area_codes[i]] for i in administered]
    # Targeted areas first; the untargeted area only once they are exhausted.
    assert set(areas[:8]) == {"a", "b"}
    assert areas[8:] == ["c"] * 4
    with pytest.raises(InvalidInputError, match="no items in the bank: \\['z'\\]"):
        select_next_item(bank, 0.0, [], config=SelectionConfig(content_targets={"z": 1.0}), rng=rng)


def test_exposure_cap_excludes_items_that_would_exceed_r_max() -> None:
    bank = _bank(20)
    best = int(np.argmax(bank.information(0.0)))
    config = SelectionConfig(max_exposure_rate=0.2)
    rng = np.random.default_rng(5)
    # 10 sessions so far (this one included): an item may be given at most twice.
    at_cap = ExposureSnapshot(sessions=10, administrations={bank.item_ids[best]: 2})
    assert select_next_item(bank, 0.0, [], config=config, rng=rng, exposure=at_cap) != best
    below = ExposureSnapshot(sessions=10, administrations={bank.item_ids[best]: 1})
    assert select_next_item(bank, 0.0, [], config=config, rng=rng, exposure=below) == best
    # The first sessions of a new bank cannot satisfy the cap: least-exposed items are used.
    first = ExposureSnapshot(sessions=1, administrations=dict.fromkeys(bank.item_ids[:19], 1))
    assert select_next_item(bank, 0.0, [], config=config, rng=rng, exposure=first) == 19
    with pytest.raises(ValueError, match="exposure_counts"):
        select_next_item(bank, 0.0, [], config=config, rng=rng)


def test_sympson_hetter_rejects_items_with_their_probability() -> None:
    bank = _bank(30)
    best = int(np.argmax(bank.information(0.0)))
    k = np.ones(30)
    k[best] = 0.25
    bank = bank.with_exposure_k(k)
    config = SelectionConfig(sympson_hetter=True)
    rng = np.random.default_rng(6)
    picks = np.array([select_next_item(bank, 0.0, [], config=config, rng=rng) for _ in range(4000)])
    assert abs(np.mean(picks == best) - 0.25) < 0.03
    # Per-session draws: a rejected item stays rejected for the whole session.
    draws = np.zeros(30)
    draws[best] = 0.9
    for _ in range(5):
        chosen = select_next_item(bank, 0.0, [], config=config, rng=rng, acceptance_draws=draws)
        assert chosen != best
    # Everything rejected: the test goes on with the most informative item.
    nobody = bank.with_exposure_k(np.zeros(30))
    assert select_next_item(nobody, 0.0, [], config=config, rng=rng) == best


def test_batch_selection_handles_exhausted_rows() -> None:
    bank = _bank(5)
    available = np.ones((3, 5), dtype=bool)
    available[1] = False
    chosen = select_batch(
        bank,
        np.array([0.0, 0.0, 2.0]),
        available,
        np.zeros((3, 1), dtype=np.int64),
        config=SelectionConfig(randomesque_n=2),
        rng=np.random.default_rng(0),
    )
    assert chosen[1] == -1
    assert chosen[0] >= 0
    assert chosen[2] >= 0


def test_selection_config_is_validated() -> None:
    with pytest.raises(ValidationError):
        SelectionConfig(randomesque_n=0)
    with pytest.raises(ValidationError):
        SelectionConfig(max_exposure_rate=1.5)
    with pytest.raises(ValidationError, match="positive"):
        SelectionConfig(content_targets={"a": 0.0})
