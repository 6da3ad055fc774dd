"""Portfolio deep evaluation against the database: rows in, ``deep_evaluations`` out.

The pure pipeline (:func:`~.evaluate.evaluate_portfolio`) never touches the database; this
module feeds it and keeps what it found: the steps of :func:`evaluate_portfolio_for_job`
are here, the reading side in ``loading`` and the writing side in ``writing``. It loads the
portfolio and its items (tenant-scoped; a link is metadata and is never fetched), reads the
items' files from storage, loads the job's requirements, and writes:

* one ``deep_evaluations`` row: status, overall score, the rules model version, the
  pipeline versions and the input fingerprint. A skip (no consent, an Art. 22 objection, an
  empty portfolio, nothing readable, no requirements) carries its reason in
  ``error_code``/``error_message``;
* ``deep_evaluation_findings``: one per requirement and one per concern, citing the item,
  its file and the verbatim passage with its locator and offsets;
* each item's outcome on ``portfolio_items`` (status, error, structure-only stats);
* the passages' vectors as ``portfolio_chunk`` embeddings, and one usage record per job;
* one audit row per stored evaluation, in the same transaction: an AI decision naming the
  evaluator and embedding model with their versions, each item by id and input hash, the
  evaluation by id with counts; the candidate by pseudonym, never a passage or a filename.

Why the fingerprint decides: an evaluation is a pure function of the items, the requirements
and the versions, which :func:`~.evaluate.portfolio_fingerprint` hashes. A redelivered or
replayed job, or a second request for an unchanged portfolio, finds the latest evaluation of
the same (portfolio, job) with that fingerprint and returns it without writing anything; a
changed item, requirement or model gives a new fingerprint and a new evaluation, and the old
one stays as history. ``deep_evaluations`` has no input-hash column, so the fingerprint is
kept in ``pipeline_versions`` beside the versions it covers, and a transaction-scoped
advisory lock per (portfolio, job) makes the check-then-insert safe against a concurrent
duplicate.

Why re-runs cost what changed: embedding is nearly all of the cost, so vectors already
stored for the same text by the same model (this module's ``portfolio_chunk`` rows, and the
requirement vectors that ``matching.embed_job`` keeps, called here as the resume evaluation
calls it) answer the embedder instead of a forward pass; and item analyses stay in a small
per-process cache, reused only when the item's ``input_sha256`` (content, metadata,
analysis version) is unchanged.
"""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from are_workers.config import Settings, get_settings
from are_workers.crypto import json_sha256
from are_workers.errors import NotFoundError, PermanentError
from are_workers.job_context import current_job_id
from are_workers.models.ai_evaluations import ModelKind
from are_workers.models.applications import Application
from are_workers.models.deep_evaluations import (
    DeepEvaluation,
    DeepEvaluationFinding,
    DeepEvaluationStatus,
    Portfolio,
    PortfolioItem,
    PortfolioStatus,
)
from are_workers.models.jobs import JobRequirement
from are_workers.models.subscription import UsageKind, UsageUnit
from are_workers.services.compliance import audit
from are_workers.services.embeddings import EmbeddingContext
from are_workers.services.matching.postings import embed_job, load_job
from are_workers.services.model_registry import (
    ensure_model_version,
    record_usage,
)
from are_workers.services.portfolios.evaluate import (
    ItemAnalysis,
    ItemStatus,
    PortfolioEvaluation,
    PortfolioLimits,
    evaluate_portfolio,
    pipeline_versions,
    portfolio_fingerprint,
)
from are_workers.services.portfolios.evidence import (
    SCORING_VERSION,
    SUPPORT_THRESHOLD,
)
from are_workers.services.portfolios.loading import (
    KnownVectors,
    consent_skip_reason,
    load_items,
    load_portfolio,
    read_items,
    requirement_of,
    stored_vectors,
)
from are_workers.services.portfolios.writing import (
    audit_without_model,
    file_id_of,
    record_items,
    store_passage_vectors,
    str_or_none,
    write_findings,
)
from are_workers.services.skills import SkillTaxonomy, get_taxonomy

__all__ = [
    "EVALUATOR_NAME",
    "ItemAnalysisCache",
    "PortfolioEvaluationOutcome",
    "evaluate_portfolio_for_job",
    "record_evaluation_failure",
]


log = structlog.get_logger(__name__)

EVALUATOR_NAME = "are-portfolio-evaluator"
"""The ``ai_model_versions`` row (kind ``rules``, version ``SCORING_VERSION``) that every
deep evaluation names as the model that wrote its findings."""


SCORED_AUDIT_ACTION = "deep_evaluation.scored"
SKIPPED_AUDIT_ACTION = "deep_evaluation.skipped"
FAILED_AUDIT_ACTION = "deep_evaluation.failed"

_PLACEHOLDER_STATUSES = frozenset({DeepEvaluationStatus.QUEUED, DeepEvaluationStatus.RUNNING})

SKIP_TEXT: dict[str, str] = {
    "automated_processing_objected": "The candidate objected to (or withdrew consent for) "
    "automated processing, so the portfolio was not evaluated automatically; review it "
    "manually.",
    "art22_objection": "The candidate objected to automated decision-making (GDPR Art. 22), "
    "so the portfolio was not evaluated automatically; review it manually.",
    "no_consent": "The candidate has not consented to AI evaluation, so the portfolio was "
    "not evaluated automatically; review it manually.",
}
"""Why an evaluation was skipped before any item was read, for a recruiter."""


# --- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PortfolioEvaluationOutcome:
    """What a run stored (or found already stored). ``created`` is False when an evaluation
    with the same fingerprint was returned instead of computing a new one."""

    evaluation_id: uuid.UUID
    status: DeepEvaluationStatus
    overall_score: float | None
    fingerprint: str
    created: bool
    reason_code: str | None = None
    findings: int = 0
    items_processed: int = 0
    items_failed: int = 0
    embedded: int = 0
    reused_vectors: int = 0
    reused_items: int = 0

    def as_result(self) -> dict[str, Any]:
        """The ledger row's summary: ids, counts and status, never content."""
        return {
            "deep_evaluation_id": str(self.evaluation_id),
            "status": self.status.value,
            "overall_score": self.overall_score,
            "created": self.created,
            "reason_code": self.reason_code,
            "findings": self.findings,
            "items_processed": self.items_processed,
            "items_failed": self.items_failed,
            "embedded": self.embedded,
            "reused_vectors": self.reused_vectors,
            "reused_items": self.reused_items,
        }


class ItemAnalysisCache:
    """A small, thread-safe LRU of item analyses by item id, shared by a worker's threads.

    Why in memory: analyses hold passages (the candidate's text), which the schema keeps
    nowhere but in vectors' ``chunk_text``; re-reading an unchanged archive is what a
    re-run after an edit would otherwise repeat. An entry is only used when its
    ``input_sha256`` matches the item's current content, and an erased item's entry can
    never be asked for again (its id is gone) and ages out.
    """

    def __init__(self, max_items: int = 128) -> None:
        self.max_items = max_items
        self._entries: OrderedDict[str, ItemAnalysis] = OrderedDict()
        self._lock = threading.Lock()

    def get_many(self, item_ids: Iterable[str]) -> dict[str, ItemAnalysis]:
        with self._lock:
            found = {}
            for item_id in item_ids:
                analysis = self._entries.get(item_id)
                if analysis is not None:
                    self._entries.move_to_end(item_id)
                    found[item_id] = analysis
            return found

    def put_many(self, analyses: Iterable[ItemAnalysis]) -> None:
        with self._lock:
            for analysis in analyses:
                self._entries[analysis.item_id] = analysis
                self._entries.move_to_end(analysis.item_id)
            while len(self._entries) > self.max_items:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


_ANALYSES = ItemAnalysisCache()


# --- evaluations on the database ---------------------------------------------------------------


def _lock(session: Session, portfolio_id: uuid.UUID, job_id: uuid.UUID) -> None:
    """Serialise evaluations of one (portfolio, job) until commit: two deliveries of the
    same job must not both find nothing stored and both insert."""
    session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
        {"key": f"are.deep_evaluation:{portfolio_id}:{job_id}"},
    )


def _latest(
    session: Session, organization_id: uuid.UUID, portfolio_id: uuid.UUID, job_id: uuid.UUID
) -> DeepEvaluation | None:
    """The most recent evaluation of this (portfolio, job): only it may be returned as
    current, so a portfolio changed and changed back is evaluated again, not answered with
    an older row."""
    return session.scalars(
        select(DeepEvaluation)
        .where(
            DeepEvaluation.organization_id == organization_id,
            DeepEvaluation.portfolio_id == portfolio_id,
            DeepEvaluation.job_id == job_id,
        )
        .order_by(
            func.coalesce(DeepEvaluation.started_at, DeepEvaluation.created_at).desc(),
            DeepEvaluation.created_at.desc(),
        )
        .limit(1)
    ).first()


def _fingerprint_of(evaluation: DeepEvaluation | None) -> str | None:
    if evaluation is None:
        return None
    value = (evaluation.pipeline_versions or {}).get("fingerprint")
    return value if isinstance(value, str) else None


def _evaluator_id(session: Session) -> uuid.UUID:
    return ensure_model_version(
        session,
        kind=ModelKind.RULES,
        name=EVALUATOR_NAME,
        version=SCORING_VERSION,
        params={"support_threshold": SUPPORT_THRESHOLD},
    )


def _evaluation_row(
    session: Session,
    latest: DeepEvaluation | None,
    *,
    organization_id: uuid.UUID,
    portfolio_id: uuid.UUID,
    job_id: uuid.UUID,
    **values: Any,
) -> DeepEvaluation:
    """A new row, or the upstream app's ``queued``/``running`` placeholder filled in (an
    app may create one to show progress; completing it avoids a stale twin)."""
    if latest is not None and latest.status in _PLACEHOLDER_STATUSES and not latest.findings:
        row = latest
    else:
        row = DeepEvaluation(
            organization_id=organization_id, portfolio_id=portfolio_id, job_id=job_id
        )
        session.add(row)
    for name, value in values.items():
        setattr(row, name, value)
    session.flush()
    return row


def _application_id(
    session: Session, organization_id: uuid.UUID, candidate_id: uuid.UUID, job_id: uuid.UUID
) -> uuid.UUID | None:
    return session.scalar(
        select(Application.id)
        .where(
            Application.organization_id == organization_id,
            Application.candidate_id == candidate_id,
            Application.job_id == job_id,
        )
        .order_by(Application.created_at.desc())
        .limit(1)
    )


def _stored_outcome(session: Session, evaluation: DeepEvaluation) -> PortfolioEvaluationOutcome:
    findings = session.scalar(
        select(func.count()).where(DeepEvaluationFinding.deep_evaluation_id == evaluation.id)
    )
    statuses = dict(
        session.execute(
            select(PortfolioItem.status, func.count())
            .where(
                PortfolioItem.organization_id == evaluation.organization_id,
                PortfolioItem.portfolio_id == evaluation.portfolio_id,
            )
            .group_by(PortfolioItem.status)
        ).all()
    )
    return PortfolioEvaluationOutcome(
        evaluation_id=evaluation.id,
        status=evaluation.status,
        overall_score=evaluation.overall_score,
        fingerprint=_fingerprint_of(evaluation) or "",
        created=False,
        reason_code=evaluation.error_code,
        findings=int(findings or 0),
        items_processed=int(statuses.get(PortfolioStatus.PROCESSED, 0)),
        items_failed=int(statuses.get(PortfolioStatus.FAILED, 0)),
    )


def _skip_fingerprint(reason: str, portfolio_id: uuid.UUID, job_id: uuid.UUID) -> str:
    """A consent skip reads nothing, so its fingerprint is the reason and the pair alone."""
    document = {"skipped": reason, "portfolio": str(portfolio_id), "job": str(job_id)}
    return json_sha256(document)


def evaluate_portfolio_for_job(
    session: Session,
    *,
    organization_id: uuid.UUID,
    portfolio_id: uuid.UUID,
    job_id: uuid.UUID,
    embedding: EmbeddingContext,
    settings: Settings | None = None,
    taxonomy: SkillTaxonomy | None = None,
    analyses: ItemAnalysisCache | None = None,
) -> PortfolioEvaluationOutcome:
    """Deep-evaluate one portfolio against one job's requirements and store the result.

    Idempotent: when the latest evaluation of the pair has the same fingerprint it is
    returned and nothing is written. Bad input is an outcome, not an error: a consent skip,
    an empty or unreadable portfolio and unsafe archives are recorded with their reasons.
    Raises :class:`NotFoundError` only when the portfolio or the job is not in the
    organization.
    """
    settings = settings or get_settings()
    taxonomy = taxonomy or get_taxonomy()
    analyses = _ANALYSES if analyses is None else analyses
    started_at = datetime.now(UTC)
    portfolio = load_portfolio(session, organization_id, portfolio_id)
    job, job_requirements = load_job(session, organization_id, job_id)
    _lock(session, portfolio.id, job.id)
    evaluator_id = _evaluator_id(session)
    latest = _latest(session, organization_id, portfolio.id, job.id)
    common = _evaluation_columns(session, portfolio, job.id, evaluator_id, started_at)

    skip = consent_skip_reason(session, portfolio.candidate_id)
    if skip is not None:
        return _skip_for_consent(session, portfolio, latest, common, skip)

    items = load_items(session, portfolio)
    inputs, unreadable = read_items(session, items, settings)
    requirements = [requirement_of(r) for r in job_requirements]
    model_key = f"{embedding.name}@{embedding.version}"
    fingerprint = portfolio_fingerprint(
        inputs, requirements, pipeline_versions(model_key, taxonomy)
    )
    if latest is not None and _fingerprint_of(latest) == fingerprint:
        return _stored_outcome(session, latest)

    model_id, vectors = _embedder_with_stored_vectors(
        session, organization_id, job.id, job_requirements, items, embedding
    )
    cached = analyses.get_many(item.item_id for item in inputs)
    result = evaluate_portfolio(
        inputs,
        requirements,
        embed=vectors,
        embedding_model=model_key,
        limits=PortfolioLimits.from_settings(settings),
        taxonomy=taxonomy,
        previous={**cached, **unreadable},
    )
    embedded, reused_vectors = vectors.embedded, vectors.reused  # before storing the passages
    analyses.put_many(a for a in result.items if a.item_id not in unreadable)
    items_by_id = {str(item.id): item for item in items}
    _store_item_outcomes(session, portfolio, items_by_id, result, model_id, embedding, vectors)
    status = _evaluation_status(result)
    row = _evaluation_row(
        session, latest, **common,
        status=status, overall_score=result.overall_score, summary=result.summary,
        error_code=result.reason_code, error_message=result.reason,
        pipeline_versions={**result.model_versions, "fingerprint": result.fingerprint},
        completed_at=datetime.now(UTC),
    )  # fmt: skip
    findings = write_findings(session, row, result.findings, items_by_id)
    failed = sum(1 for a in result.items if a.status is ItemStatus.FAILED)
    _audit_scored(
        session,
        row,
        portfolio,
        job.id,
        common["application_id"],
        len(requirements),
        result,
        items_by_id,
        findings=findings,
        failed=failed,
        embedding=embedding,
        embedding_model_id=model_id,
    )
    _settle_portfolio(session, portfolio, items, result, evaluator_id)
    used = {id(a) for a in result.items}
    log.info(
        "portfolio_evaluated",
        deep_evaluation_id=str(row.id),
        status=status.value,
        items=len(result.items),
        failed=failed,
        embedded=embedded,
        seconds=result.seconds,
    )
    return PortfolioEvaluationOutcome(
        evaluation_id=row.id,
        status=status,
        overall_score=result.overall_score,
        fingerprint=result.fingerprint,
        created=True,
        reason_code=result.reason_code,
        findings=findings,
        items_processed=len(result.items) - failed,
        items_failed=failed,
        embedded=embedded,
        reused_vectors=reused_vectors,
        reused_items=sum(1 for a in cached.values() if id(a) in used),
    )


def _evaluation_columns(
    session: Session,
    portfolio: Portfolio,
    job_id: uuid.UUID,
    evaluator_id: uuid.UUID,
    started_at: datetime,
) -> dict[str, Any]:
    """What every evaluation row of this run carries, whatever its outcome."""
    organization_id = portfolio.organization_id
    return {
        "organization_id": organization_id,
        "portfolio_id": portfolio.id,
        "job_id": job_id,
        "application_id": _application_id(session, organization_id, portfolio.candidate_id, job_id),
        "model_version_id": evaluator_id,
        "task_run_id": current_job_id(),
        "started_at": started_at,
    }


def _skip_for_consent(
    session: Session,
    portfolio: Portfolio,
    latest: DeepEvaluation | None,
    common: dict[str, Any],
    skip: str,
) -> PortfolioEvaluationOutcome:
    """A ``skipped`` evaluation carrying the consent reason, audited; nothing is read."""
    fingerprint = _skip_fingerprint(skip, portfolio.id, common["job_id"])
    if latest is not None and _fingerprint_of(latest) == fingerprint:
        return _stored_outcome(session, latest)
    row = _evaluation_row(
        session, latest, **common,
        status=DeepEvaluationStatus.SKIPPED, overall_score=None, summary=SKIP_TEXT[skip],
        error_code=skip, error_message=SKIP_TEXT[skip],
        pipeline_versions={"fingerprint": fingerprint}, completed_at=datetime.now(UTC),
    )  # fmt: skip
    audit_without_model(
        session, row, portfolio.candidate_id, SKIPPED_AUDIT_ACTION, skip, common["task_run_id"]
    )
    log.info("portfolio_evaluation_skipped", reason=skip, deep_evaluation_id=str(row.id))
    return PortfolioEvaluationOutcome(
        row.id, row.status, None, fingerprint, created=True, reason_code=skip
    )


def _embedder_with_stored_vectors(
    session: Session,
    organization_id: uuid.UUID,
    job_id: uuid.UUID,
    job_requirements: Sequence[JobRequirement],
    items: Sequence[PortfolioItem],
    embedding: EmbeddingContext,
) -> tuple[uuid.UUID, KnownVectors]:
    """The embedding model's id, and its embedder answering from the vectors stored for the
    same text. The requirements' vectors are stored (or found unchanged) first, as the
    resume evaluation does."""
    embed_job(
        session,
        organization_id=organization_id,
        job_id=job_id,
        embedding=embedding,
    )
    model_id = embedding.ensure_model(session)
    vectors = KnownVectors(
        embedding.embed,
        stored_vectors(
            session,
            organization_id=organization_id,
            model_id=model_id,
            item_ids=[item.id for item in items],
            requirement_ids=[r.id for r in job_requirements],
        ),
    )
    return model_id, vectors


def _store_item_outcomes(
    session: Session,
    portfolio: Portfolio,
    items_by_id: Mapping[str, PortfolioItem],
    result: PortfolioEvaluation,
    model_id: uuid.UUID,
    embedding: EmbeddingContext,
    vectors: KnownVectors,
) -> None:
    """Each item's outcome, and the vectors of the passages the evaluation embedded."""
    record_items(items_by_id, result.items)
    if result.passages_embedded:
        store_passage_vectors(
            session,
            organization_id=portfolio.organization_id,
            candidate_id=portfolio.candidate_id,
            analyses=result.items,
            model_id=model_id,
            embedding=dataclasses.replace(embedding, embed=vectors),
        )


def _evaluation_status(result: PortfolioEvaluation) -> DeepEvaluationStatus:
    status = DeepEvaluationStatus(result.outcome.value)
    if status is DeepEvaluationStatus.COMPLETED and result.overall_score is None:
        status = DeepEvaluationStatus.NEEDS_REVIEW  # completed rows must carry a score
    return status


def _audit_scored(
    session: Session,
    row: DeepEvaluation,
    portfolio: Portfolio,
    job_id: uuid.UUID,
    application_id: uuid.UUID | None,
    requirements: int,
    result: PortfolioEvaluation,
    items_by_id: Mapping[str, PortfolioItem],
    *,
    findings: int,
    failed: int,
    embedding: EmbeddingContext,
    embedding_model_id: uuid.UUID,
) -> None:
    """The evaluation as an AI decision: evaluator and embedding model with their versions,
    each item by id and input hash, the evaluation by id with counts."""
    audit.record(
        session,
        organization_id=portfolio.organization_id,
        action=SCORED_AUDIT_ACTION,
        entity_type="deep_evaluations",
        entity_id=row.id,
        subject_id=portfolio.candidate_id,
        model_name=f"{EVALUATOR_NAME}+{embedding.name}",
        model_version=f"{SCORING_VERSION}+{embedding.version}",
        input_refs={
            "portfolio_id": str(portfolio.id),
            "job_id": str(job_id),
            "application_id": str_or_none(application_id),
            "requirements": requirements,
            "items": [
                {
                    "item_id": analysis.item_id,
                    "file_id": str_or_none(file_id_of(items_by_id, analysis.item_id)),
                    "input_sha256": analysis.input_sha256,
                }
                for analysis in result.items
            ],
            "fingerprint": result.fingerprint,
        },
        output_refs={
            "deep_evaluation_id": str(row.id),
            "status": row.status.value,
            "reason_code": result.reason_code,
            "findings": findings,
            "items_processed": len(result.items) - failed,
            "items_failed": failed,
            "passages_embedded": result.passages_embedded,
            "embedding_model_id": str(embedding_model_id),
        },
    )


def _settle_portfolio(
    session: Session,
    portfolio: Portfolio,
    items: Sequence[PortfolioItem],
    result: PortfolioEvaluation,
    evaluator_id: uuid.UUID,
) -> None:
    """The portfolio ``failed`` when no item could be read; one usage record per score."""
    readable = not items or any(a.status is ItemStatus.PROCESSED for a in result.items)
    portfolio.status = PortfolioStatus.PROCESSED if readable else PortfolioStatus.FAILED
    if result.overall_score is not None:
        record_usage(
            session,
            organization_id=portfolio.organization_id,
            kind=UsageKind.DEEP_EVALUATION,
            quantity=1,
            unit=UsageUnit.ITEM,
            model_version_id=evaluator_id,
        )
    session.flush()


# --- failure hook ---------------------------------------------------------------------------


def record_evaluation_failure(
    session: Session, error: PermanentError, kwargs: dict[str, Any], ctx: Any
) -> None:
    """``on_permanent_failure``: a ``failed`` evaluation carrying the reason, after rollback.

    Nothing is written when the portfolio or the job is not in the organization: the row
    needs both, and the ledger row already says which one is missing.
    """
    organization_id = ctx.organization_id
    try:
        portfolio_id = uuid.UUID(str(kwargs["portfolio_id"]))
        job_id = uuid.UUID(str(kwargs["job_id"]))
    except (KeyError, ValueError):
        return
    if organization_id is None:
        return
    try:
        portfolio = load_portfolio(session, organization_id, portfolio_id)
        job, _ = load_job(session, organization_id, job_id)
    except NotFoundError:
        return
    _lock(session, portfolio.id, job.id)
    now = datetime.now(UTC)
    task_run_id = getattr(ctx, "job_id", None)
    row = _evaluation_row(
        session,
        _latest(session, organization_id, portfolio.id, job.id),
        organization_id=organization_id,
        portfolio_id=portfolio.id,
        job_id=job.id,
        model_version_id=_evaluator_id(session),
        status=DeepEvaluationStatus.FAILED,
        overall_score=None,
        error_code=(error.code or "permanent_error")[:64],
        error_message=error.user_message,
        application_id=_application_id(session, organization_id, portfolio.candidate_id, job.id),
        task_run_id=task_run_id,
        started_at=now,
        completed_at=now,
    )
    audit_without_model(
        session,
        row,
        portfolio.candidate_id,
        FAILED_AUDIT_ACTION,
        row.error_code or "permanent_error",
        task_run_id,
    )
