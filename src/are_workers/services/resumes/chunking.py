"""Split a parsed resume into embedding-sized chunks that remember where they came from.

Why by section, with the section name as a prefix: "Python" under Skills and "Python" in a
described role mean different things to a matcher, and the prefix ("Experience: ...") puts
that context into the vector. Why a token budget: MiniLM silently truncates at 256 word
pieces, so anything beyond would simply not be embedded. Long sections are split on line,
then sentence, then word boundaries. Every chunk keeps ``start:end`` into the original text,
so evidence for a match can be quoted verbatim.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from are_workers.services.resumes.parsing import ParsedResume, Section

__all__ = [
    "DEFAULT_SKIP_SECTIONS",
    "Chunk",
    "TokenCounter",
    "chunk_resume",
    "chunk_sections",
    "estimate_tokens",
]

TokenCounter = Callable[[str], int]
"""Word pieces in a text *without* special tokens (e.g. ``Embedder.count_tokens``)."""

SPECIAL_TOKENS = 2  # [CLS] and [SEP]

DEFAULT_SKIP_SECTIONS: frozenset[str] = frozenset({"header", "contact", "references"})
"""Name, address and referees carry no job-relevant signal and are personal data: not embedded."""

_SECTION_LABELS = {
    "body": "Resume",
    "summary": "Summary",
    "experience": "Experience",
    "education": "Education",
    "skills": "Skills",
    "certifications": "Certifications",
    "projects": "Projects",
    "languages": "Languages",
    "awards": "Awards",
    "publications": "Publications",
    "volunteering": "Volunteering",
    "interests": "Interests",
}

_PIECE_RE = re.compile(r"\w+|[^\w\s]")
_SENTENCE_END_RE = re.compile(r"(?<=[.!?;])\s+")


def estimate_tokens(text: str) -> int:
    """A conservative word-piece count for when no tokenizer is at hand.

    Each punctuation mark is a piece (as in BERT's basic tokenizer); a word counts one piece
    per started 3 characters plus one per non-ASCII character, and the sum gets a 25% margin.
    Common English words are one piece, but names, product names ("PostgreSQL" is 5 pieces)
    and non-English words split finely. Over-counting only makes chunks shorter;
    under-counting would lose text to the model's silent truncation.
    """
    total = 0
    for piece in _PIECE_RE.findall(text):
        if piece[0].isalnum() or piece[0] == "_":
            total += 1 + (len(piece) - 1) // 3 + sum(1 for ch in piece if ord(ch) > 127)
        else:
            total += 1
    return math.ceil(total * 1.25)


@dataclass(frozen=True, slots=True)
class Chunk:
    """One embedding input. ``text`` is what gets embedded (prefix + verbatim source);
    ``start:end`` indexes the resume text, so ``resume_text[start:end]`` is the quote."""

    index: int
    section: str
    text: str
    start: int
    end: int
    token_count: int

    def source(self, resume_text: str) -> str:
        return resume_text[self.start : self.end]


def _spans(text: str, pattern: re.Pattern[str], start: int, end: int) -> Iterator[tuple[int, int]]:
    """Non-blank pieces of ``text[start:end]`` between matches of ``pattern``, trimmed."""
    position = start
    for match in pattern.finditer(text, start, end):
        yield from _trimmed(text, position, match.start())
        position = match.end()
    yield from _trimmed(text, position, end)


def _trimmed(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if start < end:
        yield start, end


_LINE_RE = re.compile(r"\n")
_WORD_GAP_RE = re.compile(r"\s+")


def _units(
    text: str, start: int, end: int, budget: int, count: TokenCounter
) -> Iterator[tuple[int, int, int]]:
    """Pieces of the span that each fit ``budget``: lines, else sentences, else word runs."""
    for line_start, line_end in _spans(text, _LINE_RE, start, end):
        tokens = count(text[line_start:line_end])
        if tokens <= budget:
            yield line_start, line_end, tokens
            continue
        for sent_start, sent_end in _spans(text, _SENTENCE_END_RE, line_start, line_end):
            tokens = count(text[sent_start:sent_end])
            if tokens <= budget:
                yield sent_start, sent_end, tokens
                continue
            # A run-on sentence: pack words greedily (a single giant "word" is cut by the
            # model's truncation, which is the best anyone can do with it).
            words = list(_spans(text, _WORD_GAP_RE, sent_start, sent_end))
            run_start, run_tokens = words[0][0], 0
            run_end = words[0][0]
            for word_start, word_end in words:
                word_tokens = count(text[word_start:word_end])
                if run_tokens and run_tokens + word_tokens > budget:
                    yield run_start, run_end, run_tokens
                    run_start, run_tokens = word_start, 0
                run_tokens += word_tokens
                run_end = word_end
            yield run_start, run_end, run_tokens


def chunk_sections(
    text: str,
    sections: Sequence[Section],
    *,
    max_tokens: int = 256,
    count_tokens: TokenCounter | None = None,
    skip_sections: Collection[str] = DEFAULT_SKIP_SECTIONS,
) -> list[Chunk]:
    """Chunks for ``sections`` of ``text``, each at most ``max_tokens`` word pieces.

    ``max_tokens`` includes the section prefix and the model's two special tokens. Counts
    of separately counted lines are summed, which is exact for WordPiece (it never merges
    across whitespace) and conservative for :func:`estimate_tokens`.
    """
    count = count_tokens or estimate_tokens
    chunks: list[Chunk] = []
    for section in sections:
        if section.name in skip_sections or section.is_empty:
            continue
        label = _SECTION_LABELS.get(section.name, section.name.replace("_", " ").title())
        prefix = f"{label}: "
        budget = max_tokens - SPECIAL_TOKENS - count(prefix)
        if budget < 16:
            raise ValueError(f"max_tokens={max_tokens} leaves no room for text after {prefix!r}")
        groups: list[list[tuple[int, int, int]]] = [[]]
        used = 0
        for unit in _units(text, section.start, section.end, budget, count):
            if groups[-1] and used + unit[2] > budget:
                groups.append([])
                used = 0
            groups[-1].append(unit)
            used += unit[2]
        prefix_tokens = count(prefix)
        for group in groups:
            if not group:
                continue
            start, end = group[0][0], group[-1][1]
            chunks.append(
                Chunk(
                    index=len(chunks),
                    section=section.name,
                    text=prefix + text[start:end],
                    start=start,
                    end=end,
                    token_count=prefix_tokens + sum(t for *_, t in group) + SPECIAL_TOKENS,
                )
            )
    return chunks


def chunk_resume(
    parsed: ParsedResume,
    *,
    max_tokens: int = 256,
    count_tokens: TokenCounter | None = None,
    skip_sections: Collection[str] = DEFAULT_SKIP_SECTIONS,
) -> list[Chunk]:
    """:func:`chunk_sections` over a :class:`~.parsing.ParsedResume`.

    Pass the embedder's ``count_tokens`` for exact budgets; without it a conservative
    estimate is used, which makes a few more, shorter chunks.
    """
    return chunk_sections(
        parsed.text,
        parsed.sections,
        max_tokens=max_tokens,
        count_tokens=count_tokens,
        skip_sections=skip_sections,
    )
