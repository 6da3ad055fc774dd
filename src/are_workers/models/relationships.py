"""Relationships from core models to the AI modules, wired once every module is imported.

Why here: the dependency points one way. Core modules (candidates, jobs, applications) know
nothing of the AI feature modules; each feature module declares its forward side
(``AIEvaluation.candidate``) and this module adds the reverse collections on the core
classes (``Candidate.ai_evaluations``). The core classes declare these attributes under
``TYPE_CHECKING`` so they stay typed.
"""

from __future__ import annotations

from sqlalchemy.orm import configure_mappers, relationship

from are_workers.models.ai_evaluations import AIEvaluation
from are_workers.models.candidates import Candidate
from are_workers.models.deep_evaluations import Portfolio

Candidate.ai_evaluations = relationship(
    AIEvaluation,
    back_populates="candidate",
    foreign_keys=[AIEvaluation.candidate_id],
    passive_deletes=True,
)
Candidate.portfolios = relationship(
    Portfolio,
    back_populates="candidate",
    foreign_keys=[Portfolio.candidate_id],
    passive_deletes=True,
)


def configure() -> None:
    """Resolve every mapper now (fails fast on a broken relationship, not on first query)."""
    configure_mappers()
