"""For each job requirement, the best supporting evidence in a portfolio, cited, with a score.

Two kinds of evidence, scored on the same 0..1 scale:

- **Passages** (document paragraphs, README sections, source-file docstrings, the
  candidate's own item descriptions): semantic similarity between requirement and passage
  (an injected sentence embedder), blended with skill matching against the taxonomy, so
  "psql" in a case study counts for "PostgreSQL" even when the sentence is about something
  else. Cosines are rescaled between two anchors because MiniLM's raw cosines sit in a
  narrow band (unrelated ~0.1, on-topic ~0.6) that reads badly as a score.
- **Code signals** (:class:`~.code_signals.SkillSignal`): measured facts of an archive.
  "Writes automated tests" is supported by test files, "CI/CD" by a workflow file, "Python"
  by lines of Python. They are matched on canonical skill names; requirement texts are also
  read for the capabilities a repository can show (tests, CI, documentation, maintainable
  code) even when the job lists no skill for them.

The best candidate of either kind is the cited evidence. When the other kind also supports
the requirement, the score rises by half the remaining headroom times that support
(corroboration by independent evidence), never past 1. Text the candidate typed about an
item (title, description) counts at a discount: it is a claim, not a work sample.

Why the embedder is injected (``embed``: texts -> L2-normalised rows): the worker passes its
process-wide MiniLM; tests pass a deterministic stand-in; and this module never imports
torch. ``embedding_model`` records which model produced the similarities.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np

from are_workers.services.portfolios.code_signals import CodeSignals
from are_workers.services.skills import SkillTaxonomy, get_taxonomy

__all__ = [
    "SCORING_VERSION",
    "SUPPORT_THRESHOLD",
    "EmbedFn",
    "Evidence",
    "EvidenceReport",
    "EvidenceSource",
    "Finding",
    "FindingKind",
    "PortfolioPassage",
    "Requirement",
    "select_evidence",
    "wanted_skills",
]

SCORING_VERSION = "portfolio-evidence/1"
"""Bump when weights, anchors or rules change: stored evaluations then differ by version."""

SUPPORT_THRESHOLD = 0.5
"""A requirement scoring at least this is a strength; below it, a gap."""

EmbedFn = Callable[[list[str]], np.ndarray]
"""Texts in, one L2-normalised row per text out (e.g. ``Embedder.embed``)."""

# Cosine anchors for all-MiniLM-L6-v2 between a short requirement and a paragraph: at or
# below LOW unrelated, at HIGH a close match (measured on the sample portfolios).
_COSINE_LOW = 0.12
_COSINE_HIGH = 0.50
_SEMANTIC_SHARE = 0.65
_MIN_REPORTED = 0.05
_CORROBORATION_FLOOR = 0.3
"""Weaker "support" from the other kind of evidence is noise (every passage has some
similarity to every requirement) and must not lift a gap towards a strength."""


class EvidenceSource(StrEnum):
    DOCUMENT = "document"
    """A passage of an uploaded document (PDF, DOCX, Markdown...)."""
    PROJECT_DOC = "project_doc"
    """A passage of a README or other documentation inside a code archive."""
    CODE = "code"
    """The leading docstring or comment of a source file."""
    CODE_SIGNAL = "code_signal"
    """A measured fact of a code archive (tests, CI, lines of a language...)."""
    METADATA = "metadata"
    """Title or description the candidate typed for an item (a claim, not a sample)."""


_SOURCE_WEIGHT: dict[EvidenceSource, float] = {
    EvidenceSource.DOCUMENT: 1.0,
    EvidenceSource.PROJECT_DOC: 1.0,
    EvidenceSource.CODE: 0.9,
    EvidenceSource.CODE_SIGNAL: 1.0,
    EvidenceSource.METADATA: 0.7,
}


class FindingKind(StrEnum):
    """Same values as the database's ``finding_kind``."""

    STRENGTH = "strength"
    GAP = "gap"
    CONCERN = "concern"


@dataclass(frozen=True, slots=True)
class Requirement:
    """A job requirement as the evaluation needs it (mirrors ``JobRequirement``).

    ``skills`` are skill names linked to the requirement (any spelling the taxonomy knows);
    skills named in ``text`` are found as well.
    """

    id: str
    text: str
    kind: str = "skill"
    skills: tuple[str, ...] = ()
    must_have: bool = False
    weight: float = 1.0


@dataclass(frozen=True, slots=True)
class PortfolioPassage:
    """A quotable piece of a portfolio item.

    ``text`` is verbatim; ``char_start:char_end`` index the item's extracted text (a
    document) or the file's decoded text (a file inside an archive, named by ``path``).
    ``embed_text`` is what gets embedded when it differs (e.g. a comment without its
    ``//`` markers, prefixed with the file path).
    """

    item_id: str
    source: EvidenceSource
    text: str
    path: str | None = None
    char_start: int | None = None
    char_end: int | None = None
    line_start: int | None = None
    line_end: int | None = None
    heading: str | None = None
    embed_text: str | None = None

    def text_for_embedding(self) -> str:
        if self.embed_text:
            return self.embed_text
        return f"{self.heading}: {self.text}" if self.heading else self.text


@dataclass(frozen=True, slots=True)
class Evidence:
    """One piece of evidence for one requirement, with its citation."""

    item_id: str
    source: EvidenceSource
    score: float
    path: str | None = None
    passage: str | None = None
    char_start: int | None = None
    char_end: int | None = None
    line_start: int | None = None
    line_end: int | None = None
    heading: str | None = None
    semantic: float | None = None
    matched_skills: tuple[str, ...] = ()
    detail: str | None = None

    def locator(self) -> dict[str, Any]:
        """The ``evidence_locator`` JSON: where in the item the evidence is."""
        locator: dict[str, Any] = {"source": self.source.value}
        if self.path:
            locator["path"] = self.path
        if self.line_start is not None and self.line_end is not None:
            locator["lines"] = [self.line_start, self.line_end]
        if self.heading:
            locator["heading"] = self.heading
        return locator


@dataclass(frozen=True, slots=True)
class Finding:
    """What the portfolio shows for one requirement, or a concern about one item.

    ``evidence`` is the best supporting evidence (also cited for a gap when something came
    close); ``supporting`` holds up to three more from other files or items.
    """

    kind: FindingKind
    summary: str
    requirement_id: str | None = None
    item_id: str | None = None
    score: float | None = None
    evidence: Evidence | None = None
    supporting: tuple[Evidence, ...] = ()
    wanted_skills: tuple[str, ...] = ()
    matched_skills: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class EvidenceReport:
    """One finding per requirement (in requirement order) and the weighted overall score.

    ``overall_score`` is 0..100: the requirement scores averaged with their ``weight``,
    must-haves counting double.
    """

    findings: tuple[Finding, ...]
    overall_score: float | None
    embedding_model: str
    scoring_version: str = SCORING_VERSION
    must_haves: int = 0
    must_haves_supported: int = 0
    model_versions: dict[str, str] = field(default_factory=dict)


# --- wanted skills ----------------------------------------------------------------------------

_CAPABILITIES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\btest(s|ing|ed|able)?\b|\btest[- ]driven\b|\bTDD\b", re.I), "Unit Testing"),
    (
        re.compile(
            r"\bCI\b|\bCD\b|continuous (integration|delivery|deployment)|build pipelines?", re.I
        ),
        "CI/CD",
    ),
    (
        re.compile(r"\bdocument(s|ed|ing|ation)?\b|\bREADMEs?\b|technical writing", re.I),
        "Technical Writing",
    ),
    (
        re.compile(
            r"\b(clean|maintainable|readable|quality) code\b|\bcode quality\b|\bmaintainab", re.I
        ),
        "Maintainable Code",
    ),
)
"""What a repository can show that a job may ask for in words rather than skill names."""


def wanted_skills(requirement: Requirement, taxonomy: SkillTaxonomy) -> tuple[str, ...]:
    """Canonical skills a requirement asks for: linked, named in its text, or implied."""
    names = [taxonomy.normalise(skill) or skill for skill in requirement.skills]
    matches = taxonomy.find(requirement.text)
    names.extend(match.name for match in matches)
    # Capabilities are read from what no skill mention covers: "A/B testing" is a skill,
    # not a request for automated tests.
    rest = requirement.text
    for match in matches:
        rest = rest[: match.start] + " " * (match.end - match.start) + rest[match.end :]
    names.extend(name for pattern, name in _CAPABILITIES if pattern.search(rest))
    return tuple(dict.fromkeys(names))


# --- embedding ---------------------------------------------------------------------------------


def _embed_cached(
    texts: list[str],
    embed: EmbedFn,
    embedding_model: str,
    cache: MutableMapping[str, np.ndarray] | None,
) -> np.ndarray:
    """Vectors for ``texts`` in order; only texts missing from ``cache`` are embedded.

    Keys include the model, so one cache can never hand out another model's vectors.
    """
    cache = {} if cache is None else cache
    keys = [f"{embedding_model}\x00{text}" for text in texts]
    missing = list(dict.fromkeys(key for key in keys if key not in cache))
    if missing:
        fresh = np.asarray(embed([key.split("\x00", 1)[1] for key in missing]), dtype=np.float32)
        if fresh.ndim != 2 or fresh.shape[0] != len(missing):
            raise ValueError(f"embed returned {fresh.shape[0]} vectors for {len(missing)} texts")
        for key, vector in zip(missing, fresh, strict=True):
            cache[key] = vector
    if not keys:
        return np.zeros((0, 0), dtype=np.float32)
    return np.stack([cache[key] for key in keys])


# --- scoring ------------------------------------------------------------------------------------


def _semantic_score(cosine: float) -> float:
    return min(1.0, max(0.0, (cosine - _COSINE_LOW) / (_COSINE_HIGH - _COSINE_LOW)))


def _keyword_score(wanted: Sequence[str], found: set[str]) -> tuple[float, tuple[str, ...]]:
    """Half for mentioning any wanted skill, the rest by the share mentioned.

    Why not only the share: "Python (Django, FastAPI or Flask)" is met by Python and one
    framework; a passage on Django alone is good evidence, not a 25% one.
    """
    matched = tuple(skill for skill in wanted if skill in found)
    if not wanted or not matched:
        return 0.0, ()
    return 0.5 + 0.5 * len(matched) / len(wanted), matched


def _passage_evidence(
    passage: PortfolioPassage,
    cosine: float,
    wanted: Sequence[str],
    found: set[str],
) -> Evidence:
    semantic = _semantic_score(cosine)
    keyword, matched = _keyword_score(wanted, found)
    blended = _SEMANTIC_SHARE * semantic + (1 - _SEMANTIC_SHARE) * keyword if wanted else semantic
    return Evidence(
        item_id=passage.item_id,
        source=passage.source,
        score=round(_SOURCE_WEIGHT[passage.source] * blended, 4),
        path=passage.path,
        passage=passage.text,
        char_start=passage.char_start,
        char_end=passage.char_end,
        line_start=passage.line_start,
        line_end=passage.line_end,
        heading=passage.heading,
        semantic=round(cosine, 4),
        matched_skills=matched,
    )


def _signal_evidence(
    item_id: str, signals: CodeSignals, wanted: Sequence[str], taxonomy: SkillTaxonomy
) -> Evidence | None:
    """The archive's strongest measured support for any wanted skill (or a kind of it)."""
    matches = list(signals.strongest(wanted, taxonomy).values())
    if not matches:
        return None
    best = max(matches, key=lambda signal: signal.strength)
    return Evidence(
        item_id=item_id,
        source=EvidenceSource.CODE_SIGNAL,
        score=round(best.strength, 4),
        path=best.path,
        matched_skills=tuple(dict.fromkeys(signal.skill for signal in matches)),
        detail="; ".join(dict.fromkeys(signal.detail for signal in matches)),
    )


def _order_key(evidence: Evidence) -> tuple[float, str, str, int]:
    return (-evidence.score, evidence.item_id, evidence.path or "", evidence.char_start or 0)


def _distinct(evidence: Sequence[Evidence], exclude: Evidence, limit: int) -> tuple[Evidence, ...]:
    """The next best evidence from other places (one per item and file)."""
    seen = {(exclude.item_id, exclude.path)}
    chosen: list[Evidence] = []
    for candidate in sorted(evidence, key=_order_key):
        key = (candidate.item_id, candidate.path)
        if key in seen or candidate.score < _CORROBORATION_FLOOR:
            continue
        seen.add(key)
        chosen.append(candidate)
        if len(chosen) == limit:
            break
    return tuple(chosen)


def _is_textual(evidence: Evidence) -> bool:
    return evidence.source is not EvidenceSource.CODE_SIGNAL


def _combine(best: Evidence, candidates: Sequence[Evidence]) -> float:
    """The best score, raised by corroboration from the other kind of evidence."""
    other = [
        c.score
        for c in candidates
        if _is_textual(c) != _is_textual(best) and c.score >= _CORROBORATION_FLOOR
    ]
    corroboration = max(other, default=0.0)
    return round(min(1.0, best.score + 0.5 * (1.0 - best.score) * corroboration), 4)


def _where(evidence: Evidence, titles: Mapping[str, str]) -> str:
    item = titles.get(evidence.item_id, f"item {evidence.item_id}")
    return f"{item} ({evidence.path})" if evidence.path and evidence.path != item else item


def _quote(text: str, limit: int = 160) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3].rstrip() + "..."


def _summary(
    requirement: Requirement,
    kind: FindingKind,
    best: Evidence | None,
    titles: Mapping[str, str],
) -> str:
    if best is None or best.score < _MIN_REPORTED:
        return f"No evidence in the portfolio for: {requirement.text}"
    if best.source is EvidenceSource.CODE_SIGNAL:
        what = best.detail or ", ".join(best.matched_skills)
    else:
        what = f'"{_quote(best.passage or "")}"'
    if kind is FindingKind.STRENGTH:
        return f"Supported by {_where(best, titles)}: {what}"
    return f"Weak evidence for: {requirement.text}. Closest: {_where(best, titles)}: {what}"


def select_evidence(
    requirements: Sequence[Requirement],
    passages: Sequence[PortfolioPassage],
    code_signals: Mapping[str, CodeSignals] | None = None,
    *,
    embed: EmbedFn,
    embedding_model: str,
    taxonomy: SkillTaxonomy | None = None,
    item_titles: Mapping[str, str] | None = None,
    support_threshold: float = SUPPORT_THRESHOLD,
    vector_cache: MutableMapping[str, np.ndarray] | None = None,
) -> EvidenceReport:
    """Score every requirement against every passage and code signal; cite the best.

    One ``embed`` call covers all requirements and passages not yet in ``vector_cache``
    (the embedder batches them; duplicates are embedded once). Embedding is nearly all of
    the cost, so a caller re-running an evaluation after a portfolio or job change can pass
    the same cache and pay only for new texts. The result is deterministic for the same
    inputs and embedder: ties are broken by item, path and offset, never by set order.
    """
    taxonomy = taxonomy or get_taxonomy()
    code_signals = code_signals or {}
    titles = item_titles or {}
    if not requirements:
        return EvidenceReport(findings=(), overall_score=None, embedding_model=embedding_model)

    texts = [r.text for r in requirements] + [p.text_for_embedding() for p in passages]
    vectors = _embed_cached(texts, embed, embedding_model, vector_cache)
    requirement_vectors = vectors[: len(requirements)]
    passage_vectors = vectors[len(requirements) :]
    cosines = (
        requirement_vectors @ passage_vectors.T
        if len(passages)
        else np.zeros((len(requirements), 0), dtype=np.float32)
    )
    # a passage naming a product shows the kind too (Jest: automated testing)
    passage_skills = [
        taxonomy.with_broader(taxonomy.canonical_skills(f"{p.heading or ''}\n{p.text}"))
        for p in passages
    ]

    findings: list[Finding] = []
    weighted_total = 0.0
    weight_sum = 0.0
    must_haves = 0
    must_haves_supported = 0
    for row, requirement in enumerate(requirements):
        wanted = wanted_skills(requirement, taxonomy)
        candidates: list[Evidence] = [
            _passage_evidence(passage, float(cosines[row, column]), wanted, passage_skills[column])
            for column, passage in enumerate(passages)
        ]
        for item_id in sorted(code_signals):
            signal_evidence = _signal_evidence(item_id, code_signals[item_id], wanted, taxonomy)
            if signal_evidence is not None:
                candidates.append(signal_evidence)
        best = min(candidates, key=_order_key) if candidates else None
        score = _combine(best, candidates) if best is not None else 0.0
        kind = FindingKind.STRENGTH if score >= support_threshold else FindingKind.GAP
        matched = tuple(
            dict.fromkeys(
                skill
                for c in candidates
                if c.score >= support_threshold
                for skill in c.matched_skills
            )
        )
        findings.append(
            Finding(
                kind=kind,
                summary=_summary(requirement, kind, best, titles),
                requirement_id=requirement.id,
                item_id=best.item_id if best is not None and best.score >= _MIN_REPORTED else None,
                score=score,
                evidence=best if best is not None and best.score >= _MIN_REPORTED else None,
                supporting=_distinct(candidates, best, 3) if best is not None else (),
                wanted_skills=wanted,
                matched_skills=matched,
            )
        )
        weight = max(requirement.weight, 0.0) * (2.0 if requirement.must_have else 1.0)
        weighted_total += weight * score
        weight_sum += weight
        if requirement.must_have:
            must_haves += 1
            must_haves_supported += kind is FindingKind.STRENGTH
    overall = round(100.0 * weighted_total / weight_sum, 2) if weight_sum > 0 else None
    if overall is not None and not math.isfinite(overall):
        overall = None
    return EvidenceReport(
        findings=tuple(findings),
        overall_score=overall,
        embedding_model=embedding_model,
        must_haves=must_haves,
        must_haves_supported=must_haves_supported,
        model_versions={
            "embedding": embedding_model,
            "scoring": SCORING_VERSION,
            "skills_taxonomy": taxonomy.version,
        },
    )
