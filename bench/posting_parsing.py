"""Posting parsing on the blind posting set (``eval/postings``): which requirements come out.

For each posting of a split, the requirements ``parse_job_markdown`` finds are aligned with
the labelled ones (written blind, see ``eval/postings/README.md``) by words: a labelled
requirement is *found* when one parsed requirement holds at least ``COVER`` of its content
words (a parsed sentence that carries two labelled requirements finds both). A parsed
requirement is *right* when it holds that much of some labelled one or lies inside one (a
fragment of a labelled requirement); it is a *distractor hit* when it holds that much of a
labelled non-requirement (a duty, a benefit, how to apply). Printed per split and system:
requirement recall, precision, distractor hits, and must-have accuracy on the found ones,
and the labelled requirements not found (dev only: test misses are counted, never shown).

Systems, in the same run:

* ``parser``: the product's ``parse_job_markdown``;
* ``every-bullet`` (naive baseline): every bullet item of the posting is a requirement,
  a must-have unless it says "nice to have", "ideally", "a plus", "preferred", "desirable"
  or "bonus".

    python bench/posting_parsing.py --split dev
    python bench/posting_parsing.py --split test --json
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

SET = ROOT / "eval" / "postings"
COVER = 0.6
_STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "or",
        "the",
        "of",
        "to",
        "in",
        "on",
        "for",
        "with",
        "at",
        "by",
        "as",
        "is",
        "are",
        "be",
        "you",
        "your",
        "we",
        "our",
        "will",
        "have",
        "has",
        "this",
        "that",
        "it",
        "its",
        "from",
        "into",
        "any",
        "some",
        "can",
        "must",
        "should",
        "would",
        "who",
        "what",
        "which",
        "all",
        "not",
    ]
)
_WORD = re.compile(r"[a-z0-9][a-z0-9+#/&.'-]*[a-z0-9+#]|[a-z0-9]")
_NICE = re.compile(r"nice to have|ideally|a plus|preferred|desirable|bonus", re.IGNORECASE)
_BULLET = re.compile(r"^\s*(?:[-*+\u2022]|\d{1,2}[.)])\s+(.*\S)")

Parsed = list[tuple[str, bool]]


def words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.casefold().replace("\u2019", "'")) if w not in _STOP}


def covers(outer: str, inner: str) -> bool:
    """``outer`` holds at least COVER of ``inner``'s content words."""
    wanted = words(inner)
    return bool(wanted) and len(wanted & words(outer)) >= COVER * len(wanted)


def product_parser(markdown: str) -> Parsed:
    from are_workers.services.matching.postings import parse_job_markdown

    return [(r.text, r.must_have) for r in parse_job_markdown(markdown).requirements]


def every_bullet(markdown: str) -> Parsed:
    items = [m.group(1) for line in markdown.splitlines() if (m := _BULLET.match(line))]
    return [(item, not _NICE.search(item)) for item in items]


SYSTEMS: dict[str, Callable[[str], Parsed]] = {
    "parser": product_parser,
    "every-bullet": every_bullet,
}


@dataclass
class Tally:
    labelled: int = 0
    found: int = 0
    parsed: int = 0
    right: int = 0
    distractor_hits: int = 0
    must_right: int = 0
    missed: list[str] = field(default_factory=list)

    def report(self) -> dict[str, float | int]:
        return {
            "recall": round(self.found / self.labelled, 3) if self.labelled else 0.0,
            "precision": round(self.right / self.parsed, 3) if self.parsed else 0.0,
            "must_have_accuracy": round(self.must_right / self.found, 3) if self.found else 0.0,
            "labelled": self.labelled,
            "found": self.found,
            "parsed": self.parsed,
            "distractor_hits": self.distractor_hits,
        }


def score(posting: dict, parsed: Parsed, tally: Tally, posting_id: str) -> None:
    for requirement in posting["requirements"]:
        tally.labelled += 1
        hits = [(text, must) for text, must in parsed if covers(text, requirement["text"])]
        if hits:
            tally.found += 1
            tally.must_right += any(must == requirement["must_have"] for _, must in hits)
        else:
            tally.missed.append(f"{posting_id}: {requirement['text']}")
    for text, _ in parsed:
        tally.parsed += 1
        tally.right += any(
            covers(text, r["text"]) or covers(r["text"], text) for r in posting["requirements"]
        )
        tally.distractor_hits += any(covers(text, d) for d in posting["not_requirements"])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="dev", choices=("dev", "test"))
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    args = parser.parse_args(argv)
    labels = json.loads((SET / "labels.json").read_text())
    chosen = set(json.loads((SET / "split.json").read_text())[args.split])
    postings = [p for p in labels["postings"] if p["id"] in chosen]
    results: dict[str, dict[str, object]] = {}
    for name, system in SYSTEMS.items():
        tally = Tally()
        for posting in postings:
            markdown = (SET / posting["file"]).read_text(encoding="utf-8")
            score(posting, system(markdown), tally, posting["id"])
        results[name] = tally.report() | (
            {"missed": tally.missed} if args.split == "dev" else {"missed": len(tally.missed)}
        )
    if args.json:
        print(json.dumps({"split": args.split, "postings": len(postings), "systems": results}))
        return 0
    print(f"{args.split}: {len(postings)} postings")
    for name, report in results.items():
        figures = {k: v for k, v in report.items() if k != "missed"}
        print(f"  {name:13s} {figures}")
        if args.split == "dev" and name == "parser":
            for missed in report["missed"]:  # type: ignore[union-attr]
                print(f"      missed  {missed}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
