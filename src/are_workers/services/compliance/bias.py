"""Bias audits of the AI evaluation and of the human decisions that follow it.

NYC Local Law 144 asks for selection rates and impact ratios per sex, race/ethnicity and
their intersection; the EU AI Act asks high-risk systems to monitor for bias. Both
decisions are audited, from the same applications in the period:

* **AI recommendation**: the application's latest completed AI evaluation scored at or above
  the shortlist threshold (``ARE_BIAS_SHORTLIST_SCORE``, on the 0 to 1 scale of
  ``overall_score / 100``). One report per model version (the tool being audited).
* **Human decision**: the application was advanced by a person past its first stage (any
  later stage other than *rejected*) or hired. Reported with no model version.

LL 144 treats a tool that outputs a *score* differently from one that selects: for scores the
rate is the **scoring rate**, the share of a category scoring above the median score of the
whole sample (unknown category included in the median, excluded from the rates). Two
outputs are scores and are audited that way too, next to the selection rates:

* **AI score**: the same latest AI evaluations' ``overall_score``, one report per model version;
* **Assessment score**: the final ability score of completed assessment sessions (the latest
  per candidate and assessment), one report per assessment.

The categories come from voluntary self-identification, held apart, encrypted, and read
here only under the ``are_special_category_reader`` role; only aggregates leave this module.
A category smaller than ``ARE_BIAS_MIN_GROUP_SIZE`` is reported as too small (count only,
no rate), not flagged: a ratio over three people is noise, not evidence. People who did not
answer are counted as *unknown* and excluded from rates, as LL 144 prescribes. A group is
flagged when its impact ratio (its rate over the highest group's rate) is below 0.8, the
EEOC four-fifths rule.
"""

from __future__ import annotations

import statistics
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import text
from sqlalchemy.orm import Session

from are_workers import crypto
from are_workers.config import Settings, get_settings
from are_workers.errors import NotFoundError
from are_workers.job_context import current_job_id
from are_workers.models.fairness import BiasAuditReport, BiasReportStatus
from are_workers.services.compliance import audit
from are_workers.services.compliance.keys import special_category_access

log = structlog.get_logger(__name__)

FOUR_FIFTHS = 0.8
UNKNOWN = "unknown"
SELF_ID_TABLE = "candidate_self_identifications"


@dataclass(frozen=True)
class Decision:
    application_id: uuid.UUID
    candidate_id: uuid.UUID
    model_version_id: uuid.UUID
    ai_selected: bool
    human_selected: bool
    ai_score: float | None = None


@dataclass(frozen=True)
class AssessmentScore:
    candidate_id: uuid.UUID
    assessment_id: uuid.UUID
    score: float


_DECISIONS = text(
    """
    WITH latest AS (
        SELECT DISTINCT ON (e.application_id)
               e.application_id, e.candidate_id, e.model_version_id, e.overall_score
        FROM ai_evaluations e
        WHERE e.organization_id = :org AND e.status = 'completed' AND e.application_id IS NOT NULL
          AND e.completed_at >= :start AND e.completed_at < :end
          AND (CAST(:job AS uuid) IS NULL OR e.job_id = CAST(:job AS uuid))
        ORDER BY e.application_id, e.completed_at DESC
    )
    SELECT l.application_id, l.candidate_id, l.model_version_id, l.overall_score,
           l.overall_score / 100.0 >= :threshold AS ai_selected,
           (a.status = 'hired' OR EXISTS (
                SELECT 1 FROM application_stage_history h
                JOIN pipeline_stages s ON s.id = h.to_stage_id
                WHERE h.application_id = a.id AND s.kind NOT IN ('applied', 'rejected')
           )) AS human_selected
    FROM latest l JOIN applications a ON a.id = l.application_id
    """
)


def decisions(
    session: Session,
    organization_id: uuid.UUID,
    start: datetime,
    end: datetime,
    *,
    job_id: uuid.UUID | None,
    threshold: float,
) -> list[Decision]:
    rows = session.execute(
        _DECISIONS,
        {
            "org": organization_id,
            "start": start,
            "end": end,
            "job": str(job_id) if job_id else None,
            "threshold": threshold,
        },
    ).all()
    return [
        Decision(
            r.application_id,
            r.candidate_id,
            r.model_version_id,
            bool(r.ai_selected),
            bool(r.human_selected),
            float(r.overall_score) if r.overall_score is not None else None,
        )
        for r in rows
    ]


_ASSESSMENT_SCORES = text(
    """
    SELECT DISTINCT ON (s.assessment_id, s.candidate_id) s.candidate_id, s.assessment_id, s.theta
    FROM assessment_sessions s
    JOIN assessments a ON a.organization_id = s.organization_id AND a.id = s.assessment_id
    WHERE s.organization_id = :org AND s.status = 'completed' AND s.theta IS NOT NULL
      AND s.completed_at >= :start AND s.completed_at < :end
      AND (CAST(:job AS uuid) IS NULL OR a.job_id = CAST(:job AS uuid))
    ORDER BY s.assessment_id, s.candidate_id, s.completed_at DESC
    """
)


def assessment_scores(
    session: Session,
    organization_id: uuid.UUID,
    start: datetime,
    end: datetime,
    *,
    job_id: uuid.UUID | None,
) -> list[AssessmentScore]:
    """Final scores of the assessment sessions completed in the period (latest per person)."""
    rows = session.execute(
        _ASSESSMENT_SCORES,
        {
            "org": organization_id,
            "start": start,
            "end": end,
            "job": str(job_id) if job_id else None,
        },
    ).all()
    return [AssessmentScore(r.candidate_id, r.assessment_id, float(r.theta)) for r in rows]


def self_identifications(
    session: Session, organization_id: uuid.UUID, candidate_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, dict[str, str]]:
    """Decrypted answers per candidate (only here, only for aggregation)."""
    columns = ("gender", "ethnicity", "disability_status", "veteran_status", "age_band")
    with special_category_access(session):
        rows = session.execute(
            text(
                "SELECT candidate_id, declined_to_answer, gender, ethnicity, disability_status, "
                "veteran_status, age_band FROM candidate_self_identifications "
                "WHERE organization_id = :o AND candidate_id = ANY(:ids)"
            ),
            {"o": organization_id, "ids": [str(c) for c in candidate_ids]},
        ).all()
    out: dict[uuid.UUID, dict[str, str]] = {}
    for row in rows:
        answers: dict[str, str] = {}
        for column in columns:
            value = crypto.decrypt(getattr(row, column), table=SELF_ID_TABLE, column=column)
            if value and value != crypto.REDACTED and not row.declined_to_answer:
                answers[column] = value.strip().lower()
        out[row.candidate_id] = answers
    return out


#: Report dimension → how a candidate's answers map to a category.
DIMENSIONS: dict[str, Callable[[dict[str, str]], str]] = {
    "gender": lambda a: a.get("gender", UNKNOWN),
    "ethnicity": lambda a: a.get("ethnicity", UNKNOWN),
    "gender_x_ethnicity": lambda a: (
        f"{a['gender']} / {a['ethnicity']}" if "gender" in a and "ethnicity" in a else UNKNOWN
    ),
    "disability": lambda a: a.get("disability_status", UNKNOWN),
    "veteran": lambda a: a.get("veteran_status", UNKNOWN),
    "age_band": lambda a: a.get("age_band", UNKNOWN),
}


def group_metrics(outcomes: list[tuple[str, bool]], min_group_size: int) -> list[dict[str, Any]]:
    """Selection rate and impact ratio per category (the ``BiasGroupMetric`` shape)."""
    counts: dict[str, int] = defaultdict(int)
    selected: dict[str, int] = defaultdict(int)
    for category, chosen in outcomes:
        counts[category] += 1
        selected[category] += int(chosen)
    rated = {
        g: selected[g] / counts[g] for g in counts if g != UNKNOWN and counts[g] >= min_group_size
    }
    best = max(rated.values(), default=0.0)
    groups = []
    for group in sorted(counts):
        rate = rated.get(group)
        groups.append(
            {
                "group": group,
                "count": counts[group],
                "selection_rate": round(rate, 4) if rate is not None else None,
                "impact_ratio": round(rate / best, 4) if rate is not None and best > 0 else None,
                "suppressed": rate is None,
            }
        )
    return groups


def scoring_rate_metrics(
    scores: list[tuple[str, float]], min_group_size: int
) -> tuple[float | None, list[dict[str, Any]]]:
    """The sample's median score and, per category, its scoring rate and impact ratio.

    The scoring rate is the share of the category scoring *above* the median of the whole
    sample (unknown included, as it is part of the sample), so ties at the median count as
    not above; the impact ratio is a category's rate over the highest category's rate.
    """
    if not scores:
        return None, []
    median = float(statistics.median(score for _, score in scores))
    groups = group_metrics([(c, score > median) for c, score in scores], min_group_size)
    for group in groups:
        group["scoring_rate"] = group.pop("selection_rate")
    return median, groups


def flags(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """Groups whose impact ratio is under four fifths (never a suppressed group)."""
    return [
        {"dimension": metrics["dimension"], "group": g["group"], "impact_ratio": g["impact_ratio"]}
        for g in metrics["groups"]
        if not g["suppressed"] and g["impact_ratio"] is not None and g["impact_ratio"] < FOUR_FIFTHS
    ]


@dataclass
class BiasAuditRun:
    organization_id: uuid.UUID
    period_start: datetime
    period_end: datetime
    report_ids: list[uuid.UUID] = field(default_factory=list)
    sample_sizes: dict[str, int] = field(default_factory=dict)  # "ai:<version>" / "human"
    flagged: list[dict[str, Any]] = field(default_factory=list)
    too_small: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "organization_id": str(self.organization_id),
            "period_start": self.period_start.isoformat(),
            "period_end": self.period_end.isoformat(),
            "reports": len(self.report_ids),
            "sample_sizes": self.sample_sizes,
            "flagged": self.flagged,
            "too_small": self.too_small,
        }


@dataclass(frozen=True)
class _Population:
    """One audited output: selections (bool) or scores (float) of the people in the sample."""

    label: str
    source: str
    model_version_id: uuid.UUID | None
    people: list[tuple[dict[str, str], Any]]
    source_id: str | None = None

    @property
    def is_score(self) -> bool:
        return self.source in {"ai_score", "assessment_score"}


def _store_population(
    session: Session,
    run: BiasAuditRun,
    population: _Population,
    job_id: uuid.UUID | None,
    settings: Settings,
    task_run_id: uuid.UUID | None,
) -> None:
    """One report per dimension for one population; flags and small groups into ``run``."""
    label, people = population.label, population.people
    run.sample_sizes[label] = len(people)
    for dimension, categorize in DIMENSIONS.items():
        outcomes = [(categorize(a), outcome) for a, outcome in people]
        metrics: dict[str, Any] = {
            "version": 1,
            "dimension": dimension,
            "source": population.source,
            "source_id": population.source_id,
        }
        if population.is_score:
            median, groups = scoring_rate_metrics(outcomes, settings.bias_min_group_size)
            metrics |= {"method": "scoring_rate", "median_score": median, "groups": groups}
        else:
            groups = group_metrics(outcomes, settings.bias_min_group_size)
            metrics |= {"method": "selection_rate", "groups": groups}
        report = BiasAuditReport(
            organization_id=run.organization_id,
            job_id=job_id,
            model_version_id=population.model_version_id,
            period_start=run.period_start,
            period_end=run.period_end,
            min_group_size=settings.bias_min_group_size,
            sample_size=len(people),
            metrics=metrics,
            status=BiasReportStatus.DRAFT,
            task_run_id=task_run_id,
        )
        session.add(report)
        session.flush()
        run.report_ids.append(report.id)
        for flag in flags(metrics):
            run.flagged.append({"decision": label, **flag})
        for g in groups:
            if g["suppressed"] and g["group"] != UNKNOWN:
                run.too_small.append(
                    {
                        "decision": label,
                        "dimension": dimension,
                        "group": g["group"],
                        "count": g["count"],
                    }
                )


def run_bias_audit(
    session: Session,
    organization_id: uuid.UUID,
    *,
    period_days: int = 365,
    job_id: uuid.UUID | None = None,
    now: datetime | None = None,
    settings: Settings | None = None,
) -> BiasAuditRun:
    """Compute and store one report per (decision or score, dimension); returns the summary."""
    task_run_id = current_job_id()
    settings = settings or get_settings()
    if (
        session.execute(
            text("SELECT 1 FROM organizations WHERE id = :o"), {"o": organization_id}
        ).first()
        is None
    ):
        raise NotFoundError(f"Organization {organization_id} does not exist.")
    end = now or session.execute(text("SELECT now()")).scalar_one()
    start = end - timedelta(days=period_days)
    found = decisions(
        session, organization_id, start, end, job_id=job_id, threshold=settings.bias_shortlist_score
    )
    scored = assessment_scores(session, organization_id, start, end, job_id=job_id)
    answers = self_identifications(
        session, organization_id, {d.candidate_id for d in found} | {s.candidate_id for s in scored}
    )
    run = BiasAuditRun(organization_id, start, end)
    populations: list[_Population] = []
    for model_version in sorted({d.model_version_id for d in found}, key=str):
        of_version = [d for d in found if d.model_version_id == model_version]
        populations.append(
            _Population(
                f"ai:{model_version}",
                "ai_recommendation",
                model_version,
                [(answers.get(d.candidate_id, {}), d.ai_selected) for d in of_version],
            )
        )
        populations.append(
            _Population(
                f"ai_score:{model_version}",
                "ai_score",
                model_version,
                [
                    (answers.get(d.candidate_id, {}), d.ai_score)
                    for d in of_version
                    if d.ai_score is not None
                ],
            )
        )
    if found:
        populations.append(
            _Population(
                "human",
                "human_decision",
                None,
                [(answers.get(d.candidate_id, {}), d.human_selected) for d in found],
            )
        )
    for assessment_id in sorted({s.assessment_id for s in scored}, key=str):
        populations.append(
            _Population(
                f"assessment:{assessment_id}",
                "assessment_score",
                None,
                [
                    (answers.get(s.candidate_id, {}), s.score)
                    for s in scored
                    if s.assessment_id == assessment_id
                ],
                source_id=str(assessment_id),
            )
        )
    for population in populations:
        _store_population(session, run, population, job_id, settings, task_run_id)
    audit.record(
        session,
        organization_id=organization_id,
        action="bias_audit.completed",
        entity_type="bias_audit",
        input_refs={
            "period_start": start.isoformat(),
            "period_end": end.isoformat(),
            "job_id": str(job_id) if job_id else None,
        },
        output_refs={"reports": [str(i) for i in run.report_ids], "flagged": len(run.flagged)},
    )
    if run.flagged:
        log.warning("bias_audit_flagged", organization_id=str(organization_id), flags=run.flagged)
    return run


def latest_reports(session: Session, organization_id: uuid.UUID) -> list[dict[str, Any]]:
    """The most recent run's reports, as exportable JSON rows."""
    rows = session.execute(
        text(
            """
            SELECT r.id, r.job_id, r.model_version_id, v.name AS model_name,
                   v.version AS model_version, r.period_start, r.period_end, r.min_group_size,
                   r.sample_size, r.metrics, r.status::text AS status, r.created_at
            FROM bias_audit_reports r LEFT JOIN ai_model_versions v ON v.id = r.model_version_id
            WHERE r.organization_id = :o AND r.period_end = (
                SELECT max(period_end) FROM bias_audit_reports WHERE organization_id = :o)
            ORDER BY r.model_version_id NULLS LAST, r.metrics->>'source',
                     r.metrics->>'source_id', r.metrics->>'dimension'
            """
        ),
        {"o": organization_id},
    ).all()
    out = []
    for r in rows:
        record = {
            k: (str(v) if isinstance(v, uuid.UUID | datetime) else v) for k, v in r._mapping.items()
        }
        record["decision"] = r.metrics.get("source") or (
            "ai_recommendation" if r.model_version_id else "human_decision"
        )
        record["flags"] = flags(r.metrics)
        out.append(record)
    return out
