"""Portfolio deep evaluation, writing side: each item's outcome, the passages' vectors,
the findings with the passages they cite, and the audit row of an evaluation that ran no
model (a skip or a failure).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from are_workers.models.deep_evaluations import (
    DeepEvaluation,
    DeepEvaluationFinding,
    PortfolioItem,
    PortfolioStatus,
)
from are_workers.models.deep_evaluations import FindingKind as StoredFindingKind
from are_workers.models.embeddings import Embedding, EmbeddingEntity
from are_workers.services.compliance import audit
from are_workers.services.embeddings import EmbeddingContext, upsert_chunk_embeddings
from are_workers.services.portfolios.evaluate import (
    ANALYSIS_VERSION,
    ItemAnalysis,
    ItemStatus,
)
from are_workers.services.portfolios.evidence import (
    Evidence,
    EvidenceSource,
    Finding,
)


def str_or_none(value: object) -> str | None:
    return str(value) if value is not None else None


def file_id_of(items: Mapping[str, PortfolioItem], item_id: str) -> uuid.UUID | None:
    item = items.get(item_id)
    return item.file_id if item is not None else None


def audit_without_model(
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
            "application_id": str_or_none(row.application_id),
        },
        output_refs={
            "deep_evaluation_id": str(row.id),
            "status": row.status.value,
            "reason_code": reason_code,
        },
    )


def record_items(items: Mapping[str, PortfolioItem], analyses: Sequence[ItemAnalysis]) -> None:
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


def store_passage_vectors(
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
    """Where evidence is, for ``evidence_locator`` (personal: an archive member's path can
    name the person, so erasure clears it).

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


def write_findings(
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
