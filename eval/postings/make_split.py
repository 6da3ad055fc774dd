"""Seeded random dev/test split of the blind postings set (12 dev, 6 test)."""
import json
import pathlib
import random

SEED = 20261207
ids = [f"p{i:02d}" for i in range(1, 19)]
rng = random.Random(SEED)
rng.shuffle(ids)
split = {"seed": SEED, "dev": sorted(ids[:12]), "test": sorted(ids[12:])}
out = pathlib.Path(__file__).with_name("split.json")
out.write_text(json.dumps(split, indent=2) + "\n")
print(split)
