"""Seeded random dev/test split of the blind postings set (12 dev, 6 test) from p01-p18,
plus the second dev batch p19-p30, which all go to dev (test unchanged)."""
import json
import pathlib
import random

SEED = 20261207
ids = [f"p{i:02d}" for i in range(1, 19)]
rng = random.Random(SEED)
rng.shuffle(ids)
SECOND_DEV_BATCH = [f"p{i:02d}" for i in range(19, 31)]  # 2026-12-07, dev only
split = {"seed": SEED, "dev": sorted(ids[:12]) + SECOND_DEV_BATCH, "test": sorted(ids[12:])}
out = pathlib.Path(__file__).with_name("split.json")
out.write_text(json.dumps(split, indent=2) + "\n")
print(split)
