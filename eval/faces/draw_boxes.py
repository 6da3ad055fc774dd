#!/usr/bin/env python3
"""Contact sheet with the labelled boxes drawn, to check labels by eye.
Usage: python eval/faces/draw_boxes.py OUTDIR SHEET.png [frame_id ...]   (default: first 2 frames of each condition)"""
import json, os, sys
from PIL import Image, ImageDraw

outdir, sheet = sys.argv[1], sys.argv[2]
rows = [json.loads(l) for l in open(os.path.join(outdir, "manifest.jsonl"))]
want = sys.argv[3:]
if want:
    rows = [r for r in rows if r["frame_id"] in want]
else:
    seen = {}
    rows = [r for r in rows if seen.setdefault(r["condition"], []).append(1) or len(seen[r["condition"]]) <= 2]
cols, s = 4, 0.5
tw, th = int(640 * s), int(480 * s)
out = Image.new("RGB", (cols * tw, ((len(rows) + cols - 1) // cols) * (th + 14)), "white")
for i, r in enumerate(rows):
    im = Image.open(os.path.join(outdir, r["file"])).convert("RGB")
    d = ImageDraw.Draw(im)
    for x, y, w, h in r["boxes"]:
        d.rectangle([x, y, x + w - 1, y + h - 1], outline=(0, 255, 0), width=3)
    im = im.resize((tw, th))
    out.paste(im, ((i % cols) * tw, (i // cols) * (th + 14) + 14))
    ImageDraw.Draw(out).text(((i % cols) * tw + 2, (i // cols) * (th + 14)), r["frame_id"] + " " + ",".join(t for t in r["tags"] if not t.startswith("bg_"))[:40], fill="black")
out.save(sheet)
