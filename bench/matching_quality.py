"""Matching quality on the blind labelled set in ``eval/matching/`` (see its ``SPEC.md``).

Each *system* ranks the resumes of a posting's occupation family and, where it can, says per
requirement whether the resume shows it, quoting the line that does. Measured per posting of
the split (``split.json``; ``test`` by default) and on the mean:

- NDCG@5 and NDCG@10 over all resumes of the family (gains 2^grade - 1; ties in the system's
  score broken by resume id);
- evidence precision: share of met=True verdicts (on requirements aligned to a labelled one)
  whose quote overlaps a labelled supporting line; evidence recall: share of labelled
  supported (resume, requirement) pairs the system said met with an overlapping quote
  (overlap: normalised quote and line share ≥ 50 % of the shorter one's characters, or one
  contains the other);
- must-have accuracy: ``met`` agrees with ``supported`` on labelled must-haves;
- ECE (10 equal-width bins) of ``probability`` against ``supported``, when a system gives one;
- NDCG@5 and evidence precision/recall on the English, German and French resumes alone
  (NDCG@5 skipped for a posting whose subset has no resume of grade ≥ 1);
- keyword-list resumes (``kind == "keyword_list"``) in the top 5.

A labelled requirement (a verbatim span of the posting) aligns to the system requirement of
highest word Jaccard if that is ≥ 0.3; an unaligned one counts as not found (met=False).
In the "mean" row NDCG figures are means over postings; evidence, must-have and ECE figures
are pooled over all (resume, requirement) pairs. The issue's goals are checked per system.

Systems (``--systems``, registry :data:`SYSTEMS`; ``judge-oof``, dev only, is the judge
retrained with each posting judged out of fold, see :class:`JudgeOutOfFoldSystem`):
``previous`` (the rule scorer the judge replaced, ``bench/_legacy_scorer.py``:
``parse_job_markdown``, unsaved ``JobRequirement`` rows, ``score_candidate`` and
``evaluate_job``'s rank score), ``cosine`` (whole resume vs whole posting, same embedder; the
embedder truncates long texts), ``bm25`` (``BM25Okapi`` over lowercase word tokens, query =
posting) and ``judge`` (``are_workers.services.matching.judge``, skipped while missing).
Families whose labels are not written yet are skipped. Resume text comes from the product's
extractor, so every system sees what the product sees.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/matching_quality.py                 # test split
    HF_HUB_OFFLINE=1 .venv/bin/python bench/matching_quality.py --split dev --time
    HF_HUB_OFFLINE=1 .venv/bin/python bench/matching_quality.py --systems previous,bm25 --json
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import re
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _quality_lib import (
    EVAL_ROOT,
    LANGUAGES,
    EvalSet,
    Posting,
    ReqResult,
    Result,
    Tally,
    load_eval_set,
    log,
    ndcg,
    ranking,
    tally_resume,
)

#: The date "today", "present" and "seit 2020" resolve against (the set was written then).
SET_DATE = date(2026, 12, 6)

# --- the system protocol and registry ----------------------------------------------------------


class System(Protocol):
    name: str
    #: False for rankers that give no requirement verdicts (their evidence metrics are "—").
    per_requirement: bool

    def evaluate(self, posting_md: str, resumes: dict[str, str]) -> dict[str, Result]: ...


class Unavailable(Exception):  # noqa: N818 - it reads as a state, not an error
    """A system that cannot run here (its module is not written yet); skipped with a note."""


class Shared:
    """What systems share within a run: the embedder (loaded once, cached by text), the
    skill taxonomy, and the date."""

    def __init__(self, today: date, trees: int = 0) -> None:
        self.today = today
        self.trees = trees  # boosted trees for judge-oof's training (train-judge --trees)
        self._vectors: dict[str, np.ndarray] = {}

    @cached_property
    def embedding(self) -> Any:
        from are_workers.services.embeddings import default_embedding_context

        context = default_embedding_context()
        context.embed(["warm up"])
        return context

    @cached_property
    def taxonomy(self) -> Any:
        from are_workers.services.skills import get_taxonomy

        return get_taxonomy()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """The default embedder's vectors; each distinct text is embedded once per run."""
        missing = list(dict.fromkeys(t for t in texts if t not in self._vectors))
        if missing:
            vectors = self.embedding.embed(missing)
            self._vectors.update(zip(missing, vectors, strict=True))
        if not texts:
            return np.zeros((0, self.embedding.dimension), dtype=np.float32)
        return np.stack([self._vectors[t] for t in texts])


@dataclass(frozen=True)
class SystemSpec:
    factory: Callable[[Shared], System]
    baseline: bool = False


class CurrentSystem:
    """The product's scorer as ``evaluate_job`` runs it, without the database."""

    name = "previous"
    per_requirement = True

    def __init__(self, shared: Shared) -> None:
        self.shared = shared
        self._years: dict[str, float] = {}
        shared.embedding  # noqa: B018 - load the model outside the timed part

    def years(self, text: str) -> float:
        """What the pipeline stores in ``candidates.years_of_experience`` (Numeric(4, 1))."""
        if text not in self._years:
            from are_workers.services.resumes.parsing import parse_resume

            parsed = parse_resume(text, taxonomy=self.shared.taxonomy, today=self.shared.today)
            stored = Decimal(str(min(80.0, parsed.years_of_experience)))
            self._years[text] = float(stored.quantize(Decimal("0.1"), ROUND_HALF_UP))
        return self._years[text]

    def evaluate(self, posting_md: str, resumes: dict[str, str]) -> dict[str, Result]:
        from _legacy_scorer import score_candidate

        from are_workers.models.jobs import JobPosting, JobRequirement
        from are_workers.models.schemas import EvaluationCriteria
        from are_workers.services.matching.postings import job_query_text, parse_job_markdown

        spec = parse_job_markdown(posting_md)
        job = JobPosting(
            title=spec.title[:300], description=spec.description, evaluation_criteria={}
        )
        requirements = [
            JobRequirement(
                text=r.text,
                kind=r.kind,
                must_have=r.must_have,
                weight=1.0,
                min_years=Decimal(str(r.min_years)) if r.min_years is not None else None,
                position=position,
            )
            for position, r in enumerate(spec.requirements)
        ]
        criteria = EvaluationCriteria.model_validate(job.evaluation_criteria or {})
        vectors = (
            self.shared.embed([r.text for r in requirements]) if requirements else np.zeros((0, 1))
        )
        job_text = job_query_text(job, requirements)
        results: dict[str, Result] = {}
        for resume_id, text in resumes.items():
            scores, overall, coverage = score_candidate(
                resume_text=text,
                requirements=requirements,
                requirement_vectors=vectors,
                embed=self.shared.embed,
                years_of_experience=self.years(text),
                criteria=criteria,
                taxonomy=self.shared.taxonomy,
                job_text=job_text,
            )
            rank_score = overall * (0.5 + 0.5 * coverage if coverage is not None else 1.0)
            results[resume_id] = Result(
                rank_score,
                [
                    ReqResult(
                        text=s.text,
                        must_have=s.must_have,
                        met=s.met,
                        probability=None,  # the rules' score is not a calibrated probability
                        quote=s.evidence.text if s.evidence else None,
                        start=s.evidence.start if s.evidence else None,
                        end=s.evidence.end if s.evidence else None,
                    )
                    for s in scores
                ],
            )
        return results


class CosineSystem:
    """Baseline: cosine of the whole resume's vector and the whole posting's vector."""

    name = "cosine"
    per_requirement = False

    def __init__(self, shared: Shared) -> None:
        self.shared = shared
        shared.embedding  # noqa: B018 - load the model outside the timed part

    def evaluate(self, posting_md: str, resumes: dict[str, str]) -> dict[str, Result]:
        ids = list(resumes)
        query = self.shared.embed([posting_md])[0]
        vectors = self.shared.embed([resumes[i] for i in ids])
        return {i: Result(float(v @ query)) for i, v in zip(ids, vectors, strict=True)}


_TOKEN = re.compile(r"\w+")


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


class Bm25System:
    """Baseline: Okapi BM25 over the family's resumes, the posting text as the query."""

    name = "bm25"
    per_requirement = False

    def __init__(self, shared: Shared) -> None:
        from rank_bm25 import BM25Okapi

        self._bm25 = BM25Okapi

    def evaluate(self, posting_md: str, resumes: dict[str, str]) -> dict[str, Result]:
        ids = list(resumes)
        index = self._bm25([_tokens(resumes[i]) for i in ids])
        scores = index.get_scores(_tokens(posting_md))
        return {i: Result(float(s)) for i, s in zip(ids, scores, strict=True)}


JUDGE_MODULE = "are_workers.services.matching.judge"


class JudgeSystem:
    """``are_workers.services.matching.judge.evaluate``: the evidence judge, calibrated."""

    name = "judge"
    per_requirement = True

    def __init__(self, shared: Shared) -> None:
        if importlib.util.find_spec(JUDGE_MODULE) is None:
            raise Unavailable(f"{JUDGE_MODULE} is not written yet")
        self._judge = importlib.import_module(JUDGE_MODULE)
        from are_workers.config import get_settings
        from are_workers.services.matching.judge_training import cached_encoders

        self._encoder, self._aux = cached_encoders(get_settings().data_dir / "cache")

    def _model(self, posting_id: str) -> Any:
        return None  # the shipped coefficients

    def evaluate(
        self, posting_md: str, resumes: dict[str, str], posting_id: str = ""
    ) -> dict[str, Result]:
        judged = self._judge.evaluate(
            posting_md,
            resumes,
            model=self._model(posting_id),
            today=SET_DATE,
            encoder=self._encoder,
            encode_aux=self._aux.passages,
        )
        return {
            rid: Result(
                float(j.rank_score),
                [
                    ReqResult(
                        text=v.requirement.text,
                        must_have=v.requirement.must_have,
                        met=v.met,
                        probability=v.probability,
                        **dict(zip(("quote", "start", "end"), v.cited, strict=True)),
                    )
                    for v in j.verdicts
                ],
            )
            for rid, j in judged.items()
        }


class JudgeOutOfFoldSystem(JudgeSystem):
    """The judge trained afresh on the development postings (``train-judge``'s code, not the
    shipped file), each development posting judged by the model whose pair scorer was fitted
    on the other fold: development figures that are not in-sample (``--split dev`` only)."""

    name = "judge-oof"

    def __init__(self, shared: Shared) -> None:
        super().__init__(shared)
        from are_workers.services.matching.judge_training import train_from_eval_set

        _, _, self._models = train_from_eval_set(
            EVAL_ROOT,
            encoder=self._encoder,
            encode_aux=self._aux.passages,
            boost_rounds=shared.trees,
        )

    def _model(self, posting_id: str) -> Any:
        if posting_id not in self._models:
            raise Unavailable(f"{posting_id} is not a development posting (use --split dev)")
        return self._models[posting_id]


def _coerce(result: Any) -> Result:
    if isinstance(result, Result):
        return result
    return Result(
        float(result.overall),
        [
            ReqResult(
                text=r.text,
                must_have=bool(r.must_have),
                met=bool(r.met),
                probability=getattr(r, "probability", None),
                quote=getattr(r, "quote", None),
                start=getattr(r, "start", None),
                end=getattr(r, "end", None),
            )
            for r in result.requirements
        ],
    )


SYSTEMS: dict[str, SystemSpec] = {
    "previous": SystemSpec(CurrentSystem),
    "cosine": SystemSpec(CosineSystem, baseline=True),
    "bm25": SystemSpec(Bm25System, baseline=True),
    "judge": SystemSpec(JudgeSystem),
    "judge-oof": SystemSpec(JudgeOutOfFoldSystem),
}

# --- measuring ---------------------------------------------------------------------------------


@dataclass
class PostingScore:
    """One system on one posting."""

    posting: str
    ndcg5: float | None
    ndcg10: float | None
    tally: Tally
    by_language: dict[str, tuple[float | None, Tally, int]]  # ndcg@5, tally, resumes
    aligned: float  # labelled requirements aligned, mean over resumes
    requirements: int  # labelled requirements
    never_aligned: list[str]  # labelled requirement ids aligned for no resume
    top5: list[str]
    keyword_lists_top5: int


@dataclass
class SystemReport:
    name: str
    baseline: bool
    per_requirement: bool
    seconds: float = 0.0
    postings: list[PostingScore] = field(default_factory=list)

    def mean(self, values: Sequence[float | None]) -> float | None:
        present = [v for v in values if v is not None]
        return statistics.fmean(present) if present else None

    @property
    def ndcg5(self) -> float | None:
        return self.mean([p.ndcg5 for p in self.postings])

    @property
    def ndcg10(self) -> float | None:
        return self.mean([p.ndcg10 for p in self.postings])

    @property
    def tally(self) -> Tally:
        pooled = Tally()
        for p in self.postings:
            pooled += p.tally
        return pooled

    def language_ndcg5(self, language: str) -> float | None:
        return self.mean([p.by_language[language][0] for p in self.postings])

    def language_tally(self, language: str) -> Tally:
        pooled = Tally()
        for p in self.postings:
            pooled += p.by_language[language][1]
        return pooled

    @property
    def keyword_lists_top5(self) -> int:
        return sum(p.keyword_lists_top5 for p in self.postings)


def score_posting(
    data: EvalSet, posting: Posting, results: Mapping[str, Result], per_requirement: bool
) -> PostingScore:
    family = data.family_resumes(posting.family)
    grades = {r.id: data.grades.get((posting.id, r.id), 0) for r in family}
    scores = {r.id: results[r.id].overall for r in family}
    order = ranking(scores)
    tallies: dict[str, Tally] = {}
    aligned: list[int] = []
    ever_aligned: set[str] = set()
    if per_requirement:
        for resume in family:
            labels = {q.id: data.label(posting.id, resume.id, q.id) for q in posting.requirements}
            tally, alignment = tally_resume(posting.requirements, labels, results[resume.id])
            tallies[resume.id] = tally
            found = {q for q, index in alignment.items() if index is not None}
            aligned.append(len(found))
            ever_aligned |= found
    by_language: dict[str, tuple[float | None, Tally, int]] = {}
    for language in LANGUAGES:
        members = {r.id for r in family if r.language == language}
        sub_grades = {rid: g for rid, g in grades.items() if rid in members}
        sub_order = [rid for rid in order if rid in members]
        pooled = Tally()
        for rid in members & tallies.keys():
            pooled += tallies[rid]
        by_language[language] = (ndcg(sub_order, sub_grades, 5), pooled, len(members))
    total = Tally()
    for tally in tallies.values():
        total += tally
    kinds = {r.id: r.kind for r in family}
    top5 = order[:5]
    return PostingScore(
        posting=posting.id,
        ndcg5=ndcg(order, grades, 5),
        ndcg10=ndcg(order, grades, 10),
        tally=total,
        by_language=by_language,
        aligned=statistics.fmean(aligned) if aligned else 0.0,
        requirements=len(posting.requirements),
        never_aligned=[q.id for q in posting.requirements if q.id not in ever_aligned]
        if per_requirement
        else [],
        top5=top5,
        keyword_lists_top5=sum(kinds[rid] == "keyword_list" for rid in top5),
    )


def run_system(data: EvalSet, name: str, shared: Shared) -> SystemReport:
    spec = SYSTEMS[name]
    system = spec.factory(shared)
    report = SystemReport(name, spec.baseline, system.per_requirement)
    for posting in data.postings:
        resumes = {r.id: r.text for r in data.family_resumes(posting.family)}
        started = time.perf_counter()
        if isinstance(system, JudgeSystem):
            results = system.evaluate(posting.markdown, resumes, posting.id)
        else:
            results = system.evaluate(posting.markdown, resumes)
        report.seconds += time.perf_counter() - started
        missing = sorted(resumes.keys() - results.keys())
        if missing:
            raise RuntimeError(f"{name} returned no result for {', '.join(missing)}")
        score = score_posting(data, posting, results, system.per_requirement)
        report.postings.append(score)
        log(f"  {name} {posting.id}: NDCG@5 {_fmt(score.ndcg5)} ({report.seconds:.1f} s)")
    return report


# --- goals ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Goal:
    text: str
    passed: bool | None  # None: cannot be judged here
    detail: str


def goals(report: SystemReport, baselines: Sequence[SystemReport]) -> list[Goal]:
    per_posting = {p.posting: p.ndcg5 for p in report.postings}
    worst = min(((v, k) for k, v in per_posting.items() if v is not None), default=(None, ""))
    mean5 = report.ndcg5
    out = [
        Goal("NDCG@5 mean ≥ 0.95", mean5 is not None and mean5 >= 0.95, _fmt(mean5)),
        Goal(
            "NDCG@5 ≥ 0.90 on every posting",
            worst[0] is not None and worst[0] >= 0.90,
            f"lowest {_fmt(worst[0])} ({worst[1]})",
        ),
    ]
    if report.baseline:
        out.append(Goal("NDCG@5 ≥ best baseline", None, "a baseline itself"))
    elif not baselines:
        out.append(Goal("NDCG@5 ≥ best baseline", None, "no baseline was run"))
    else:
        below = []
        for p in report.postings:
            best = max((_n(b, p.posting) for b in baselines), default=0.0)
            if (p.ndcg5 or 0.0) < best:
                below.append(f"{p.posting} {_fmt(p.ndcg5)} < {_fmt(best)}")
        best_mean = max((b.ndcg5 or 0.0) for b in baselines)
        above_mean = (mean5 or 0.0) > best_mean
        detail = f"mean {_fmt(mean5)} vs best baseline mean {_fmt(best_mean)}"
        out.append(
            Goal(
                "NDCG@5 ≥ best baseline on every posting, above it on the mean",
                not below and above_mean,
                detail + (f"; below on {'; '.join(below)}" if below else ""),
            )
        )
    tally = report.tally
    for text, value, bound in (
        ("evidence precision ≥ 0.95", tally.precision, 0.95),
        ("evidence recall ≥ 0.85", tally.recall, 0.85),
    ):
        out.append(
            Goal(
                text,
                report.per_requirement and value is not None and value >= bound,
                (_fmt(value) if value is not None else "no verdict to judge")
                if report.per_requirement
                else "no requirement verdicts",
            )
        )
    english = report.language_ndcg5("en")
    for language, label in (("de", "German"), ("fr", "French")):
        value = report.language_ndcg5(language)
        ok = value is not None and english is not None and value >= english - 0.03
        out.append(
            Goal(
                f"{label} NDCG@5 within 0.03 of English (not lower by more)",
                ok,
                f"{_fmt(value)} vs {_fmt(english)}",
            )
        )
    count = report.keyword_lists_top5
    out.append(Goal("a keyword list never in a top 5", count == 0, f"{count} time(s)"))
    return out


def _n(report: SystemReport, posting: str) -> float:
    return next((p.ndcg5 or 0.0 for p in report.postings if p.posting == posting), 0.0)


# --- output --------------------------------------------------------------------------------------


POSTING_HEADER = ("posting", "NDCG@5", "NDCG@10", "evid. P", "evid. R", "must acc.", "ECE",
                  "aligned", "keyword lists in top 5")  # fmt: skip
SUMMARY_HEADER = ("system", "NDCG@5", "NDCG@10", "NDCG@5 en", "NDCG@5 de", "NDCG@5 fr",
                  "evid. P", "evid. R", "must acc.", "ECE", "keyword lists in top 5",
                  "goals passed", "seconds")  # fmt: skip


def _fmt(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _aligned(score: PostingScore) -> str:
    value = score.aligned
    shown = f"{value:.0f}" if value == int(value) else f"{value:.1f}"
    return f"{shown}/{score.requirements}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def markdown(
    data: EvalSet,
    reports: Sequence[SystemReport],
    goal_map: Mapping[str, list[Goal]],
    skipped: Mapping[str, str],
    timing: str | None,
) -> str:
    out = [
        f"# Matching quality: split `{data.split}`, {len(data.postings)} postings "
        f"({', '.join(p.id for p in data.postings)})",
        "",
        "NDCG means are over postings; evidence P/R, must-have accuracy and ECE of the mean "
        'row are pooled over all (resume, requirement) pairs. "aligned": labelled '
        "requirements matched to a system requirement (mean per resume). The de/fr subsets "
        "hold 3-6 resumes per posting, so their NDCG@5 ranks most of the subset: read the "
        "language figures with that in mind.",
    ]
    if data.skipped_families:
        out.append(
            "Families skipped: "
            + "; ".join(f"{f} ({why})" for f, why in data.skipped_families.items())
            + "."
        )
    for name, why in skipped.items():
        out.append(f"System `{name}` skipped: {why}.")
    for report in reports:
        ev = report.per_requirement
        rows = []
        for p in report.postings:
            t = p.tally
            rows.append([
                p.posting, _fmt(p.ndcg5), _fmt(p.ndcg10),
                _fmt(t.precision) if ev else "—", _fmt(t.recall) if ev else "—",
                _fmt(t.must_accuracy) if ev else "—", _fmt(t.ece),
                _aligned(p) if ev else "—", str(p.keyword_lists_top5),
            ])  # fmt: skip
        t = report.tally
        rows.append([
            "**mean**", _fmt(report.ndcg5), _fmt(report.ndcg10),
            _fmt(t.precision) if ev else "—", _fmt(t.recall) if ev else "—",
            _fmt(t.must_accuracy) if ev else "—", _fmt(t.ece), "",
            str(report.keyword_lists_top5),
        ])  # fmt: skip
        out += [
            "",
            f"## `{report.name}`" + (" (baseline)" if report.baseline else ""),
            "",
            _table(
                POSTING_HEADER,
                rows,
            ),
            "",
        ]
        lang_rows = []
        for p in report.postings:
            row = [p.posting]
            row += [_fmt(p.by_language[lang][0]) for lang in LANGUAGES]
            for metric in ("precision", "recall"):
                row += [
                    _fmt(getattr(p.by_language[lang][1], metric)) if ev else "—"
                    for lang in LANGUAGES
                ]
            lang_rows.append(row)
        row = ["**mean**"] + [_fmt(report.language_ndcg5(lang)) for lang in LANGUAGES]
        for metric in ("precision", "recall"):
            row += [
                _fmt(getattr(report.language_tally(lang), metric)) if ev else "—"
                for lang in LANGUAGES
            ]
        lang_rows.append(row)
        header = ["posting"] + [f"NDCG@5 {lang}" for lang in LANGUAGES]
        header += [f"evid. P {lang}" for lang in LANGUAGES]
        header += [f"evid. R {lang}" for lang in LANGUAGES]
        out += [_table(header, lang_rows), "", "Goals:", ""]
        for goal in goal_map[report.name]:
            mark = {True: "PASS", False: "FAIL", None: "n/a"}[goal.passed]
            out.append(f"- **{mark}** {goal.text}: {goal.detail}")
        unaligned = {p.posting: p.never_aligned for p in report.postings if p.never_aligned}
        if unaligned:
            out += ["", "Labelled requirements the system never produced (not found):"]
            out += [f"- {pid}: {', '.join(ids)}" for pid, ids in unaligned.items()]
    if reports:
        out += ["", "## Summary (means)", ""]
        rows = []
        for report in reports:
            ev, t = report.per_requirement, report.tally
            passed = sum(g.passed is True for g in goal_map[report.name])
            judged = sum(g.passed is not None for g in goal_map[report.name])
            rows.append([
                report.name, _fmt(report.ndcg5), _fmt(report.ndcg10),
                *(_fmt(report.language_ndcg5(lang)) for lang in LANGUAGES),
                _fmt(t.precision) if ev else "—", _fmt(t.recall) if ev else "—",
                _fmt(t.must_accuracy) if ev else "—", _fmt(t.ece),
                str(report.keyword_lists_top5), f"{passed}/{judged}", f"{report.seconds:.1f}",
            ])  # fmt: skip
        out.append(
            _table(
                SUMMARY_HEADER,
                rows,
            )
        )
    if data.problems:
        out += ["", f"## Data notes ({len(data.problems)})", ""]
        out += [f"- {problem}" for problem in data.problems]
    if timing:
        out += ["", timing]
    return "\n".join(out)


def as_json(
    data: EvalSet,
    reports: Sequence[SystemReport],
    goal_map: Mapping[str, list[Goal]],
    skipped: Mapping[str, str],
    setup_seconds: Mapping[str, float],
) -> dict[str, Any]:
    def tally(t: Tally) -> dict[str, Any]:
        return {
            "evidence_precision": t.precision, "evidence_recall": t.recall,
            "must_have_accuracy": t.must_accuracy, "ece": t.ece,
            "counts": {"met": t.met, "met_quoted": t.met_quoted, "supported": t.supported,
                       "found": t.found, "must": t.must, "must_agree": t.must_agree,
                       "with_probability": len(t.probabilities)},
        }  # fmt: skip

    systems: dict[str, Any] = {}
    for report in reports:
        postings = {}
        for p in report.postings:
            postings[p.posting] = {
                "ndcg@5": p.ndcg5, "ndcg@10": p.ndcg10,
                **(tally(p.tally) if report.per_requirement else {}),
                "aligned_mean": p.aligned if report.per_requirement else None,
                "labelled_requirements": p.requirements, "never_aligned": p.never_aligned,
                "top5": p.top5, "keyword_lists_top5": p.keyword_lists_top5,
                "by_language": {
                    lang: {"ndcg@5": nd, "resumes": n,
                           **(tally(t) if report.per_requirement else {})}
                    for lang, (nd, t, n) in p.by_language.items()
                },
            }  # fmt: skip
        systems[report.name] = {
            "baseline": report.baseline, "per_requirement": report.per_requirement,
            "seconds": report.seconds, "postings": postings,
            "mean": {
                "ndcg@5": report.ndcg5, "ndcg@10": report.ndcg10,
                **(tally(report.tally) if report.per_requirement else {}),
                "keyword_lists_top5": report.keyword_lists_top5,
                "by_language": {
                    lang: {"ndcg@5": report.language_ndcg5(lang),
                           **(tally(report.language_tally(lang))
                              if report.per_requirement else {})}
                    for lang in LANGUAGES
                },
            },
            "goals": [{"goal": g.text, "passed": g.passed, "detail": g.detail}
                      for g in goal_map[report.name]],
        }  # fmt: skip
    return {
        "split": data.split,
        "postings": [p.id for p in data.postings],
        "families": data.families,
        "skipped_families": data.skipped_families,
        "skipped_systems": dict(skipped),
        "resumes": len(data.resumes),
        "setup_seconds": dict(setup_seconds),
        "systems": systems,
        "data_problems": data.problems,
    }


# --- main ----------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="test", help="test (default) or dev")
    parser.add_argument(
        "--systems",
        default=",".join(n for n in SYSTEMS if n != "judge-oof"),
        help=f"comma-separated, from {', '.join(SYSTEMS)} (default: all but judge-oof, "
        "which is for --split dev; missing ones skip)",
    )
    parser.add_argument("--families", default="", help="comma-separated subset of families")
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    parser.add_argument("--time", action="store_true", help="print seconds per system")
    parser.add_argument(
        "--trees", type=int, default=0, help="judge-oof: train-judge --trees (default 0)"
    )
    parser.add_argument(
        "--today",
        type=date.fromisoformat,
        default=SET_DATE,
        help=f"date that 'present'/'today' resolve to (default {SET_DATE})",
    )
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.systems.split(",") if n.strip()]
    unknown = [n for n in names if n not in SYSTEMS]
    if unknown:
        parser.error(f"unknown systems {unknown}; known: {', '.join(SYSTEMS)}")
    families = [f.strip() for f in args.families.split(",") if f.strip()] or None

    started = time.perf_counter()
    data = load_eval_set(args.split, families=families)
    setup = {"load_and_extract": time.perf_counter() - started}
    log(
        f"{len(data.postings)} postings, {len(data.resumes)} resumes "
        f"({', '.join(data.families)}); {len(data.problems)} data notes"
    )
    for problem in data.problems:
        log(f"data: {problem}")
    if not data.postings:
        log("nothing to evaluate")
        return 1

    shared = Shared(args.today, args.trees)
    reports: list[SystemReport] = []
    skipped: dict[str, str] = {}
    for name in names:
        log(f"system {name}")
        started = time.perf_counter()
        try:
            reports.append(run_system(data, name, shared))
        except Unavailable as why:
            skipped[name] = str(why)
            log(f"note: skipping {name}: {why}")
            continue
        setup[f"{name} load+metrics"] = time.perf_counter() - started - reports[-1].seconds

    baselines = [r for r in reports if r.baseline]
    goal_map = {r.name: goals(r, baselines) for r in reports}
    timing = None
    if args.time:
        timing = "time: " + "; ".join(
            [f"{r.name} {r.seconds:.1f} s" for r in reports]
            + [f"setup {k} {v:.1f} s" for k, v in setup.items()]
        )
    if args.json:
        print(json.dumps(as_json(data, reports, goal_map, skipped, setup), indent=2))
        if timing:
            log(timing)
    else:
        print(markdown(data, reports, goal_map, skipped, timing))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
