"""Calibration benchmark: 200 items answered by 5,000 simulated examinees.

Run: ``python bench/calibration.py [--runs 5]``. Not part of CI.

Scenarios (the first is the headline figure):

- ``2PL complete``: every examinee answers every item (1,000,000 responses);
- ``2PL sparse 25%``: each examinee answers a random quarter of the items (matrix sampling);
- ``2PL CAT data``: responses produced by our own CAT (20 items each, randomesque 10), the
  realistic case for re-calibration, with ``min_responses=100`` and a log-slope prior;
- ``3PL complete``: with the default Beta(5, 17) prior on c.

Time is the median over ``--runs`` runs on the same data; recovery is the RMSE of the
estimates against the generating parameters (calibrated items only).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from are_workers.services.assessments import (
    CatConfig,
    ItemBank,
    SelectionConfig,
    StoppingRule,
    simulate,
)
from are_workers.services.assessments.calibration import (
    CalibrationConfig,
    CalibrationModel,
    CalibrationResult,
    calibrate,
)

N_ITEMS = 200
N_EXAMINEES = 5000


def _data(model: str, design: str, seed: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    a = rng.lognormal(0, 0.3, N_ITEMS)
    b = rng.normal(0, 1, N_ITEMS)
    c = rng.uniform(0.1, 0.3, N_ITEMS) if model == "3PL" else np.zeros(N_ITEMS)
    theta = rng.normal(size=N_EXAMINEES)
    if design == "cat":
        bank = ItemBank.from_arrays(a, b, c)
        config = CatConfig(
            selection=SelectionConfig(randomesque_n=10),
            stopping=StoppingRule(se_threshold=None, min_items=1, max_items=20),
        )
        sim = simulate(bank, theta, config, rng=rng)
        data = np.full((N_EXAMINEES, N_ITEMS), np.nan)
        data[np.repeat(np.arange(N_EXAMINEES), 20), sim.items.ravel()] = sim.responses.ravel()
    else:
        p = c + (1 - c) / (1 + np.exp(-a * (theta[:, None] - b)))
        data = (rng.random(p.shape) < p).astype(np.float64)
        if design == "sparse":
            data[rng.random(data.shape) >= 0.25] = np.nan
    return data, {"a": a, "b": b, "c": c}


def _rmse(result: CalibrationResult, truth: dict[str, np.ndarray], name: str) -> float:
    index = {f"item-{j}": j for j in range(N_ITEMS)}
    rows = [index[item.item_id] for item in result.items]
    values = np.array([getattr(item, name) for item in result.items])
    return float(np.sqrt(np.mean((values - truth[name][rows]) ** 2)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    scenarios = [
        ("2PL complete", "2PL", "complete", CalibrationConfig()),
        ("2PL sparse 25%", "2PL", "sparse", CalibrationConfig()),
        ("2PL CAT data", "2PL", "cat", CalibrationConfig(min_responses=100, slope_prior_sd=0.5)),
        ("3PL complete", "3PL", "complete", CalibrationConfig(model=CalibrationModel.THREE_PL)),
    ]
    print(f"{N_ITEMS} items x {N_EXAMINEES} examinees, median time of {args.runs} runs")
    header = f"{'scenario':<16}{'responses':>11}{'time':>9}{'EM iters':>10}{'conv':>6}"
    print(f"{header}{'items':>7}{'RMSE a':>9}{'RMSE b':>9}{'RMSE c':>9}")
    for label, model, design, config in scenarios:
        data, truth = _data(model, design, seed=42)
        times = []
        result = None
        for _ in range(args.runs):
            start = time.perf_counter()
            result = calibrate(data, config=config)
            times.append(time.perf_counter() - start)
        assert result is not None
        rmse_c = f"{_rmse(result, truth, 'c'):>9.3f}" if model == "3PL" else f"{'-':>9}"
        print(
            f"{label:<16}{int((~np.isnan(data)).sum()):>11,}{statistics.median(times):>8.2f}s"
            f"{result.iterations:>10}{'yes' if result.converged else 'no':>6}"
            f"{len(result.items):>7}{_rmse(result, truth, 'a'):>9.3f}"
            f"{_rmse(result, truth, 'b'):>9.3f}{rmse_c}"
        )


if __name__ == "__main__":
    main()
