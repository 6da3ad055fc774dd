"""The ``portfolios.evaluate`` actor: its catalogue options, its body under a real ledger
claim (``current_job()`` set up as the middleware does), and its failure hook."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from are_workers.config import get_settings
from are_workers.errors import InvalidInputError, NotFoundError
from are_workers.job_context import running_job
from are_workers.models.deep_evaluations import DeepEvaluation, DeepEvaluationStatus
from are_workers.models.subscription import UsageKind, UsageRecord
from are_workers.services.embeddings import EmbeddingContext
from are_workers.services.portfolios import store
from are_workers.tasks import portfolios as actors
from are_workers.tasks import registry
from tests.portfolios_db.conftest import ALEX, Tenant

ACTOR = "portfolios.evaluate"


def test_actor_is_registered_with_its_catalogue_options() -> None:
    assert "are_workers.tasks.portfolios" in registry.ACTOR_MODULES
    assert actors.evaluate.actor_name == ACTOR
    assert actors.evaluate.queue_name == get_settings().queue_ml
    assert actors.evaluate.options["time_limit"] == 1_800_000
    assert actors.evaluate.options["on_permanent_failure"] is store.record_evaluation_failure


def test_actor_evaluates_and_summarises_for_the_ledger(
    tenant: Tenant, bow: EmbeddingContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tenant.db
    monkeypatch.setattr(actors, "default_embedding_context", lambda: bow)
    portfolio = tenant.sample(ALEX)
    args = {"portfolio_id": str(portfolio.id), "job_id": str(tenant.job.id)}
    with running_job(db, ACTOR, args, tenant.org.id) as ctx:
        actors.evaluate.fn(**args)
    assert ctx.result is not None
    assert ctx.result["status"] == "completed" and ctx.result["created"] is True
    row = db.get_one(DeepEvaluation, uuid.UUID(ctx.result["deep_evaluation_id"]))
    assert row.task_run_id == ctx.job_id
    assert "summary" not in ctx.result  # the ledger is for operations, not content
    billed = db.scalars(
        select(UsageRecord.task_run_id).where(
            UsageRecord.organization_id == tenant.org.id,
            UsageRecord.kind == UsageKind.DEEP_EVALUATION,
        )
    ).all()
    assert billed == [ctx.job_id]

    with running_job(db, ACTOR, args, tenant.org.id) as again:  # a second request
        actors.evaluate.fn(**args)
    assert again.result is not None and again.result["created"] is False
    assert again.result["deep_evaluation_id"] == ctx.result["deep_evaluation_id"]


def test_bad_ids_and_unknown_rows_fail_permanently(
    tenant: Tenant, bow: EmbeddingContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(actors, "default_embedding_context", lambda: bow)
    args = {"portfolio_id": "not-a-uuid", "job_id": str(tenant.job.id)}
    with (
        running_job(tenant.db, ACTOR, args, tenant.org.id),
        pytest.raises(InvalidInputError, match="is not a valid id"),
    ):
        actors.evaluate.fn(**args)
    missing = {"portfolio_id": str(uuid.uuid4()), "job_id": str(tenant.job.id)}
    with (
        running_job(tenant.db, ACTOR, missing, tenant.org.id),
        pytest.raises(NotFoundError, match="portfolio does not exist"),
    ):
        actors.evaluate.fn(**missing)


def test_failure_hook_records_the_reason_on_a_failed_evaluation(tenant: Tenant) -> None:
    db = tenant.db
    portfolio = tenant.sample(ALEX)
    args = {"portfolio_id": str(portfolio.id), "job_id": str(tenant.job.id)}
    error = InvalidInputError("The portfolio could not be evaluated.", code="bad_portfolio")
    with running_job(db, ACTOR, args, tenant.org.id) as ctx:
        store.record_evaluation_failure(db, error, args, ctx)
    (row,) = db.scalars(
        select(DeepEvaluation).where(DeepEvaluation.portfolio_id == portfolio.id)
    ).all()
    assert row.status is DeepEvaluationStatus.FAILED and row.overall_score is None
    assert row.error_code == "bad_portfolio"
    assert row.error_message == error.user_message
    assert row.task_run_id == ctx.job_id and row.job_id == tenant.job.id


def test_failure_hook_without_the_rows_writes_nothing(tenant: Tenant) -> None:
    db = tenant.db
    error = NotFoundError("This portfolio does not exist in the organization.")
    for args in (
        {"portfolio_id": str(uuid.uuid4()), "job_id": str(tenant.job.id)},
        {"portfolio_id": "not-a-uuid", "job_id": str(tenant.job.id)},
        {"job_id": str(tenant.job.id)},
    ):
        with running_job(db, ACTOR, {}, tenant.org.id) as ctx:
            store.record_evaluation_failure(db, error, args, ctx)
    assert (
        db.scalars(
            select(DeepEvaluation).where(DeepEvaluation.organization_id == tenant.org.id)
        ).all()
        == []
    )
