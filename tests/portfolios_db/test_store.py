"""Deep evaluation on the database: what is stored, idempotence, re-runs, bad input, consent.

The embedder is the bag-of-words stand-in, so each test also sees which texts were embedded.
"""

from __future__ import annotations

import io
import socket
import uuid
import zipfile

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from are_workers.errors import NotFoundError
from are_workers.job_context import as_job
from are_workers.models.ai_evaluations import AIModelVersion, ModelKind
from are_workers.models.candidates import ConsentPurpose, ConsentStatus
from are_workers.models.deep_evaluations import (
    DeepEvaluation,
    DeepEvaluationFinding,
    DeepEvaluationStatus,
    FindingKind,
    Portfolio,
    PortfolioItem,
    PortfolioItemKind,
    PortfolioStatus,
)
from are_workers.models.embeddings import Embedding, EmbeddingEntity
from are_workers.models.files import File, FileStatus
from are_workers.models.subscription import UsageKind, UsageRecord
from are_workers.services import storage
from are_workers.services.embeddings import EmbeddingContext
from are_workers.services.matching.postings import job_query_text
from are_workers.services.portfolios import evaluate as evaluate_module
from are_workers.services.portfolios import loading, store
from are_workers.services.portfolios.archives import read_archive
from are_workers.services.portfolios.code_signals import decode_source
from are_workers.services.portfolios.documents import read_document
from are_workers.services.portfolios.evidence import SCORING_VERSION
from are_workers.services.portfolios.store import (
    EVALUATOR_NAME,
    ItemAnalysisCache,
    evaluate_portfolio_for_job,
)
from tests.factories import make_application, make_candidate, make_model_version
from tests.portfolios_db.conftest import ALEX, CountingEmbed, Tenant, consent, make_tenant


def run(
    tenant: Tenant,
    portfolio: Portfolio,
    embedding: EmbeddingContext,
    analyses: ItemAnalysisCache,
    task_run_id: uuid.UUID | None = None,
) -> store.PortfolioEvaluationOutcome:
    with as_job(tenant.db, task_run_id or uuid.uuid4()):
        return evaluate_portfolio_for_job(
            tenant.db,
            organization_id=tenant.org.id,
            portfolio_id=portfolio.id,
            job_id=tenant.job.id,
            embedding=embedding,
            analyses=analyses,
        )


def evaluations(db: Session, portfolio: Portfolio) -> list[DeepEvaluation]:
    return list(
        db.scalars(
            select(DeepEvaluation)
            .where(DeepEvaluation.portfolio_id == portfolio.id)
            .order_by(DeepEvaluation.started_at)
        )
    )


def findings_of(db: Session, evaluation_id: uuid.UUID) -> list[DeepEvaluationFinding]:
    return list(
        db.scalars(
            select(DeepEvaluationFinding).where(
                DeepEvaluationFinding.deep_evaluation_id == evaluation_id
            )
        )
    )


def items_of(db: Session, portfolio: Portfolio) -> list[PortfolioItem]:
    db.expire_all()
    return list(
        db.scalars(
            select(PortfolioItem)
            .where(PortfolioItem.portfolio_id == portfolio.id)
            .order_by(PortfolioItem.position)
        )
    )


def usage(db: Session, org_id: uuid.UUID) -> list[UsageRecord]:
    return list(
        db.scalars(
            select(UsageRecord).where(
                UsageRecord.organization_id == org_id,
                UsageRecord.kind == UsageKind.DEEP_EVALUATION,
            )
        )
    )


def zip_bomb() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("zeros.bin", bytes(8 * 1024 * 1024))
    return buffer.getvalue()


CASE_STUDY = (ALEX / "settlement_case_study.md").read_bytes()


# --- the stored evaluation -----------------------------------------------------------------


def test_sample_portfolio_is_stored_with_findings_that_cite_file_and_passage(
    tenant: Tenant, bow: EmbeddingContext, analyses: ItemAnalysisCache
) -> None:
    db = tenant.db
    application = make_application(db, tenant.candidate, tenant.job)
    portfolio = tenant.sample(ALEX)
    task_run_id = uuid.uuid4()
    outcome = run(tenant, portfolio, bow, analyses, task_run_id)

    assert outcome.created and outcome.status is DeepEvaluationStatus.COMPLETED
    row = db.get_one(DeepEvaluation, outcome.evaluation_id)
    assert row.status is DeepEvaluationStatus.COMPLETED
    assert row.overall_score is not None and 0 < row.overall_score <= 100
    assert row.overall_score == outcome.overall_score
    assert row.application_id == application.id and row.task_run_id == task_run_id
    assert row.started_at is not None and row.completed_at is not None
    assert row.summary and "requirements supported" in row.summary
    assert row.pipeline_versions["fingerprint"] == outcome.fingerprint
    assert row.pipeline_versions["embedding"] == "bag-of-words@test-1"
    assert row.pipeline_versions["scoring"] == SCORING_VERSION
    rules = db.get_one(AIModelVersion, row.model_version_id)
    assert (rules.kind, rules.name, rules.version) == (
        ModelKind.RULES,
        EVALUATOR_NAME,
        SCORING_VERSION,
    )
    assert db.scalar(
        select(AIModelVersion.id).where(
            AIModelVersion.kind == ModelKind.EMBEDDING, AIModelVersion.name == "bag-of-words"
        )
    )

    items = items_of(db, portfolio)
    by_id = {item.id: item for item in items}
    findings = findings_of(db, row.id)
    assert outcome.findings == len(findings)
    assert {f.requirement_id for f in findings} == {r.id for r in tenant.requirements}
    assert all(f.kind in {FindingKind.STRENGTH, FindingKind.GAP} for f in findings)
    assert all(f.score is not None and 0 <= f.score <= 1 for f in findings)
    cited = [f for f in findings if f.portfolio_item_id is not None]
    assert cited, "the sample portfolio supports some requirements"
    archive_files = read_archive((ALEX / "ledger-service.zip").read_bytes())
    for finding in cited:
        item = by_id[finding.portfolio_item_id]
        locator = finding.evidence_locator
        assert finding.evidence_file_id == item.file_id
        assert locator["item_id"] == str(item.id)
        if locator["source"] in {"project_doc", "code"}:
            # A quote from a file inside the archive: its path, lines and offsets.
            member = archive_files.get(locator["path"])
            assert member is not None and locator["lines"][0] >= 1
            source_text = decode_source(member.data)
            start, end = finding.evidence_char_start, finding.evidence_char_end
            assert source_text is not None and start is not None and end is not None
            assert source_text[start:end] == finding.evidence_passage
        if locator["source"] == "code_signal":
            assert locator["detail"] and locator["matched_skills"]
            assert finding.evidence_passage is None and finding.evidence_char_start is None
    assert {"code", "code_signal"} <= {f.evidence_locator["source"] for f in cited}

    assert [item.status for item in items] == [PortfolioStatus.PROCESSED] * 4
    archive, _, image, link = items
    assert archive.stats["detected_kind"] == "code_archive"
    assert archive.stats["archive_format"] == "zip" and archive.stats["files"] > 5
    assert image.stats["detected_kind"] == "image"
    assert link.stats["link"] is True and link.stats["fetched"] is False
    db.refresh(portfolio)
    assert portfolio.status is PortfolioStatus.PROCESSED

    (record,) = usage(db, tenant.org.id)
    assert record.task_run_id == task_run_id and record.quantity == 1
    assert record.model_version_id == row.model_version_id
    chunks = db.scalars(
        select(Embedding).where(
            Embedding.organization_id == tenant.org.id,
            Embedding.entity_type == EmbeddingEntity.PORTFOLIO_CHUNK,
        )
    ).all()
    assert {c.entity_id for c in chunks} <= set(by_id)
    assert chunks and all(c.candidate_id == tenant.candidate.id for c in chunks)


def test_document_evidence_quotes_the_extracted_text_verbatim(
    tenant: Tenant, bow: EmbeddingContext, analyses: ItemAnalysisCache
) -> None:
    db = tenant.db
    portfolio = tenant.portfolio()
    item = tenant.add_file(portfolio, CASE_STUDY, name="Alex_Chen_case_study.md")
    outcome = run(tenant, portfolio, bow, analyses)

    document_text = read_document(CASE_STUDY).text
    cited = [f for f in findings_of(db, outcome.evaluation_id) if f.evidence_passage]
    assert cited
    for finding in cited:
        locator = finding.evidence_locator
        assert locator["source"] == "document" and locator["item_id"] == str(item.id)
        # The upload's filename carries the candidate's name: the locator leaves it out
        # and the file id names the file.
        assert "path" not in locator and finding.evidence_file_id == item.file_id
        start, end = finding.evidence_char_start, finding.evidence_char_end
        assert start is not None and end is not None
        assert document_text[start:end] == finding.evidence_passage


def test_same_fingerprint_returns_the_stored_evaluation_and_writes_nothing(
    tenant: Tenant, bow: EmbeddingContext, embedder: CountingEmbed, analyses: ItemAnalysisCache
) -> None:
    db = tenant.db
    portfolio = tenant.sample(ALEX)
    task_run_id = uuid.uuid4()
    first = run(tenant, portfolio, bow, analyses, task_run_id)
    embedded = len(embedder.texts)
    findings = len(findings_of(db, first.evaluation_id))

    again = run(tenant, portfolio, bow, ItemAnalysisCache(), task_run_id)  # a redelivery
    other_job = run(tenant, portfolio, bow, analyses, uuid.uuid4())  # another request

    for outcome in (again, other_job):
        assert not outcome.created
        assert outcome.evaluation_id == first.evaluation_id
        assert outcome.fingerprint == first.fingerprint
        assert outcome.status is first.status and outcome.overall_score == first.overall_score
        assert outcome.findings == findings and outcome.items_processed == 4
    assert len(embedder.texts) == embedded  # nothing embedded again
    assert len(evaluations(db, portfolio)) == 1
    assert len(findings_of(db, first.evaluation_id)) == findings
    assert len(usage(db, tenant.org.id)) == 1  # nothing computed, nothing billed


def test_a_changed_item_is_a_new_evaluation_reusing_the_unchanged_items(
    tenant: Tenant,
    bow: EmbeddingContext,
    embedder: CountingEmbed,
    analyses: ItemAnalysisCache,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    db = tenant.db
    portfolio = tenant.sample(ALEX)
    task_run_id = uuid.uuid4()
    first = run(tenant, portfolio, bow, analyses, task_run_id)

    read: list[str] = []
    real_analyze = evaluate_module.analyze_item

    def counting_analyze(item, **kw):  # type: ignore[no-untyped-def]
        read.append(item.item_id)
        return real_analyze(item, **kw)

    monkeypatch.setattr(evaluate_module, "analyze_item", counting_analyze)
    case_study = items_of(db, portfolio)[1]
    file = db.get_one(File, case_study.file_id)
    revised = CASE_STUDY + b"\n\n## Follow-up\n\nI later sharded the ledger tables by tenant.\n"
    storage.write_bytes(file.storage_key, revised, file.organization_id)
    embedder.texts.clear()

    second = run(tenant, portfolio, bow, analyses, task_run_id)  # same job: billed once

    assert second.created and second.evaluation_id != first.evaluation_id
    assert second.fingerprint != first.fingerprint
    assert read == [str(case_study.id)]  # only the changed item was read again
    assert second.reused_items == 3
    new_passages = {p.text for p in read_document(revised).passages} - {
        p.text for p in read_document(CASE_STUDY).passages
    }
    assert embedder.texts and all(
        any(passage in text for passage in new_passages) for text in embedder.texts
    )  # only the new passage was embedded: the rest came from stored vectors
    assert [e.id for e in evaluations(db, portfolio)] == [first.evaluation_id, second.evaluation_id]
    assert len(usage(db, tenant.org.id)) == 1

    # Changed back: the latest evaluation is the revised one, so this is evaluated again
    # rather than answered with the first row.
    storage.write_bytes(file.storage_key, CASE_STUDY, file.organization_id)
    third = run(tenant, portfolio, bow, analyses)
    assert third.created and third.fingerprint == first.fingerprint
    assert third.evaluation_id not in {first.evaluation_id, second.evaluation_id}


def test_an_edited_requirement_embeds_only_its_text_in_a_fresh_worker(
    tenant: Tenant, bow: EmbeddingContext, embedder: CountingEmbed, analyses: ItemAnalysisCache
) -> None:
    db = tenant.db
    portfolio = tenant.sample(ALEX)
    first = run(tenant, portfolio, bow, analyses)
    requirement = tenant.requirements[2]
    requirement.text = "PostgreSQL schema design, indexing and query tuning"
    db.flush()
    embedder.texts.clear()

    second = run(tenant, portfolio, bow, ItemAnalysisCache())

    assert second.created and second.fingerprint != first.fingerprint
    # The job's vectors are refreshed (its query text names every requirement); no
    # passage is embedded again, and the evaluation found all it needed stored.
    assert sorted(embedder.texts) == sorted(
        [requirement.text, job_query_text(tenant.job, tenant.requirements)]
    )
    assert second.embedded == 0 and second.reused_vectors > 10


# --- bad input becomes a recorded outcome ---------------------------------------------------


def test_empty_portfolio_is_skipped_with_its_reason(
    tenant: Tenant, bow: EmbeddingContext, analyses: ItemAnalysisCache
) -> None:
    db = tenant.db
    portfolio = tenant.portfolio()
    outcome = run(tenant, portfolio, bow, analyses, uuid.uuid4())

    row = db.get_one(DeepEvaluation, outcome.evaluation_id)
    assert row.status is DeepEvaluationStatus.SKIPPED and row.overall_score is None
    assert row.error_code == "empty_portfolio" == outcome.reason_code
    assert row.error_message and "no items" in row.error_message
    assert findings_of(db, row.id) == [] and usage(db, tenant.org.id) == []
    db.refresh(portfolio)
    assert portfolio.status is PortfolioStatus.PROCESSED
    assert run(tenant, portfolio, bow, analyses).evaluation_id == row.id


def test_corrupt_archive_fails_only_its_item(
    tenant: Tenant, bow: EmbeddingContext, analyses: ItemAnalysisCache
) -> None:
    db = tenant.db
    portfolio = tenant.portfolio()
    tenant.add_file(portfolio, CASE_STUDY, name="case_study.md")
    data = (ALEX / "ledger-service.zip").read_bytes()
    tenant.add_file(portfolio, data[: len(data) // 2], name="ledger.zip")
    outcome = run(tenant, portfolio, bow, analyses)

    assert outcome.status is DeepEvaluationStatus.COMPLETED
    assert (outcome.items_processed, outcome.items_failed) == (1, 1)
    document, archive = items_of(db, portfolio)
    assert document.status is PortfolioStatus.PROCESSED
    assert archive.status is PortfolioStatus.FAILED
    assert archive.error_code == "corrupt_archive"
    assert archive.error_message and "damaged" in archive.error_message
    kinds = {f.kind for f in findings_of(db, outcome.evaluation_id)}
    assert FindingKind.CONCERN not in kinds


def test_archive_bomb_needs_review_with_a_concern_citing_its_file(
    tenant: Tenant, bow: EmbeddingContext, analyses: ItemAnalysisCache
) -> None:
    db = tenant.db
    portfolio = tenant.portfolio()
    tenant.add_file(portfolio, CASE_STUDY, name="case_study.md")
    bomb = tenant.add_file(portfolio, zip_bomb(), name="code.zip", title="code.zip")
    outcome = run(tenant, portfolio, bow, analyses, uuid.uuid4())

    row = db.get_one(DeepEvaluation, outcome.evaluation_id)
    assert row.status is DeepEvaluationStatus.NEEDS_REVIEW
    assert row.overall_score is not None  # the readable item was still evaluated
    findings = findings_of(db, row.id)
    (concern,) = [f for f in findings if f.kind is FindingKind.CONCERN]
    assert concern.requirement_id is None and concern.score is None
    assert concern.portfolio_item_id == bomb.id and concern.evidence_file_id == bomb.file_id
    assert "archive_bomb" in concern.summary and "review" in concern.summary
    assert len(findings) == len(tenant.requirements) + 1
    bomb_row = items_of(db, portfolio)[1]
    assert bomb_row.status is PortfolioStatus.FAILED and bomb_row.error_code == "archive_bomb"
    assert len(usage(db, tenant.org.id)) == 1


def test_binary_posing_as_text_fails_clearly(
    tenant: Tenant, bow: EmbeddingContext, analyses: ItemAnalysisCache
) -> None:
    db = tenant.db
    portfolio = tenant.portfolio()
    data = b"\x00\x01\x02\x03" * 100 + b"# Not really markdown"
    tenant.add_file(portfolio, data, name="notes.md", title="Notes")
    outcome = run(tenant, portfolio, bow, analyses)

    (item,) = items_of(db, portfolio)
    assert item.status is PortfolioStatus.FAILED
    assert item.error_code == "unsupported_file_type"
    assert item.error_message and "not a document" in item.error_message
    row = db.get_one(DeepEvaluation, outcome.evaluation_id)
    assert row.status is DeepEvaluationStatus.SKIPPED
    assert row.error_code == "nothing_readable"
    db.refresh(portfolio)
    assert portfolio.status is PortfolioStatus.FAILED


def test_a_file_missing_from_storage_fails_its_item_until_restored(
    tenant: Tenant, bow: EmbeddingContext, analyses: ItemAnalysisCache
) -> None:
    db = tenant.db
    portfolio = tenant.portfolio()
    tenant.add_file(portfolio, CASE_STUDY, name="case_study.md")
    image = tenant.add_file(portfolio, (ALEX / "architecture.png").read_bytes(), name="a.png")
    key = db.get_one(File, image.file_id).storage_key
    storage.object_path(key, tenant.org.id).unlink()

    first = run(tenant, portfolio, bow, analyses)
    assert first.status is DeepEvaluationStatus.COMPLETED and first.items_failed == 1
    missing = items_of(db, portfolio)[1]
    assert missing.error_code == "file_missing"
    assert missing.error_message and "no longer in storage" in missing.error_message

    storage.write_bytes(key, (ALEX / "architecture.png").read_bytes(), tenant.org.id)
    second = run(tenant, portfolio, bow, analyses)
    assert second.created and second.fingerprint != first.fingerprint
    restored = items_of(db, portfolio)[1]
    assert restored.status is PortfolioStatus.PROCESSED and restored.error_code is None


def test_a_deleted_file_fails_its_item_with_the_reason(
    tenant: Tenant, bow: EmbeddingContext, analyses: ItemAnalysisCache
) -> None:
    db = tenant.db
    portfolio = tenant.portfolio()
    tenant.add_file(portfolio, CASE_STUDY, name="case_study.md")
    deleted = tenant.add_file(portfolio, CASE_STUDY + b"\nMore.", name="notes.md")
    db.get_one(File, deleted.file_id).status = FileStatus.DELETED
    db.flush()
    outcome = run(tenant, portfolio, bow, analyses)
    assert outcome.status is DeepEvaluationStatus.COMPLETED
    item = items_of(db, portfolio)[1]
    assert item.status is PortfolioStatus.FAILED and item.error_code == "file_deleted"
    assert item.error_message and "deleted" in item.error_message


def test_links_are_recorded_and_never_fetched(
    tenant: Tenant,
    bow: EmbeddingContext,
    analyses: ItemAnalysisCache,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    db = tenant.db
    portfolio = tenant.portfolio()
    tenant.add_link(portfolio, "https://github.com/example/ledger", title="ledger on GitHub")
    tenant.add_link(portfolio, "http://169.254.169.254/latest/meta-data/")
    db.flush()  # the database is reached before sockets are refused

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the evaluation tried to open a network connection")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    outcome = run(tenant, portfolio, bow, analyses)

    row = db.get_one(DeepEvaluation, outcome.evaluation_id)
    assert row.status is DeepEvaluationStatus.SKIPPED and row.error_code == "nothing_readable"
    assert row.error_message and "never fetched" in row.error_message
    for item in items_of(db, portfolio):
        assert item.kind is PortfolioItemKind.LINK and item.status is PortfolioStatus.PROCESSED
        assert item.stats["fetched"] is False


def test_a_job_without_requirements_is_skipped(
    db: Session, bow: EmbeddingContext, analyses: ItemAnalysisCache
) -> None:
    tenant = make_tenant(db, "# Backend engineer\n\nWe build APIs.\n")
    portfolio = tenant.portfolio()
    tenant.add_file(portfolio, CASE_STUDY, name="case_study.md")
    outcome = run(tenant, portfolio, bow, analyses)
    assert outcome.status is DeepEvaluationStatus.SKIPPED
    assert outcome.reason_code == "no_requirements"
    (item,) = items_of(db, portfolio)
    assert item.status is PortfolioStatus.PROCESSED  # the items were still read


# --- consent, tenancy, placeholders --------------------------------------------------------------


def test_without_ai_evaluation_consent_nothing_is_read(
    tenant: Tenant,
    bow: EmbeddingContext,
    embedder: CountingEmbed,
    analyses: ItemAnalysisCache,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    db = tenant.db
    candidate = make_candidate(db, tenant.org)  # no consent recorded
    portfolio = tenant.sample(ALEX, candidate=candidate)

    def refuse(*args: object, **kwargs: object) -> bytes:
        raise AssertionError("a file was read without consent")

    monkeypatch.setattr(loading.storage, "read_bytes", refuse)
    outcome = run(tenant, portfolio, bow, analyses, uuid.uuid4())

    row = db.get_one(DeepEvaluation, outcome.evaluation_id)
    assert row.status is DeepEvaluationStatus.SKIPPED and row.error_code == "no_consent"
    assert row.error_message and "not consented to AI evaluation" in row.error_message
    assert findings_of(db, row.id) == [] and embedder.texts == []
    assert usage(db, tenant.org.id) == []
    assert {item.status for item in items_of(db, portfolio)} == {PortfolioStatus.PENDING}
    assert run(tenant, portfolio, bow, analyses).evaluation_id == row.id  # still skipped

    monkeypatch.undo()
    consent(db, candidate)
    granted = run(tenant, portfolio, bow, analyses)
    assert granted.created and granted.status is DeepEvaluationStatus.COMPLETED


def test_an_art22_objection_wins_over_consent(
    tenant: Tenant, bow: EmbeddingContext, analyses: ItemAnalysisCache
) -> None:
    consent(tenant.db, tenant.candidate, ConsentPurpose.AUTOMATED_DECISION, ConsentStatus.OBJECTED)
    portfolio = tenant.sample(ALEX)
    outcome = run(tenant, portfolio, bow, analyses)
    row = tenant.db.get_one(DeepEvaluation, outcome.evaluation_id)
    assert row.status is DeepEvaluationStatus.SKIPPED and row.error_code == "art22_objection"
    assert row.error_message and "Art. 22" in row.error_message


def test_another_organizations_portfolio_or_job_is_not_found(
    tenant: Tenant, bow: EmbeddingContext, analyses: ItemAnalysisCache
) -> None:
    db = tenant.db
    other = make_tenant(db)
    theirs = other.sample(ALEX)
    ours = tenant.portfolio()
    with pytest.raises(NotFoundError) as portfolio_error:
        run(tenant, theirs, bow, analyses)
    assert portfolio_error.value.code == "portfolio_not_found"
    with pytest.raises(NotFoundError) as job_error:
        evaluate_portfolio_for_job(
            db, organization_id=tenant.org.id, portfolio_id=ours.id, job_id=other.job.id,
            embedding=bow, analyses=analyses,
        )  # fmt: skip
    assert job_error.value.code == "job_not_found"
    assert evaluations(db, theirs) == [] and evaluations(db, ours) == []


def test_an_upstream_queued_placeholder_is_completed_not_duplicated(
    tenant: Tenant, bow: EmbeddingContext, analyses: ItemAnalysisCache
) -> None:
    db = tenant.db
    portfolio = tenant.sample(ALEX)
    placeholder = DeepEvaluation(
        organization_id=tenant.org.id,
        portfolio_id=portfolio.id,
        job_id=tenant.job.id,
        model_version_id=make_model_version(db).id,
        status=DeepEvaluationStatus.QUEUED,
    )
    db.add(placeholder)
    db.flush()
    outcome = run(tenant, portfolio, bow, analyses)
    assert outcome.evaluation_id == placeholder.id
    (row,) = evaluations(db, portfolio)
    db.refresh(row)
    assert row.status is DeepEvaluationStatus.COMPLETED and row.pipeline_versions["fingerprint"]
    assert db.scalar(
        select(func.count()).where(DeepEvaluationFinding.deep_evaluation_id == row.id)
    ) == len(tenant.requirements)
