"""Portfolio deep evaluation, reading side: the portfolio, its items and their files, the
job's requirements as the evaluation sees them, and the vectors already stored for the same
text (so a re-run embeds only what changed). A link is metadata and is never fetched.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from are_workers.config import Settings
from are_workers.errors import InvalidInputError, NotFoundError
from are_workers.models.deep_evaluations import (
    Portfolio,
    PortfolioItem,
    PortfolioItemKind,
)
from are_workers.models.embeddings import Embedding, EmbeddingEntity
from are_workers.models.files import File, FileStatus
from are_workers.models.jobs import JobRequirement
from are_workers.services import consent, storage
from are_workers.services.consent import Activity
from are_workers.services.portfolios.evaluate import (
    ItemAnalysis,
    ItemKind,
    ItemStatus,
    PortfolioItemInput,
)
from are_workers.services.portfolios.evidence import (
    Requirement,
)

UNREADABLE = b"\x00are-workers:unreadable-file:"
"""Stand-in bytes for an item whose file could not be read: the item keeps a place in the
fingerprint (restoring the file changes it) and gets a failed analysis of its own."""


class KnownVectors:
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


def load_portfolio(
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


def load_items(session: Session, portfolio: Portfolio) -> list[PortfolioItem]:
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


def requirement_of(row: JobRequirement) -> Requirement:
    return Requirement(
        id=str(row.id),
        text=row.text,
        kind=row.kind.value,
        skills=(row.skill.name,) if row.skill is not None else (),
        must_have=row.must_have,
        weight=float(row.weight),
    )


def read_items(
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
        stand_in = PortfolioItemInput(item_id, data=UNREADABLE + code.encode(), **metadata)
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


def stored_vectors(
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
