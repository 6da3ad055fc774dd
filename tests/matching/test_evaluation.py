"""Explainable evaluation on the shipped sample resumes and jobs, with their relevance labels.

One organization ingests all ~20 sample resumes through the real pipeline (real extraction,
real MiniLM vectors); a second organization holds copies, to prove nothing crosses tenants.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine, Uuid, cast, func, select
from sqlalchemy.orm import Session

from are_workers.errors import InvalidInputError
from are_workers.models.ai_evaluations import AIEvaluation, EvaluationCriterionScore
from are_workers.models.candidates import (
    Candidate,
    CandidateConsent,
    ConsentPurpose,
    ConsentSource,
    ConsentStatus,
    ParsedResume,
)
from are_workers.models.embeddings import MatchResult
from are_workers.models.files import File
from are_workers.models.organizations import Organization
from are_workers.services.embeddings import EmbeddingContext
from are_workers.services.matching.evaluation import evaluate_job
from are_workers.services.matching.postings import create_job, parse_job_markdown
from are_workers.services.resumes.pipeline import process_resume_file
from tests.factories import make_org
from tests.resumes.conftest import SAMPLES

pytestmark = pytest.mark.slow
LABELS = json.loads((SAMPLES / "labels.json").read_text())
STUFFER = "jordan_smith_keywords.pdf"


@dataclass
class Corpus:
    session: Session
    org: Organization
    other: Organization
    by_file: dict[str, Candidate]
    other_ids: set[object]


def _ingest(session: Session, org: Organization, embedding: EmbeddingContext,
            only: set[str] | None = None) -> dict[str, Candidate]:  # fmt: skip
    import hashlib
    import uuid

    from are_workers.models.files import FilePurpose, FileStatus
    from are_workers.services import storage

    out = {}
    for path in sorted((SAMPLES / "resumes").iterdir()):
        if only is not None and path.name not in only:
            continue
        data = path.read_bytes()
        candidate = Candidate(organization_id=org.id, full_name=path.stem.replace("_", " ").title())
        session.add(candidate)
        session.flush()
        key = f"{org.id}/{uuid.uuid4()}"
        storage.write_bytes(key, data, org.id)
        file = File(organization_id=org.id, candidate_id=candidate.id, storage_key=key,
                    original_filename=path.name, purpose=FilePurpose.RESUME,
                    size_bytes=len(data), sha256=hashlib.sha256(data).hexdigest(),
                    status=FileStatus.UPLOADED)  # fmt: skip
        session.add(file)
        if True:  # every sample candidate consented to AI evaluation
            session.add(CandidateConsent(
                organization_id=org.id, candidate_id=candidate.id,
                purpose=ConsentPurpose.AI_EVALUATION, status=ConsentStatus.GRANTED,
                source=ConsentSource.APPLICATION_FORM, policy_version="2026-01",
                granted_at=func.now(),
            ))  # fmt: skip
        session.flush()
        process_resume_file(session, organization_id=org.id, file_id=file.id, embedding=embedding)
        out[path.name] = candidate
    return out


@pytest.fixture(scope="module")
def corpus(engine: Engine, embedding: EmbeddingContext) -> Iterator[Corpus]:
    connection = engine.connect()
    transaction = connection.begin()
    session = Session(bind=connection, join_transaction_mode="create_savepoint")
    try:
        org, other = make_org(session), make_org(session)
        by_file = _ingest(session, org, embedding)
        # The other tenant holds copies of the strongest resumes: the nearest vectors to
        # every query are theirs, so a leak could not go unnoticed.
        strongest = {"alex_chen_backend.pdf", "sarah_johnson_rn.pdf",
                     "laura_martinez_data_analyst.pdf"}  # fmt: skip
        other_files = _ingest(session, other, embedding, only=strongest)
        yield Corpus(session, org, other, by_file, {c.id for c in other_files.values()})
    finally:
        session.close()
        transaction.rollback()
        connection.close()


def _ndcg(ranking: list[str], labels: dict[str, int], k: int = 5) -> float:
    gains = [labels.get(name, 0) for name in ranking[:k]]
    dcg = sum((2**g - 1) / math.log2(i + 2) for i, g in enumerate(gains))
    ideal = sorted(labels.values(), reverse=True)[:k]
    idcg = sum((2**g - 1) / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg


def _baseline_ranking(corpus: Corpus, job_text: str, embedding: EmbeddingContext) -> list[str]:
    """Whole-resume cosine similarity: the resume's full text against the posting."""
    names = list(corpus.by_file)
    texts = []
    for name in names:
        resume = corpus.session.scalars(
            select(ParsedResume.raw_text).where(
                ParsedResume.candidate_id == corpus.by_file[name].id)
        ).one()  # fmt: skip
        texts.append(resume or "")
    vectors = embedding.embed(texts)
    query = embedding.embed([job_text])[0]
    order = np.argsort(-(vectors @ query))
    return [names[i] for i in order]


@pytest.mark.parametrize("job_file", sorted(LABELS))
def test_evidence_ranking_beats_whole_resume_cosine_and_stuffing_does_not_pay(
    corpus: Corpus, embedding: EmbeddingContext, job_file: str
) -> None:
    session = corpus.session
    nested = session.begin_nested()
    try:
        text = (SAMPLES / "jobs" / job_file).read_text()
        job = create_job(session, corpus.org.id, parse_job_markdown(text))
        ranked = evaluate_job(session, organization_id=corpus.org.id, job_id=job.id,
                              embedding=embedding, top_k=25, pool=40)  # fmt: skip
        name_of = {c.id: name for name, c in corpus.by_file.items()}
        ours = [name_of[r.candidate_id] for r in ranked if r.rank_score is not None]
        labels = LABELS[job_file]
        baseline = _baseline_ranking(corpus, text, embedding)
        ours_ndcg, base_ndcg = _ndcg(ours, labels), _ndcg(baseline, labels)
        print(f"{job_file}: NDCG@5 ours={ours_ndcg:.3f} whole-resume cosine={base_ndcg:.3f}")
        # A sanity floor on the project's own samples: ranking quality is measured on the
        # blind set (bench/matching_quality.py), not on samples the tuners wrote.
        assert ours_ndcg >= min(0.8, base_ndcg)
        strong = [n for n, g in labels.items() if g >= 2]
        assert all(ours.index(n) < ours.index(STUFFER) for n in strong if STUFFER in ours)
        # Nothing from the other organization, ever.
        assert not {r.candidate_id for r in ranked} & corpus.other_ids
        # Each score cites a verbatim span of the stored resume.
        top = ranked[0]
        resume = session.scalars(
            select(ParsedResume.raw_text).where(ParsedResume.candidate_id == top.candidate_id)
        ).one()  # fmt: skip
        for score in top.requirements:
            assert score.evidence is not None
            assert resume[score.evidence.start : score.evidence.end] == score.evidence.text
        stored = session.scalar(
            select(func.count()).select_from(EvaluationCriterionScore)
            .join(AIEvaluation, AIEvaluation.id == EvaluationCriterionScore.evaluation_id)
            .where(AIEvaluation.job_id == job.id)
        )  # fmt: skip
        assert stored == sum(len(r.requirements) for r in ranked)
        # Running again with the same inputs adds nothing.
        evaluate_job(session, organization_id=corpus.org.id, job_id=job.id, embedding=embedding,
                     top_k=25, pool=40)  # fmt: skip
        again = session.scalar(
            select(func.count()).select_from(AIEvaluation).where(AIEvaluation.job_id == job.id)
        )
        assert again == len(ranked)
        matches = session.scalar(
            select(func.count()).select_from(MatchResult).where(MatchResult.job_id == job.id)
        )
        assert matches == len(ours)
        # Each rank names the evaluation it shows, also when that evaluation was made by the
        # earlier run (the second run changed nothing; the shortlist must still read it).
        linked = session.scalar(
            select(func.count()).select_from(MatchResult)
            .join(AIEvaluation, (AIEvaluation.id == cast(
                MatchResult.details["evaluation_id"].astext, Uuid))
                & (AIEvaluation.candidate_id == MatchResult.candidate_id))
            .where(MatchResult.job_id == job.id)
        )  # fmt: skip
        assert linked == len(ours)
    finally:
        nested.rollback()


def _object(corpus: Corpus, candidate_id: Any, purpose: ConsentPurpose) -> None:
    """The candidate objects (through the portal) to ``purpose``."""
    corpus.session.add(CandidateConsent(
        organization_id=corpus.org.id, candidate_id=candidate_id, purpose=purpose,
        status=ConsentStatus.OBJECTED, source=ConsentSource.CANDIDATE_PORTAL,
        policy_version="2026-01",
    ))  # fmt: skip
    corpus.session.flush()


def _match_backend_job(corpus: Corpus, embedding: EmbeddingContext) -> tuple[Any, list[Any]]:
    """Create the sample backend job and match it (top 10 of a pool of 40)."""
    text = (SAMPLES / "jobs" / "backend_engineer.md").read_text()
    job = create_job(corpus.session, corpus.org.id, parse_job_markdown(text))
    results = evaluate_job(corpus.session, organization_id=corpus.org.id, job_id=job.id,
                           embedding=embedding, top_k=10, pool=40)  # fmt: skip
    return job, results


def test_an_objection_to_automated_processing_after_parsing_skips_the_ranking(
    corpus: Corpus, embedding: EmbeddingContext
) -> None:
    """Fix: matching read only the Art. 22 objection and the AI-evaluation consent, so a
    candidate who objected to automated processing after their resume was parsed (vectors
    already stored) was still ranked."""
    session = corpus.session
    nested = session.begin_nested()
    try:
        alex = corpus.by_file["alex_chen_backend.pdf"]
        _object(corpus, alex.id, ConsentPurpose.AUTOMATED_PROCESSING)
        _, results = _match_backend_job(corpus, embedding)
        by_id = {r.candidate_id: r for r in results}
        assert by_id[alex.id].skip_reason == "automated_processing_objected"
        assert by_id[alex.id].rank_score is None
        assert "objected" in (by_id[alex.id].summary or "")
    finally:
        nested.rollback()


def test_consent_and_art22_objection_skip_with_a_reason(
    corpus: Corpus, embedding: EmbeddingContext
) -> None:
    session = corpus.session
    nested = session.begin_nested()
    try:
        alex, priya = (
            corpus.by_file["alex_chen_backend.pdf"],
            corpus.by_file["priya_raman_backend.docx"],
        )
        consent = session.scalars(
            select(CandidateConsent).where(CandidateConsent.candidate_id == alex.id)
        ).one()
        session.delete(consent)
        _object(corpus, priya.id, ConsentPurpose.AUTOMATED_DECISION)
        job, results = _match_backend_job(corpus, embedding)
        by_id = {r.candidate_id: r for r in results}
        assert by_id[alex.id].skip_reason == "no_consent"
        assert by_id[priya.id].skip_reason == "art22_objection"
        assert by_id[priya.id].rank_score is None
        skipped = session.scalars(
            select(AIEvaluation.skip_reason).where(
                AIEvaluation.job_id == job.id, AIEvaluation.candidate_id.in_([alex.id, priya.id]))
        ).all()  # fmt: skip
        assert sorted(skipped) == ["art22_objection", "no_consent"]
    finally:
        nested.rollback()


def test_a_job_without_readable_requirements_is_a_clear_error_not_empty_scores(
    corpus: Corpus, embedding: EmbeddingContext
) -> None:
    """A posting whose requirements the parser cannot find used to be matched on title
    similarity, printing scores that meant nothing; it is now refused with what to do."""
    session = corpus.session
    nested = session.begin_nested()
    try:
        job = create_job(session, corpus.org.id, parse_job_markdown(
            "# Intensive care nurse\n\nCare for critically ill patients on our ICU."))  # fmt: skip
        with pytest.raises(InvalidInputError) as caught:
            evaluate_job(session, organization_id=corpus.org.id, job_id=job.id,
                         embedding=embedding, top_k=5, pool=40)  # fmt: skip
        assert caught.value.code == "no_requirements"
        assert "What you'll need" in caught.value.user_message
        stored = session.scalar(
            select(func.count()).select_from(AIEvaluation).where(AIEvaluation.job_id == job.id)
        )
        assert stored == 0
    finally:
        nested.rollback()


def test_the_shortlist_is_sorted_by_the_score_it_shows_and_cites_what_earned_each_tick(
    corpus: Corpus, embedding: EmbeddingContext
) -> None:
    session = corpus.session
    nested = session.begin_nested()
    try:
        _, results = _match_backend_job(corpus, embedding)
        ranked = [r for r in results if r.rank_score is not None]
        scores = [r.overall for r in ranked]
        assert scores == sorted(scores, reverse=True)
        for result in ranked:
            for score in result.requirements:
                assert 0.0 <= score.score <= 1.0  # a calibrated probability
                assert score.met == (score.score >= 0.5)
                if score.met:  # a tick always quotes the passage that earned it
                    assert score.evidence is not None
                    assert "Evidenced" in score.rationale
            assert result.judge is not None
            assert result.judge["model"].startswith("are-evidence-judge@")
    finally:
        nested.rollback()
