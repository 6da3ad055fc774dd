"""End to end: resume files/s from enqueue to stored vectors, vs a raw encode of the same texts.

Pipeline = ledger INSERTs, relay, Redis, a real ``are-workers`` pool (1 process, --threads
threads), extraction, parsing, profile rows, chunking, embedding through the micro-batcher
and vector upserts. Reference = ``SentenceTransformer.encode`` of exactly the chunk texts the
pipeline embedded (extraction and parsing done beforehand, untimed), at its best batch size,
with the same torch threads. Medians of --runs; the ratio is pipeline/reference files/s.

    python bench/resume_pipeline.py --copies 3 --runs 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples" / "resumes"


def chunk_texts(paths: list[Path]) -> list[str]:
    from are_workers.services.documents import extract_file
    from are_workers.services.resumes.chunking import chunk_resume
    from are_workers.services.resumes.parsing import parse_resume

    texts: list[str] = []
    for path in paths:
        extracted = extract_file(path)
        parsed = parse_resume(extracted.text, language=extracted.language)
        texts += [c.text for c in chunk_resume(parsed)]
    return texts


def reference_seconds(texts: list[str], threads: int) -> float:
    import torch
    from sentence_transformers import SentenceTransformer

    from are_workers.ml.embedder import resolve_model_dir

    torch.set_num_threads(threads)
    model = SentenceTransformer(str(resolve_model_dir()), device="cpu")
    best = float("inf")
    for batch in (16, 32, 64):
        model.encode(texts[:64], batch_size=batch)
        started = time.perf_counter()
        model.encode(texts, batch_size=batch)
        best = min(best, time.perf_counter() - started)
    return best


def pipeline_seconds(paths: list[Path], threads: int) -> float:
    from are_workers.cli import pipeline as cli_pipeline
    from are_workers.config import get_settings
    from are_workers.supervisor import Supervisor, health_file

    settings = get_settings()
    supervisor = Supervisor(settings, queues=settings.all_queues, processes=1, threads=threads)
    runner = threading.Thread(target=supervisor.run, daemon=True)
    runner.start()
    try:
        while not health_file(settings).exists():
            time.sleep(0.1)
        staging = ROOT / ".bench-resumes"
        staging.mkdir(exist_ok=True)
        for old in staging.iterdir():
            old.unlink()
        for index, path in enumerate(paths):
            (staging / f"{index:03d}_{path.name}").write_bytes(path.read_bytes())
        started = time.perf_counter()
        _org, jobs, _ = cli_pipeline.ingest_resumes_into(
            staging, f"bench-{time.time_ns()}", consent=False, job_markdown=None
        )
        views = cli_pipeline._wait_with_progress(jobs, "pipeline", 1800)
        elapsed = time.perf_counter() - started
        assert all(v.status == "succeeded" for v in views), [v.error_message for v in views]
        return elapsed
    finally:
        supervisor.stopping.set()
        runner.join(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--copies", type=int, default=2, help="Copies of the ~20 samples.")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("ARE_LOG_LEVEL", "WARNING")
    paths = sorted(SAMPLES.iterdir()) * args.copies
    texts = chunk_texts(paths)
    print(f"{len(paths)} files, {len(texts)} chunks")
    ours, ref = [], []
    for run in range(args.runs):
        ours.append(len(paths) / pipeline_seconds(paths, args.threads))
        ref.append(len(paths) / reference_seconds(texts, args.threads))
        print(f"run {run + 1}: pipeline {ours[-1]:.2f} files/s, raw encode {ref[-1]:.2f} files/s")
    p, r = statistics.median(ours), statistics.median(ref)
    print(f"\nmedian pipeline (enqueue → stored vectors): {p:.2f} files/s")
    print(f"median raw encode of the same chunk texts : {r:.2f} files/s")
    print(f"ratio pipeline/raw                          : {p / r:.2f}x  (goal >= 0.8x)")


if __name__ == "__main__":
    main()
