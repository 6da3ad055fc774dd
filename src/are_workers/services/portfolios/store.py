"""Portfolio deep evaluation against the database: rows in, ``deep_evaluations`` out.

The pure pipeline (:func:`~.evaluate.evaluate_portfolio`) never touches the database; this
module feeds it and keeps what it found. It loads the portfolio and its items (tenant-scoped;
a link is metadata and is never fetched), reads the items' files from storage, loads the
job's requirements, and writes:

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
import json
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import structlog
from sqlalchemy import and_, delete, func, or_, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from are_workers.config import Settings, get_settings
from are_workers.crypto import json_sha256
from are_workers.errors import InvalidInputError, NotFoundError, PermanentError
from are_workers.job_context import current_job_id
from are_workers.models.ai_evaluations import ModelKind
from are_workers.models.applications import Application
from are_workers.models.deep_evaluations import (
    DeepEvaluation,
    DeepEvaluationFinding,
    DeepEvaluationStatus,
    Portfolio,
    PortfolioItem,
    PortfolioItemKind,
    PortfolioStatus,
)
from are_workers.models.deep_evaluations import FindingKind as StoredFindingKind
from are_workers.models.embeddings import Embedding, EmbeddingEntity
from are_workers.models.files import File, FileStatus
from are_workers.models.jobs import JobRequirement
from are_workers.models.subscription import UsageKind, UsageUnit
from are_workers.services import consent, storage
from are_workers.services.compliance import audit
from are_workers.services.consent import Activity
from are_workers.services.embeddings import EmbeddingContext, upsert_chunk_embeddings
from are_workers.services.matching.postings import embed_job, load_job
from are_workers.services.model_registry import (
    ensure_embedding_model,
    ensure_model_version,
    record_usage,
)
from are_workers.services.portfolios.evaluate import (
    ANALYSIS_VERSION,
    ItemAnalysis,
    ItemKind,
    ItemStatus,
    PortfolioItemInput,
    PortfolioLimits,
    evaluate_portfolio,
    pipeline_versions,
    portfolio_fingerprint,
)
from are_workers.services.portfolios.evidence import (
    SCORING_VERSION,
    SUPPORT_THRESHOLD,
    Evidence,
    EvidenceSource,
    Finding,
    Requirement,
)
from are_workers.services.skills import SkillTaxonomy, get_taxonomy

__all__ = [
    "EVALUATOR_NAME",
    "ItemAnalysisCache",
    "PortfolioEvaluationOutcome",
    "consent_skip_reason",
    "evaluate_portfolio_for_job",
    "record_evaluation_failure",
]

log = structlog.get_logger(__name__)

EVALUATOR_NAME = "are-portfolio-evaluator"
"""The ``ai_model_versions`` row (kind ``rules``, version ``SCORING_VERSION``) that every
deep evaluation names as the model that wrote its findings."""

_UNREADABLE = b"\x00are-workers:unreadable-file:"
"""Stand-in bytes for an item whose file could not be read: the item keeps a place in the
fingerprint (restoring the file changes it) and gets a failed analysis of its own."""

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


class _KnownVectors:
    """The embedder, answering from vectors already known for exactly the same text.

    Passed to the evaluation as its ``embed``; it also remembers what it computed, so the
    passages' vectors are stored afterwards without a second forward pass.
    """

    def __init__(self, embed: Callable[[Sequence[str]], np.ndarray], known: dict[str, Any]):
        self._embed = embed
        self.known: dict[str, np.ndarray] = {
            key: np.asarray(vector, dtype=np.float32) for key, vector in known.items()
        }
        self.embedded = 0
        self.reused = 0

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self.known))
        self.reused += sum(1 for t in dict.fromkeys(texts) if t in self.known)
        if missing:
            fresh = np.asarray(self._embed(missing), dtype=np.float32)
            if fresh.ndim != 2 or fresh.shape[0] != len(missing):
                raise ValueError(f"embed returned shape {fresh.shape} for {len(missing)} texts")
            self.known.update(zip(missing, fresh, strict=True))
            self.embedded += len(missing)
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([self.known[t] for t in texts])


# --- loading -----------------------------------------------------------------------------------


def _load_portfolio(
    session: Session, organization_id: uuid.UUID, portfolio_id: uuid.UUID
) -> Portfolio:
    portfolio = session.scalar(
        select(Portfolio).where(
            Portfolio.id == portfolio_id, Portfolio.organization_id == organization_id
        )
    )
    if portfolio is None:
        raise NotFoundError(
            "This portfolio does not exist in the organization (it may have been deleted).",
            code="portfolio_not_found",
        )
    return portfolio


def _load_items(session: Session, portfolio: Portfolio) -> list[PortfolioItem]:
    return list(
        session.scalars(
            select(PortfolioItem)
            .where(
                PortfolioItem.organization_id == portfolio.organization_id,
                PortfolioItem.portfolio_id == portfolio.id,
            )
            .order_by(PortfolioItem.position, PortfolioItem.id)
        )
    )


def consent_skip_reason(session: Session, candidate_id: uuid.UUID) -> str | None:
    """Why the portfolio must not be evaluated (``services.consent``, a ranking judgment)."""
    refusal = consent.candidate_refusal(session, candidate_id, Activity.RANKING)
    return refusal.code if refusal is not None else None


def _requirement(row: JobRequirement) -> Requirement:
    return Requirement(
        id=str(row.id),
        text=row.text,
        kind=row.kind.value,
        skills=(row.skill.name,) if row.skill is not None else (),
        must_have=row.must_have,
        weight=float(row.weight),
    )


def _read_items(
    session: Session, items: Sequence[PortfolioItem], settings: Settings
) -> tuple[list[PortfolioItemInput], dict[str, ItemAnalysis]]:
    """Each item as the evaluation's input, plus a failed analysis for each unreadable file.

    Why an unreadable file fails its item and not the job: like a corrupt upload, one file
    deleted or missing from storage should not hide the rest of the candidate's work.
    """
    file_ids = [item.file_id for item in items if item.file_id is not None]
    files = (
        {
            file.id: file
            for file in session.scalars(
                select(File).where(
                    File.id.in_(file_ids),
                    File.organization_id == items[0].organization_id,
                )
            )
        }
        if file_ids
        else {}
    )
    inputs: list[PortfolioItemInput] = []
    unreadable: dict[str, ItemAnalysis] = {}
    for item in items:
        item_id = str(item.id)
        if item.kind is PortfolioItemKind.LINK or item.file_id is None:
            inputs.append(
                PortfolioItemInput(
                    item_id, url=item.url, title=item.title, description=item.description
                )
            )
            continue
        file = files.get(item.file_id)
        failure: tuple[str, str] | None = None
        data = b""
        if file is None or file.status is FileStatus.DELETED or file.deleted_at is not None:
            failure = (
                "file_deleted",
                "The file was deleted before the portfolio was evaluated. Upload it again.",
            )
        else:
            try:
                data = storage.read_bytes(
                    file.storage_key,
                    file.organization_id,
                    max_bytes=settings.max_file_bytes,
                    settings=settings,
                )
            except InvalidInputError as exc:
                failure = (exc.code, exc.user_message)
        metadata = {
            "title": item.title,
            "description": item.description,
            "filename": file.original_filename if file is not None else None,
        }
        if failure is None:
            inputs.append(PortfolioItemInput(item_id, data=data, **metadata))
            continue
        code, message = failure
        stand_in = PortfolioItemInput(item_id, data=_UNREADABLE + code.encode(), **metadata)
        inputs.append(stand_in)
        unreadable[item_id] = ItemAnalysis(
            item_id=item_id,
            kind=ItemKind(item.kind.value),
            status=ItemStatus.FAILED,
            input_sha256=stand_in.input_sha256(),
            error_code=code,
            error_message=message,
            label=stand_in.label,
        )
    return inputs, unreadable


def _stored_vectors(
    session: Session,
    *,
    organization_id: uuid.UUID,
    model_id: uuid.UUID,
    item_ids: Sequence[uuid.UUID],
    requirement_ids: Sequence[uuid.UUID],
) -> dict[str, Any]:
    """Vectors this model already computed for the portfolio's passages and the job's
    requirements, by the exact text they embed."""
    scopes = []
    if item_ids:
        scopes.append(
            and_(
                Embedding.entity_type == EmbeddingEntity.PORTFOLIO_CHUNK,
                Embedding.entity_id.in_(item_ids),
            )
        )
    if requirement_ids:
        scopes.append(
            and_(
                Embedding.entity_type == EmbeddingEntity.JOB_REQUIREMENT,
                Embedding.entity_id.in_(requirement_ids),
            )
        )
    if not scopes:
        return {}
    rows = session.execute(
        select(Embedding.chunk_text, Embedding.embedding).where(
            Embedding.organization_id == organization_id,
            Embedding.embedding_model_id == model_id,
            or_(*scopes),
        )
    )
    return {chunk_text: vector for chunk_text, vector in rows if chunk_text}


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
    task_run_id = current_job_id()
    settings = settings or get_settings()
    taxonomy = taxonomy or get_taxonomy()
    analyses = _ANALYSES if analyses is None else analyses
    started_at = datetime.now(UTC)
    portfolio = _load_portfolio(session, organization_id, portfolio_id)
    job, job_requirements = load_job(session, organization_id, job_id)
    _lock(session, portfolio.id, job.id)
    evaluator_id = _evaluator_id(session)
    latest = _latest(session, organization_id, portfolio.id, job.id)
    common: dict[str, Any] = {
        "organization_id": organization_id,
        "portfolio_id": portfolio.id,
        "job_id": job.id,
        "application_id": _application_id(session, organization_id, portfolio.candidate_id, job.id),
        "model_version_id": evaluator_id,
        "task_run_id": task_run_id,
        "started_at": started_at,
    }

    skip = consent_skip_reason(session, portfolio.candidate_id)
    if skip is not None:
        fingerprint = _skip_fingerprint(skip, portfolio.id, job.id)
        if latest is not None and _fingerprint_of(latest) == fingerprint:
            return _stored_outcome(session, latest)
        row = _evaluation_row(
            session, latest, **common,
            status=DeepEvaluationStatus.SKIPPED, overall_score=None, summary=SKIP_TEXT[skip],
            error_code=skip, error_message=SKIP_TEXT[skip],
            pipeline_versions={"fingerprint": fingerprint}, completed_at=datetime.now(UTC),
        )  # fmt: skip
        _audit_without_model(
            session, row, portfolio.candidate_id, SKIPPED_AUDIT_ACTION, skip, task_run_id
        )
        log.info("portfolio_evaluation_skipped", reason=skip, deep_evaluation_id=str(row.id))
        return PortfolioEvaluationOutcome(
            row.id, row.status, None, fingerprint, created=True, reason_code=skip
        )

    items = _load_items(session, portfolio)
    inputs, unreadable = _read_items(session, items, settings)
    requirements = [_requirement(r) for r in job_requirements]
    model_key = f"{embedding.name}@{embedding.version}"
    fingerprint = portfolio_fingerprint(
        inputs, requirements, pipeline_versions(model_key, taxonomy)
    )
    if latest is not None and _fingerprint_of(latest) == fingerprint:
        return _stored_outcome(session, latest)

    # The requirements' vectors, stored (or found unchanged) as the resume evaluation does.
    embed_job(
        session,
        organization_id=organization_id,
        job_id=job.id,
        embedding=embedding,
    )
    model_id = ensure_embedding_model(
        session,
        name=embedding.name,
        version=embedding.version,
        dimension=embedding.dimension,
        max_tokens=embedding.max_tokens,
    )
    vectors = _KnownVectors(
        embedding.embed,
        _stored_vectors(
            session,
            organization_id=organization_id,
            model_id=model_id,
            item_ids=[item.id for item in items],
            requirement_ids=[r.id for r in job_requirements],
        ),
    )
    cached = analyses.get_many(item.item_id for item in inputs)
    previous = {**cached, **unreadable}
    result = evaluate_portfolio(
        inputs,
        requirements,
        embed=vectors,
        embedding_model=model_key,
        limits=PortfolioLimits.from_settings(settings),
        taxonomy=taxonomy,
        previous=previous,
    )
    embedded, reused_vectors = vectors.embedded, vectors.reused  # before storing the passages
    analyses.put_many(a for a in result.items if a.item_id not in unreadable)
    items_by_id = {str(item.id): item for item in items}
    _record_items(items_by_id, result.items)
    if result.passages_embedded:
        _store_passage_vectors(
            session,
            organization_id=organization_id,
            candidate_id=portfolio.candidate_id,
            analyses=result.items,
            model_id=model_id,
            embedding=dataclasses.replace(embedding, embed=vectors),
        )
    status = DeepEvaluationStatus(result.outcome.value)
    if status is DeepEvaluationStatus.COMPLETED and result.overall_score is None:
        status = DeepEvaluationStatus.NEEDS_REVIEW  # completed rows must carry a score
    row = _evaluation_row(
        session, latest, **common,
        status=status, overall_score=result.overall_score, summary=result.summary,
        error_code=result.reason_code, error_message=result.reason,
        pipeline_versions={**result.model_versions, "fingerprint": result.fingerprint},
        completed_at=datetime.now(UTC),
    )  # fmt: skip
    findings = _write_findings(session, row, result.findings, items_by_id)
    failed = sum(1 for a in result.items if a.status is ItemStatus.FAILED)
    audit.record(
        session,
        organization_id=organization_id,
        action=SCORED_AUDIT_ACTION,
        entity_type="deep_evaluations",
        entity_id=row.id,
        subject_id=portfolio.candidate_id,
        model_name=f"{EVALUATOR_NAME}+{embedding.name}",
        model_version=f"{SCORING_VERSION}+{embedding.version}",
        input_refs={
            "portfolio_id": str(portfolio.id),
            "job_id": str(job.id),
            "application_id": _str_or_none(common["application_id"]),
            "requirements": len(requirements),
            "items": [
                {
                    "item_id": analysis.item_id,
                    "file_id": _str_or_none(_file_id(items_by_id, analysis.item_id)),
                    "input_sha256": analysis.input_sha256,
                }
                for analysis in result.items
            ],
            "fingerprint": result.fingerprint,
        },
        output_refs={
            "deep_evaluation_id": str(row.id),
            "status": status.value,
            "reason_code": result.reason_code,
            "findings": findings,
            "items_processed": len(result.items) - failed,
            "items_failed": failed,
            "passages_embedded": result.passages_embedded,
            "embedding_model_id": str(model_id),
        },
    )
    readable = not items or any(a.status is ItemStatus.PROCESSED for a in result.items)
    portfolio.status = PortfolioStatus.PROCESSED if readable else PortfolioStatus.FAILED
    if result.overall_score is not None:
        record_usage(
            session,
            organization_id=organization_id,
            kind=UsageKind.DEEP_EVALUATION,
            quantity=1,
            unit=UsageUnit.ITEM,
            model_version_id=evaluator_id,
        )
    session.flush()
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


# --- writing -------------------------------------------------------------------------------------


def _str_or_none(value: object) -> str | None:
    return str(value) if value is not None else None


def _file_id(items: Mapping[str, PortfolioItem], item_id: str) -> uuid.UUID | None:
    item = items.get(item_id)
    return item.file_id if item is not None else None


def _audit_without_model(
    session: Session,
    row: DeepEvaluation,
    candidate_id: uuid.UUID,
    action: str,
    reason_code: str,
    task_run_id: uuid.UUID | None,
) -> None:
    """A stored evaluation that no model produced (a consent skip, a failure): who, which
    portfolio and job, and why, by code."""
    audit.record(
        session,
        organization_id=row.organization_id,
        action=action,
        entity_type="deep_evaluations",
        entity_id=row.id,
        subject_id=candidate_id,
        input_refs={
            "portfolio_id": str(row.portfolio_id),
            "job_id": str(row.job_id),
            "application_id": _str_or_none(row.application_id),
        },
        output_refs={
            "deep_evaluation_id": str(row.id),
            "status": row.status.value,
            "reason_code": reason_code,
        },
    )


def _record_items(items: Mapping[str, PortfolioItem], analyses: Sequence[ItemAnalysis]) -> None:
    """Each item's outcome; ``stats`` keeps structure only (counts, languages, formats)."""
    for analysis in analyses:
        item = items.get(analysis.item_id)
        if item is None:
            continue
        item.status = PortfolioStatus(analysis.status.value)
        item.error_code = analysis.error_code[:64] if analysis.error_code else None
        item.error_message = analysis.error_message
        item.stats = _json_safe(
            {
                **analysis.stats,
                "detected_kind": analysis.kind.value,
                "files": analysis.files,
                "passages": len(analysis.passages),
                "notes": list(analysis.notes),
                "input_sha256": analysis.input_sha256,
                "analysis_version": ANALYSIS_VERSION,
            }
        )


def _json_safe(value: Any) -> Any:
    """Stats as JSON would read them back (tuples become lists, odd scalars strings)."""
    return json.loads(json.dumps(value, default=str))


def _store_passage_vectors(
    session: Session,
    *,
    organization_id: uuid.UUID,
    candidate_id: uuid.UUID,
    analyses: Sequence[ItemAnalysis],
    model_id: uuid.UUID,
    embedding: EmbeddingContext,
) -> None:
    """Upsert each item's passage vectors; a failed item's and a removed item's go.

    The vectors are owned by the candidate, so erasing the candidate erases them too.
    """
    for analysis in analyses:
        passages = analysis.passages if analysis.status is ItemStatus.PROCESSED else ()
        upsert_chunk_embeddings(
            session,
            organization_id=organization_id,
            entity_type=EmbeddingEntity.PORTFOLIO_CHUNK,
            entity_id=uuid.UUID(analysis.item_id),
            owner={"candidate_id": candidate_id},
            chunks=[
                (index, p.source.value, p.text_for_embedding(), p.char_start, p.char_end)
                for index, p in enumerate(passages)
            ],
            model_id=model_id,
            embedding=embedding,
        )
    session.execute(
        delete(Embedding).where(
            Embedding.organization_id == organization_id,
            Embedding.candidate_id == candidate_id,
            Embedding.entity_type == EmbeddingEntity.PORTFOLIO_CHUNK,
            Embedding.entity_id.not_in(
                select(PortfolioItem.id).where(PortfolioItem.organization_id == organization_id)
            ),
        )
    )


def _where(evidence: Evidence) -> dict[str, Any]:
    """Where evidence is, for the not-personal ``evidence_locator``.

    A document's ``path`` is the upload's original filename, which often carries the
    candidate's name; the finding's ``evidence_file_id`` names that file instead.
    """
    locator = evidence.locator()
    if evidence.source is EvidenceSource.DOCUMENT:
        locator.pop("path", None)
    locator["item_id"] = evidence.item_id
    return locator


def _locator(finding: Finding) -> dict[str, Any]:
    evidence = finding.evidence
    if evidence is None:
        return {"item_id": finding.item_id} if finding.item_id else {}
    locator = _where(evidence)
    if evidence.semantic is not None:
        locator["similarity"] = evidence.semantic
    if evidence.matched_skills:
        locator["matched_skills"] = list(evidence.matched_skills)
    if evidence.detail:
        locator["detail"] = evidence.detail
    if finding.supporting:
        locator["supporting"] = [_where(s) | {"score": s.score} for s in finding.supporting]
    return locator


def _write_findings(
    session: Session,
    evaluation: DeepEvaluation,
    findings: Sequence[Finding],
    items: Mapping[str, PortfolioItem],
) -> int:
    rows = []
    for finding in findings:
        item = items.get(finding.item_id) if finding.item_id else None
        evidence = finding.evidence
        start, end = (evidence.char_start, evidence.char_end) if evidence else (None, None)
        if start is None or end is None:
            start = end = None
        rows.append(
            {
                "organization_id": evaluation.organization_id,
                "deep_evaluation_id": evaluation.id,
                "requirement_id": uuid.UUID(finding.requirement_id)
                if finding.requirement_id
                else None,
                "portfolio_item_id": item.id if item is not None else None,
                "kind": StoredFindingKind(finding.kind.value),
                "score": finding.score,
                "summary": finding.summary,
                "evidence_file_id": item.file_id if item is not None else None,
                "evidence_passage": evidence.passage if evidence is not None else None,
                "evidence_locator": _json_safe(_locator(finding)),
                "evidence_char_start": start,
                "evidence_char_end": end,
            }
        )
    if rows:
        session.execute(insert(DeepEvaluationFinding), rows)
    return len(rows)


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
        portfolio = _load_portfolio(session, organization_id, portfolio_id)
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
    _audit_without_model(
        session,
        row,
        portfolio.candidate_id,
        FAILED_AUDIT_ACTION,
        row.error_code or "permanent_error",
        task_run_id,
    )
