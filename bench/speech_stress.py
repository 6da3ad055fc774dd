"""A harder variant of the blind speech set's dev split, for tuning language identification.

The dev split's de/fr/es clips are all identified right by base (72/72 with plan 6), so it
cannot tell two language rules apart; the test misses are of kinds dev lacks (a clean French
clip heard as Thai, Spanish under babble heard as Italian). This rebuilds the **dev texts
only** (``split.json``'s dev ids, never a test text) with ``eval/speech/generate.py``'s own
functions (espeak-ng, sox, its pink noise, its babble loop and SNR definition) under
conditions the set does not have: other espeak voice variants (``+m3``, ``+f2``, ``+klatt2``,
and the regional ``es-419`` / ``fr-be``), speeds 140-230 wpm and noise down to 5 dB.
Deterministic: every clip's variant, speed and noise follow from its text id and index.

``--variants`` builds another set instead: the de/fr/es dev texts read **clean** by 6 of
13 espeak voice variants each (``+m1`` ... ``+klatt4``, regional French and Spanish voices,
150-200 wpm, 108 clips), where base's language token errs without any noise (French heard
as Hungarian or Thai, German as English), the kind of miss the test split showed on clean
French.

    python bench/speech_stress.py OUTDIR
    python bench/speech_stress.py OUTDIR --variants
    python bench/transcription_quality.py --set OUTDIR --audio OUTDIR --split dev \\
        --models base --languages

OUTDIR gets ``wav/*.wav`` and a ``manifest.jsonl`` in the set's format (split ``dev``). Not
a held-out measure: it is made of the texts tuned on, and the test split stays the judge.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SET_DIR = ROOT / "eval" / "speech"

VARIANTS = {
    "en": ("en-us+m3", "en-gb+f2", "en-gb-scotland+klatt2", "en-us"),
    "de": ("de+m3", "de+f2", "de+klatt2", "de"),
    "fr": ("fr-fr+m3", "fr-be+f2", "fr-fr+klatt2", "fr-be"),
    "es": ("es+m3", "es-419+f2", "es+klatt2", "es-419"),
}
SPEEDS = (140, 170, 200, 230)
NOISES: tuple[tuple[str, float] | None, ...] = (
    None,
    ("babble", 10),
    None,
    ("pink", 5),
    ("babble", 5),
)
CLIPS_PER_TEXT = {"en": 2, "de": 4, "fr": 4, "es": 4}
CLEAN_VOICES = {"fr": ("fr-fr", "fr-be", "fr-ch"), "es": ("es", "es-419"), "de": ("de",)}
CLEAN_VARIANTS = (
    *("", "+m1", "+m2", "+m4", "+m5", "+m6", "+m7"),
    *("+f1", "+f3", "+f4", "+klatt", "+klatt3", "+klatt4"),
)
CLEAN_SPEEDS = (150, 185, 165, 200)


def _conditions(
    text_number: int, language: str, *, variants: bool
) -> list[tuple[str, int, tuple[str, float] | None]]:
    """(espeak voice, wpm, noise) of each clip of one dev text."""
    if variants:
        if language == "en":
            return []
        voices = CLEAN_VOICES[language]
        return [
            (
                voices[(text_number + k) % len(voices)]
                + CLEAN_VARIANTS[(text_number * 5 + k * 3) % len(CLEAN_VARIANTS)],
                CLEAN_SPEEDS[(text_number + k) % 4],
                None,
            )
            for k in range(6)
        ]
    return [
        (
            VARIANTS[language][(text_number + k) % 4],
            SPEEDS[(2 * text_number + k) % 4],
            NOISES[(text_number + 2 * k) % len(NOISES)],
        )
        for k in range(CLIPS_PER_TEXT[language])
    ]


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location("speech_generate", SET_DIR / "generate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    args = sys.argv[1:]
    variants = "--variants" in args
    args = [a for a in args if a != "--variants"]
    if len(args) != 1:
        raise SystemExit(__doc__)
    import numpy as np
    from scipy.io import wavfile

    gen = _generator()
    out_dir = Path(args[0])
    prefix = "variant" if variants else "stress"
    (out_dir / "wav").mkdir(parents=True, exist_ok=True)
    texts = gen.load_texts()
    split = json.loads((SET_DIR / "split.json").read_text(encoding="utf-8"))
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmpdir:
        babble = gen.make_babble(tmpdir)
        for text_number, text_id in enumerate(split["dev"]):
            language = texts[text_id]["lang"]
            reference = texts[text_id]["text"]
            for k, (voice, speed, noise) in enumerate(
                _conditions(text_number, language, variants=variants)
            ):
                clip_id = f"{prefix}_{text_id}_{k}"
                speech = gen.tts(reference, voice, speed, tmpdir)
                if noise is None:
                    mixed = speech
                else:
                    kind, snr = noise
                    seed = gen.seed_of(clip_id)
                    n = (
                        gen.pink(len(speech), seed)
                        if kind == "pink"
                        else gen.babble_noise(babble, len(speech), seed)
                    )
                    power = gen.active_power(speech)
                    n = n * np.sqrt(power / (np.mean(n**2) * 10 ** (snr / 10)))
                    mixed = speech + n
                    peak = np.max(np.abs(mixed))
                    if peak > 0.99:
                        mixed = mixed * (0.99 / peak)
                pcm = np.clip(np.round(mixed * 32768.0), -32768, 32767).astype(np.int16)
                file = f"wav/{clip_id}.wav"
                wavfile.write(out_dir / file, gen.SR, pcm)
                rows.append(
                    {
                        "clip_id": clip_id,
                        "file": file,
                        "language": language,
                        "voice": language if language != "en" else "en-us",
                        "espeak_voice": voice,
                        "speed_wpm": speed,
                        "noise": "none" if noise is None else noise[0],
                        "snr_db": None if noise is None else noise[1],
                        "text_id": text_id,
                        "reference": reference,
                        "duration_s": round(len(pcm) / gen.SR, 3),
                        "split": "dev",
                    }
                )
                print(clip_id, voice, speed, noise, rows[-1]["duration_s"], flush=True)
    with (out_dir / "manifest.jsonl").open("w", encoding="utf-8") as f:
        for row in sorted(rows, key=lambda r: r["clip_id"]):
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{len(rows)} clips in {out_dir}")


if __name__ == "__main__":
    main()
