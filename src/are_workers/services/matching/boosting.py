"""Gradient-boosted trees over the judge's own pair features, on top of its logistic scorer.

The logistic pair scorer is one weight per feature (and per product of two signals): it
cannot say "a similarity of 0.83 means much more than 0.80 in a work-history line of a
three-year role". Shallow trees can. They are boosted *from* the logistic scorer's logit
(its logit is each row's starting margin), so each tree is a small correction that the
labelled pairs support, and the logistic model stays the readable part of the score.

Deterministic (no sampling): the same rows give the same trees. Rows are binned by
quantile edges of each feature; a missing feature (NaN: a comparison a posting of one
requirement cannot make) goes right at every split, in training and in scoring alike.
The trees are complete binary trees of a fixed depth, stored as flat arrays, so scoring is
``depth`` vectorised comparisons per tree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

ROUNDS = 100
DEPTH = 4
RATE = 0.1
BINS = 48
LEAF_L2 = 1.0
MIN_HESSIAN = 20.0


@dataclass(frozen=True)
class Trees:
    """``rounds`` complete trees of ``depth`` levels over the feature ``columns``."""

    columns: tuple[str, ...]
    feature: np.ndarray  # (trees, 2**depth - 1): the split's index into ``columns``
    threshold: np.ndarray  # (trees, 2**depth - 1): go left when value <= threshold
    leaf: np.ndarray  # (trees, 2**depth): the logit added at each leaf

    @property
    def depth(self) -> int:
        return int(self.leaf.shape[1]).bit_length() - 1

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The trees' summed logit for each row of ``x`` (its columns are :attr:`columns`)."""
        n = x.shape[0]
        total = np.zeros(n)
        if n == 0 or not len(self.leaf):
            return total
        rows = np.arange(n)
        inner = self.feature.shape[1]
        for features, thresholds, leaves in zip(
            self.feature, self.threshold, self.leaf, strict=True
        ):
            node = np.zeros(n, dtype=np.int64)
            for _ in range(self.depth):
                values = x[rows, features[node]]
                node = 2 * node + np.where(values <= thresholds[node], 1, 2)
            total += leaves[node - inner]
        return total

    def to_json(self) -> dict[str, Any]:
        return {
            "columns": list(self.columns),
            "feature": self.feature.astype(int).tolist(),
            "threshold": [[_short(t) for t in row] for row in self.threshold],
            "leaf": [[round(float(v), 5) for v in row] for row in self.leaf],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Trees:
        return cls(
            columns=tuple(data["columns"]),
            feature=np.array(data["feature"], dtype=np.int64).reshape(len(data["leaf"]), -1),
            threshold=np.array(
                [[np.inf if t is None else t for t in row] for row in data["threshold"]],
                dtype=np.float64,
            ).reshape(len(data["leaf"]), -1),
            leaf=np.array(data["leaf"], dtype=np.float64),
        )


def _short(value: float) -> float | None:
    """A threshold as JSON (6 significant digits; training splits on these same values, so
    scoring splits where training did); ``None`` for the no-split threshold (infinity)."""
    if not np.isfinite(value):
        return None
    return float(np.format_float_positional(value, precision=6, unique=False, fractional=False))


def _edges(values: np.ndarray, bins: int) -> np.ndarray:
    known = values[~np.isnan(values)]
    if not len(known):
        return np.zeros(0)
    cuts = np.quantile(known, np.linspace(0, 1, bins + 1)[1:-1])
    # Exact thresholds as written to JSON, so scoring splits where training did.
    edges = np.unique([short for cut in cuts if (short := _short(cut)) is not None])
    return edges[edges < known.max()]  # a split must leave something on the right


def fit(
    x: np.ndarray,
    y: np.ndarray,
    margin: np.ndarray,
    columns: tuple[str, ...],
    *,
    weights: np.ndarray | None = None,
    rounds: int = ROUNDS,
    depth: int = DEPTH,
    rate: float = RATE,
    bins: int = BINS,
    leaf_l2: float = LEAF_L2,
    min_hessian: float = MIN_HESSIAN,
) -> Trees:
    """Boost ``rounds`` trees on the logistic loss from the starting logits ``margin``."""
    n, f = x.shape
    sample = np.ones(n) if weights is None else weights
    edges = [_edges(x[:, j], bins) for j in range(f)]
    width = bins + 1  # bins 0..len(edges) for values, ``bins`` for NaN
    codes = np.empty((n, f), dtype=np.int64)  # each row's bin of each feature
    valid = np.zeros((f, width), dtype=bool)  # split after bin k (k < len(edges))
    for j in range(f):
        column = x[:, j]
        codes[:, j] = np.searchsorted(edges[j], column, side="left")
        codes[np.isnan(column), j] = bins
        valid[j, : len(edges[j])] = True
    offsets = codes + np.arange(f) * width  # each feature's bins in a range of their own
    inner = 2**depth - 1
    feature = np.zeros((rounds, inner), dtype=np.int64)
    threshold = np.full((rounds, inner), np.inf)
    leaf = np.zeros((rounds, 2**depth))
    score = margin.astype(np.float64).copy()
    for t in range(rounds):
        p = 1.0 / (1.0 + np.exp(-score))
        g = sample * (p - y)
        h = sample * p * (1 - p)
        node = np.zeros(n, dtype=np.int64)
        for level in range(depth):
            first = 2**level - 1
            count = 2**level
            flat = (offsets + (node - first)[:, None] * (f * width)).ravel()
            size = count * f * width
            gh = np.bincount(flat, weights=np.repeat(g, f), minlength=size)
            hh = np.bincount(flat, weights=np.repeat(h, f), minlength=size)
            gh = gh.reshape(count, f, width)
            hh = hh.reshape(count, f, width)
            # The NaN bin always goes right: exclude it from the running sums.
            gl = np.cumsum(gh[:, :, :bins], axis=2)
            hl = np.cumsum(hh[:, :, :bins], axis=2)
            gt = gh.sum(axis=2, keepdims=True)
            ht = hh.sum(axis=2, keepdims=True)
            gr, hr = gt - gl, ht - hl
            gain = gl**2 / (hl + leaf_l2) + gr**2 / (hr + leaf_l2) - gt**2 / (ht + leaf_l2)
            ok = valid[None, :, :bins] & (hl >= min_hessian) & (hr >= min_hessian)
            gain = np.where(ok, gain, -np.inf)
            go_left = np.zeros(n, dtype=bool)
            for k in range(count):
                index = first + k
                best = int(np.argmax(gain[k]))
                j, b = divmod(best, bins)
                members = node == index
                if np.isfinite(gain[k].flat[best]) and gain[k].flat[best] > 1e-9:
                    feature[t, index] = j
                    threshold[t, index] = edges[j][b]
                    go_left[members] = codes[members, j] <= b
                else:  # no split: every measured value goes left, a missing one right
                    feature[t, index] = 0
                    go_left[members] = codes[members, 0] < bins
            node = 2 * node + np.where(go_left, 1, 2)
        slot = node - inner
        gs = np.bincount(slot, weights=g, minlength=2**depth)
        hs = np.bincount(slot, weights=h, minlength=2**depth)
        leaf[t] = -rate * gs / (hs + leaf_l2)
        score += leaf[t][slot]
    return Trees(columns, feature, threshold, leaf)
