"""Turning a raw answer into the category the IRT model scores.

Why here and not in the ATS: the answer key must never reach the candidate's browser, and
open answers need the embedder, so the worker scores. An item's key lives in its
``content.scoring`` (the rest of ``content`` is what the candidate sees; the ATS strips
``scoring`` before showing an item). Exactly one of three keys:

* ``{"key": "b"}`` or ``{"key": ["b", "d"]}``: the correct option(s) of a right/wrong item;
* ``{"categories": {"a": 0, "b": 1, "c": 2}}``: a category per option (partial credit, GRM);
* ``{"rubric": {...}}``: an open item scored against exemplar answers (:mod:`.free_text`).

Answers (``assessment_responses.answer``) are ``{"option": "b"}`` or ``{"text": "..."}``.
An item without ``scoring`` takes the ``category`` the ATS wrote on the response (e.g. a
Likert item it scores itself). Errors name the question by its code, for people.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from are_workers.errors import InvalidInputError
from are_workers.services.assessments.free_text import Embed, Rubric, score_free_text

#: Gives the embedder (and its model key) only when an open answer needs it: loading the
#: model costs seconds, and most items are multiple choice.
EmbedderProvider = Callable[[], tuple[Embed, str | None]]


class ScoringKey(BaseModel):
    """``assessment_items.content.scoring``: how an answer becomes a category."""

    model_config = ConfigDict(frozen=True)

    key: str | tuple[str, ...] | None = None
    categories: dict[str, int] | None = None
    rubric: Rubric | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        given = [name for name in ("key", "categories", "rubric") if getattr(self, name)]
        if len(given) != 1:
            raise ValueError("scoring needs exactly one of 'key', 'categories' or 'rubric'")
        if self.categories and any(c < 0 for c in self.categories.values()):
            raise ValueError("categories must be >= 0")
        return self

    @property
    def correct_options(self) -> frozenset[str]:
        if self.key is None:
            return frozenset()
        return frozenset((self.key,) if isinstance(self.key, str) else self.key)


@dataclass(frozen=True, slots=True)
class ScoredAnswer:
    """The category to score, and for open answers the evidence behind it."""

    category: int
    evidence: dict[str, Any] | None = None


def scoring_key(code: str, content: Mapping[str, Any] | None) -> ScoringKey | None:
    """The item's key, or ``None`` when the ATS scores this item itself."""
    raw = (content or {}).get("scoring")
    if raw is None:
        return None
    try:
        return ScoringKey.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(err["msg"] for err in exc.errors())
        raise InvalidInputError(
            f"Question '{code}' has an invalid scoring key: {problems}.", code="invalid_item"
        ) from None


def score_answer(
    code: str,
    content: Mapping[str, Any] | None,
    answer: Mapping[str, Any] | None,
    given_category: int | None,
    embedder: EmbedderProvider,
) -> ScoredAnswer:
    """Score one answer to question ``code``; the engine then checks the category's range."""
    key = scoring_key(code, content)
    if key is None:
        if given_category is None:
            raise InvalidInputError(
                f"Question '{code}' has no scoring key and the answer carries no score.",
                code="unscorable_answer",
            )
        return ScoredAnswer(category=given_category)
    answer = answer or {}
    if key.rubric is not None:
        text = answer.get("text")
        if not isinstance(text, str):
            raise InvalidInputError(
                f"Question '{code}' expects a written answer ({{\"text\": ...}}).",
                code="invalid_answer",
            )
        embed, model = embedder()
        evidence = score_free_text(text, key.rubric, embed, model=model)
        return ScoredAnswer(category=evidence.category, evidence=evidence.model_dump(mode="json"))
    option = answer.get("option")
    if not isinstance(option, str):
        raise InvalidInputError(
            f"Question '{code}' expects a chosen option ({{\"option\": ...}}).",
            code="invalid_answer",
        )
    options = key.categories.keys() if key.categories is not None else _option_ids(content)
    if options and option not in options:
        known = ", ".join(sorted(options))
        raise InvalidInputError(
            f"Option '{option}' is not an option of question '{code}' ({known}).",
            code="invalid_answer",
        )
    if key.categories is not None:
        return ScoredAnswer(category=key.categories[option])
    return ScoredAnswer(category=int(option in key.correct_options))


def _option_ids(content: Mapping[str, Any] | None) -> set[str]:
    """The ids of ``content.options`` (``[{"id": "a", ...}, ...]``), when the item lists them."""
    options = (content or {}).get("options")
    if not isinstance(options, list):
        return set()
    return {str(o["id"]) for o in options if isinstance(o, dict) and "id" in o}
