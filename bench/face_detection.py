"""Face detection quality on the blind eval set (eval/faces): Haar cascades vs BlazeFace.

Both detectors run in the same process on the same frames, through the production path
(``FaceDetector.observe`` with the default ``FrameAnalysisOptions``: each frame scaled to
320 px wide, camera-blocked check, the detector's own thresholds). Printed per detector and
split:

* face presence (a frame with at least one face, Haar profiles included): precision, recall;
* the multiple-faces flag (two or more faces, what raises ``multiple_faces`` events):
  precision, recall, F1;
* per condition (plain, occlusion, low light, motion blur, Gaussian blur, two faces, no
  face): frames right on presence, and the share of labelled boxes hit by a detection with
  IoU >= 0.5 (and >= 0.3: the set's boxes are the full face rectangle, BlazeFace's a
  tighter square);
* time per frame (median and mean, milliseconds), and its ratio to Haar's in the same run.

BlazeFace's rules (tile levels, re-centred score, Haar cross-check, the face-count rule)
and thresholds (``FrameAnalysisOptions``) were chosen on ``dev`` only (rule: the highest
presence recall with presence precision >= 0.95; the best multi-face F1, in the middle of
its plateau); ``test`` is reported as it comes. Goals on test: presence recall >= 0.95 at
precision >= 0.95, and a multi-face F1 above Haar's.

The frames are not committed: build them once with the set's own generator and versions
(eval/faces/README.md), then point this script at them:

    python eval/faces/generate.py /var/tmp/faces --check
    python bench/face_detection.py /var/tmp/faces [--split test] [--json]

More dev-only frames for tuning: ``bench/face_dev_extra.py`` (then ``--manifest``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from are_workers.ml.vision import FaceBox, FrameAnalysisOptions, make_face_detector

CONDITIONS = (
    "one_plain",
    "one_occlusion",
    "one_lowlight",
    "one_motionblur",
    "one_gaussblur",
    "two_faces",
    "no_face",
)


def iou(box: list[float], face: FaceBox, width: int, height: int) -> float:
    x, y, w, h = box
    fx, fy, fw, fh = face.x * width, face.y * height, face.width * width, face.height * height
    iw = max(0.0, min(x + w, fx + fw) - max(x, fx))
    ih = max(0.0, min(y + h, fy + fh) - max(y, fy))
    inter = iw * ih
    return inter / (w * h + fw * fh - inter) if inter else 0.0


def prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def evaluate(kind: str, frames: list[dict[str, Any]], root: Path) -> dict[str, Any]:
    import cv2

    options = FrameAnalysisOptions(detector=kind)
    detector = make_face_detector(kind)
    blank = cv2.imread(str(root / frames[0]["file"]))
    detector.observe(blank, timestamp=0.0, options=options)  # warm-up: graph and caches
    times: list[float] = []
    pres = [0, 0, 0]  # tp fp fn
    multi = [0, 0, 0]
    per: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    misses: list[str] = []
    for frame in frames:
        bgr = cv2.imread(str(root / frame["file"]))
        start = time.perf_counter()
        seen = detector.observe(bgr, timestamp=0.0, options=options)
        times.append((time.perf_counter() - start) * 1000)
        found = bool(seen.faces) or seen.profile_faces > 0
        truth = frame["count"] > 0
        many, many_truth = len(seen.faces) >= 2, frame["count"] >= 2
        pres[0] += found and truth
        pres[1] += found and not truth
        pres[2] += truth and not found
        multi[0] += many and many_truth
        multi[1] += many and not many_truth
        multi[2] += many_truth and not many
        c = per[frame["condition"]]
        c["frames"] += 1
        c["presence_right"] += found == truth
        c["multi_right"] += many == many_truth
        for box in frame["boxes"]:
            size = (frame["width"], frame["height"])
            best = max((iou(box, f, *size) for f in seen.faces), default=0)
            c["boxes"] += 1
            c["iou50"] += best >= 0.5
            c["iou30"] += best >= 0.3
        if found != truth or many != many_truth:
            misses.append(f"{frame['frame_id']}:{len(seen.faces)}/{frame['count']}")
    p, r, _ = prf(*pres)
    mp, mr, mf1 = prf(*multi)
    return {
        "detector": detector.info.to_dict(),
        "frames": len(frames),
        "presence": {"precision": round(p, 3), "recall": round(r, 3), "tp_fp_fn": pres},
        "multiple_faces": {
            "precision": round(mp, 3),
            "recall": round(mr, 3),
            "f1": round(mf1, 3),
            "tp_fp_fn": multi,
        },
        "per_condition": {
            name: {
                "frames": per[name]["frames"],
                "presence_right": per[name]["presence_right"],
                "multi_right": per[name]["multi_right"],
                "iou50": f"{per[name]['iou50']}/{per[name]['boxes']}",
                "iou30": f"{per[name]['iou30']}/{per[name]['boxes']}",
            }
            for name in CONDITIONS
            if per[name]["frames"]
        },
        "ms_per_frame": {
            "median": round(statistics.median(times), 1),
            "mean": round(statistics.fmean(times), 1),
        },
        "wrong_frames": misses,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("frames", type=Path, help="OUTDIR of eval/faces/generate.py")
    parser.add_argument("--split", default="test", choices=["dev", "test", "all"])
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    parser.add_argument(
        "--manifest",
        type=Path,
        default=Path(__file__).resolve().parents[1] / "eval" / "faces" / "manifest.jsonl",
        help="labels (default: the blind set's; bench/face_dev_extra.py writes its own)",
    )
    args = parser.parse_args()
    manifest = args.manifest
    frames = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    if args.split != "all":
        frames = [f for f in frames if f["split"] == args.split]
    missing = [f["file"] for f in frames if not (args.frames / f["file"]).is_file()]
    if missing:
        raise SystemExit(
            f"{len(missing)} frames missing under {args.frames} (first: {missing[0]}); "
            "build them with eval/faces/generate.py OUTDIR --check"
        )
    results = {kind: evaluate(kind, frames, args.frames) for kind in ("haar", "blazeface")}
    haar_ms = results["haar"]["ms_per_frame"]["median"]
    for result in results.values():
        result["time_ratio_to_haar"] = round(result["ms_per_frame"]["median"] / haar_ms, 2)
    if args.json:
        print(json.dumps({"split": args.split, "results": results}))
        return
    print(f"eval/faces, split {args.split}, {len(frames)} frames")
    print(
        "| detector | presence P | presence R | multi P | multi R | multi F1 "
        "| ms/frame (median) | vs Haar |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for result in results.values():
        pr, mu = result["presence"], result["multiple_faces"]
        print(
            f"| {result['detector']['name']} | {pr['precision']:.3f} | {pr['recall']:.3f} | "
            f"{mu['precision']:.3f} | {mu['recall']:.3f} | {mu['f1']:.3f} | "
            f"{result['ms_per_frame']['median']} | {result['time_ratio_to_haar']}x |"
        )
    print()
    print(
        "| condition | frames | "
        + " | ".join(
            f"{r['detector']['name']} presence right / IoU>=0.5 / IoU>=0.3"
            for r in results.values()
        )
        + " |"
    )
    print("|---|---|" + "---|" * len(results))
    for name in CONDITIONS:
        cells = []
        for result in results.values():
            c = result["per_condition"].get(name)
            if c is None:
                continue
            cells.append(f"{c['presence_right']}/{c['frames']} / {c['iou50']} / {c['iou30']}")
        frames_n = results["haar"]["per_condition"].get(name, {}).get("frames", 0)
        print(f"| {name} | {frames_n} | " + " | ".join(cells) + " |")
    for result in results.values():
        print(
            f"\n{result['detector']['name']} wrong (found/true faces): "
            + " ".join(result["wrong_frames"])
        )


if __name__ == "__main__":
    main()
