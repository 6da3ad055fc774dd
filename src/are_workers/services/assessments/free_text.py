"""Free-text answers scored by their similarity to a rubric's exemplar answers.

Why nearest exemplar: a recruiter must be able to see *why* an open answer got its score.
Each rubric level carries a few exemplar answers; the answer is awarded the level of the
exemplar it is most similar to (cosine of sentence embeddings), and the evidence names that
exemplar, its similarity and the best similarity per level. An answer that resembles no
exemplar closely enough (``min_similarity``), or is empty, gets no credit (category 0)
rather than the level of whichever exemplar happens to be least dissimilar.

The embedder is injected (``embed(texts) -> (n, d)`` L2-normalised vectors), so this module
never imports torch; workers pass ``are_workers.ml.embedder.get_embedder().embed``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Self

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, model_validator

from are_workers.errors import InvalidInputError

#: ``embed(texts)``: one L2-normalised row per text, in input order.
Embed = Callable[[Sequence[str]], npt.NDArray[np.floating]]

METHOD = "nearest-exemplar-cosine"


class RubricLevel(BaseModel):
    """One level of a rubric: the category it awards and answers that deserve it."""

    model_config = ConfigDict(frozen=True)

    category: int = Field(ge=0)
    label: str = Field(min_length=1, max_length=100)
    exemplars: tuple[str, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _non_blank(self) -> Self:
        if any(not text.strip() for text in self.exemplars):
            raise ValueError(f"rubric level '{self.label}' has a blank exemplar")
        return self


class Rubric(BaseModel):
    """``content.scoring.rubric`` of an open item (see docs/assessments.md)."""

    model_config = ConfigDict(frozen=True)

    levels: tuple[RubricLevel, ...] = Field(min_length=1)
    min_similarity: float = Field(default=0.3, ge=-1.0, le=1.0)

    @model_validator(mode="after")
    def _distinct(self) -> Self:
        categories = [level.category for level in self.levels]
        if len(set(categories)) != len(categories):
            raise ValueError("rubric levels must award distinct categories")
        labels = [level.label for level in self.levels]
        if len(set(labels)) != len(labels):
            raise ValueError("rubric level labels must be distinct")
        return self


class MatchedExemplar(BaseModel):
    """Which exemplar the answer was closest to (an index into its level's exemplars)."""

    level: str
    index: int


class FreeTextEvidence(BaseModel):
    """Why an open answer got its category; stored with the answer, shown to reviewers."""

    method: str = METHOD
    category: int
    level: str | None
    similarity: float | None
    matched_exemplar: MatchedExemplar | None
    level_similarities: dict[str, float]
    min_similarity: float
    model: str | None = None
    reason: str | None = None


def score_free_text(
    answer: str, rubric: Rubric, embed: Embed, *, model: str | None = None
) -> FreeTextEvidence:
    """The rubric category of ``answer`` with its evidence.

    Ties between levels go to the lower category: an answer equally close to a weak and a
    strong exemplar has not shown the stronger answer.
    """
    text = answer.strip()
    if not text:
        return FreeTextEvidence(
            category=0,
            level=None,
            similarity=None,
            matched_exemplar=None,
            level_similarities={},
            min_similarity=rubric.min_similarity,
            model=model,
            reason="the answer is empty",
        )
    exemplars = [(level, j, ex) for level in rubric.levels for j, ex in enumerate(level.exemplars)]
    vectors = np.asarray(embed([text, *(ex for _, _, ex in exemplars)]), dtype=np.float64)
    if vectors.ndim != 2 or vectors.shape[0] != len(exemplars) + 1:
        raise InvalidInputError(
            "The text embedder returned an unexpected shape; the answer was not scored.",
            code="embedder_output",
        )
    # Normalised again so a backend that skipped it cannot inflate similarities past 1.
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors = vectors / np.where(norms > 0, norms, 1.0)
    similarities = vectors[1:] @ vectors[0]

    best_per_level: dict[str, tuple[float, int]] = {}
    for (level, j, _), similarity in zip(exemplars, similarities, strict=True):
        current = best_per_level.get(level.label)
        if current is None or similarity > current[0]:
            best_per_level[level.label] = (float(similarity), j)
    ordered = sorted(rubric.levels, key=lambda level: level.category)
    winner = ordered[0]
    for level in ordered[1:]:
        if best_per_level[level.label][0] > best_per_level[winner.label][0]:
            winner = level
    similarity, index = best_per_level[winner.label]
    level_similarities = {label: round(s, 4) for label, (s, _) in best_per_level.items()}
    if similarity < rubric.min_similarity:
        return FreeTextEvidence(
            category=0,
            level=None,
            similarity=round(similarity, 4),
            matched_exemplar=MatchedExemplar(level=winner.label, index=index),
            level_similarities=level_similarities,
            min_similarity=rubric.min_similarity,
            model=model,
            reason=(
                f"no exemplar is similar enough (best {similarity:.2f}, "
                f"minimum {rubric.min_similarity:.2f})"
            ),
        )
    return FreeTextEvidence(
        category=winner.category,
        level=winner.label,
        similarity=round(similarity, 4),
        matched_exemplar=MatchedExemplar(level=winner.label, index=index),
        level_similarities=level_similarities,
        min_similarity=rubric.min_similarity,
        model=model,
    )
