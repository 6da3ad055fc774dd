"""Extra dev-only frames for tuning the face detector: more of eval/faces' dev, never test.

eval/faces' dev split has 128 frames, and only 3 of its face frames were still missed when
run 3 began: too few to tell a rule from noise. This draws 300 more frames with the set's
own compositing code (``eval/faces/generate.py``'s ``make_frame``) under another seed,
from the **dev** LFW crops only (and the astronaut and backgrounds, which the set shares
between its splits), weighted to the hard conditions. Test crops are never used, and the
blind set itself is neither read nor changed.

    python bench/face_dev_extra.py /var/tmp/faces-devx
    python bench/face_detection.py /var/tmp/faces-devx --split all \
        --manifest /var/tmp/faces-devx/manifest.jsonl

Needs the set's requirements (eval/faces/requirements.txt).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path

SEED = 777
PLAN = (
    ("one_plain", 40),
    ("one_occlusion", 40),
    ("one_lowlight", 40),
    ("one_motionblur", 40),
    ("one_gaussblur", 40),
    ("two_faces", 30),
    ("no_face", 70),
)


def main() -> None:
    import numpy as np
    from PIL import Image

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("outdir", type=Path)
    args = parser.parse_args()
    here = Path(__file__).resolve().parents[1] / "eval" / "faces"
    spec = importlib.util.spec_from_file_location("faces_generate", here / "generate.py")
    assert spec is not None
    assert spec.loader is not None
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    split = json.loads((here / "split.json").read_text())
    pools = {"dev": [s for s in split["dev_sources"] if s.startswith("lfw")]}
    faces = generate.load_sources()
    (args.outdir / "frames").mkdir(parents=True, exist_ok=True)
    rows = []
    index = 0
    for condition, count in PLAN:
        for k in range(count):
            rng = np.random.default_rng([SEED, index])
            frame, boxes, sources, tags, params = generate.make_frame(
                index, condition, "dev", pools, faces, rng
            )
            frame_id = f"x_{condition}_{k:03d}"
            Image.fromarray(frame).save(args.outdir / "frames" / f"{frame_id}.png")
            rows.append(
                {
                    "frame_id": frame_id,
                    "file": f"frames/{frame_id}.png",
                    "width": generate.W,
                    "height": generate.H,
                    "count": len(boxes),
                    "boxes": boxes,
                    "sources": sources,
                    "condition": condition,
                    "tags": tags,
                    "params": params,
                    "split": "dev-extra",
                }
            )
            index += 1
    lines = "".join(json.dumps(row) + "\n" for row in rows)
    (args.outdir / "manifest.jsonl").write_text(lines)
    print(f"{len(rows)} frames in {args.outdir}")


if __name__ == "__main__":
    main()
