"""Portfolio documents: the resume extractor underneath, passages with offsets on top."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from are_workers.errors import InvalidInputError
from are_workers.services.documents import DocumentType, ErrorCode
from are_workers.services.portfolios.documents import read_document, split_passages

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples" / "portfolios"


def test_markdown_case_study_passages_quote_verbatim() -> None:
    document = read_document(
        (SAMPLES / "backend_alex_chen" / "settlement_case_study.md").read_bytes()
    )
    assert document.document_type is DocumentType.TEXT
    assert document.language == "en"
    headings = [p.heading for p in document.passages]
    assert headings == ["Context", "What I did", "Results"]
    for passage in document.passages:
        assert document.text[passage.start : passage.end] == passage.text
        assert not passage.text.startswith("#")
    assert "partial index" in document.passages[1].text
    assert document.passages[1].embed_text.startswith("What I did: ")


def test_pdf_report_passages() -> None:
    document = read_document((SAMPLES / "analyst_maria_garcia" / "churn_analysis.pdf").read_bytes())
    assert document.document_type is DocumentType.PDF
    assert document.page_count == 1
    assert any("Tableau" in p.text for p in document.passages)
    assert document.to_stats()["passages"] == len(document.passages)


def test_binary_posing_as_markdown_is_refused_in_portfolio_words() -> None:
    data = os.urandom(64) + b"\x00" * 32 + os.urandom(512)
    with pytest.raises(InvalidInputError) as caught:
        read_document(data)
    assert caught.value.code == ErrorCode.UNSUPPORTED_TYPE
    assert "resume" not in caught.value.user_message
    assert "not a document we can read" in caught.value.user_message


def test_empty_and_textless_documents() -> None:
    with pytest.raises(InvalidInputError) as caught:
        read_document(b"")
    assert caught.value.code == ErrorCode.EMPTY_FILE
    assert "portfolio document" in caught.value.user_message
    with pytest.raises(InvalidInputError) as caught:
        read_document(b"12 34 56\n-- 7 --\n")
    assert caught.value.code == ErrorCode.NO_TEXT


def test_long_paragraphs_are_cut_at_sentence_ends() -> None:
    text = "# Results\n\n" + " ".join(f"Sentence number {i} is here." for i in range(120))
    passages = split_passages(text, max_chars=300)
    assert len(passages) > 5
    for passage in passages:
        assert len(passage.text) <= 300
        assert text[passage.start : passage.end] == passage.text
        assert passage.text.endswith(".")
        assert passage.heading == "Results"


def test_unbroken_text_is_cut_at_spaces_or_hard() -> None:
    text = "word " * 400 + "x" * 1000
    passages = split_passages(text, max_chars=200)
    assert all(len(p.text) <= 200 for p in passages)
    assert all(text[p.start : p.end] == p.text for p in passages)


def test_short_paragraphs_merge_and_junk_is_dropped() -> None:
    text = "## Skills\n\n- Python and Django\n\n- PostgreSQL tuning\n\n## Contact\n\n42\n"
    passages = split_passages(text)
    assert [p.heading for p in passages] == ["Skills"]
    assert passages[0].text == "- Python and Django\n\n- PostgreSQL tuning"
