"""Item banks, adaptive assessments and sessions, plus a simulated candidate who answers.

Plain functions like ``tests/factories.py``: each adds rows to the given session and flushes.
Right/wrong items have options ``a`` (correct) and ``b``; the simulated candidate answers
the pending item the way an examinee at ``theta`` would (or always right / always wrong).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
from sqlalchemy import text
from sqlalchemy.orm import Session

from are_workers.job_context import as_job
from are_workers.models.assessments import (
    Assessment,
    AssessmentItem,
    AssessmentKind,
    AssessmentSession,
    ItemBank,
    ItemModel,
    ItemStatus,
    NormGroup,
)
from are_workers.models.organizations import Organization
from are_workers.services.assessments import sessions
from tests.factories import make_candidate, utcnow

CHOICE_CONTENT: dict[str, Any] = {
    "stem": "Which one?",
    "options": [{"id": "a", "text": "right"}, {"id": "b", "text": "wrong"}],
    "scoring": {"key": "a"},
}


@dataclass
class Bank:
    row: ItemBank
    items: list[AssessmentItem]

    @property
    def id(self) -> uuid.UUID:
        return self.row.id

    def item(self, code: str) -> AssessmentItem:
        return next(item for item in self.items if item.code == code)


def make_bank(
    db: Session,
    org: Organization,
    *,
    n: int = 40,
    seed: int = 0,
    model: ItemModel = ItemModel.TWO_PL,
    areas: tuple[str, ...] = ("numeric", "verbal"),
    name: str | None = None,
    content_areas: dict[str, float] | None = None,
) -> Bank:
    rng = np.random.default_rng(seed)
    bank = ItemBank(
        organization_id=org.id,
        name=name or f"bank-{uuid.uuid4().hex[:6]}",
        content_areas=content_areas or {},
    )
    db.add(bank)
    db.flush()
    items = [
        AssessmentItem(
            organization_id=org.id,
            bank_id=bank.id,
            code=f"q{i:03d}",
            content=CHOICE_CONTENT,
            model=model,
            a=1.0 if model is ItemModel.ONE_PL else float(rng.uniform(0.8, 2.0)),
            b=float(rng.normal()),
            c=0.0,
            content_area=areas[i % len(areas)],
            status=ItemStatus.ACTIVE,
        )
        for i in range(n)
    ]
    db.add_all(items)
    db.flush()
    return Bank(bank, items)


def make_assessment(
    db: Session,
    org: Organization,
    bank: Bank,
    *,
    config: dict[str, Any] | None = None,
    kind: AssessmentKind = AssessmentKind.ADAPTIVE,
) -> Assessment:
    default = {"stopping": {"se_threshold": 0.45, "min_items": 5, "max_items": 12}}
    assessment = Assessment(
        organization_id=org.id,
        bank_id=bank.id,
        name="Python skills",
        kind=kind,
        config=default if config is None else config,
    )
    db.add(assessment)
    db.flush()
    return assessment


def make_norm_group(
    db: Session, org: Organization, assessment: Assessment, *, n: int = 500, seed: int = 1
) -> NormGroup:
    thetas = sorted(float(t) for t in np.random.default_rng(seed).normal(size=n))
    group = NormGroup(
        organization_id=org.id,
        assessment_id=assessment.id,
        name="2026 applicants",
        sample_size=n,
        thetas=thetas,
        mean=float(np.mean(thetas)),
        sd=float(np.std(thetas)),
        computed_at=utcnow(),
    )
    db.add(group)
    db.flush()
    return group


def make_session(
    db: Session,
    org: Organization,
    assessment: Assessment,
    *,
    candidate_id: uuid.UUID | None = None,
    minutes: float = 60,
    started_minutes_ago: float = 0,
) -> AssessmentSession:
    started = utcnow() - timedelta(minutes=started_minutes_ago)
    session = AssessmentSession(
        organization_id=org.id,
        assessment_id=assessment.id,
        candidate_id=candidate_id or make_candidate(db, org).id,
        started_at=started,
        expires_at=started + timedelta(minutes=minutes),
    )
    db.add(session)
    db.flush()
    return session


def pending_item(db: Session, session_id: uuid.UUID) -> uuid.UUID | None:
    return db.execute(
        text("SELECT next_item_id FROM adaptive_sessions WHERE assessment_session_id = :s"),
        {"s": session_id},
    ).scalar_one()


def add_response(
    db: Session,
    org_id: uuid.UUID,
    session_id: uuid.UUID,
    item_id: uuid.UUID,
    *,
    answer: dict[str, Any] | None = None,
    category: int | None = None,
) -> uuid.UUID:
    """What the ATS does when an answer arrives: insert the row with a client-made id."""
    response_id = uuid.uuid4()
    position = db.execute(
        text("SELECT count(*) FROM assessment_responses WHERE session_id = :s"), {"s": session_id}
    ).scalar_one()
    db.execute(
        text(
            """INSERT INTO assessment_responses (id, organization_id, session_id, item_id,
                                                 position, answer, category)
               VALUES (:id, :org, :s, :item, :pos, CAST(:answer AS jsonb), :category)"""
        ),
        {
            "id": response_id,
            "org": org_id,
            "s": session_id,
            "item": item_id,
            "pos": position,
            "answer": None if answer is None else json.dumps(answer),
            "category": category,
        },
    )
    return response_id


def item_params(db: Session, item_id: uuid.UUID) -> tuple[float, float]:
    row = db.execute(text("SELECT a, b FROM assessment_items WHERE id = :i"), {"i": item_id}).one()
    return float(row.a), float(row.b)


def answer_until_finished(
    db: Session,
    org_id: uuid.UUID,
    session_id: uuid.UUID,
    *,
    theta: float | None = None,
    always: bool | None = None,
    seed: int = 7,
    job_id: uuid.UUID | None = None,
    limit: int = 60,
) -> list[dict[str, Any]]:
    """Answer pending items (2PL responses at ``theta``, or ``always`` right/wrong)."""
    rng = np.random.default_rng(seed)
    outcomes: list[dict[str, Any]] = []
    for _ in range(limit):
        item_id = pending_item(db, session_id)
        if item_id is None:
            return outcomes
        if always is None:
            assert theta is not None
            a, b = item_params(db, item_id)
            correct = rng.random() < 1 / (1 + np.exp(-a * (theta - b)))
        else:
            correct = always
        rid = add_response(
            db, org_id, session_id, item_id, answer={"option": "a" if correct else "b"}
        )
        with as_job(db, job_id or uuid.uuid4()):
            outcomes.append(sessions.score_response(db, org_id, rid))
    raise AssertionError(f"session {session_id} did not finish in {limit} answers")
