"""One CAT step (estimate + select) against catsim 0.21 on a 1000-item bank, plus precision.

Run: ``python bench/cat_vs_catsim.py [--runs 7] [--reps 300] [--examinees 2000]
[--skip-steps] [--json out.json]``. Not part of CI.

What is timed, per step, for examinees who have answered 20 items:

- ``ours``: the default estimator (EAP) + maximum-information selection, i.e. what
  :func:`step` does between validation and building the new state;
- ``ours (ML)``: the same with ML, the closest match to catsim's estimator;
- ``ours step()``: the full production step: answer validation, estimation, stopping rule,
  selection and the new pydantic state;
- ``ours final score``: what the last step adds, :func:`final_result` (WLE and the EAP for
  comparison on all 20 answers, scaling, areas);
- ``catsim``: ``NumericalSearchEstimator().estimate`` + ``MaxInfoSelector().select``.

Each figure is the median over ``--runs`` runs of the mean time of ``--reps`` steps (the
steps cycle through 50 different examinees).

Precision, like for like: for 2PL and 3PL banks of 500 items and four populations (N(0, 1),
N(+1, 1.5), N(-1, 1.5), U(-3, 3)), both engines run 30-item maximum-information tests on the
same bank, the same true abilities and the same random answers (catsim's rule, correct iff
P >= u, with catsim's own stream of uniforms), every estimate bounded to [-4, 4]. Reported
after 10, 20 and 30 items: RMSE of our final score (WLE), of our ML and of catsim's ML (its
bounded search with Dodd's heuristic, clipped to [-4, 4]), and the mean bias by decile of
true ability. Ours selects items with its default running estimate (EAP with a wide N(0, 3)
prior), catsim with its ML; the "EAP N(0, 1)" column is the shrinkage a fixed N(0, 1) prior
would put into the reported score. Goals per cell:
final-score RMSE <= 1.05x catsim's, |bias| of the top and bottom deciles <= catsim's + 0.1.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
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
    final_result,
    select_next_item,
    simulate,
    step,
)
from are_workers.services.assessments.estimation import (
    eap_batch,
    estimate_batch,
    final_config,
    ml_batch,
)

N_ITEMS = 1000
ANSWERED = 20
PATTERNS = 50
BANK_ITEMS = 500
LENGTHS = (10, 20, 30)
BOUND = 4.0


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

    def final_score(i: int) -> object:
        return final_result(bank, config, finished[i % PATTERNS])

    finished = [
        SessionState(
            status="finished",
            seed=7,
            started_at=now,
            finished_at=now,
            items=tuple(
                AdministeredItem(
                    item_id=bank.item_ids[j],
                    response=int(r),
                    presented_at=now,
                    answered_at=now,
                )
                for j, r in zip(items, responses, strict=True)
            ),
            theta=0.0,
            se=1.0,
            estimate_method="eap",
        )
        for items, responses in patterns
    ]

    def full_step(i: int) -> object:
        state, answer = states[i % PATTERNS]
        return step(bank, config, state, answer, now=now)

    agree = sum(
        int(ours_ml(i) == catsim(i)) for i in range(PATTERNS)
    )  # same next item with the same (ML) estimator
    t_ours = _median_time(ours, runs, reps)
    t_ml = _median_time(ours_ml, runs, reps)
    t_step = _median_time(full_step, runs, reps)
    t_final = _median_time(final_score, runs, reps)
    t_catsim = _median_time(catsim, runs, max(reps // 5, 20))
    print(f"\n{model} bank of {N_ITEMS} items, {ANSWERED} answered, median of {runs} runs")
    print(f"  {'engine':<28}{'per step':>12}{'vs catsim':>12}")
    for name, seconds in (
        ("ours: EAP + max info", t_ours),
        ("ours: ML + max info", t_ml),
        ("ours: full step()", t_step),
        ("ours: final score (WLE+EAP)", t_final),
        ("catsim: ML search + max info", t_catsim),
    ):
        print(f"  {name:<28}{seconds * 1e6:>9.0f} us{seconds / t_catsim:>11.2f}x")
    print(f"  same next item as catsim with ML: {agree}/{PATTERNS} patterns")


class _BoundedSearch(NumericalSearchEstimator):
    """catsim's ML search (Dodd's heuristic for constant patterns), clipped to the bounds."""

    def estimate(self, *args: Any, **kwargs: Any) -> float:
        return float(np.clip(super().estimate(*args, **kwargs), -BOUND, BOUND))


@dataclass(frozen=True)
class Population:
    name: str
    draw: Callable[[np.random.Generator, int], npt.NDArray[np.float64]]


POPULATIONS = (
    Population("N(0, 1)", lambda rng, n: rng.normal(0.0, 1.0, n)),
    Population("N(+1, 1.5)", lambda rng, n: rng.normal(1.0, 1.5, n)),
    Population("N(-1, 1.5)", lambda rng, n: rng.normal(-1.0, 1.5, n)),
    Population("U(-3, 3)", lambda rng, n: rng.uniform(-3.0, 3.0, n)),
)


def _decile_bias(
    estimates: npt.NDArray[np.float64], true_theta: npt.NDArray[np.float64]
) -> list[float]:
    """Mean (estimate - true) in each decile of the true ability, lowest first."""
    edges = np.quantile(true_theta, np.linspace(0, 1, 11))
    decile = np.clip(np.searchsorted(edges, true_theta, side="right") - 1, 0, 9)
    return [float(np.mean(estimates[decile == d] - true_theta[decile == d])) for d in range(10)]


def _rmse(estimates: npt.NDArray[np.float64], true_theta: npt.NDArray[np.float64]) -> float:
    return float(np.sqrt(np.mean((estimates - true_theta) ** 2)))


def _precision_benchmark(
    model: str, population: Population, n_examinees: int, seed: int
) -> list[dict[str, Any]]:
    """One (model, population): both engines run 30-item tests on the same bank, examinees
    and answers; scores after 10, 20 and 30 items are compared (a fixed-length test of k
    items is the first k items of the 30-item one: selection does not look at the length)."""
    rng = np.random.default_rng(seed)
    a = rng.lognormal(0, 0.3, BANK_ITEMS)
    b = rng.normal(0, 1, BANK_ITEMS)
    c = rng.uniform(0.1, 0.25, BANK_ITEMS) if model == "3PL" else np.zeros(BANK_ITEMS)
    true_theta = population.draw(rng, n_examinees)
    answer_seed = seed + 1

    started = time.perf_counter()
    reference = Simulator(CatsimBank(np.column_stack([a, b, c])), true_theta, seed=answer_seed)
    reference.simulate(
        FixedPointInitializer(0.0),
        MaxInfoSelector(),
        _BoundedSearch(),
        LengthStopper(max_items=max(LENGTHS)),
    )
    catsim_seconds = time.perf_counter() - started
    catsim_history = np.array(reference.estimations)  # (E, 1 + items): index k = after k

    bank = ItemBank.from_arrays(a, b, c)
    estimator = CatConfig().estimator.model_copy(update={"theta_min": -BOUND, "theta_max": BOUND})
    config = CatConfig(
        estimator=estimator,
        stopping=StoppingRule(se_threshold=None, min_items=1, max_items=max(LENGTHS)),
    )
    uniforms = np.random.default_rng(answer_seed).random((n_examinees, max(LENGTHS)))
    started = time.perf_counter()
    ours = simulate(
        bank,
        true_theta,
        config,
        rng=np.random.default_rng(0),
        uniforms=uniforms,
        final_scores=False,
    )
    ours_seconds = time.perf_counter() - started
    ml = estimator.model_copy(update={"method": EstimationMethod.ML, "ml_bounded": True})
    fixed_prior = estimator.model_copy(update={"prior_sd": 1.0})
    rows = []
    for length in LENGTHS:
        items, responses = ours.items[:, :length], ours.responses[:, :length]
        final = estimate_batch(bank, items, responses, final_config(estimator)).theta
        ours_ml = ml_batch(bank, items, responses, ml).theta
        eap = eap_batch(bank, items, responses, fixed_prior).theta
        catsim_ml = catsim_history[:, length]
        rows.append(
            {
                "model": model,
                "population": population.name,
                "items": length,
                "examinees": n_examinees,
                "rmse": {
                    "ours_final": _rmse(final, true_theta),
                    "ours_ml": _rmse(ours_ml, true_theta),
                    "ours_eap": _rmse(eap, true_theta),
                    "catsim_ml": _rmse(catsim_ml, true_theta),
                },
                "decile_bias": {
                    "ours_final": _decile_bias(final, true_theta),
                    "ours_ml": _decile_bias(ours_ml, true_theta),
                    "ours_eap": _decile_bias(eap, true_theta),
                    "catsim_ml": _decile_bias(catsim_ml, true_theta),
                },
                "seconds": {"ours": ours_seconds, "catsim": catsim_seconds},
            }
        )
    return rows


def _goals(row: dict[str, Any]) -> dict[str, bool]:
    rmse, bias = row["rmse"], row["decile_bias"]
    return {
        "rmse": rmse["ours_final"] <= 1.05 * rmse["catsim_ml"],
        "top": abs(bias["ours_final"][-1]) <= abs(bias["catsim_ml"][-1]) + 0.1,
        "bottom": abs(bias["ours_final"][0]) <= abs(bias["catsim_ml"][0]) + 0.1,
    }


def _print_table(rows: list[dict[str, Any]]) -> None:
    print(
        "\n| model | population | items | RMSE final (WLE) | RMSE ours ML | RMSE catsim ML |"
        " ratio | bias bottom decile final / catsim | bias top decile final / catsim |"
        " EAP N(0, 1) bias bottom / top | goals |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        rmse, bias, goals = row["rmse"], row["decile_bias"], _goals(row)
        missed = [name for name, ok in goals.items() if not ok]
        print(
            f"| {row['model']} | {row['population']} | {row['items']} "
            f"| {rmse['ours_final']:.3f} | {rmse['ours_ml']:.3f} | {rmse['catsim_ml']:.3f} "
            f"| {rmse['ours_final'] / rmse['catsim_ml']:.2f} "
            f"| {bias['ours_final'][0]:+.3f} / {bias['catsim_ml'][0]:+.3f} "
            f"| {bias['ours_final'][-1]:+.3f} / {bias['catsim_ml'][-1]:+.3f} "
            f"| {bias['ours_eap'][0]:+.2f} / {bias['ours_eap'][-1]:+.2f} "
            f"| {'met' if not missed else 'missed: ' + ', '.join(missed)} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--reps", type=int, default=300)
    parser.add_argument("--examinees", type=int, default=2000, help="0: step timings only")
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--models", default="2PL,3PL")
    parser.add_argument("--skip-steps", action="store_true", help="precision table only")
    parser.add_argument("--json", type=Path, help="also write every number (deciles too) here")
    args = parser.parse_args()
    models = args.models.split(",")
    if not args.skip_steps:
        for model in models:
            _step_benchmark(model, args.runs, args.reps)
    rows: list[dict[str, Any]] = []
    if args.examinees <= 0:
        return
    for m, model in enumerate(models):
        for p, population in enumerate(POPULATIONS):
            rows.extend(
                _precision_benchmark(model, population, args.examinees, args.seed + 10 * m + p)
            )
            print(f"  done {model} {population.name}", file=sys.stderr, flush=True)
    _print_table(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
