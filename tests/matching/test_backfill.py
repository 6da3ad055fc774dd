"""A second model is backfilled beside the first, which keeps serving until activation."""

from __future__ import annotations

import dataclasses

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from are_workers.models.embeddings import Embedding, EmbeddingModel, EmbeddingModelStatus
from are_workers.services.embeddings import EmbeddingContext
from are_workers.services.matching.backfill import activate_model, backfill, default_model_id
from are_workers.services.resumes.pipeline import process_resume_file
from tests.conftest import UploadFn
from tests.factories import make_org
from tests.resumes.conftest import SAMPLES


def _rows(db: Session, model_id: object) -> int:
    return int(
        db.scalar(
            select(func.count())
            .select_from(Embedding)
            .where(Embedding.embedding_model_id == model_id)
        )
        or 0
    )


def test_backfill_copies_every_chunk_and_activation_flips_the_default(
    db: Session, upload: UploadFn, embedding: EmbeddingContext
) -> None:
    org = make_org(db)
    for name in ("alex_chen_backend.pdf", "tom_baker_accountant.txt"):
        file = upload(org, SAMPLES / "resumes" / name)
        process_resume_file(db, organization_id=org.id, file_id=file.id, embedding=embedding)
    old = default_model_id(db)
    # Same weights under another version: a stand-in for new weights, same code path.
    newer = dataclasses.replace(embedding, version=f"{embedding.version}-next")
    seen: list[tuple[int, int]] = []
    report = backfill(db, target=newer, batch_size=4, progress=lambda d, t: seen.append((d, t)))
    assert report.source_model_id == old and report.rows == _rows(db, old) > 0
    assert report.embedded == report.rows and _rows(db, report.target_model_id) == report.rows
    assert seen[-1] == (report.rows, report.rows) and len(seen) > 1  # batched, with progress
    assert default_model_id(db) == old  # the old vectors keep serving meanwhile
    target = db.get_one(EmbeddingModel, report.target_model_id)
    assert target.status is EmbeddingModelStatus.BACKFILLING
    again = backfill(db, target=newer)
    assert again.embedded == 0 and again.skipped == report.rows  # resumable, idempotent
    activate_model(db, report.target_model_id)
    assert default_model_id(db) == report.target_model_id
    db.refresh(target)
    previous = db.get_one(EmbeddingModel, old)
    db.refresh(previous)
    assert previous.status is EmbeddingModelStatus.RETIRED and not previous.is_default
    assert _rows(db, old) == report.rows  # kept until an operator deletes them
