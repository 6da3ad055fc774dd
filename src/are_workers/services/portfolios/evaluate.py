"""The deep evaluation of a whole portfolio: read every item, gather evidence, score.

Plain data in (the items' bytes and metadata, the job's requirements, an embedder), one
:class:`PortfolioEvaluation` out; the actor loads rows, calls :func:`evaluate_portfolio`, and
writes the result. Nothing here touches the database, the broker or the network: a link is
recorded with its title and description only and is never fetched.

Why an item that cannot be read does not fail the evaluation: one corrupt upload should not
hide the rest of a candidate's work. Its refusal (code and message) is reported on the item;
archives refused as *unsafe* (zip-slip, escaping links, device files, bombs) also become a
``concern`` finding, because someone should look at who sent them.

Idempotence and re-runs: the result is a pure function of the inputs and the model
versions. :func:`portfolio_fingerprint` hashes exactly those, so an actor can skip a run
whose fingerprint it already stored and re-run when an item, a requirement or a model
changes. Per-item analyses carry an ``input_sha256`` and can be passed back as ``previous``:
unchanged items are not read again.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
import time
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from are_workers.crypto import json_sha256
from are_workers.errors import InvalidInputError
from are_workers.services.documents import ExtractionLimits, detect_document_type
from are_workers.services.portfolios.archives import (
    UNSAFE_CODES,
    ArchiveContents,
    ArchiveLimits,
    detect_archive_format,
    read_archive,
)
from are_workers.services.portfolios.code_signals import (
    CodeSignals,
    analyze_code,
    complexity_tool_version,
    decode_source,
    is_ignored_path,
    language_for,
)
from are_workers.services.portfolios.documents import read_document, split_passages
from are_workers.services.portfolios.evidence import (
    EmbedFn,
    EvidenceSource,
    Finding,
    FindingKind,
    PortfolioPassage,
    Requirement,
    select_evidence,
)
from are_workers.services.portfolios.images import (
    ImageLimits,
    analyze_image,
    detect_image_format,
    image_tool_version,
)
from are_workers.services.skills import SkillTaxonomy, get_taxonomy

if TYPE_CHECKING:
    from are_workers.config import Settings

__all__ = [
    "ANALYSIS_VERSION",
    "EvaluationOutcome",
    "ItemAnalysis",
    "ItemKind",
    "ItemStatus",
    "PortfolioEvaluation",
    "PortfolioItemInput",
    "PortfolioLimits",
    "analyze_item",
    "evaluate_portfolio",
    "pipeline_versions",
    "portfolio_fingerprint",
]

ANALYSIS_VERSION = "portfolio-items/1"
"""Bump when item reading changes, so stored per-item analyses are not reused."""


class ItemKind(StrEnum):
    """Same values as the database's ``portfolio_item_kind``."""

    DOCUMENT = "document"
    IMAGE = "image"
    CODE_ARCHIVE = "code_archive"
    LINK = "link"


class ItemStatus(StrEnum):
    """Same values as the database's ``portfolio_status`` (the finished ones)."""

    PROCESSED = "processed"
    FAILED = "failed"


class EvaluationOutcome(StrEnum):
    """Same values as the database's ``deep_evaluation_status`` (the finished ones)."""

    COMPLETED = "completed"
    NEEDS_REVIEW = "needs_review"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class PortfolioItemInput:
    """One portfolio item as the actor loaded it: file bytes, or a link (never fetched).

    The item's type is read from its bytes; ``filename`` is only shown to people.
    """

    item_id: str
    data: bytes | None = None
    url: str | None = None
    title: str | None = None
    description: str | None = None
    filename: str | None = None

    @classmethod
    def from_path(cls, item_id: str, path: Path, **metadata: str | None) -> PortfolioItemInput:
        return cls(item_id=item_id, data=path.read_bytes(), filename=path.name, **metadata)

    @property
    def label(self) -> str:
        return self.title or self.filename or self.url or f"item {self.item_id}"

    def input_sha256(self) -> str:
        """Hash of everything the item's analysis depends on (content, metadata, version)."""
        digest = hashlib.sha256(ANALYSIS_VERSION.encode())
        digest.update(hashlib.sha256(self.data).digest() if self.data is not None else b"-")
        for value in (self.url, self.title, self.description):
            digest.update(b"\x00" + (value or "").encode("utf-8"))
        return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class PortfolioLimits:
    archive: ArchiveLimits = field(default_factory=ArchiveLimits)
    document: ExtractionLimits = field(default_factory=ExtractionLimits)
    image: ImageLimits = field(default_factory=ImageLimits)
    max_code_passages: int = 120
    """Source files whose leading docstring is embedded, per archive (embedding is the cost)."""
    max_doc_files: int = 20
    """Markdown/reST files inside an archive, besides the README, read for passages."""

    @classmethod
    def from_settings(cls, settings: Settings) -> PortfolioLimits:
        """Upload and expansion limits from the process settings (``ARE_MAX_*``)."""
        return cls(
            archive=ArchiveLimits.from_settings(settings),
            document=ExtractionLimits.from_settings(settings),
            image=ImageLimits(max_file_bytes=settings.max_file_bytes),
        )


@dataclass(frozen=True, slots=True)
class ItemAnalysis:
    """What reading one item produced. ``stats`` is structure only (no content)."""

    item_id: str
    kind: ItemKind
    status: ItemStatus
    input_sha256: str
    files: int = 0
    stats: dict[str, Any] = field(default_factory=dict)
    passages: tuple[PortfolioPassage, ...] = ()
    code_signals: CodeSignals | None = None
    error_code: str | None = None
    error_message: str | None = None
    notes: tuple[str, ...] = ()
    label: str = ""

    @property
    def has_evidence(self) -> bool:
        return bool(self.passages) or self.code_signals is not None


@dataclass(frozen=True, slots=True)
class PortfolioEvaluation:
    """The deep evaluation of one portfolio against one job.

    ``outcome`` is ``skipped`` with a ``reason_code`` (``empty_portfolio``,
    ``nothing_readable``, ``no_requirements``) when there was nothing to evaluate; then
    ``overall_score`` is None and ``reason`` says why in words for a recruiter.
    """

    outcome: EvaluationOutcome
    overall_score: float | None
    summary: str
    findings: tuple[Finding, ...]
    items: tuple[ItemAnalysis, ...]
    model_versions: dict[str, str]
    fingerprint: str
    reason_code: str | None = None
    reason: str | None = None
    files_processed: int = 0
    passages_embedded: int = 0
    seconds: float = 0.0

    @property
    def requirement_findings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.requirement_id is not None)

    @property
    def concerns(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.kind is FindingKind.CONCERN)


# --- versions and fingerprint -----------------------------------------------------------------


def _package_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "missing"


def pipeline_versions(
    embedding_model: str, taxonomy: SkillTaxonomy | None = None
) -> dict[str, str]:
    """Every component whose change can change a result (``DeepEvaluation.pipeline_versions``)."""
    from are_workers.services.portfolios.evidence import SCORING_VERSION

    taxonomy = taxonomy or get_taxonomy()
    return {
        "embedding": embedding_model,
        "scoring": SCORING_VERSION,
        "item_analysis": ANALYSIS_VERSION,
        "code_metrics": complexity_tool_version() or "none",
        "images": image_tool_version(),
        "documents": f"pypdf {_package_version('pypdf')}; "
        f"python-docx {_package_version('python-docx')}",
        "skills_taxonomy": taxonomy.version,
    }


def portfolio_fingerprint(
    items: Iterable[PortfolioItemInput],
    requirements: Sequence[Requirement],
    versions: Mapping[str, str],
) -> str:
    """SHA-256 over the items, the requirements and the versions: equal means same result."""
    document = {
        "items": sorted((item.item_id, item.input_sha256()) for item in items),
        "requirements": [
            [r.id, r.text, r.kind, list(r.skills), r.must_have, r.weight] for r in requirements
        ],
        "versions": dict(sorted(versions.items())),
    }
    return json_sha256(document)


# --- reading one item --------------------------------------------------------------------------


def _detect_kind(item: PortfolioItemInput) -> ItemKind:
    """From content: images and archives by magic bytes, everything else is a document
    (the document reader then refuses what is not one). A DOCX is a ZIP too, so it is
    told apart before archives."""
    data = item.data or b""
    if item.data is None:
        return ItemKind.LINK
    if detect_image_format(data):
        return ItemKind.IMAGE
    archive_format = detect_archive_format(data)
    if archive_format is not None:
        if b"[Content_Types].xml" in data[:65_536]:
            return ItemKind.DOCUMENT  # Office Open XML: a document (or refused as one)
        try:
            detect_document_type(data)
        except InvalidInputError:
            return ItemKind.CODE_ARCHIVE
        return ItemKind.DOCUMENT
    return ItemKind.DOCUMENT


def _metadata_passages(item: PortfolioItemInput) -> list[PortfolioPassage]:
    passages: list[PortfolioPassage] = []
    for field_name, value in (("title", item.title), ("description", item.description)):
        if value and sum(ch.isalpha() for ch in value) >= 10:
            passages.append(
                PortfolioPassage(
                    item_id=item.item_id,
                    source=EvidenceSource.METADATA,
                    text=value,
                    heading=field_name,
                    embed_text=value,
                )
            )
    return passages


_PY_DOCSTRING_RE = re.compile(
    r"\A(?:[ \t]*(?:#[^\n]*)?\n)*[ \t]*[rRuUbB]?(\"\"\"|''')(?P<body>.*?)\1", re.DOTALL
)
_COMMENT_LINE_RE = re.compile(r"^\s*(//+|#+|--|;+|\*|/\*+|\*/)")
_LICENSE_RE = re.compile(r"licen[cs]e|copyright|spdx", re.IGNORECASE)


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _leading_comment(path: str, text: str) -> tuple[int, int, str] | None:
    """The file's opening docstring or comment block: ``(start, end, cleaned text)``.

    Why only that: it is where authors say what a file is for, in prose an embedder reads
    well; the code itself is measured by the code signals instead.
    """
    head = text[:6000]
    if path.endswith(".py"):
        match = _PY_DOCSTRING_RE.match(head)
        if match:
            body = match.group("body")
            start = match.start("body")
            return start, start + len(body), " ".join(body.split())
    lines = head.split("\n")
    start_offset: int | None = None
    end_offset = 0
    cleaned: list[str] = []
    offset = 0
    for line in lines[:60]:
        stripped = line.strip()
        if start_offset is None and (not stripped or stripped.startswith("#!")):
            offset += len(line) + 1
            continue
        marker = _COMMENT_LINE_RE.match(line)
        if not marker:
            break
        if start_offset is None:
            start_offset = offset
        cleaned.append(line[marker.end() :].strip(" */"))
        end_offset = offset + len(line)
        offset += len(line) + 1
    if start_offset is None:
        return None
    return start_offset, end_offset, " ".join(" ".join(cleaned).split())


def _archive_passages(
    item: PortfolioItemInput,
    contents: ArchiveContents,
    signals: CodeSignals,
    limits: PortfolioLimits,
) -> list[PortfolioPassage]:
    passages: list[PortfolioPassage] = []
    test_files = set(signals.test_files)
    doc_files = [
        file
        for file in contents.files
        if posixpath.splitext(file.path)[1].lower() in (".md", ".markdown", ".rst")
        and not is_ignored_path(file.path)
        and file.path != signals.readme_path
        and "license" not in posixpath.basename(file.path).lower()
    ]
    readme = contents.get(signals.readme_path) if signals.readme_path else None
    ordered_docs = ([readme] if readme else []) + sorted(doc_files, key=lambda f: f.path)[
        : limits.max_doc_files
    ]
    for file in ordered_docs:
        text = decode_source(file.data)
        if text is None:
            continue
        for passage in split_passages(text):
            passages.append(
                PortfolioPassage(
                    item_id=item.item_id,
                    source=EvidenceSource.PROJECT_DOC,
                    text=passage.text,
                    path=file.path,
                    char_start=passage.start,
                    char_end=passage.end,
                    line_start=_line_of(text, passage.start),
                    line_end=_line_of(text, passage.end),
                    heading=passage.heading,
                )
            )
    sources = sorted(
        (
            file
            for file in contents.files
            if language_for(file.path) and not is_ignored_path(file.path)
        ),
        key=lambda f: (f.path in test_files, -f.size, f.path),
    )
    code_passages = 0
    for file in sources:
        if code_passages >= limits.max_code_passages:
            break
        text = decode_source(file.data)
        if text is None:
            continue
        found = _leading_comment(file.path, text)
        if found is None:
            continue
        start, end, cleaned = found
        if len(cleaned) < 40 or _LICENSE_RE.search(cleaned[:300]):
            continue
        passages.append(
            PortfolioPassage(
                item_id=item.item_id,
                source=EvidenceSource.CODE,
                text=text[start:end],
                path=file.path,
                char_start=start,
                char_end=end,
                line_start=_line_of(text, start),
                line_end=_line_of(text, end),
                embed_text=f"{file.path}: {cleaned[:900]}",
            )
        )
        code_passages += 1
    return passages


def analyze_item(
    item: PortfolioItemInput,
    *,
    limits: PortfolioLimits | None = None,
    taxonomy: SkillTaxonomy | None = None,
) -> ItemAnalysis:
    """Read one item. Never raises for bad input: a refusal becomes a ``failed`` analysis
    carrying the refusal's code and message (errors other than bad input propagate)."""
    limits = limits or PortfolioLimits()
    kind = _detect_kind(item)
    common: dict[str, Any] = {
        "item_id": item.item_id,
        "kind": kind,
        "input_sha256": item.input_sha256(),
        "label": item.label,
    }
    metadata = _metadata_passages(item)
    if kind is ItemKind.LINK:
        return ItemAnalysis(
            status=ItemStatus.PROCESSED,
            passages=tuple(metadata),
            stats={"link": True, "fetched": False},
            notes=("Links are recorded as metadata only; their pages are never fetched.",),
            **common,
        )
    data = item.data or b""
    try:
        if kind is ItemKind.IMAGE:
            info = analyze_image(data, limits=limits.image)
            return ItemAnalysis(
                status=ItemStatus.PROCESSED,
                files=1,
                stats=info.to_stats(),
                passages=tuple(metadata),
                notes=tuple(
                    f"Image quality: {flag.replace('_', ' ')}." for flag in info.quality.flags
                ),
                **common,
            )
        if kind is ItemKind.CODE_ARCHIVE:
            contents = read_archive(data, limits=limits.archive)
            signals = analyze_code(contents.files, taxonomy=taxonomy)
            passages = _archive_passages(item, contents, signals, limits)
            stats = signals.to_stats()
            stats["archive_format"] = contents.format.value
            stats["compressed_bytes"] = contents.compressed_bytes
            return ItemAnalysis(
                status=ItemStatus.PROCESSED,
                files=len(contents.files),
                stats=stats,
                passages=tuple(metadata + passages),
                code_signals=signals,
                notes=contents.notes + signals.notes,
                **common,
            )
        document = read_document(data, limits=limits.document)
        passages = [
            PortfolioPassage(
                item_id=item.item_id,
                source=EvidenceSource.DOCUMENT,
                text=passage.text,
                path=item.filename,
                char_start=passage.start,
                char_end=passage.end,
                heading=passage.heading,
            )
            for passage in document.passages
        ]
        return ItemAnalysis(
            status=ItemStatus.PROCESSED,
            files=1,
            stats=document.to_stats(),
            passages=tuple(metadata + passages),
            notes=document.warnings,
            **common,
        )
    except InvalidInputError as exc:
        return ItemAnalysis(
            status=ItemStatus.FAILED,
            error_code=exc.code,
            error_message=exc.user_message,
            **common,
        )


# --- the evaluation ---------------------------------------------------------------------------


def _concerns(analyses: Sequence[ItemAnalysis]) -> list[Finding]:
    concerns: list[Finding] = []
    for analysis in analyses:
        if analysis.status is ItemStatus.FAILED and analysis.error_code in UNSAFE_CODES:
            concerns.append(
                Finding(
                    kind=FindingKind.CONCERN,
                    item_id=analysis.item_id,
                    summary=(
                        f"{analysis.label} was refused as unsafe ({analysis.error_code}): "
                        f"{analysis.error_message} Honest uploads rarely look like this; "
                        "a person should review it."
                    ),
                )
            )
    return concerns


def _skipped(
    reason_code: str,
    *,
    reason: str,
    analyses: Sequence[ItemAnalysis],
    versions: dict[str, str],
    fingerprint: str,
    started: float,
) -> PortfolioEvaluation:
    concerns = _concerns(analyses)
    return PortfolioEvaluation(
        outcome=EvaluationOutcome.NEEDS_REVIEW if concerns else EvaluationOutcome.SKIPPED,
        overall_score=None,
        summary=reason,
        findings=tuple(concerns),
        items=tuple(analyses),
        model_versions=versions,
        fingerprint=fingerprint,
        reason_code=reason_code,
        reason=reason,
        files_processed=sum(a.files for a in analyses),
        seconds=round(time.perf_counter() - started, 4),
    )


def _overall_summary(
    analyses: Sequence[ItemAnalysis], findings: Sequence[Finding], overall: float | None
) -> str:
    requirement_findings = [f for f in findings if f.requirement_id is not None]
    strengths = sum(1 for f in requirement_findings if f.kind is FindingKind.STRENGTH)
    processed = sum(1 for a in analyses if a.status is ItemStatus.PROCESSED)
    failed = len(analyses) - processed
    parts = [
        f"{strengths} of {len(requirement_findings)} requirements supported by the portfolio "
        f"(overall {overall:.0f}/100)."
        if overall is not None
        else "No overall score.",
        f"{processed} item(s) read" + (f", {failed} could not be read." if failed else "."),
    ]
    for analysis in analyses:
        if analysis.code_signals is not None:
            parts.append(f"{analysis.label}: {analysis.code_signals.describe()}")
    return " ".join(parts)


def evaluate_portfolio(
    items: Sequence[PortfolioItemInput],
    requirements: Sequence[Requirement],
    *,
    embed: EmbedFn,
    embedding_model: str,
    limits: PortfolioLimits | None = None,
    taxonomy: SkillTaxonomy | None = None,
    previous: Mapping[str, ItemAnalysis] | None = None,
    vector_cache: MutableMapping[str, np.ndarray] | None = None,
) -> PortfolioEvaluation:
    """Evaluate a portfolio's items against a job's requirements.

    Outcomes, never exceptions, for bad input: an empty portfolio, one whose items are all
    unreadable, and a job without requirements are ``skipped`` with a reason; refused
    unsafe archives add ``concern`` findings and make the outcome ``needs_review``.
    ``previous`` analyses (by item id) are reused when the item's ``input_sha256`` matches,
    and ``vector_cache`` (see :func:`~.evidence.select_evidence`) saves re-embedding the
    passages of unchanged items: together they make a re-run cost what changed.
    """
    started = time.perf_counter()
    limits = limits or PortfolioLimits()
    taxonomy = taxonomy or get_taxonomy()
    versions = pipeline_versions(embedding_model, taxonomy)
    fingerprint = portfolio_fingerprint(items, requirements, versions)
    if not items:
        return _skipped(
            "empty_portfolio",
            reason="The portfolio has no items, so there is nothing to evaluate.",
            analyses=(),
            versions=versions,
            fingerprint=fingerprint,
            started=started,
        )
    previous = previous or {}
    analyses: list[ItemAnalysis] = []
    for item in items:
        cached = previous.get(item.item_id)
        if cached is not None and cached.input_sha256 == item.input_sha256():
            analyses.append(cached)
        else:
            analyses.append(analyze_item(item, limits=limits, taxonomy=taxonomy))
    readable = [
        a
        for a in analyses
        if a.status is ItemStatus.PROCESSED and a.kind is not ItemKind.LINK and a.has_evidence
    ]
    if not readable:
        return _skipped(
            "nothing_readable",
            reason=(
                "None of the portfolio's items could be read as evidence (links are recorded "
                "but never fetched), so there is nothing to evaluate."
            ),
            analyses=analyses,
            versions=versions,
            fingerprint=fingerprint,
            started=started,
        )
    if not requirements:
        return _skipped(
            "no_requirements",
            reason="The job has no requirements to evaluate the portfolio against.",
            analyses=analyses,
            versions=versions,
            fingerprint=fingerprint,
            started=started,
        )
    passages = [
        passage
        for analysis in analyses
        if analysis.status is ItemStatus.PROCESSED
        for passage in analysis.passages
    ]
    signals = {a.item_id: a.code_signals for a in analyses if a.code_signals is not None}
    report = select_evidence(
        requirements,
        passages,
        signals,
        embed=embed,
        embedding_model=embedding_model,
        taxonomy=taxonomy,
        item_titles={a.item_id: a.label for a in analyses},
        vector_cache=vector_cache,
    )
    concerns = _concerns(analyses)
    findings = report.findings + tuple(concerns)
    return PortfolioEvaluation(
        outcome=EvaluationOutcome.NEEDS_REVIEW if concerns else EvaluationOutcome.COMPLETED,
        overall_score=report.overall_score,
        summary=_overall_summary(analyses, findings, report.overall_score),
        findings=findings,
        items=tuple(analyses),
        model_versions=versions,
        fingerprint=fingerprint,
        files_processed=sum(a.files for a in analyses),
        passages_embedded=len(passages),
        seconds=round(time.perf_counter() - started, 4),
    )
