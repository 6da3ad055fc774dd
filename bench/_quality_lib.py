"""The blind matching set (``eval/matching/``) and the metrics of ``bench/matching_quality.py``.

Kept apart from the harness so that other scripts (tuning on the dev folds, a judge's
calibration) can load the same texts and score with the same definitions:

- :func:`load_eval_set` reads ``split.json``, the labels of every family that has them, the
  postings, and the resumes through the product's own extractor (``extract_text``), so every
  system sees the text the product sees;
- :class:`Result` / :class:`ReqResult` are what a system returns per resume;
- :func:`ndcg`, :func:`align`, :func:`quotes_overlap`, :func:`ece` and :class:`Tally` are the
  metric definitions (see ``bench/matching_quality.py`` for what is reported).
"""

from __future__ import annotations

import difflib
import json
import math
import re
import sys
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from are_workers.services.documents import ExtractionLimits, extract_text

#: The families the set began with (and the only ones with test postings): listed first,
#: in this order; families added later (development only) follow in name order.
FIRST_FAMILIES = (
    "software",
    "nursing",
    "sales",
    "logistics",
    "finance",
    "teaching",
    "legal",
    "engineering",
    "hospitality",
)
LANGUAGES = ("en", "de", "fr")
EVAL_ROOT = Path(__file__).resolve().parent.parent / "eval" / "matching"

#: Two quotes overlap when they share at least this share of the shorter one's characters.
OVERLAP_MIN_SHARE = 0.5
#: Common runs shorter than this do not count towards the share (" the ", "ing" ...).
OVERLAP_MIN_RUN = 4
#: A quote this short counts only when it is at least half of the line: a heading or a
#: one-word quote ("Experience") inside a labelled line is not evidence of it.
OVERLAP_MIN_CHARS = 20
#: A labelled requirement aligns to the system requirement of highest word Jaccard, if ≥ this.
ALIGN_MIN_JACCARD = 0.3
ECE_BINS = 10

_WORD = re.compile(r"\w+")
_BULLET_CHARS = " \t-*•·\u2013\u2014>"


def log(message: str) -> None:
    """Progress and notes go to stderr; stdout carries only the report."""
    print(message, file=sys.stderr, flush=True)


# --- what a system returns -------------------------------------------------------------------


@dataclass(frozen=True)
class ReqResult:
    """One requirement verdict of a system for one resume."""

    text: str
    must_have: bool
    met: bool
    probability: float | None = None  # calibrated P(supported), when the system has one
    quote: str | None = None  # the resume passage that shows it
    start: int | None = None  # offsets of ``quote`` in the resume text
    end: int | None = None


@dataclass(frozen=True)
class Result:
    """A system's verdict on one resume for one posting: ``overall`` ranks (higher is better)."""

    overall: float
    requirements: list[ReqResult] = field(default_factory=list)


# --- the labelled set ------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelledRequirement:
    id: str
    text: str
    must: bool


@dataclass(frozen=True)
class Posting:
    id: str
    family: str
    title: str
    markdown: str
    requirements: tuple[LabelledRequirement, ...]


@dataclass(frozen=True)
class Resume:
    id: str
    family: str
    file: str
    language: str  # labelled: en, de or fr
    kind: str  # strong, partial, near_miss, keyword_list, irrelevant, ...
    text: str  # the product extractor's text (what every system sees)
    detected_language: str  # what the product's extractor detected


@dataclass(frozen=True)
class EvidenceLabel:
    supported: bool
    lines: tuple[str, ...]


@dataclass
class EvalSet:
    split: str
    postings: list[Posting]
    resumes: dict[str, Resume]
    grades: dict[tuple[str, str], int]  # (posting, resume) -> 0..3
    evidence: dict[tuple[str, str, str], EvidenceLabel]  # (posting, resume, requirement)
    families: list[str]
    skipped_families: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def family_resumes(self, family: str) -> list[Resume]:
        return sorted((r for r in self.resumes.values() if r.family == family), key=lambda r: r.id)

    def label(self, posting: str, resume: str, requirement: str) -> EvidenceLabel:
        """A missing evidence row reads as unsupported (and is listed in ``problems``)."""
        return self.evidence.get((posting, resume, requirement), EvidenceLabel(False, ()))


def normalise(text: str) -> str:
    """NFKC (as the extractor does), case-folded, whitespace collapsed, bullets stripped."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(folded.split()).strip(_BULLET_CHARS)


def _extract(path: Path, limits: ExtractionLimits) -> tuple[str, str]:
    extracted = extract_text(path.read_bytes(), limits=limits)
    return extracted.text, extracted.language


def _extraction_limits() -> ExtractionLimits:
    try:
        from are_workers.config import get_settings

        return ExtractionLimits.from_settings(get_settings())
    except Exception as error:  # settings need an environment; the defaults equal them
        log(f"note: settings unavailable ({error}); default extraction limits")
        return ExtractionLimits()


def all_families(root: Path = EVAL_ROOT) -> list[str]:
    """Every family of the set: the first nine, then each other ``labels/<family>.json``."""
    written = sorted(path.stem for path in (root / "labels").glob("*.json"))
    return [*FIRST_FAMILIES, *(f for f in written if f not in FIRST_FAMILIES)]


def load_eval_set(
    split: str, *, root: Path = EVAL_ROOT, families: Sequence[str] | None = None
) -> EvalSet:
    """The postings of ``split`` (``test`` or ``dev``) of every family whose labels exist.

    A family whose ``labels/<family>.json`` is missing or unreadable (still being written) is
    skipped with a note; so is a resume whose file is missing or cannot be extracted.
    """
    plan = json.loads((root / "split.json").read_text(encoding="utf-8"))
    if split not in plan:
        raise SystemExit(f"unknown split {split!r}; split.json has {sorted(plan)}")
    wanted = set(plan[split])
    known = all_families(root)
    chosen = [f for f in (families or known) if f in known]
    limits = _extraction_limits()
    data = EvalSet(split, [], {}, {}, {}, [])
    for family in chosen:
        path = root / "labels" / f"{family}.json"
        if not path.exists():
            data.skipped_families[family] = "labels not written yet"
            log(f"note: skipping {family}: {path.relative_to(root)} does not exist")
            continue
        try:
            labels = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            data.skipped_families[family] = f"labels unreadable ({error})"
            log(f"note: skipping {family}: {error}")
            continue
        if not any(raw["id"] in wanted for raw in labels["postings"]):
            continue  # a development-only family, in the test split (see split.json)
        _load_family(data, family, labels, wanted, root, limits)
        data.families.append(family)
    data.postings.sort(key=lambda p: p.id)
    return data


def _load_family(
    data: EvalSet,
    family: str,
    labels: Mapping[str, Any],
    wanted: set[str],
    root: Path,
    limits: ExtractionLimits,
) -> None:
    problems = data.problems
    for raw in labels["postings"]:
        if raw["id"] not in wanted:
            continue
        posting_path = root / "postings" / f"{raw['id']}.md"
        if not posting_path.exists():
            problems.append(f"{raw['id']}: posting file missing; skipped")
            continue
        markdown = posting_path.read_text(encoding="utf-8")
        requirements = tuple(
            LabelledRequirement(q["id"], q["text"], q["kind"] == "must")
            for q in raw["requirements"]
        )
        flat = normalise(markdown.replace("**", ""))
        problems.extend(
            f"{q.id}: requirement text is not a verbatim span of the posting: {q.text!r}"
            for q in requirements
            if normalise(q.text) not in flat
        )
        data.postings.append(Posting(raw["id"], family, raw["title"], markdown, requirements))
    for raw in labels["resumes"]:
        path = root / raw["file"]
        try:
            text, detected = _extract(path, limits)
        except FileNotFoundError:
            problems.append(f"{raw['id']}: file {raw['file']} missing; resume skipped")
            continue
        except Exception as error:
            problems.append(f"{raw['id']}: extraction failed ({error}); resume skipped")
            continue
        resume = Resume(
            raw["id"], family, raw["file"], raw["language"], raw["kind"], text, detected
        )
        data.resumes[resume.id] = resume
        if detected != resume.language:
            problems.append(
                f"{resume.id}: labelled language {resume.language}, extractor detected {detected}"
            )
    for row in labels["relevance"]:
        data.grades[(row["posting"], row["resume"])] = int(row["grade"])
    flat_texts = {r.id: normalise(r.text) for r in data.resumes.values() if r.family == family}
    for row in labels["evidence"]:
        key = (row["posting"], row["resume"], row["requirement"])
        data.evidence[key] = EvidenceLabel(bool(row["supported"]), tuple(row["lines"]))
        resume_flat = flat_texts.get(row["resume"])
        if resume_flat is None or row["posting"] not in wanted:
            continue
        problems.extend(
            f"{row['resume']}/{row['requirement']}: labelled line not in the extracted "
            f"text: {line!r}"
            for line in row["lines"]
            if normalise(line) not in resume_flat
        )
    for posting in (p for p in data.postings if p.family == family):
        for resume in data.family_resumes(family):
            if (posting.id, resume.id) not in data.grades:
                problems.append(f"{posting.id}/{resume.id}: no relevance grade (read as 0)")
            missing = [
                q.id
                for q in posting.requirements
                if (posting.id, resume.id, q.id) not in data.evidence
            ]
            if missing:
                problems.append(
                    f"{posting.id}/{resume.id}: no evidence row for {', '.join(missing)} "
                    "(read as unsupported)"
                )


# --- metrics ---------------------------------------------------------------------------------


def ranking(scores: Mapping[str, float]) -> list[str]:
    """Resume ids by score, highest first; ties broken by resume id (deterministic)."""
    return sorted(scores, key=lambda rid: (-scores[rid], rid))


def ndcg(order: Sequence[str], grades: Mapping[str, int], k: int) -> float | None:
    """NDCG@k with gains 2^grade - 1; ``None`` when no resume has a grade ≥ 1."""

    def dcg(gains: Iterable[int]) -> float:
        return sum((2**g - 1) / math.log2(i + 2) for i, g in enumerate(gains))

    ideal = dcg(sorted(grades.values(), reverse=True)[:k])
    if ideal <= 0:
        return None
    return dcg(grades.get(rid, 0) for rid in order[:k]) / ideal


def words(text: str) -> set[str]:
    return set(_WORD.findall(text.casefold()))


def jaccard(a: str, b: str) -> float:
    wa, wb = words(a), words(b)
    return len(wa & wb) / len(wa | wb) if wa | wb else 0.0


def align(
    labelled: Sequence[LabelledRequirement], system: Sequence[ReqResult]
) -> dict[str, int | None]:
    """Each labelled requirement's system requirement (index): highest word Jaccard ≥ 0.3."""
    aligned: dict[str, int | None] = {}
    for requirement in labelled:
        best, best_score = None, ALIGN_MIN_JACCARD
        for index, candidate in enumerate(system):
            score = jaccard(requirement.text, candidate.text)
            if score >= best_score and (best is None or score > best_score):
                best, best_score = index, score
        aligned[requirement.id] = best
    return aligned


def quotes_overlap(quote: str, line: str) -> bool:
    """One contains the other, or they share ≥ 50 % of the shorter one's characters; a
    shorter side under ``OVERLAP_MIN_CHARS`` must also be half of the longer one.

    Both are normalised first; shared characters are those of common runs of at least
    ``OVERLAP_MIN_RUN`` characters (so that unrelated sentences do not match on "the").
    """
    a, b = normalise(quote), normalise(line)
    if not a or not b:
        return False
    shorter = min(len(a), len(b))
    if shorter < OVERLAP_MIN_CHARS and shorter < 0.5 * max(len(a), len(b)):
        return False
    if a in b or b in a:
        return True
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    shared = sum(m.size for m in matcher.get_matching_blocks() if m.size >= OVERLAP_MIN_RUN)
    return shared >= OVERLAP_MIN_SHARE * min(len(a), len(b))


def ece(pairs: Sequence[tuple[float, bool]], bins: int = ECE_BINS) -> float | None:
    """Expected calibration error over equal-width probability bins (``None`` if no pairs)."""
    if not pairs:
        return None
    total = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        members = [(p, y) for p, y in pairs if lo <= p < hi or (b == bins - 1 and p >= hi)]
        if members:
            confidence = sum(p for p, _ in members) / len(members)
            accuracy = sum(y for _, y in members) / len(members)
            total += len(members) / len(pairs) * abs(confidence - accuracy)
    return total


@dataclass
class Tally:
    """Counts behind the evidence metrics; tallies add up, so any subset can be pooled."""

    met: int = 0  # met=True verdicts on aligned pairs
    met_quoted: int = 0  # ... whose quote overlaps a labelled supporting line
    supported: int = 0  # labelled supported pairs
    found: int = 0  # ... the system said met, with an overlapping quote
    must: int = 0  # labelled must-have pairs
    must_agree: int = 0  # ... where met == supported
    probabilities: list[tuple[float, bool]] = field(default_factory=list)

    def __iadd__(self, other: Tally) -> Tally:
        self.met += other.met
        self.met_quoted += other.met_quoted
        self.supported += other.supported
        self.found += other.found
        self.must += other.must
        self.must_agree += other.must_agree
        self.probabilities.extend(other.probabilities)
        return self

    @property
    def precision(self) -> float | None:
        return self.met_quoted / self.met if self.met else None

    @property
    def recall(self) -> float | None:
        return self.found / self.supported if self.supported else None

    @property
    def must_accuracy(self) -> float | None:
        return self.must_agree / self.must if self.must else None

    @property
    def ece(self) -> float | None:
        return ece(self.probabilities)


def tally_resume(
    labelled: Sequence[LabelledRequirement],
    labels: Mapping[str, EvidenceLabel],
    result: Result,
) -> tuple[Tally, dict[str, int | None]]:
    """Evidence counts of one (posting, resume) result, and the alignment (:func:`align`).

    An unaligned labelled requirement is "not found": met=False (and probability 0 when the
    system gives probabilities). A system requirement that several labelled requirements
    align to is judged once per labelled requirement.
    """
    tally = Tally()
    aligned = align(labelled, result.requirements)
    gives_probabilities = any(r.probability is not None for r in result.requirements)
    for requirement in labelled:
        label = labels[requirement.id]
        index = aligned[requirement.id]
        verdict = result.requirements[index] if index is not None else None
        met = verdict is not None and verdict.met
        quoted = (
            met
            and verdict is not None
            and verdict.quote is not None
            and any(quotes_overlap(verdict.quote, line) for line in label.lines)
        )
        if met:
            tally.met += 1
            tally.met_quoted += quoted
        if label.supported:
            tally.supported += 1
            tally.found += quoted
        if requirement.must:
            tally.must += 1
            tally.must_agree += met == label.supported
        if gives_probabilities:
            probability = verdict.probability if verdict is not None else 0.0
            if probability is not None:
                tally.probabilities.append((float(probability), label.supported))
    return tally, aligned
