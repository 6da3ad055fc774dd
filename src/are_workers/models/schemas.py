"""Pydantic shapes of the JSONB documents the workers read.

Why: JSONB is flexible on purpose (custom evaluation criteria, model outputs), but a worker
that reads a malformed document fails far from whoever wrote it. The models validate these
shapes on assignment (``@validates``), and workers parse them with the same classes, so the
contract is written once. Shapes are versioned where they are likely to evolve.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from itertools import pairwise
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, model_validator


class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- jobs --------------------------------------------------------------------------------


class CustomCriterion(_Shape):
    """A recruiter-defined criterion beyond the job's requirements (e.g. "open source")."""

    key: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")
    label: str = Field(min_length=1, max_length=200)
    description: str = ""
    weight: float = Field(ge=0, le=1)


class EvaluationCriteria(_Shape):
    """``job_postings.evaluation_criteria``: how the AI evaluation weighs its evidence.

    ``kind_weights`` weighs requirement kinds (skill, experience, ...); a requirement's own
    ``weight`` scales within its kind. Weights need not sum to 1: the evaluator normalises.
    """

    version: Literal[1] = 1
    kind_weights: dict[
        Literal["skill", "experience", "education", "language", "certification", "other"], float
    ] = Field(default_factory=dict)
    custom: list[CustomCriterion] = Field(default_factory=list)
    pass_threshold: float = Field(default=0.5, ge=0, le=1)
    must_have_policy: Literal["flag", "reject", "ignore"] = "flag"

    @model_validator(mode="after")
    def _check(self) -> EvaluationCriteria:
        if any(w < 0 for w in self.kind_weights.values()):
            raise ValueError("kind weights must be non-negative")
        keys = [c.key for c in self.custom]
        if len(keys) != len(set(keys)):
            raise ValueError("custom criterion keys must be unique")
        return self


# --- candidates --------------------------------------------------------------------------


class ResumeSection(_Shape):
    """One section of a parsed resume, with its span in ``parsed_resumes.raw_text``."""

    name: str = Field(min_length=1, max_length=64)  # summary, experience, education, skills, ...
    text: str
    char_start: int = Field(ge=0)
    char_end: int = Field(ge=0)

    @model_validator(mode="after")
    def _span(self) -> ResumeSection:
        if self.char_end < self.char_start:
            raise ValueError("char_end must not precede char_start")
        return self


class ResumeSections(RootModel[list[ResumeSection]]):
    """``parsed_resumes.sections``: ordered sections."""


# --- video -------------------------------------------------------------------------------


class TranscriptWord(_Shape):
    word: str
    start_ms: int = Field(ge=0)
    end_ms: int = Field(ge=0)
    probability: float | None = Field(default=None, ge=0, le=1)


class TranscriptWords(RootModel[list[TranscriptWord]]):
    """``transcript_segments.words``: word timings (in the segment's media time base)."""


class ChunkLanguage(_Shape):
    language: str = Field(min_length=2, max_length=8)
    probability: float = Field(ge=0, le=1)


class ChunkLanguages(RootModel[list[ChunkLanguage]]):
    """``transcription_checkpoints.chunk_languages``: the language heard in each committed
    chunk, by chunk index, so a resumed transcription restores every chunk exactly."""


# --- assessments -------------------------------------------------------------------------


class GrmThresholds(RootModel[list[float]]):
    """``assessment_items.thresholds``: strictly increasing GRM category boundaries."""

    @model_validator(mode="after")
    def _ordered(self) -> GrmThresholds:
        values = self.root
        if not values:
            raise ValueError("a GRM item needs at least one threshold")
        if any(b <= a for a, b in pairwise(values)):
            raise ValueError("GRM thresholds must be strictly increasing")
        return self


class AdaptiveState(_Shape):
    """``adaptive_sessions.engine_state``: what the CAT engine needs to pick the next item."""

    version: Literal[1] = 1
    administered: list[uuid.UUID] = Field(default_factory=list)
    responses: list[int] = Field(default_factory=list)
    theta: float = 0.0
    se: float | None = Field(default=None, ge=0)
    content_counts: dict[str, int] = Field(default_factory=dict)
    rng_seed: int | None = None

    @model_validator(mode="after")
    def _aligned(self) -> AdaptiveState:
        if len(self.responses) > len(self.administered):
            raise ValueError("more responses than administered items")
        return self


class NormThetas(RootModel[list[float]]):
    """``norm_groups.thetas``: the norm sample's ability estimates, sorted ascending."""

    @model_validator(mode="after")
    def _sorted(self) -> NormThetas:
        if not self.root:
            raise ValueError("a norm group needs at least one theta")
        if any(b < a for a, b in pairwise(self.root)):
            raise ValueError("norm thetas must be sorted ascending")
        return self


# --- matching and evaluation -------------------------------------------------------------


class RequirementMatch(_Shape):
    """Version 1 (the rule scorer): the requirement's best chunk similarity."""

    requirement_id: uuid.UUID
    similarity: float = Field(ge=-1, le=1)
    best_chunk_embedding_id: uuid.UUID | None = None


class RequirementProbability(_Shape):
    """Version 2 (the evidence judge): the calibrated P(requirement met)."""

    requirement_id: uuid.UUID
    probability: float = Field(ge=0, le=1)


class MatchDetails(_Shape):
    """``match_results.details`` (ids and numbers only, never text). Version 1: per-requirement
    similarities of the rule scorer; version 2: the judge's per-requirement probabilities and
    the evaluation (``ai_evaluations.id``) the rank comes from."""

    version: Literal[1, 2] = 1
    method: str = "cosine-max"
    requirements: list[RequirementMatch] | list[RequirementProbability] = Field(
        default_factory=list
    )
    evaluation_id: uuid.UUID | None = None


# --- compliance --------------------------------------------------------------------------


class TableCounts(RootModel[dict[str, int]]):
    """``retention_runs.counts`` / erasure reports: rows affected per table."""

    @model_validator(mode="after")
    def _non_negative(self) -> TableCounts:
        if any(v < 0 for v in self.root.values()):
            raise ValueError("counts must be non-negative")
        return self


class VerificationReport(_Shape):
    """``data_subject_requests.verification_report``: proof an erasure/export completed.

    Counts and table names only: the report outlives the subject's data.
    """

    version: Literal[1] = 1
    verified_at: datetime
    deleted: dict[str, int] = Field(default_factory=dict)
    anonymized: dict[str, int] = Field(default_factory=dict)
    residual: dict[str, int] = Field(default_factory=dict)  # rows still found (should be empty)
    held: list[str] = Field(default_factory=list)  # tables skipped because of a legal hold


class BiasGroupMetric(_Shape):
    group: str
    count: int = Field(ge=0)
    selection_rate: float | None = Field(default=None, ge=0, le=1)
    scoring_rate: float | None = Field(default=None, ge=0, le=1)  # share above the median
    impact_ratio: float | None = Field(default=None, ge=0)
    suppressed: bool = False  # below the minimum group size: no rate published


class BiasAuditMetrics(_Shape):
    """``bias_audit_reports.metrics``: aggregated, small groups suppressed.

    ``method`` is how the tool's output is judged (NYC LL 144): a tool that selects gets
    selection rates, a tool that scores gets scoring rates (share of the category above the
    median score of the whole sample, ``median_score``). ``source`` says which output was
    audited; ``source_id`` names the assessment for assessment scores.
    """

    version: Literal[1] = 1
    dimension: Literal[
        "gender", "ethnicity", "gender_x_ethnicity", "disability", "veteran", "age_band"
    ]
    method: Literal["selection_rate", "scoring_rate"] = "selection_rate"
    source: (
        Literal["ai_recommendation", "human_decision", "ai_score", "assessment_score"] | None
    ) = None
    source_id: str | None = None
    median_score: float | None = None
    groups: list[BiasGroupMetric]


def validated(shape: type[BaseModel], value: Any) -> Any:
    """Validate ``value`` against ``shape`` and return it as plain JSON for the column."""
    return shape.model_validate(value).model_dump(mode="json")
