"""The sample portfolio with the real MiniLM embedder: what a recruiter would read."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from are_workers.models.deep_evaluations import (
    DeepEvaluation,
    DeepEvaluationFinding,
    DeepEvaluationStatus,
    FindingKind,
)
from are_workers.services.embeddings import EmbeddingContext
from are_workers.services.portfolios.store import ItemAnalysisCache, evaluate_portfolio_for_job
from tests.portfolios_db.conftest import ALEX, Tenant

pytestmark = pytest.mark.slow  # loads MiniLM (about 15 s on a busy CPU)


def test_backend_sample_is_supported_where_its_work_shows_it(
    tenant: Tenant, embedding: EmbeddingContext
) -> None:
    db = tenant.db
    portfolio = tenant.sample(ALEX)
    outcome = evaluate_portfolio_for_job(
        db, organization_id=tenant.org.id, portfolio_id=portfolio.id, job_id=tenant.job.id,
        embedding=embedding, analyses=ItemAnalysisCache(),
    )  # fmt: skip
    row = db.get_one(DeepEvaluation, outcome.evaluation_id)
    assert row.status is DeepEvaluationStatus.COMPLETED
    assert row.overall_score is not None and row.overall_score >= 50
    assert row.pipeline_versions["embedding"] == f"{embedding.name}@{embedding.version}"
    findings = {
        f.requirement_id: f
        for f in db.scalars(
            select(DeepEvaluationFinding).where(DeepEvaluationFinding.deep_evaluation_id == row.id)
        )
    }
    by_text = {r.text: findings[r.id] for r in tenant.requirements}
    postgres = by_text["PostgreSQL, including schema design and query optimization"]
    assert postgres.kind is FindingKind.STRENGTH
    assert postgres.evidence_passage and postgres.evidence_file_id is not None
    python = by_text["Python (Django, FastAPI or Flask)"]
    assert python.kind is FindingKind.STRENGTH
    kafka = by_text["Kafka or another message queue"]
    assert kafka.kind is FindingKind.GAP  # nothing in the portfolio shows a queue
