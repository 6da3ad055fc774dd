"""Audit rows of portfolio deep evaluation: one per stored evaluation, in its transaction,
naming the evaluator and embedding model, the candidate only by pseudonym, and no passage,
title or filename of the portfolio."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from are_workers.crypto import subject_ref
from are_workers.errors import InvalidInputError
from are_workers.job_context import running_job
from are_workers.models.deep_evaluations import (
    DeepEvaluation,
    DeepEvaluationFinding,
    DeepEvaluationStatus,
    Portfolio,
    PortfolioItem,
)
from are_workers.models.files import File
from are_workers.services.embeddings import EmbeddingContext
from are_workers.services.portfolios import store
from are_workers.services.portfolios.evidence import SCORING_VERSION
from are_workers.services.portfolios.store import EVALUATOR_NAME, ItemAnalysisCache
from tests.factories import make_application, make_candidate
from tests.media_db.conftest import assert_pseudonymous, audit_rows
from tests.portfolios_db.conftest import ALEX, Tenant
from tests.portfolios_db.test_store import run


def _free_text(db: Session, portfolio: Portfolio) -> list[str]:
    """What the portfolio says about the person: passages, titles, filenames."""
    items = db.scalars(select(PortfolioItem).where(PortfolioItem.portfolio_id == portfolio.id))
    texts: list[str] = []
    for item in items:
        texts += [t for t in (item.title, item.description, item.url) if t]
        if item.file_id is not None:
            texts.append(db.get_one(File, item.file_id).original_filename or "")
    passages = db.scalars(
        select(DeepEvaluationFinding.evidence_passage)
        .join(DeepEvaluation)
        .where(DeepEvaluation.portfolio_id == portfolio.id)
    )
    return [t for t in (*texts, *(p for p in passages if p)) if len(t) > 3]


def test_a_stored_evaluation_is_one_audited_ai_decision_and_a_rerun_adds_none(
    tenant: Tenant, bow: EmbeddingContext, analyses: ItemAnalysisCache
) -> None:
    db = tenant.db
    application = make_application(db, tenant.candidate, tenant.job)
    portfolio = tenant.sample(ALEX)
    task_run_id = uuid.uuid4()
    outcome = run(tenant, portfolio, bow, analyses, task_run_id)
    run(tenant, portfolio, bow, ItemAnalysisCache(), uuid.uuid4())  # same fingerprint
    assert outcome.status is DeepEvaluationStatus.COMPLETED

    (row,) = audit_rows(db, tenant.org.id, store.SCORED_AUDIT_ACTION)
    assert (row.actor_type, row.entity_type, row.entity_id) == (
        "worker",
        "deep_evaluations",
        outcome.evaluation_id,
    )
    assert row.model_name == f"{EVALUATOR_NAME}+{bow.name}"
    assert row.model_version == f"{SCORING_VERSION}+{bow.version}"
    assert row.subject_ref == subject_ref(tenant.candidate.id)
    assert row.task_run_id == task_run_id
    inputs: dict[str, Any] = row.input_refs
    assert (inputs["portfolio_id"], inputs["job_id"], inputs["application_id"]) == (
        str(portfolio.id),
        str(tenant.job.id),
        str(application.id),
    )
    assert inputs["fingerprint"] == outcome.fingerprint
    assert inputs["requirements"] == len(tenant.requirements)
    items = db.scalars(select(PortfolioItem).where(PortfolioItem.portfolio_id == portfolio.id))
    expected = {str(item.id): str(item.file_id) if item.file_id else None for item in items}
    assert {i["item_id"]: i["file_id"] for i in inputs["items"]} == expected
    assert all(len(i["input_sha256"]) == 64 for i in inputs["items"])
    assert row.output_refs["deep_evaluation_id"] == str(outcome.evaluation_id)
    assert row.output_refs["status"] == "completed"
    assert row.output_refs["findings"] == outcome.findings > 0
    assert row.output_refs["items_processed"] == outcome.items_processed
    secrets = _free_text(db, portfolio)
    assert len(secrets) > 5  # titles, filenames and cited passages to look for
    assert_pseudonymous(row, tenant.candidate.full_name or "Jane Doe", *secrets)


def test_a_consent_skip_and_a_failure_are_audited_without_a_model(
    tenant: Tenant, bow: EmbeddingContext, analyses: ItemAnalysisCache
) -> None:
    db = tenant.db
    candidate = make_candidate(db, tenant.org, full_name="Zelda Quartermaine")  # no consent
    portfolio = tenant.sample(ALEX, candidate=candidate)
    outcome = run(tenant, portfolio, bow, analyses, uuid.uuid4())
    run(tenant, portfolio, bow, analyses)  # still skipped: nothing new written
    (skipped,) = audit_rows(db, tenant.org.id, store.SKIPPED_AUDIT_ACTION)
    assert skipped.entity_id == outcome.evaluation_id
    assert skipped.subject_ref == subject_ref(candidate.id) and skipped.model_name is None
    assert skipped.output_refs == {
        "deep_evaluation_id": str(outcome.evaluation_id),
        "status": "skipped",
        "reason_code": "no_consent",
    }
    assert audit_rows(db, tenant.org.id, store.SCORED_AUDIT_ACTION) == []

    args = {"portfolio_id": str(portfolio.id), "job_id": str(tenant.job.id)}
    error = InvalidInputError("Zelda Quartermaine's archive is unsafe.", code="bad_portfolio")
    with running_job(db, "portfolios.evaluate", args, tenant.org.id) as ctx:
        store.record_evaluation_failure(db, error, args, ctx)
    (failed,) = audit_rows(db, tenant.org.id, store.FAILED_AUDIT_ACTION)
    assert failed.task_run_id == ctx.job_id and failed.subject_ref == subject_ref(candidate.id)
    assert failed.output_refs["reason_code"] == "bad_portfolio"
    for row in (skipped, failed):
        assert_pseudonymous(row, "Zelda", "Quartermaine", *_free_text(db, portfolio))
