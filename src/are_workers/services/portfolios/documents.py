"""Portfolio documents (PDF, DOCX, Markdown, plain text, RTF) as text and quotable passages.

Why a thin wrapper over :mod:`are_workers.services.documents`: the hard parts (type
from magic bytes, PDF and DOCX limits, zip bombs inside DOCX, text normalisation) are the
same for a case study as for a resume. What differs is the wording of a refusal (a case study
is not "your resume") and the unit of evidence: a portfolio document is cited by passage,
so the text is cut into paragraph-sized passages that keep ``start:end`` offsets into the
normalised text, under the Markdown heading they belong to.

Why ~900 characters per passage: all-MiniLM-L6-v2 reads at most 256 word pieces and
silently drops the rest; 900 characters of English prose is about 200 pieces, so nothing
quoted is left out of the vector, and a passage is still long enough to be a real quote.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from are_workers.errors import InvalidInputError
from are_workers.services.documents import (
    DocumentType,
    ErrorCode,
    ExtractionLimits,
    extract_text,
)

__all__ = ["PortfolioDocument", "TextPassage", "read_document", "split_passages"]

_FORMATS_HINT = "Upload it as a PDF, Word (.docx), Markdown or plain text file."

_PORTFOLIO_MESSAGES: dict[str, str] = {
    ErrorCode.EMPTY_FILE: "This portfolio document is empty. Upload it again.",
    ErrorCode.UNSUPPORTED_TYPE: (
        f"This portfolio item is not a document we can read. {_FORMATS_HINT}"
    ),
    ErrorCode.NO_TEXT: (
        "We found no readable text in this document (it may be a scan or an image saved "
        f"as PDF). {_FORMATS_HINT}"
    ),
}
"""Codes whose resume-worded messages are replaced; the others read well for any document."""


@dataclass(frozen=True, slots=True)
class TextPassage:
    """A quotable piece of a text: ``text == source[start:end]`` verbatim."""

    index: int
    text: str
    start: int
    end: int
    heading: str | None = None

    @property
    def embed_text(self) -> str:
        """What gets embedded: the heading gives a short paragraph its topic."""
        return f"{self.heading}: {self.text}" if self.heading else self.text


@dataclass(frozen=True, slots=True)
class PortfolioDocument:
    text: str
    document_type: DocumentType
    language: str
    page_count: int | None
    passages: tuple[TextPassage, ...]
    warnings: tuple[str, ...] = ()

    def to_stats(self) -> dict[str, object]:
        """Structure-only statistics for the item's ``stats`` (no content)."""
        return {
            "document_type": self.document_type.value,
            "language": self.language,
            "pages": self.page_count,
            "characters": len(self.text),
            "passages": len(self.passages),
            "warnings": list(self.warnings),
        }


def read_document(
    data: bytes, *, limits: ExtractionLimits | None = None, max_passage_chars: int = 900
) -> PortfolioDocument:
    """Extract a portfolio document and cut it into passages.

    Raises :class:`InvalidInputError` with the extraction's codes
    (:class:`~are_workers.services.documents.ErrorCode`); binary data posing as text
    is refused as ``unsupported_file_type`` by the extractor's content sniffing.
    """
    try:
        extracted = extract_text(data, limits=limits)
    except InvalidInputError as exc:
        message = _PORTFOLIO_MESSAGES.get(exc.code)
        if message is None and exc.code == ErrorCode.TOO_MANY_PAGES:
            message = exc.user_message.replace("resumes", "documents").replace(
                "Upload just your resume.", "Upload a shorter version."
            )
        if message is None:
            raise
        raise InvalidInputError(message, code=exc.code) from exc
    return PortfolioDocument(
        text=extracted.text,
        document_type=extracted.document_type,
        language=extracted.language,
        page_count=extracted.page_count,
        passages=tuple(split_passages(extracted.text, max_chars=max_passage_chars)),
        warnings=extracted.warnings,
    )


_HEADING_RE = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_PARAGRAPH_BREAK_RE = re.compile(r"\n[ \t]*\n")
_SENTENCE_END_RE = re.compile(r"(?<=[.!?;:])\s+")
_MIN_LETTERS = 20


def _paragraphs(text: str) -> Iterator[tuple[int, int, str | None]]:
    """``(start, end, heading)`` of each paragraph; heading lines set the heading instead."""
    heading: str | None = None
    position = 0
    for match in [*_PARAGRAPH_BREAK_RE.finditer(text), None]:
        block_end = match.start() if match else len(text)
        line_start = position
        while line_start < block_end:
            newline = text.find("\n", line_start, block_end)
            line_end = block_end if newline < 0 else newline
            found = _HEADING_RE.match(text[line_start:line_end])
            if not found:
                break
            heading = found.group(2)
            line_start = line_end + 1
        start, end = line_start, block_end
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if start < end:
            yield start, end, heading
        position = match.end() if match else len(text)


def _split_long(text: str, start: int, end: int, max_chars: int) -> Iterator[tuple[int, int]]:
    """Cut ``text[start:end]`` at sentence ends, else at spaces, into pieces <= max_chars."""
    cuts = [(m.start(), m.end()) for m in _SENTENCE_END_RE.finditer(text, start, end)]
    piece_start = start
    while end - piece_start > max_chars:
        limit = piece_start + max_chars
        best: tuple[int, int] | None = None
        for cut_end, next_start in cuts:
            if cut_end > limit:
                break
            if cut_end > piece_start:
                best = (cut_end, next_start)
        if best is None:
            space = text.rfind(" ", piece_start, limit)
            best = (space, space + 1) if space > piece_start else (limit, limit)
        yield piece_start, best[0]
        piece_start = best[1]
        while piece_start < end and text[piece_start].isspace():
            piece_start += 1
    if piece_start < end:
        yield piece_start, end


def split_passages(text: str, *, max_chars: int = 900) -> list[TextPassage]:
    """Paragraph-based passages of at most ``max_chars``, with offsets into ``text``.

    Consecutive short paragraphs under the same heading are merged (a bullet list is one
    passage, not ten); long paragraphs are cut at sentence ends. Passages with fewer than
    20 letters (page numbers, "Thanks!") are dropped: they cannot be evidence of anything.
    """
    spans: list[tuple[int, int, str | None]] = []
    for start, end, heading in _paragraphs(text):
        if end - start > max_chars:
            spans.extend((s, e, heading) for s, e in _split_long(text, start, end, max_chars))
            continue
        if spans:
            prev_start, _, prev_heading = spans[-1]
            if prev_heading == heading and end - prev_start <= max_chars:
                spans[-1] = (prev_start, end, heading)
                continue
        spans.append((start, end, heading))
    passages: list[TextPassage] = []
    for start, end, heading in spans:
        quote = text[start:end]
        if sum(ch.isalpha() for ch in quote) < _MIN_LETTERS:
            continue
        passages.append(TextPassage(len(passages), quote, start, end, heading))
    return passages
