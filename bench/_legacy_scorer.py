"""The rule scorer matching used before the evidence judge (kept for the quality bench's
``previous`` system, so the judge is compared with what it replaced in the same run)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from are_workers.models.jobs import JobRequirement, RequirementKind
from are_workers.models.schemas import EvaluationCriteria
from are_workers.services.matching.evaluation import RequirementScore
from are_workers.services.resumes.parsing import parse_resume
from are_workers.services.skills import SkillTaxonomy

#: Where work is described (evidence) vs. where skills are merely listed.
EVIDENCE_SECTIONS = frozenset({"experience", "projects", "summary", "volunteering", "body"})
LIST_SECTIONS = frozenset({"skills", "certifications", "languages", "interests"})
SECTIONS_BY_KIND = {
    RequirementKind.EDUCATION: frozenset({"education", "certifications", "body", "summary"}),
    RequirementKind.CERTIFICATION: frozenset(
        {"certifications", "education", "skills", "body", "summary", "experience"}
    ),
    RequirementKind.LANGUAGE: frozenset({"languages", "skills", "summary", "body"}),
}
DEFAULT_KIND_WEIGHTS = {
    "skill": 1.0,
    "experience": 1.0,
    "education": 0.6,
    "certification": 0.8,
    "language": 0.6,
    "other": 0.6,
}
MUST_HAVE_BOOST = 1.5
#: Cosine similarities of MiniLM between a requirement and a resume line: below LOW is
#: unrelated, above HIGH is as direct as evidence gets (fitted on the sample resumes).
SIMILARITY_LOW = 0.25
SIMILARITY_HIGH = 0.65
MET_THRESHOLD = 0.5
_SENTENCE = re.compile(r"(?<=[.;!?])\s+")


@dataclass(frozen=True)
class Evidence:
    """The rules' evidence: a line and its similarity to the requirement."""

    text: str
    start: int
    end: int
    section: str
    similarity: float


@dataclass(frozen=True)
class _Line:
    text: str
    start: int
    end: int
    section: str


def _clip01(value: float) -> float:
    return float(min(1.0, max(0.0, value)))


def semantic(similarity: float) -> float:
    return _clip01((similarity - SIMILARITY_LOW) / (SIMILARITY_HIGH - SIMILARITY_LOW))


def resume_lines(text: str, sections: Sequence[Any]) -> list[_Line]:
    """Lines (long ones split into sentences) with their section and verbatim offsets."""
    lines: list[_Line] = []
    for section in sections:
        position = section.start
        for raw in text[section.start : section.end].splitlines(keepends=True):
            offset = position
            position += len(raw)
            for piece in _SENTENCE.split(raw) if len(raw) > 220 else [raw]:
                stripped = piece.strip(" \t\r\n-*•·")
                if len(stripped) < 3:
                    offset += len(piece)
                    continue
                start = text.find(stripped, offset)
                if start < 0:
                    continue
                lines.append(_Line(stripped, start, start + len(stripped), section.name))
                offset = start + len(stripped)
    return lines


def score_candidate(
    *,
    resume_text: str,
    requirements: Sequence[JobRequirement],
    requirement_vectors: np.ndarray,
    embed: Any,
    years_of_experience: float,
    criteria: EvaluationCriteria,
    taxonomy: SkillTaxonomy,
    job_text: str = "",
) -> tuple[list[RequirementScore], float, float | None]:
    """Per-requirement scores with evidence, the overall score (0..100) and must-have coverage."""
    parsed = parse_resume(resume_text, taxonomy=taxonomy)
    lines = resume_lines(parsed.text, parsed.sections)
    if not lines:
        return [], 0.0, 0.0 if any(r.must_have for r in requirements) else None
    line_vectors = embed([line.text for line in lines])
    evidenced = {
        m.name for m, s in zip(parsed.skills, parsed.skill_sections, strict=True)
        if s in EVIDENCE_SECTIONS
    }  # fmt: skip
    listed = set(parsed.skill_names)
    # A skills list counts for half of shown experience; a list that nothing in the work
    # history backs up (keyword stuffing) counts for nothing.
    listing_credit = 0.5 if evidenced else 0.0
    weights = DEFAULT_KIND_WEIGHTS | dict(criteria.kind_weights)

    if not requirements:  # a job without requirements: overall fit to the posting only
        query = embed([job_text])[0]
        sims = line_vectors @ query
        best = int(np.argmax(sims))
        line = lines[best]
        score = semantic(float(sims[best]))
        only = RequirementScore(
            None, "overall_fit", "Overall fit to the job posting", "other", False, 1.0, score,
            score >= MET_THRESHOLD, Evidence(line.text, line.start, line.end, line.section,
            float(sims[best])), "The job has no requirements; scored on overall similarity.",
        )  # fmt: skip
        return [only], round(100 * score, 1), None

    scores: list[RequirementScore] = []
    for requirement, vector in zip(requirements, requirement_vectors, strict=True):
        sims = line_vectors @ vector
        wanted = {m.name for m in taxonomy.find(requirement.text)}
        kind = requirement.kind
        pool_sections = SECTIONS_BY_KIND.get(kind, EVIDENCE_SECTIONS)
        pool = [i for i, line in enumerate(lines) if line.section in pool_sections]
        listed_pool = [i for i, line in enumerate(lines) if line.section in LIST_SECTIONS]
        best_i = max(pool, key=lambda i: sims[i]) if pool else None
        sem = semantic(float(sims[best_i])) if best_i is not None else 0.0
        list_sem = (
            listing_credit * semantic(float(max(sims[i] for i in listed_pool)))
            if listed_pool
            else 0.0
        )
        evidence_i = best_i
        if wanted & evidenced:
            skill_part, note = 1.0, "skill used in the work history"
            mention = next(
                (i for i in pool if any(n in {m.name for m in taxonomy.find(lines[i].text)}
                                        for n in wanted & evidenced)),
                None,
            )  # fmt: skip
            evidence_i = mention if mention is not None else best_i
        elif wanted & listed:
            skill_part, note = listing_credit, "skill only listed, not shown in the work history"
            evidence_i = next(
                (i for i in listed_pool if {m.name for m in taxonomy.find(lines[i].text)} & wanted),
                best_i,
            )
        else:
            skill_part, note = 0.0, "skill not found" if wanted else "semantic match"
        if kind is RequirementKind.EXPERIENCE:
            relevance = max(sem, skill_part)
            needed = float(requirement.min_years) if requirement.min_years else None
            years_fit = min(1.0, years_of_experience / needed) if needed else 1.0
            score = years_fit * relevance
            note = (
                f"{years_of_experience:g} years of experience"
                + (f" of {needed:g} required" if needed else "")
                + f"; relevance of the experience {relevance:.2f}"
            )
        elif wanted:
            score = max(0.6 * skill_part + 0.4 * sem, list_sem)
        else:
            score = max(sem, list_sem)
        evidence = None
        if evidence_i is not None:
            line = lines[evidence_i]
            evidence = Evidence(line.text, line.start, line.end, line.section,
                                float(sims[evidence_i]))  # fmt: skip
        weight = weights.get(kind.value, 0.6) * float(requirement.weight or 1.0)
        weight *= MUST_HAVE_BOOST if requirement.must_have else 1.0
        scores.append(
            RequirementScore(
                requirement.id,
                f"req:{requirement.position}",
                requirement.text,
                kind.value,
                requirement.must_have,
                weight,
                round(score, 4),
                score >= MET_THRESHOLD,
                evidence,
                note,
            )
        )
    total = sum(s.weight for s in scores) or 1.0
    overall = round(100 * sum(s.weight * s.score for s in scores) / total, 1)
    musts = [s for s in scores if s.must_have]
    coverage = sum(s.met for s in musts) / len(musts) if musts else None
    return scores, overall, coverage
