#!/usr/bin/env python3
"""Deterministic generator for the blind speech-transcription eval set.

Usage:
    python eval/speech/generate.py OUTDIR            # write OUTDIR/wav/*.wav + OUTDIR/manifest.jsonl
    python eval/speech/generate.py OUTDIR --check    # also compare sha256 with eval/speech/manifest.jsonl
    python eval/speech/generate.py --make-split      # (re)derive split.json from the seed (done once, up front)

Needs espeak-ng and sox on PATH and numpy/scipy (see eval/requirements.txt).
"""
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile

import numpy as np
from scipy.io import wavfile

HERE = os.path.dirname(os.path.abspath(__file__))
SR = 16000
SPLIT_SEED = 20261206
N_DEV_PER_LANG = 6  # of 16 texts per language -> 6 dev / 10 test

# (label used in the manifest, espeak-ng voice name, ISO 639-1 language)
VOICES = [
    ("en-us", "en-us", "en"),
    ("en-gb", "en-gb", "en"),
    ("en-sc", "en-gb-scotland", "en"),
    ("de", "de", "de"),
    ("fr", "fr-fr", "fr"),
    ("es", "es", "es"),
]
SPEEDS = [150, 185]
NOISY = [("pink", 20), ("pink", 10), ("babble", 20), ("babble", 10)]

# Babble: 6 talkers reading texts that are NOT in the eval set, summed at equal
# active level, looped; each noisy clip takes a different deterministic offset.
BABBLE = [
    ("en-us", "The weather service expects heavy rain along the coast tonight, with strong winds moving inland by the morning. Several schools have already announced late openings, and drivers are asked to avoid the bridge."),
    ("de", "Die Stadtbibliothek bleibt wegen Renovierungsarbeiten bis Ende des Monats geschlossen. Bücher können in dieser Zeit am Bahnhof zurückgegeben werden, und die Leihfristen werden automatisch verlängert."),
    ("fr-fr", "Le marché du samedi déménage sur la place de la mairie à partir de la semaine prochaine. Les commerçants seront installés dès sept heures, et le stationnement sera interdit dans les rues voisines."),
    ("es", "El museo de ciencias abre una nueva sala dedicada a los océanos. La entrada es gratuita los domingos por la tarde, y hay visitas guiadas para grupos escolares durante toda la semana."),
    ("en-gb", "The council has approved plans for a new cycle path between the station and the hospital. Work should begin in the spring and will take about eight months, according to the transport office."),
    ("en-gb-scotland", "Ticket sales for the summer festival opened this morning and the first weekend sold out within an hour. Organisers say more dates may be added if the park can handle the crowds."),
]


def load_texts():
    with open(os.path.join(HERE, "texts.json"), encoding="utf-8") as f:
        d = json.load(f)
    out = {}
    for lang, items in d.items():
        for i, it in enumerate(items):
            out[f"{lang}{i:02d}"] = {"lang": lang, "question": it["q"], "text": it["text"]}
    return out


def derive_split(texts):
    rng = random.Random(SPLIT_SEED)
    split = {"seed": SPLIT_SEED, "unit": "text (sentence group); the same text never appears in both splits",
             "dev": [], "test": []}
    for lang in ["en", "de", "fr", "es"]:
        ids = sorted(t for t in texts if texts[t]["lang"] == lang)
        rng.shuffle(ids)
        split["dev"] += sorted(ids[:N_DEV_PER_LANG])
        split["test"] += sorted(ids[N_DEV_PER_LANG:])
    return split


def plan(texts, split):
    """Assign a noise condition to every (voice, speed, text) clip.

    Per voice x speed (16 clips): 8 clean, 2 of each NOISY condition; the 10
    test clips hold 5 clean + all four noisy conditions + one extra noisy one,
    so every voice x speed x noise cell is present in test.
    """
    clips = []
    for vi, (vlabel, vname, lang) in enumerate(VOICES):
        dev = [t for t in split["dev"] if texts[t]["lang"] == lang]
        test = [t for t in split["test"] if texts[t]["lang"] == lang]
        for si, speed in enumerate(SPEEDS):
            k = vi * len(SPEEDS) + si
            conds_dev = [None] * 3 + [NOISY[(k + j) % 4] for j in range(3)]
            conds_test = [None] * 5 + NOISY[:] + [NOISY[(k + 3) % 4]]
            rng = random.Random(f"{SPLIT_SEED}-{vlabel}-{speed}")
            rng.shuffle(conds_dev)
            rng.shuffle(conds_test)
            for sp, ids, conds in (("dev", dev, conds_dev), ("test", test, conds_test)):
                for tid, cond in zip(ids, conds):
                    clips.append({"voice": vlabel, "espeak_voice": vname, "lang": lang, "speed": speed,
                                  "text_id": tid, "noise": cond, "split": sp})
    return clips


def run(cmd):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def tts(text, voice, speed, tmpdir):
    """espeak-ng (22050 Hz) -> sox -> 16 kHz mono 16-bit, no dither. Returns float64 in [-1, 1]."""
    raw = os.path.join(tmpdir, "raw.wav")
    out = os.path.join(tmpdir, "out.wav")
    run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", raw, text])
    run(["sox", "-R", "-D", raw, "-r", str(SR), "-c", "1", "-b", "16", out, "rate", "-h"])
    sr, x = wavfile.read(out)
    assert sr == SR and x.dtype == np.int16
    return x.astype(np.float64) / 32768.0


def active_power(x, frame=320, floor_db=40.0):
    """Mean power over 20 ms frames whose energy is within floor_db of the loudest frame."""
    n = len(x) // frame
    e = (x[: n * frame].reshape(n, frame) ** 2).mean(axis=1)
    keep = e >= e.max() * 10 ** (-floor_db / 10)
    return float(e[keep].mean())


def seed_of(s):
    return int.from_bytes(hashlib.sha256(s.encode()).digest()[:8], "little")


def pink(n, seed):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(n)
    f = np.fft.rfftfreq(n, 1.0 / SR)
    spec = np.fft.rfft(w)
    scale = np.zeros_like(f)
    scale[1:] = 1.0 / np.sqrt(f[1:])
    y = np.fft.irfft(spec * scale, n)
    return y / np.sqrt(np.mean(y ** 2))


def make_babble(tmpdir):
    talkers = []
    for voice, text in BABBLE:
        x = tts(text, voice, 170, tmpdir)
        talkers.append(x / np.sqrt(active_power(x)))
    L = max(len(t) for t in talkers)
    mix = np.zeros(L)
    for i, t in enumerate(talkers):
        # loop each talker to length L, starting at a different offset
        off = (i * 7919 * 13) % len(t)
        seg = np.tile(np.roll(t, -off), int(np.ceil(L / len(t))) + 1)[:L]
        mix += seg
    return mix / np.sqrt(np.mean(mix ** 2))


def babble_noise(babble, n, seed):
    off = seed % len(babble)
    reps = int(np.ceil((n + off) / len(babble))) + 1
    return np.tile(babble, reps)[off: off + n]


def sha256_file(p):
    h = hashlib.sha256()
    with open(p, "rb") as f:
        h.update(f.read())
    return h.hexdigest()


def main():
    args = sys.argv[1:]
    texts = load_texts()
    split_path = os.path.join(HERE, "split.json")
    if args == ["--make-split"]:
        with open(split_path, "w", encoding="utf-8") as f:
            json.dump(derive_split(texts), f, indent=1)
            f.write("\n")
        print("wrote", split_path)
        return
    if not args:
        sys.exit(__doc__)
    outdir = args[0]
    check = "--check" in args[1:]
    with open(split_path, encoding="utf-8") as f:
        split = json.load(f)
    assert split == derive_split(texts), "split.json does not match its seed/texts"
    os.makedirs(os.path.join(outdir, "wav"), exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmpdir:
        babble = make_babble(tmpdir)
        for c in plan(texts, split):
            cid = f"{c['voice']}_{c['speed']}_{c['text_id']}"
            ref = texts[c["text_id"]]["text"]
            s = tts(ref, c["espeak_voice"], c["speed"], tmpdir)
            if c["noise"] is None:
                y = s
                ntype, snr = "none", None
            else:
                ntype, snr = c["noise"]
                sd = seed_of(cid)
                n = pink(len(s), sd) if ntype == "pink" else babble_noise(babble, len(s), sd)
                ps = active_power(s)
                n = n * np.sqrt(ps / (np.mean(n ** 2) * 10 ** (snr / 10)))
                y = s + n
                peak = np.max(np.abs(y))
                if peak > 0.99:  # scale speech and noise together: SNR unchanged
                    y = y * (0.99 / peak)
            pcm = np.clip(np.round(y * 32768.0), -32768, 32767).astype(np.int16)
            fname = f"wav/{cid}.wav"
            path = os.path.join(outdir, fname)
            wavfile.write(path, SR, pcm)
            rows.append({
                "clip_id": cid, "file": fname, "language": c["lang"], "voice": c["voice"],
                "espeak_voice": c["espeak_voice"], "speed_wpm": c["speed"], "noise": ntype, "snr_db": snr,
                "text_id": c["text_id"], "reference": ref, "duration_s": round(len(pcm) / SR, 3),
                "sha256": sha256_file(path), "split": c["split"],
            })
            print(cid, rows[-1]["duration_s"], ntype, snr, flush=True)
    rows.sort(key=lambda r: r["clip_id"])
    with open(os.path.join(outdir, "manifest.jsonl"), "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    if check:
        ref_rows = {}
        with open(os.path.join(HERE, "manifest.jsonl"), encoding="utf-8") as f:
            for line in f:
                r = json.loads(line)
                ref_rows[r["clip_id"]] = r["sha256"]
        bad = [r["clip_id"] for r in rows if ref_rows.get(r["clip_id"]) != r["sha256"]]
        missing = set(ref_rows) - {r["clip_id"] for r in rows}
        print(f"check: {len(rows) - len(bad)}/{len(rows)} sha256 match; mismatched={bad[:10]} missing={sorted(missing)[:10]}")
        sys.exit(1 if bad or missing else 0)


if __name__ == "__main__":
    main()
