"""Embedding throughput and fidelity: our backends vs sentence-transformers' ``encode``.

Same model files, same texts (the sample resume chunks, repeated to ``--texts``), same thread
count. The reference runs at its best batch size among ``--st-batch-sizes``. Each
configuration is timed ``--runs`` times after a warm-up, interleaved round-robin so that
background load on a shared machine hits every configuration alike. Medians are reported,
and the best run too: on a shared machine the best run is the one that had the cores.
Fidelity is measured against the reference vectors: mean/min cosine and the overlap of each
text's 10 nearest neighbours (retrieval is what the vectors are for).

    python bench/embedder.py --threads 2 --texts 400 --runs 5

Not part of CI; figures go into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from are_workers.ml.embedder import TorchEmbedder, resolve_model_dir  # noqa: E402
from are_workers.services.documents import extract_file  # noqa: E402
from are_workers.services.resumes.chunking import chunk_resume  # noqa: E402
from are_workers.services.resumes.parsing import parse_resume  # noqa: E402


def sample_texts(count_tokens: Callable[[str], int], total: int) -> list[str]:
    chunks: list[str] = []
    for path in sorted((ROOT / "samples" / "resumes").iterdir()):
        parsed = parse_resume(extract_file(path).text, today=date(2025, 6, 1))
        chunks.extend(c.text for c in chunk_resume(parsed, count_tokens=count_tokens))
    # Repeat with a suffix so no two texts are identical (no accidental caching anywhere).
    return [f"{chunks[i % len(chunks)]} ({i // len(chunks)})" for i in range(total)]


def fidelity(vectors: np.ndarray, reference: np.ndarray, unique: int) -> dict[str, float]:
    cosines = (vectors * reference).sum(axis=1)
    ref, ours = reference[:unique], vectors[:unique]
    top_ref = np.argsort(-(ref @ ref.T), axis=1)[:, 1:11]  # 10 neighbours, self excluded
    top_ours = np.argsort(-(ours @ ours.T), axis=1)[:, 1:11]
    overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(top_ref, top_ours, strict=True)])
    return {"mean_cos": float(cosines.mean()), "min_cos": float(cosines.min()), "top10": overlap}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--texts", type=int, default=400)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--st-batch-sizes", default="16,32,64")
    parser.add_argument(
        "--max-batch-tokens", type=int, default=8192, help="capped on CPU by CPU_MAX_BATCH_TOKENS"
    )
    parser.add_argument("--cache-dir", type=Path, default=None, help="ONNX export cache")
    parser.add_argument("--skip-onnx", action="store_true")
    args = parser.parse_args()

    import onnxruntime
    import sentence_transformers
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(args.threads)
    load_before = f"{os.getloadavg()[0]:.1f}"
    model_dir = resolve_model_dir()
    ours = TorchEmbedder(model_dir, device="cpu", max_batch_tokens=args.max_batch_tokens)
    texts = sample_texts(ours.count_tokens, args.texts)
    unique = len({t.rsplit(" (", 1)[0] for t in texts})
    lengths = ours.token_lengths(texts)
    st = SentenceTransformer(str(model_dir), device="cpu")

    configs: dict[str, Callable[[], np.ndarray]] = {}
    for batch_size in (int(b) for b in args.st_batch_sizes.split(",")):
        configs[f"sentence-transformers encode (batch {batch_size})"] = lambda bs=batch_size: (
            st.encode(texts, batch_size=bs, normalize_embeddings=True)
        )
    configs["ours: torch fp32 (default)"] = lambda: ours.embed(texts)
    if not args.skip_onnx:
        from are_workers.ml.onnx_embedder import OnnxEmbedder

        cache_dir = args.cache_dir or Path(tempfile.gettempdir()) / "are-bench-models"
        for quantize, label in ((False, "ours: onnx fp32"), (True, "ours: onnx int8 (fast)")):
            started = time.perf_counter()
            backend = OnnxEmbedder(
                model_dir,
                cache_dir=cache_dir,
                quantize=quantize,
                num_threads=args.threads,
                max_batch_tokens=args.max_batch_tokens,
            )
            print(f"{label}: ready in {time.perf_counter() - started:.1f}s ({backend.model_path})")
            configs[label] = lambda b=backend: b.embed(texts)

    results = {name: fn() for name, fn in configs.items()}  # warm-up, and the vectors
    timings: dict[str, list[float]] = {name: [] for name in configs}
    for _ in range(args.runs):
        for name, fn in configs.items():
            started = time.perf_counter()
            fn()
            timings[name].append(time.perf_counter() - started)

    st_names = [n for n in configs if n.startswith("sentence-transformers")]
    best_st = min(st_names, key=lambda n: statistics.median(timings[n]))
    reference = results[best_st]
    st_median = len(texts) / statistics.median(timings[best_st])
    st_best = len(texts) / min(timings[best_st])

    print(
        f"\n{len(texts)} texts ({unique} distinct chunks), {sum(lengths)} word pieces, "
        f"median {statistics.median(lengths):.0f} per text; {args.threads} threads; "
        f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, "
        f"sentence-transformers {sentence_transformers.__version__}; {args.runs} runs; "
        f"load average before/after: {load_before} / {os.getloadavg()[0]:.1f}\n"
    )
    print(
        "| configuration | texts/s (median) | vs ST | texts/s (best run) | vs ST "
        "| mean cos | min cos | top-10 overlap |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in configs:
        median_rate = len(texts) / statistics.median(timings[name])
        best_rate = len(texts) / min(timings[name])
        fid = fidelity(results[name], reference, unique)
        marker = " (reference)" if name == best_st else ""
        print(
            f"| {name}{marker} | {median_rate:.1f} | {median_rate / st_median:.2f}x "
            f"| {best_rate:.1f} | {best_rate / st_best:.2f}x | {fid['mean_cos']:.4f} "
            f"| {fid['min_cos']:.4f} | {fid['top10']:.3f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
