"""Teacher labels for the evidence judge (``are-workers matching teach``).

An LLM (``are_workers.ml.llm_judge``, the ``llm`` extra) judges (requirement, passage) pairs
drawn from the development postings of the labelled set; its P(YES) is written as committed
text (JSON lines), so the fast judge can later learn from it without the LLM installed. Only
the development postings of ``split.json`` are read: the test postings are never touched
here. Far too slow to judge every pair on CPU at match time, it is used offline only.

The pairs are the top ``per_requirement`` candidate passages (by embedding similarity, the
retrieval order, so neither the teacher nor the pair scorer chose them) of each labelled
(resume, requirement), visited in a fixed-seed order; the labels file is resumable (a pair
already in it is not judged again).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from are_workers.services.matching import judge, judge_training
from are_workers.services.skills import get_taxonomy

SEED = 20261206
LABELS_PATH = Path("teacher") / "dev-labels.jsonl"


@dataclass(frozen=True)
class TeacherPair:
    posting: str
    resume: str
    requirement: str
    requirement_text: str
    passage: str
    section: str
    fold: str  # "train" or "calibrate" (split.json's dev folds, by family)
    supported: bool  # the human label: the passage overlaps a labelled supporting line
    features: np.ndarray
    out_of_fold_logit: float  # the pair scorer fitted on the other development fold only

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.posting, self.resume, self.requirement, self.passage)


def development_postings(root: Path, only: Sequence[str] = ()) -> set[str]:
    """The development postings of ``root/split.json`` (or ``only``, refused unless every
    one of them is a development posting)."""
    split = json.loads((root / "split.json").read_text())
    dev = set(split["dev"])
    if dev & set(split["test"]):
        raise ValueError("split.json puts a posting in both dev and test")
    if only:
        if not set(only) <= dev:
            raise ValueError(f"not development postings: {sorted(set(only) - dev)}")
        dev = set(only)
    return dev


def dev_pairs(
    root: Path,
    *,
    encoder: Any,
    encode_aux: Any = None,
    per_requirement: int = 2,
    only: Sequence[str] = (),
    today: date | None = None,
) -> list[TeacherPair]:
    """Every candidate pair of the development postings (or of ``only``, which must be
    development postings), in a fixed-seed order."""
    split = json.loads((root / "split.json").read_text())
    dev = development_postings(root, only)
    fold_of_family = {f: name for name, families in split["dev_folds"].items() for f in families}
    postings = judge_training.load_postings(root, dev)
    texts = judge_training.resume_texts(root, [p.resume for q in postings for p in q.pairs])
    items = judge_training.prepare(
        postings, texts, encoder, get_taxonomy(), today or date(2026, 12, 6), encode_aux
    )
    fold_of = {id(item): fold_of_family[item.posting.family] for item in items}
    other_fold: dict[str, judge.JudgeModel | None] = {}
    for fold in ("train", "calibrate"):
        others = [item for item in items if fold_of[id(item)] != fold and item.candidates]
        if not others:  # only one fold's postings were asked for
            other_fold[fold] = None
            continue
        other_fold[fold] = judge_training.fit_scorer(others, f"oof-{fold}")
    pairs: list[TeacherPair] = []
    for item in items:
        labels = judge_training._labels(item)
        # candidate_pairs lists the most similar passages first (then skill matches)
        for (index, features), label in list(zip(item.candidates, labels, strict=True))[
            :per_requirement
        ]:
            passage = item.resume.passages[index]
            pairs.append(
                TeacherPair(
                    item.posting.id,
                    item.pair.resume,
                    item.pair.requirement.key,
                    item.pair.requirement.text,
                    passage.text,
                    passage.section,
                    fold_of[id(item)],
                    bool(label),
                    features,
                    _logit(other_fold[fold_of[id(item)]], features),
                )
            )
    order = np.random.default_rng(SEED).permutation(len(pairs))
    return [pairs[i] for i in order]


def _logit(model: judge.JudgeModel | None, features: np.ndarray) -> float:
    return math.nan if model is None else float(model.pair_logit(features[None, :])[0])


def read_labels(path: Path) -> dict[tuple[str, str, str, str], dict[str, Any]]:
    if not path.is_file():
        return {}
    out = {}
    for line in path.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            out[(row["posting"], row["resume"], row["requirement"], row["passage"])] = row
    return out


def label(
    pairs: Sequence[TeacherPair],
    path: Path,
    p_yes: Callable[[str, str, str], float],
    *,
    model: str,
    limit: int,
) -> Iterator[tuple[TeacherPair, float, float]]:
    """Judge the first ``limit`` pairs not yet in ``path``; append each line as soon as it is
    judged (a run cut short keeps what it did). Yields (pair, p_yes, seconds)."""
    done = read_labels(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    todo = [pair for pair in pairs[:limit] if pair.key not in done]
    with path.open("a") as out:
        for pair in todo:
            started = time.perf_counter()
            probability = p_yes(pair.requirement_text, pair.passage, pair.section)
            took = time.perf_counter() - started
            row = {
                "posting": pair.posting,
                "resume": pair.resume,
                "requirement": pair.requirement,
                "passage": pair.passage,
                "p_yes": round(probability, 5),
                "model": model,
            }
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            out.flush()
            yield pair, probability, took


def auc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """Area under the ROC curve (Mann-Whitney, ties count half); None without both classes."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=bool)
    positives, negatives = int(y.sum()), int((~y).sum())
    if not positives or not negatives:
        return None
    order = np.argsort(s, kind="stable")
    ranks = np.empty(len(s))
    sorted_scores = s[order]
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[y].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def compare(pairs: Sequence[TeacherPair], path: Path) -> dict[str, Any]:
    """The teacher's AUC against the human labels on the labelled pairs, beside the pair
    scorer's on the same pairs: the shipped one (fitted on all development postings, so this
    is in-sample for it) and one fitted on the other development fold only (out of fold)."""
    done = read_labels(path)
    judged = [(pair, done[pair.key]["p_yes"]) for pair in pairs if pair.key in done]
    if not judged:
        return {"pairs": 0}
    shipped = judge.default_model()
    labels = [pair.supported for pair, _ in judged]
    features = np.stack([pair.features for pair, _ in judged])
    out_of_fold = [pair.out_of_fold_logit for pair, _ in judged]
    has_out_of_fold = not any(math.isnan(v) for v in out_of_fold)
    teacher = auc([p for _, p in judged], labels)
    return {
        "pairs": len(judged),
        "positives": int(sum(labels)),
        "teacher_auc": _round(teacher),
        "pair_scorer_auc_shipped": _round(auc(list(shipped.pair_logit(features)), labels)),
        "pair_scorer_auc_out_of_fold": (
            _round(auc(out_of_fold, labels)) if has_out_of_fold else None
        ),
        "teacher_accuracy_at_0_5": round(
            float(np.mean([(p >= 0.5) == y for (_, p), y in zip(judged, labels, strict=True)])), 4
        ),
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
