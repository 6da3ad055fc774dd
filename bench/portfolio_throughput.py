"""Portfolio evaluation throughput on the sample portfolios, with the real MiniLM embedder.

Run: ``python bench/portfolio_throughput.py [--runs 5] [--device cpu] [--threads N]
[--backend torch|onnx-int8]``.
Not part of CI.

What counts as a file: each document, each image and each file inside a code archive (links
are metadata and are not counted). For each portfolio, against the requirements of the job
it targets, three figures (median over ``--runs`` after one warm-up run):

- ``full``: :func:`evaluate_portfolio` from bytes to findings (read, measure, embed, score);
- ``read only``: :func:`analyze_item` for every item (archives, lizard, PDF, Pillow), no
  embedding, which is what the ML layer adds on top of;
- ``re-run``: the evaluation again after one requirement was edited, with the previous item
  analyses and the vector cache passed back: only the edited requirement is embedded.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import re
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from are_workers.services.portfolios import (
    ItemAnalysis,
    PortfolioEvaluation,
    PortfolioItemInput,
    Requirement,
    analyze_item,
    evaluate_portfolio,
)

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples" / "portfolios"


def load(folder: Path) -> tuple[list[PortfolioItemInput], list[Requirement]]:
    """A sample portfolio's items and its job's ``[must]``/``[nice]`` requirements."""
    manifest = json.loads((folder / "portfolio.json").read_text())
    items = [
        PortfolioItemInput.from_path(
            f"{folder.name}/{n}",
            folder / entry["file"],
            title=entry.get("title"),
            description=entry.get("description"),
        )
        if "file" in entry
        else PortfolioItemInput(
            f"{folder.name}/{n}",
            url=entry["url"],
            title=entry.get("title"),
            description=entry.get("description"),
        )
        for n, entry in enumerate(manifest["items"])
    ]
    job = (ROOT / "samples" / "jobs" / manifest["job"]).read_text()
    requirements = [
        Requirement(f"r{n}", match.group(2), must_have=match.group(1) == "must")
        for n, match in enumerate(re.finditer(r"^- \[(must|nice)\] (.+)$", job, re.MULTILINE))
    ]
    return items, requirements


def median_seconds(action: Callable[[], object], runs: int) -> float:
    action()  # warm-up: imports, lazy model parts, lizard's readers
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    parser.add_argument("--threads", type=int, default=None, help="CPU threads")
    parser.add_argument("--backend", default="torch", choices=["torch", "onnx-int8"])
    parser.add_argument(
        "--onnx-cache",
        type=Path,
        default=Path("/var/tmp/are-workers-bench-models"),
        help="where the int8 ONNX export is cached (onnx-int8 only)",
    )
    args = parser.parse_args()

    from are_workers.ml.embedder import Embedder, TorchEmbedder

    load_started = time.perf_counter()
    embedder: Embedder
    if args.backend == "onnx-int8":
        from are_workers.ml.onnx_embedder import OnnxEmbedder

        embedder = OnnxEmbedder(cache_dir=args.onnx_cache, num_threads=args.threads)
    else:
        embedder = TorchEmbedder(device=args.device, num_threads=args.threads)
    load_seconds = time.perf_counter() - load_started
    import torch

    print(
        f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {embedder.info.key} ({embedder.info.backend}, "
        f"{embedder.info.device}); model load {load_seconds:.1f} s; median of {args.runs} runs"
    )
    header = (
        f"{'portfolio':<22} {'items':>5} {'files':>5} {'passages':>8} {'reqs':>4} "
        f"{'full s':>7} {'files/s':>8} {'read s':>7} {'files/s':>8} {'re-run s':>8} {'score':>6}"
    )
    print(header)
    print("-" * len(header))
    totals = {"files": 0, "full": 0.0, "read": 0.0, "rerun": 0.0}
    for folder in sorted(p for p in SAMPLES.iterdir() if (p / "portfolio.json").is_file()):
        items, requirements = load(folder)
        result: list[PortfolioEvaluation] = []

        def full(
            items: list[PortfolioItemInput] = items,
            requirements: list[Requirement] = requirements,
            result: list[PortfolioEvaluation] = result,
        ) -> None:
            result[:] = [
                evaluate_portfolio(
                    items, requirements, embed=embedder.embed, embedding_model=embedder.info.key
                )
            ]

        full_s = median_seconds(full, args.runs)
        evaluation = result[0]
        read_s = median_seconds(lambda items=items: [analyze_item(i) for i in items], args.runs)
        previous = {item.item_id: item for item in evaluation.items}
        cache: dict[str, np.ndarray] = {}
        evaluate_portfolio(
            items,
            requirements,
            embed=embedder.embed,
            embedding_model=embedder.info.key,
            vector_cache=cache,
        )
        edits = iter(range(1_000_000))

        def rerun(
            items: list[PortfolioItemInput] = items,
            requirements: list[Requirement] = requirements,
            previous: dict[str, ItemAnalysis] = previous,
            cache: dict[str, np.ndarray] = cache,
            edits: Iterator[int] = edits,
        ) -> None:
            edited = dataclasses.replace(
                requirements[0], text=f"{requirements[0].text} (edit {next(edits)})"
            )
            evaluate_portfolio(
                items,
                [edited, *requirements[1:]],
                embed=embedder.embed,
                embedding_model=embedder.info.key,
                previous=previous,
                vector_cache=cache,
            )

        rerun_s = median_seconds(rerun, args.runs)
        files = evaluation.files_processed
        totals["files"] += files
        totals["full"] += full_s
        totals["read"] += read_s
        totals["rerun"] += rerun_s
        print(
            f"{folder.name:<22} {len(items):>5} {files:>5} {evaluation.passages_embedded:>8} "
            f"{len(requirements):>4} {full_s:>7.3f} {files / full_s:>8.1f} {read_s:>7.3f} "
            f"{files / read_s:>8.1f} {rerun_s:>8.3f} {evaluation.overall_score or 0:>6.1f}"
        )
    print("-" * len(header))
    print(
        f"{'all':<22} {'':>5} {totals['files']:>5} {'':>8} {'':>4} {totals['full']:>7.3f} "
        f"{totals['files'] / totals['full']:>8.1f} {totals['read']:>7.3f} "
        f"{totals['files'] / totals['read']:>8.1f} {totals['rerun']:>8.3f}"
    )


if __name__ == "__main__":
    main()
