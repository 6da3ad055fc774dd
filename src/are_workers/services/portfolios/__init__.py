"""The database-free portfolio pipeline: read items safely, measure code, cite evidence.

Each step is a plain function over plain data, so the actor stays a thin wrapper::

    items = [PortfolioItemInput(item_id=str(row.id), data=blob, title=row.title) for ...]
    requirements = [Requirement(id=str(r.id), text=r.text, kind=r.kind, must_have=r.must_have)]
    embedder = get_embedder()
    result = evaluate_portfolio(
        items, requirements, embed=embedder.embed, embedding_model=embedder.info.key
    )

The modules, in the order an evaluation uses them:

- ``archives``: ZIP and tar archives read in memory, refusing zip-slip, escaping links,
  device files and bombs (size, count, per-file size, compression ratio, overlaps).
- ``code_signals``: languages by lines, tests, CI, README, manifests, structure, complexity.
- ``documents``: PDF/DOCX/Markdown via the resume extractor, cut into cited passages.
- ``images``: format, dimensions, sharpness, brightness, contrast.
- ``evidence``: per requirement, the best passage or code signal, scored and cited.
- ``evaluate``: all of the above for one portfolio, with outcomes for empty or bad input.
"""

from are_workers.services.portfolios.archives import (
    ArchiveContents,
    ArchiveErrorCode,
    ArchiveFile,
    ArchiveFormat,
    ArchiveLimits,
    read_archive,
)
from are_workers.services.portfolios.code_signals import CodeSignals, SkillSignal, analyze_code
from are_workers.services.portfolios.documents import (
    PortfolioDocument,
    TextPassage,
    read_document,
    split_passages,
)
from are_workers.services.portfolios.evaluate import (
    EvaluationOutcome,
    ItemAnalysis,
    ItemKind,
    ItemStatus,
    PortfolioEvaluation,
    PortfolioItemInput,
    PortfolioLimits,
    analyze_item,
    evaluate_portfolio,
    pipeline_versions,
    portfolio_fingerprint,
)
from are_workers.services.portfolios.evidence import (
    Evidence,
    EvidenceReport,
    EvidenceSource,
    Finding,
    FindingKind,
    PortfolioPassage,
    Requirement,
    select_evidence,
)
from are_workers.services.portfolios.images import ImageInfo, ImageLimits, analyze_image

__all__ = [
    "ArchiveContents",
    "ArchiveErrorCode",
    "ArchiveFile",
    "ArchiveFormat",
    "ArchiveLimits",
    "CodeSignals",
    "EvaluationOutcome",
    "Evidence",
    "EvidenceReport",
    "EvidenceSource",
    "Finding",
    "FindingKind",
    "ImageInfo",
    "ImageLimits",
    "ItemAnalysis",
    "ItemKind",
    "ItemStatus",
    "PortfolioDocument",
    "PortfolioEvaluation",
    "PortfolioItemInput",
    "PortfolioLimits",
    "PortfolioPassage",
    "Requirement",
    "SkillSignal",
    "TextPassage",
    "analyze_code",
    "analyze_image",
    "analyze_item",
    "evaluate_portfolio",
    "pipeline_versions",
    "portfolio_fingerprint",
    "read_archive",
    "read_document",
    "select_evidence",
    "split_passages",
]
