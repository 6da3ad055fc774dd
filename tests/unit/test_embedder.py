"""The embedder against sentence-transformers itself, the micro-batcher, and the ONNX path.

Real model (the packaged all-MiniLM-L6-v2), real texts (the sample resume chunks).
"""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from are_workers.config import Settings
from are_workers.ml.batcher import MicroBatcher
from are_workers.ml.embedder import (
    TorchEmbedder,
    get_embedder,
    plan_batches,
    reset_embedder_cache,
    resolve_model_dir,
)
from are_workers.services.documents import extract_file
from are_workers.services.resumes.chunking import chunk_resume
from are_workers.services.resumes.parsing import parse_resume

ROOT = Path(__file__).resolve().parents[2]

TEXTS = [
    "Experience: Senior backend engineer building Python services on PostgreSQL.",
    "Skills: Python, Django, FastAPI, Docker, Kubernetes, Terraform, AWS",
    "Registered nurse with seven years of ICU experience; BLS and ACLS certified.",
    "Berufserfahrung: Entwicklung von REST APIs mit Python und PostgreSQL.",
    "Infirmier diplômé d'État avec cinq ans d'expérience en réanimation.",
    "ok",
    "Built dashboards in Tableau. " * 80,  # past 256 word pieces: truncated like the reference
]


@pytest.fixture(scope="module")
def embedder() -> TorchEmbedder:
    return TorchEmbedder(device="cpu")


@pytest.fixture(scope="module")
def sample_chunks(embedder: TorchEmbedder) -> list[str]:
    texts: list[str] = []
    for path in sorted((ROOT / "samples" / "resumes").iterdir()):
        parsed = parse_resume(extract_file(path).text, today=date(2025, 6, 1))
        texts.extend(c.text for c in chunk_resume(parsed, count_tokens=embedder.count_tokens))
    return texts[::2]  # every other chunk: all sections and professions, half the time


@pytest.fixture(scope="module")
def reference(sample_chunks: list[str]) -> np.ndarray:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(resolve_model_dir()), device="cpu")
    vectors: np.ndarray = model.encode(
        TEXTS + sample_chunks, batch_size=32, normalize_embeddings=True, convert_to_numpy=True
    )
    return vectors


def test_import_does_not_load_heavy_libraries() -> None:
    code = (
        "import sys\n"
        "import are_workers.ml.embedder, are_workers.ml.batcher, are_workers.ml.onnx_embedder\n"
        "import are_workers.services.resumes\n"
        "heavy = {'torch', 'transformers', 'onnxruntime', 'tokenizers', 'pypdf', 'docx'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


def test_matches_sentence_transformers(
    embedder: TorchEmbedder, reference: np.ndarray, sample_chunks: list[str]
) -> None:
    ours = embedder.embed(TEXTS + sample_chunks)
    assert ours.shape == reference.shape == (len(TEXTS) + len(sample_chunks), 384)
    assert ours.dtype == np.float32
    cosines = (ours * reference).sum(axis=1)
    assert cosines.min() >= 0.999
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_order_and_batch_independence(embedder: TorchEmbedder) -> None:
    together = embedder.embed(TEXTS)
    alone = np.vstack([embedder.embed([text]) for text in TEXTS])
    assert ((together * alone).sum(axis=1) > 0.9999).all()
    assert embedder.embed([]).shape == (0, 384)


def test_token_budget_batching(embedder: TorchEmbedder) -> None:
    small = TorchEmbedder(device="cpu", max_batch_tokens=512)
    before = small.forward_passes
    vectors = small.embed(TEXTS)
    # The long text (256 pieces) fills a batch alone; the six short ones share one or two.
    assert 2 <= small.forward_passes - before <= 3
    assert ((vectors * embedder.embed(TEXTS)).sum(axis=1) > 0.9999).all()


def test_plan_batches() -> None:
    lengths = [5, 256, 12, 7, 256, 30, 3]
    batches = plan_batches(lengths, max_batch_tokens=512, max_batch_size=4)
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
    for batch in batches:
        assert len(batch) <= 4
        assert len(batch) * max(lengths[i] for i in batch) <= 512
    assert batches[0] == [1, 4]  # longest first, sorted so padding stays small


def test_count_tokens_is_not_truncated(embedder: TorchEmbedder) -> None:
    assert embedder.count_tokens("Built dashboards in Tableau. " * 80) > 256
    assert embedder.token_lengths(["Built dashboards in Tableau. " * 80]) == [256]
    assert embedder.count_tokens("PostgreSQL") == 5


def test_model_info(embedder: TorchEmbedder) -> None:
    info = embedder.info
    assert (info.name, info.dimension, info.max_seq_length) == ("all-MiniLM-L6-v2", 384, 256)
    assert (info.backend, info.device) == ("torch-fp32", "cpu")
    assert len(info.version) == 12
    assert info.key == f"all-MiniLM-L6-v2@{info.version}"


def test_process_wide_singleton() -> None:
    reset_embedder_cache()
    settings = Settings(embedding_device="cpu")
    first = get_embedder(settings)
    assert get_embedder(settings) is first
    assert get_embedder(Settings(embedding_device="cpu")) is first
    reset_embedder_cache()


def test_micro_batcher_merges_concurrent_callers(
    embedder: TorchEmbedder, sample_chunks: list[str]
) -> None:
    callers = 24
    texts = sample_chunks[:callers]
    expected = embedder.embed(texts)
    results: list[np.ndarray | None] = [None] * callers
    start = threading.Barrier(callers)

    def call(index: int) -> None:
        start.wait()
        results[index] = batcher.embed([texts[index]], timeout=60)

    passes_before = embedder.forward_passes
    with MicroBatcher(embedder, max_wait_ms=100) as batcher:
        threads = [threading.Thread(target=call, args=(i,)) for i in range(callers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert batcher.texts_embedded == callers
        assert batcher.forward_passes < callers
        assert embedder.forward_passes - passes_before == batcher.forward_passes
    for index, vector in enumerate(results):
        assert vector is not None
        assert vector.shape == (1, 384)
        assert float(vector[0] @ expected[index]) > 0.9999


def test_micro_batcher_splits_a_request_larger_than_a_batch(embedder: TorchEmbedder) -> None:
    long_texts = [f"Summary {n}: " + "distributed systems engineer " * 100 for n in range(9)]
    with MicroBatcher(embedder, max_batch_tokens=1024, max_wait_ms=1) as batcher:
        vectors = batcher.embed(long_texts, timeout=60)
        assert batcher.forward_passes == 3  # 9 texts x 256 pieces, 4 per 1024-token batch
    assert ((vectors * embedder.embed(long_texts)).sum(axis=1) > 0.9999).all()


class _FailingEmbedder:
    """Tokenises like the real one, then fails in the forward pass (like a CUDA OOM)."""

    def __init__(self, inner: TorchEmbedder) -> None:
        self.info = inner.info
        self.max_batch_tokens = inner.max_batch_tokens
        self.forward_passes = 0
        self.token_lengths = inner.token_lengths
        self.count_tokens = inner.count_tokens
        self.embed = inner.embed

    def encode_batch(self, texts: list[str]) -> np.ndarray:
        raise RuntimeError("CUDA out of memory")


def test_micro_batcher_reports_failures_to_every_caller(embedder: TorchEmbedder) -> None:
    with MicroBatcher(_FailingEmbedder(embedder), max_wait_ms=50) as batcher:
        futures = [batcher.submit([f"text {n}"]) for n in range(3)]
        for future in futures:
            with pytest.raises(RuntimeError, match="out of memory"):
                future.result(timeout=30)
        assert batcher.forward_passes == 0
    with pytest.raises(RuntimeError, match="closed"):
        batcher.submit(["late"])


@pytest.mark.slow
def test_onnx_int8_fast_path(
    embedder: TorchEmbedder, reference: np.ndarray, sample_chunks: list[str]
) -> None:
    pytest.importorskip("onnx", reason="exporting needs the onnx package")
    from are_workers.ml.onnx_embedder import OnnxEmbedder

    cache_dir = Settings().data_dir / "models"  # persistent: exported once per machine
    fast = OnnxEmbedder(cache_dir=cache_dir, quantize=True)
    assert fast.info.backend == "onnx-int8"
    assert fast.info.version == embedder.info.version
    assert (fast.model_path.parent / "meta.json").is_file()
    vectors = fast.embed(TEXTS + sample_chunks)
    cosines = (vectors * reference).sum(axis=1)
    assert cosines.mean() >= 0.99
    assert cosines.min() >= 0.97
    # Retrieval barely moves: each chunk's 10 nearest neighbours mostly stay the same.
    chunk_ref, chunk_fast = reference[len(TEXTS) :], vectors[len(TEXTS) :]
    top_ref = np.argsort(-(chunk_ref @ chunk_ref.T), axis=1)[:, :10]
    top_fast = np.argsort(-(chunk_fast @ chunk_fast.T), axis=1)[:, :10]
    overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(top_ref, top_fast, strict=True)])
    assert overlap >= 0.8
