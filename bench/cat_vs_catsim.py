"""One CAT step (estimate + select) against catsim 0.21 on a 1000-item bank, plus precision.

Run: ``python bench/cat_vs_catsim.py [--runs 7] [--reps 300]``. Not part of CI.

What is timed, per step, for examinees who have answered 20 items:

- ``ours``: the default estimator (EAP) + maximum-information selection, i.e. what
  :func:`step` does between validation and building the new state;
- ``ours (ML)``: the same with ML, the closest match to catsim's estimator;
- ``ours step()``: the full production step: answer validation, estimation, stopping rule,
  selection and the new pydantic state;
- ``catsim``: ``NumericalSearchEstimator().estimate`` + ``MaxInfoSelector().select``.

Each figure is the median over ``--runs`` runs of the mean time of ``--reps`` steps (the
steps cycle through 50 different examinees). The precision part repeats the validation
test (500 examinees, 20 items, same thetas and answers) and prints RMSE ratios.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np
from catsim.estimation import NumericalSearchEstimator
from catsim.initialization import FixedPointInitializer
from catsim.item_bank import ItemBank as CatsimBank
from catsim.selection import MaxInfoSelector
from catsim.simulation import Simulator
from catsim.stopping import TestLengthStopper as LengthStopper

from are_workers.services.assessments import (
    AdministeredItem,
    Answer,
    CatConfig,
    EstimationMethod,
    EstimatorConfig,
    ItemBank,
    SelectionConfig,
    SessionState,
    StoppingRule,
    estimate,
    select_next_item,
    simulate,
    step,
)

N_ITEMS = 1000
ANSWERED = 20
PATTERNS = 50


def _median_time(fn: Callable[[int], object], runs: int, reps: int) -> float:
    fn(0)  # warm caches (grids, imports) outside the timing
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        for i in range(reps):
            fn(i)
        samples.append((time.perf_counter() - start) / reps)
    return statistics.median(samples)


def _step_benchmark(model: str, runs: int, reps: int) -> None:
    rng = np.random.default_rng(1)
    a = rng.lognormal(0, 0.3, N_ITEMS)
    b = rng.normal(0, 1, N_ITEMS)
    c = rng.uniform(0.1, 0.25, N_ITEMS) if model == "3PL" else np.zeros(N_ITEMS)
    bank = ItemBank.from_arrays(a, b, c)
    catsim_bank = CatsimBank(np.column_stack([a, b, c]))
    patterns = []
    for _ in range(PATTERNS):
        items = rng.choice(N_ITEMS, size=ANSWERED, replace=False)
        theta = rng.normal()
        responses = bank.simulate_responses(np.full(ANSWERED, theta), items, rng.random(ANSWERED))
        if responses.min() == responses.max():
            responses[0] = 1 - responses[0]  # keep ML defined for the comparison
        patterns.append((items, responses))

    eap = EstimatorConfig()
    ml = EstimatorConfig(method=EstimationMethod.ML)
    selection = SelectionConfig()
    generator = np.random.default_rng(0)

    def ours(i: int, config: EstimatorConfig = eap) -> object:
        items, responses = patterns[i % PATTERNS]
        ability = estimate(bank, items, responses, config)
        return select_next_item(bank, ability.theta, items, config=selection, rng=generator)

    def ours_ml(i: int) -> object:
        return ours(i, ml)

    estimator = NumericalSearchEstimator()
    selector = MaxInfoSelector()
    catsim_inputs = [
        (items.tolist(), [bool(r) for r in responses]) for items, responses in patterns
    ]

    def catsim(i: int) -> object:
        administered, vector = catsim_inputs[i % PATTERNS]
        theta = estimator.estimate(
            item_bank=catsim_bank,
            administered_items=administered,
            response_vector=vector,
            est_theta=0.0,
        )
        return selector.select(
            item_bank=catsim_bank, administered_items=administered, est_theta=theta
        )

    # Full production step: 19 answered + 1 pending item, as stored between requests.
    config = CatConfig(stopping=StoppingRule(se_threshold=None, max_items=40))
    now = datetime(2026, 1, 1, tzinfo=UTC)
    states = []
    for items, responses in patterns:
        ids = [bank.item_ids[j] for j in items]
        administered = tuple(
            AdministeredItem(
                item_id=ids[k],
                response=int(responses[k]) if k < ANSWERED - 1 else None,
                presented_at=now,
                answered_at=now if k < ANSWERED - 1 else None,
            )
            for k in range(ANSWERED)
        )
        state = SessionState(
            seed=7, started_at=now, items=administered, theta=0.0, se=1.0, estimate_method="eap"
        )
        states.append((state, Answer(item_id=ids[-1], response=int(responses[-1]))))

    def full_step(i: int) -> object:
        state, answer = states[i % PATTERNS]
        return step(bank, config, state, answer, now=now)

    agree = sum(
        int(ours_ml(i) == catsim(i)) for i in range(PATTERNS)
    )  # same next item with the same (ML) estimator
    t_ours = _median_time(ours, runs, reps)
    t_ml = _median_time(ours_ml, runs, reps)
    t_step = _median_time(full_step, runs, reps)
    t_catsim = _median_time(catsim, runs, max(reps // 5, 20))
    print(f"\n{model} bank of {N_ITEMS} items, {ANSWERED} answered, median of {runs} runs")
    print(f"  {'engine':<28}{'per step':>12}{'vs catsim':>12}")
    for name, seconds in (
        ("ours: EAP + max info", t_ours),
        ("ours: ML + max info", t_ml),
        ("ours: full step()", t_step),
        ("catsim: ML search + max info", t_catsim),
    ):
        print(f"  {name:<28}{seconds * 1e6:>9.0f} us{seconds / t_catsim:>11.2f}x")
    print(f"  same next item as catsim with ML: {agree}/{PATTERNS} patterns")


def _precision_benchmark(model: str, runs: int) -> None:
    ratios = []
    for run in range(runs):
        rng = np.random.default_rng(100 + run)
        n_items, n_examinees, length, seed = 300, 500, 20, 1000 + run
        a = rng.lognormal(0, 0.3, n_items)
        b = rng.normal(0, 1, n_items)
        c = rng.uniform(0.1, 0.25, n_items) if model == "3PL" else np.zeros(n_items)
        true_theta = rng.normal(0, 1, n_examinees)
        reference = Simulator(CatsimBank(np.column_stack([a, b, c])), true_theta, seed=seed)
        reference.simulate(
            FixedPointInitializer(0.0),
            MaxInfoSelector(),
            NumericalSearchEstimator(),
            LengthStopper(max_items=length),
        )
        catsim_rmse = float(
            np.sqrt(np.mean((np.array(reference.latest_estimations) - true_theta) ** 2))
        )
        uniforms = np.random.default_rng(seed).random((n_examinees, length))
        start = time.perf_counter()
        ours = simulate(
            ItemBank.from_arrays(a, b, c),
            true_theta,
            CatConfig(stopping=StoppingRule(se_threshold=None, min_items=1, max_items=length)),
            rng=np.random.default_rng(0),
            uniforms=uniforms,
        )
        elapsed = time.perf_counter() - start
        ratios.append((ours.rmse(true_theta), catsim_rmse, elapsed, reference.duration))
    ours_rmse = statistics.median(r[0] for r in ratios)
    catsim_rmse = statistics.median(r[1] for r in ratios)
    ratio = statistics.median(r[0] / r[1] for r in ratios)
    print(
        f"\n{model} precision, 500 examinees x 20 items, median of {runs} simulations:"
        f"\n  RMSE ours (EAP) {ours_rmse:.4f}  catsim (ML) {catsim_rmse:.4f}  ratio {ratio:.3f}"
        f"  (max ratio {max(r[0] / r[1] for r in ratios):.3f})"
        f"\n  simulation time ours {statistics.median(r[2] for r in ratios):.2f} s"
        f"  catsim {statistics.median(r[3] for r in ratios):.2f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--reps", type=int, default=300)
    parser.add_argument("--precision-runs", type=int, default=5)
    args = parser.parse_args()
    for model in ("2PL", "3PL"):
        _step_benchmark(model, args.runs, args.reps)
    for model in ("2PL", "3PL"):
        _precision_benchmark(model, args.precision_runs)


if __name__ == "__main__":
    main()
