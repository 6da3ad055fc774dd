#!/usr/bin/env python3
"""Deterministic generator for the blind face-detection eval set.

Usage:
    python eval/faces/generate.py OUTDIR            # write OUTDIR/frames/*.png + OUTDIR/manifest.jsonl
    python eval/faces/generate.py OUTDIR --check    # also compare hashes with eval/faces/manifest.jsonl
    python eval/faces/generate.py --make-split      # (re)derive split.json from the seed (done once, up front)

Face sources ship with scikit-image (skimage.data): astronaut() (1 colour face, hand-boxed) and the first
100 images of lfw_subset() (25x25 grey face crops). Boxes are exact: each face rectangle is carried through
the same geometric transform as the pixels (as a mask) and the label is the mask's bounding box.
"""
import hashlib
import json
import os
import random
import sys

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage
import skimage.data as skd

HERE = os.path.dirname(os.path.abspath(__file__))
W, H = 640, 480
SEED = 20261206

# astronaut(): patch cropped at (x0, y0, x1, y1) and the face box inside the ORIGINAL image
# (hairline/eyebrows to chin, cheek to cheek, ears excluded), chosen by viewing the image.
ASTRO_CROP = (140, 30, 310, 230)
ASTRO_FACE = (174, 74, 274, 190)
N_LFW = 100  # lfw_subset()[:100] are faces, [100:] are not (unused: some contain face parts)

# frame plan: (condition, number of frames)
PLAN = [
    ("one_plain", 128),
    ("one_occlusion", 20),
    ("one_lowlight", 20),
    ("one_motionblur", 20),
    ("one_gaussblur", 20),
    ("two_faces", 48),
    ("no_face", 64),
]
DEV_FRACTION = 0.4

BG_IMAGES = ["brick", "grass", "gravel", "coffee", "rocket", "hubble_deep_field", "coins", "moon",
             "page", "text", "horse", "chelsea", "retina", "logo", "checkerboard",
             "clock", "cell", "immunohistochemistry", "colorwheel"]
PROC_BG = ["gradient", "smooth_noise", "stripes", "checker", "flat"]


def derive_split():
    rng = random.Random(SEED)
    ids = [f"lfw{i:03d}" for i in range(N_LFW)]
    rng.shuffle(ids)
    n_dev = int(round(DEV_FRACTION * N_LFW))
    frames = {}
    for cond, n in PLAN:
        k = int(round(DEV_FRACTION * n))
        s = ["dev"] * k + ["test"] * (n - k)
        rng.shuffle(s)
        frames[cond] = s
    return {
        "seed": SEED,
        "rule": "LFW face crops are split by source crop (a crop never appears in both splits). The single "
                "astronaut face and the backgrounds/distractors cannot be split by source; frames are split by "
                "a seeded per-condition assignment (frame_split) and may show the astronaut or any background in both.",
        "dev_sources": sorted(ids[:n_dev]) + ["astronaut (shared)"],
        "test_sources": sorted(ids[n_dev:]) + ["astronaut (shared)"],
        "frame_split": frames,
    }


# ---------------------------------------------------------------- sources
def load_sources():
    a = skd.astronaut()
    x0, y0, x1, y1 = ASTRO_CROP
    fx0, fy0, fx1, fy1 = ASTRO_FACE
    astro = {"img": a[y0:y1, x0:x1].copy(), "face": (fx0 - x0, fy0 - y0, fx1 - x0, fy1 - y0)}
    lfw = skd.lfw_subset()[:N_LFW]
    faces = {}
    for i in range(N_LFW):
        g = np.round(lfw[i] * 255).astype(np.uint8)
        faces[f"lfw{i:03d}"] = {"img": np.stack([g] * 3, -1), "face": (0, 0, 25, 25)}
    faces["astronaut"] = astro
    return faces


def bg_image(name):
    im = getattr(skd, name)()
    if im.dtype != np.uint8:
        imf = im.astype(np.float64)
        im = (255 * (imf - imf.min()) / (np.ptp(imf) + 1e-9)).astype(np.uint8)
    if im.ndim == 2:
        im = np.stack([im] * 3, -1)
    return im[..., :3]


def make_background(rng, kind):
    if kind in PROC_BG:
        c1 = rng.integers(0, 256, 3)
        c2 = rng.integers(0, 256, 3)
        if kind == "flat":
            return np.broadcast_to(c1, (H, W, 3)).astype(np.uint8).copy()
        if kind == "gradient":
            t = np.linspace(0, 1, W if rng.random() < 0.5 else H)
            t = t[None, :, None] if len(t) == W else t[:, None, None]
            return np.broadcast_to(c1 * (1 - t) + c2 * t, (H, W, 3)).astype(np.uint8).copy()
        if kind == "smooth_noise":
            n = rng.standard_normal((H // 8, W // 8, 3))
            n = ndimage.gaussian_filter(n, (3, 3, 0))
            n = (n - n.min()) / (np.ptp(n) + 1e-9)
            img = np.asarray(Image.fromarray((n * 255).astype(np.uint8)).resize((W, H), Image.BICUBIC), dtype=np.float64) / 255
            return (c1 * (1 - img) + c2 * img).astype(np.uint8)
        if kind == "stripes":
            period = int(rng.integers(12, 80))
            ang = rng.uniform(0, np.pi)
            yy, xx = np.mgrid[0:H, 0:W]
            t = (np.sin(2 * np.pi * (xx * np.cos(ang) + yy * np.sin(ang)) / period) > 0)[..., None]
            return np.where(t, c1, c2).astype(np.uint8)
        if kind == "checker":
            s = int(rng.integers(16, 96))
            yy, xx = np.mgrid[0:H, 0:W]
            t = (((xx // s) + (yy // s)) % 2 == 0)[..., None]
            return np.where(t, c1, c2).astype(np.uint8)
    im = bg_image(kind)
    h, w = im.shape[:2]
    # random crop with 4:3 aspect, at least half the image, resized to W x H
    cw = int(rng.integers(w // 2, w + 1))
    ch = min(h, int(cw * 3 / 4))
    cw = int(ch * 4 / 3)
    x = int(rng.integers(0, w - cw + 1))
    y = int(rng.integers(0, h - ch + 1))
    crop = Image.fromarray(im[y:y + ch, x:x + cw])
    if rng.random() < 0.5:
        crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
    return np.asarray(crop.resize((W, H), Image.BILINEAR)).copy()


def draw_distractors(img, rng, n, avoid=()):
    """Non-face distractors: plain skin-toned ellipses (no features), circles, rectangles, polygons, bars."""
    pil = Image.fromarray(img)
    d = ImageDraw.Draw(pil)
    tags = []
    skin = [(224, 172, 105), (198, 134, 66), (141, 85, 36), (255, 219, 172), (241, 194, 125)]
    for _ in range(n):
        kind = ["skin_ellipse", "circle", "rectangle", "polygon", "bars"][int(rng.integers(0, 5))]
        s = int(rng.integers(40, 170))
        x = int(rng.integers(0, W - s))
        y = int(rng.integers(0, H - s))
        col = tuple(int(v) for v in rng.integers(0, 256, 3))
        if kind == "skin_ellipse":
            col = skin[int(rng.integers(0, len(skin)))]
            d.ellipse([x, y, x + int(s * 0.75), y + s], fill=col)
        elif kind == "circle":
            d.ellipse([x, y, x + s, y + s], fill=col, outline=(0, 0, 0), width=2)
        elif kind == "rectangle":
            d.rectangle([x, y, x + s, y + int(s * rng.uniform(0.4, 1.2))], fill=col)
        elif kind == "polygon":
            pts = [(x + int(rng.integers(0, s)), y + int(rng.integers(0, s))) for _ in range(int(rng.integers(3, 7)))]
            d.polygon(pts, fill=col)
        else:
            for j in range(int(rng.integers(2, 5))):
                d.rectangle([x + j * s // 4, y, x + j * s // 4 + s // 8, y + s], fill=col)
        tags.append(kind)
    return np.asarray(pil).copy(), tags


# ---------------------------------------------------------------- faces
def perspective_coeffs(src, dst):
    """Coefficients for PIL PERSPECTIVE mapping output points (dst) to input points (src)."""
    A, b = [], []
    for (X, Y), (x, y) in zip(dst, src):
        A.append([X, Y, 1, 0, 0, 0, -x * X, -x * Y]); b.append(x)
        A.append([0, 0, 0, X, Y, 1, -y * X, -y * Y]); b.append(y)
    return np.linalg.solve(np.array(A, float), np.array(b, float)).tolist()


def render_face(src, face_h, rng, pose):
    """Return (RGBA patch, face mask) after scaling to a face height of face_h and the pose transform."""
    img = src["img"]
    fx0, fy0, fx1, fy1 = src["face"]
    s = face_h / (fy1 - fy0)
    pw, ph = max(1, int(round(img.shape[1] * s))), max(1, int(round(img.shape[0] * s)))
    rgb = Image.fromarray(img).resize((pw, ph), Image.BICUBIC)
    mask = np.zeros((img.shape[0], img.shape[1]), np.uint8)
    mask[fy0:fy1, fx0:fx1] = 255
    m = Image.fromarray(mask).resize((pw, ph), Image.NEAREST)
    rgba = rgb.convert("RGBA")
    info = {}
    if pose.get("flip"):
        rgba = rgba.transpose(Image.FLIP_LEFT_RIGHT)
        m = m.transpose(Image.FLIP_LEFT_RIGHT)
    if pose.get("perspective"):
        k = pose["perspective"]  # fraction by which one side is shortened
        side = pose["persp_side"]
        dst = [(0, 0), (pw, 0), (pw, ph), (0, ph)]
        if side == "left":
            dst = [(0, k * ph / 2), (pw, 0), (pw, ph), (0, ph - k * ph / 2)]
        elif side == "right":
            dst = [(0, 0), (pw, k * ph / 2), (pw, ph - k * ph / 2), (0, ph)]
        elif side == "top":
            dst = [(k * pw / 2, 0), (pw - k * pw / 2, 0), (pw, ph), (0, ph)]
        else:
            dst = [(0, 0), (pw, 0), (pw - k * pw / 2, ph), (k * pw / 2, ph)]
        c = perspective_coeffs([(0, 0), (pw, 0), (pw, ph), (0, ph)], dst)
        rgba = rgba.transform((pw, ph), Image.PERSPECTIVE, c, Image.BICUBIC)
        m = m.transform((pw, ph), Image.PERSPECTIVE, c, Image.NEAREST)
    if pose.get("rotate"):
        rgba = rgba.rotate(pose["rotate"], Image.BICUBIC, expand=True)
        m = m.rotate(pose["rotate"], Image.NEAREST, expand=True)
    return rgba, np.asarray(m) > 127


def place(frame, fmask_total, rgba, fmask, x, y):
    a = np.asarray(rgba).astype(np.float64)
    h, w = a.shape[:2]
    alpha = a[..., 3:4] / 255.0
    region = frame[y:y + h, x:x + w].astype(np.float64)
    frame[y:y + h, x:x + w] = np.round(a[..., :3] * alpha + region * (1 - alpha)).astype(np.uint8)
    full = np.zeros((H, W), bool)
    full[y:y + h, x:x + w] = fmask
    ys, xs = np.nonzero(full)
    box = [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]
    return box, (x, y, w, h)


def overlaps(r, others, margin=8):
    x, y, w, h = r
    for (a, b, c, d) in others:
        if x < a + c + margin and a < x + w + margin and y < b + d + margin and b < y + h + margin:
            return True
    return False


def random_pose(rng, allow_pose=True):
    pose, tags = {}, []
    if not allow_pose:
        return pose, tags
    if rng.random() < 0.5:
        pose["flip"] = True; tags.append("flip")
    r = rng.random()
    if r < 0.35:
        pose["rotate"] = float(np.round(rng.uniform(-15, 15), 1))
        if abs(pose["rotate"]) < 3:
            pose["rotate"] = 3.0 if pose["rotate"] >= 0 else -3.0
        tags.append("rotation")
    elif r < 0.6:
        pose["perspective"] = float(np.round(rng.uniform(0.08, 0.25), 3))
        pose["persp_side"] = ["left", "right", "top", "bottom"][int(rng.integers(0, 4))]
        tags.append("perspective")
    return pose, tags


def face_height(rng, src_name, lo=40, hi=220):
    if src_name == "astronaut":
        hi = min(hi, 180)  # the astronaut patch is 1.72x the face height and must fit in the frame
    return int(rng.integers(lo, hi + 1))


def occlude(frame, box, rng):
    x, y, w, h = box
    kind = ["top", "bottom", "left", "right", "center"][int(rng.integers(0, 5))]
    f = rng.uniform(0.3, 0.5)
    if kind == "top":
        r = (x - 4, y + int(h * 0.2), w + 8, int(h * f * 0.6))  # band over the eyes
    elif kind == "bottom":
        r = (x - 4, y + h - int(h * f), w + 8, int(h * f) + 4)
    elif kind == "left":
        r = (x - 4, y - 4, int(w * f) + 4, h + 8)
    elif kind == "right":
        r = (x + w - int(w * f), y - 4, int(w * f) + 4, h + 8)
    else:
        r = (x + int(w * 0.25), y + int(h * 0.3), int(w * 0.5), int(h * 0.4))
    col = tuple(int(v) for v in rng.integers(0, 256, 3))
    pil = Image.fromarray(frame)
    ImageDraw.Draw(pil).rectangle([r[0], r[1], r[0] + r[2] - 1, r[1] + r[3] - 1], fill=col)
    return np.asarray(pil).copy(), f"occlusion_{kind}"


def lowlight(frame, rng):
    g = rng.uniform(1.8, 2.8)
    k = rng.uniform(0.35, 0.6)
    sigma = rng.uniform(3, 9)
    x = (frame.astype(np.float64) / 255) ** g * k * 255
    x = x + rng.standard_normal(x.shape) * sigma
    return np.clip(np.round(x), 0, 255).astype(np.uint8), {"gamma": round(g, 2), "gain": round(k, 2), "noise_sigma": round(sigma, 1)}


def motion_blur(frame, rng):
    L = int(rng.integers(9, 22))
    ang = rng.uniform(0, 180)
    k = np.zeros((L, L))
    k[L // 2, :] = 1
    k = ndimage.rotate(k, ang, reshape=False, order=1)
    k /= k.sum()
    out = np.stack([ndimage.convolve(frame[..., c].astype(np.float32), k.astype(np.float32), mode="nearest")
                    for c in range(3)], -1)
    return np.clip(np.round(out), 0, 255).astype(np.uint8), {"length": L, "angle": round(ang, 1)}


def gauss_blur(frame, rng):
    s = rng.uniform(2.0, 4.5)
    out = ndimage.gaussian_filter(frame.astype(np.float32), (s, s, 0))
    return np.clip(np.round(out), 0, 255).astype(np.uint8), {"sigma": round(s, 2)}


# ---------------------------------------------------------------- frames
def make_frame(idx, cond, split, pools, faces, rng):
    kinds = BG_IMAGES + PROC_BG
    bg = kinds[int(rng.integers(0, len(kinds)))]
    frame = make_background(rng, bg)
    tags = [cond, f"bg_{bg}"]
    params = {}
    n_faces = {"two_faces": 2, "no_face": 0}.get(cond, 1)
    n_dis = int(rng.integers(1, 5)) if cond == "no_face" else (int(rng.integers(1, 3)) if rng.random() < 0.3 else 0)
    frame, dtags = draw_distractors(frame, rng, n_dis)
    if dtags:
        tags.append("distractors")
        params["distractors"] = dtags
    boxes, srcs, rects = [], [], []
    pool = pools[split]
    used = set()
    for j in range(n_faces):
        # about 30 % of faces are the astronaut (shared by both splits), the rest LFW crops of this split
        name = "astronaut" if (rng.random() < 0.3 and "astronaut" not in used) else pool[int(rng.integers(0, len(pool)))]
        while name in used:
            name = pool[int(rng.integers(0, len(pool)))]
        used.add(name)
        if cond == "one_plain":
            pose, ptags = random_pose(rng)
            fh = face_height(rng, name)
        elif cond == "two_faces":
            pose, ptags = random_pose(rng)
            fh = face_height(rng, name, 40, 150)
        else:
            pose, ptags = random_pose(rng) if rng.random() < 0.3 else ({}, [])
            fh = face_height(rng, name, 60, 200)
        rgba, fmask = render_face(faces[name], fh, rng, pose)
        pw, ph = rgba.size
        for _ in range(200):
            x = int(rng.integers(0, W - pw + 1))
            y = int(rng.integers(0, H - ph + 1))
            if not overlaps((x, y, pw, ph), rects):
                break
        else:
            raise RuntimeError(f"cannot place face in frame {idx}")
        box, rect = place(frame, None, rgba, fmask, x, y)
        rects.append(rect)
        boxes.append(box)
        srcs.append(name)
        tags += [t for t in ptags if t not in tags]
        params.setdefault("faces", []).append({"source": name, "face_height_px": fh, **pose})
    if cond == "one_occlusion":
        frame, t = occlude(frame, boxes[0], rng); tags.append(t)
    elif cond == "one_lowlight":
        frame, p = lowlight(frame, rng); params["lowlight"] = p
    elif cond == "one_motionblur":
        frame, p = motion_blur(frame, rng); params["motion_blur"] = p
    elif cond == "one_gaussblur":
        frame, p = gauss_blur(frame, rng); params["gaussian_blur"] = p
    if n_faces:
        tags.append("astronaut" if "astronaut" in srcs else "lfw_only")
    small = [b for b in boxes if b[3] < 64]
    if small:
        tags.append("small_face")
    return frame, boxes, srcs, tags, params


def sha256_bytes(b):
    return hashlib.sha256(b).hexdigest()


def main():
    args = sys.argv[1:]
    split_path = os.path.join(HERE, "split.json")
    if args == ["--make-split"]:
        with open(split_path, "w") as f:
            json.dump(derive_split(), f, indent=1)
            f.write("\n")
        print("wrote", split_path)
        return
    if not args:
        sys.exit(__doc__)
    outdir = args[0]
    check = "--check" in args[1:]
    with open(split_path) as f:
        split = json.load(f)
    assert split == derive_split(), "split.json does not match its seed"
    faces = load_sources()
    pools = {"dev": [s for s in split["dev_sources"] if s.startswith("lfw")],
             "test": [s for s in split["test_sources"] if s.startswith("lfw")]}
    os.makedirs(os.path.join(outdir, "frames"), exist_ok=True)
    rows = []
    idx = 0
    for cond, n in PLAN:
        for k in range(n):
            sp = split["frame_split"][cond][k]
            fid = f"{cond}_{k:03d}"
            rng = np.random.default_rng([SEED, idx])
            frame, boxes, srcs, tags, params = make_frame(idx, cond, sp, pools, faces, rng)
            fname = f"frames/{fid}.png"
            path = os.path.join(outdir, fname)
            Image.fromarray(frame).save(path)
            with open(path, "rb") as f:
                data = f.read()
            rows.append({"frame_id": fid, "file": fname, "width": W, "height": H, "count": len(boxes),
                         "boxes": boxes, "sources": srcs, "condition": cond, "tags": tags, "params": params,
                         "split": sp, "sha256": sha256_bytes(data),
                         "pixel_sha256": sha256_bytes(np.ascontiguousarray(frame).tobytes())})
            idx += 1
            if idx % 40 == 0:
                print(idx, "frames", flush=True)
    with open(os.path.join(outdir, "manifest.jsonl"), "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    if check:
        ref = {}
        with open(os.path.join(HERE, "manifest.jsonl")) as f:
            for line in f:
                r = json.loads(line)
                ref[r["frame_id"]] = (r["sha256"], r["pixel_sha256"])
        bad_file = [r["frame_id"] for r in rows if ref.get(r["frame_id"], ("", ""))[0] != r["sha256"]]
        bad_pix = [r["frame_id"] for r in rows if ref.get(r["frame_id"], ("", ""))[1] != r["pixel_sha256"]]
        missing = set(ref) - {r["frame_id"] for r in rows}
        print(f"check: png sha256 mismatches={len(bad_file)} pixel sha256 mismatches={len(bad_pix)} "
              f"missing={len(missing)} of {len(rows)}; first: {bad_pix[:5]}")
        sys.exit(1 if bad_pix or missing else 0)


if __name__ == "__main__":
    main()
