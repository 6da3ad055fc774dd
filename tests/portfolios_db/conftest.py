"""Portfolios on the database: a consenting candidate's portfolio, built from the shipped
samples (stored as an upload would be), and a job read from the sample posting.

Most tests use a deterministic bag-of-words stand-in for the embedder (fast, and it lets a
test see exactly which texts were embedded); ``test_real_embedder`` runs MiniLM.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from are_workers.models.candidates import (
    Candidate,
    CandidateConsent,
    ConsentPurpose,
    ConsentSource,
    ConsentStatus,
)
from are_workers.models.deep_evaluations import Portfolio, PortfolioItem, PortfolioItemKind
from are_workers.models.files import File, FilePurpose, FileStatus
from are_workers.models.jobs import JobPosting, JobRequirement
from are_workers.models.organizations import Organization
from are_workers.services import storage
from are_workers.services.embeddings import EmbeddingContext
from are_workers.services.matching.postings import create_job, load_job, parse_job_markdown
from are_workers.services.portfolios.store import ItemAnalysisCache
from tests.factories import make_candidate, make_org
from tests.unit.test_portfolio_evidence import bag_of_words

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples" / "portfolios"
JOBS = ROOT / "samples" / "jobs"
ALEX = SAMPLES / "backend_alex_chen"


class CountingEmbed:
    """The bag-of-words stand-in, remembering every text it was asked to embed."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        self.texts.extend(texts)
        return bag_of_words(list(texts))


def bow_context(embed: CountingEmbed | None = None) -> EmbeddingContext:
    return EmbeddingContext(
        embed=embed or CountingEmbed(),
        count_tokens=None,
        name="bag-of-words",
        version="test-1",
        dimension=512,
        max_tokens=512,
    )


@pytest.fixture
def embedder() -> CountingEmbed:
    return CountingEmbed()


@pytest.fixture
def bow(embedder: CountingEmbed) -> EmbeddingContext:
    return bow_context(embedder)


@pytest.fixture
def analyses() -> ItemAnalysisCache:
    """A cache of this test's own, as if in a fresh worker process."""
    return ItemAnalysisCache()


def consent(
    db: Session,
    candidate: Candidate,
    purpose: ConsentPurpose = ConsentPurpose.AI_EVALUATION,
    status: ConsentStatus = ConsentStatus.GRANTED,
) -> None:
    db.add(
        CandidateConsent(
            organization_id=candidate.organization_id,
            candidate_id=candidate.id,
            purpose=purpose,
            status=status,
            source=ConsentSource.APPLICATION_FORM,
            policy_version="2026-01",
            granted_at=func.now() if status is ConsentStatus.GRANTED else None,
        )
    )
    db.flush()


@dataclass
class Tenant:
    """An organization with a consenting candidate and the sample backend job."""

    db: Session
    org: Organization
    candidate: Candidate
    job: JobPosting
    requirements: list[JobRequirement] = field(default_factory=list)

    def portfolio(self, candidate: Candidate | None = None) -> Portfolio:
        candidate = candidate or self.candidate
        portfolio = Portfolio(
            organization_id=self.org.id, candidate_id=candidate.id, title="Work samples"
        )
        self.db.add(portfolio)
        self.db.flush()
        return portfolio

    def add_file(
        self,
        portfolio: Portfolio,
        data: bytes,
        *,
        name: str,
        kind: PortfolioItemKind | None = None,
        title: str | None = None,
        description: str | None = None,
    ) -> PortfolioItem:
        """Store bytes as an upload would, with the file row and the item pointing at it."""
        key = f"{self.org.id}/{uuid.uuid4()}"
        storage.write_bytes(key, data, self.org.id)
        file = File(
            organization_id=self.org.id,
            candidate_id=portfolio.candidate_id,
            storage_key=key,
            original_filename=name,
            purpose=FilePurpose.PORTFOLIO,
            size_bytes=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            status=FileStatus.UPLOADED,
        )
        self.db.add(file)
        self.db.flush()
        return self._add_item(
            portfolio,
            kind=kind or kind_for(name),
            file_id=file.id,
            title=title,
            description=description,
        )

    def add_link(
        self,
        portfolio: Portfolio,
        url: str,
        *,
        title: str | None = None,
        description: str | None = None,
    ) -> PortfolioItem:
        return self._add_item(
            portfolio, kind=PortfolioItemKind.LINK, url=url, title=title, description=description
        )

    def _add_item(self, portfolio: Portfolio, **values: Any) -> PortfolioItem:
        position = self.db.scalar(
            select(func.count()).where(PortfolioItem.portfolio_id == portfolio.id)
        )
        item = PortfolioItem(
            organization_id=self.org.id, portfolio_id=portfolio.id, position=position, **values
        )
        self.db.add(item)
        self.db.flush()
        return item

    def sample(self, folder: Path = ALEX, candidate: Candidate | None = None) -> Portfolio:
        """A sample portfolio from ``samples/portfolios``, item by item as in its manifest."""
        manifest = json.loads((folder / "portfolio.json").read_text())
        portfolio = self.portfolio(candidate)
        for entry in manifest["items"]:
            if "url" in entry:
                self.add_link(
                    portfolio, entry["url"], title=entry.get("title"),
                    description=entry.get("description"),
                )  # fmt: skip
            else:
                path = folder / entry["file"]
                self.add_file(
                    portfolio, path.read_bytes(), name=path.name, title=entry.get("title"),
                    description=entry.get("description"),
                )  # fmt: skip
        return portfolio

    def reload_requirements(self) -> list[JobRequirement]:
        _, self.requirements = load_job(self.db, self.org.id, self.job.id)
        return self.requirements


def kind_for(name: str) -> PortfolioItemKind:
    if name.endswith((".zip", ".tar.gz", ".tgz", ".tar")):
        return PortfolioItemKind.CODE_ARCHIVE
    if name.endswith((".png", ".jpg", ".jpeg")):
        return PortfolioItemKind.IMAGE
    return PortfolioItemKind.DOCUMENT


def make_tenant(db: Session, job_markdown: str | None = None) -> Tenant:
    org = make_org(db)
    candidate = make_candidate(db, org)
    consent(db, candidate)
    spec = parse_job_markdown(job_markdown or (JOBS / "backend_engineer.md").read_text())
    job = create_job(db, org.id, spec)
    tenant = Tenant(db, org, candidate, job)
    tenant.reload_requirements()
    return tenant


@pytest.fixture
def tenant(db: Session) -> Tenant:
    return make_tenant(db)
