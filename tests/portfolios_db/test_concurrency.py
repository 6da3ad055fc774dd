"""Two deliveries of the same evaluation at once (a redelivery racing the original): the
advisory lock per (portfolio, job) makes the second wait, find the first's row, and write
nothing. Needs committed rows, so it runs in a database of its own."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from are_workers.models.deep_evaluations import DeepEvaluation
from are_workers.services.portfolios.store import (
    ItemAnalysisCache,
    PortfolioEvaluationOutcome,
    evaluate_portfolio_for_job,
)
from tests.portfolios_db.conftest import ALEX, bow_context, make_tenant


@pytest.fixture
def own_engine(isolated_database: str) -> Iterator[Engine]:
    from are_workers.models.engine import make_engine

    engine = make_engine(isolated_database, pool_size=3, application_name="are-tests")
    yield engine
    engine.dispose()


def test_a_racing_duplicate_waits_and_finds_the_stored_evaluation(own_engine: Engine) -> None:
    with Session(own_engine) as setup:
        tenant = make_tenant(setup)
        portfolio = tenant.sample(ALEX)
        setup.commit()
        ids = {
            "organization_id": tenant.org.id,
            "portfolio_id": portfolio.id,
            "job_id": tenant.job.id,
        }
    bow, analyses = bow_context(), ItemAnalysisCache()
    results: dict[str, PortfolioEvaluationOutcome] = {}

    def duplicate() -> None:
        with Session(own_engine) as session:
            results["second"] = evaluate_portfolio_for_job(
                session, embedding=bow, analyses=analyses, **ids
            )
            session.commit()

    with Session(own_engine) as first:
        results["first"] = evaluate_portfolio_for_job(
            first, embedding=bow, analyses=analyses, **ids
        )
        racer = threading.Thread(target=duplicate)
        racer.start()
        racer.join(timeout=1.0)
        assert racer.is_alive(), "the duplicate must wait for the first to commit"
        first.commit()
    racer.join(timeout=30)
    assert not racer.is_alive()

    assert results["first"].created and not results["second"].created
    assert results["second"].evaluation_id == results["first"].evaluation_id
    with Session(own_engine) as check:
        count = check.scalar(
            select(func.count()).where(DeepEvaluation.portfolio_id == portfolio.id)
        )
    assert count == 1
