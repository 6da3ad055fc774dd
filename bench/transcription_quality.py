"""Transcription quality on the blind speech set: our pipeline vs raw faster-whisper.

For each model (tiny.en, base) and each clip of one split of ``eval/speech`` (written blind,
see its README; the audio is rebuilt by its ``generate.py``), in one run on the same loaded
model and compute type:

- raw: ``WhisperModel.transcribe(audio, beam_size=5)`` with faster-whisper's defaults (no
  VAD, language detected by a multilingual model, temperature fallback, previous text);
- pipeline: ``transcribe_file`` (probe, VAD, chunk plan, per-chunk language, prompts,
  hallucination filter, word-time refinement), what a worker stores.

It prints WER per language and voice (pooled: word errors over reference words, after the
project's ``normalize_for_wer``, which drops non-lexical fillers; ``--verbatim`` keeps them),
pipeline minus raw against the goal (<= +0.005), the language identification accuracy on the
de/fr/es clips, what tiny.en's refusal rule does with them, and the real-time factor
(processing seconds per audio second, lower is faster). Not run in CI.

Two more measures, meant for the dev split:

- ``--long SECONDS``: multi-chunk answers. The eval clips last 5-14 s (one chunk each), so
  chunk boundaries go unmeasured; this joins the split's clips of one voice (a fixed shuffle)
  with pauses of 0.4-1.5 s of faint noise (-60 dBFS white, deterministic) until each answer
  lasts at least SECONDS, writes them next to the audio, and scores them like the clips;
  it also prints how many chunks the pipeline cut each answer into.
- ``--languages``: each clip's language as the pipeline identifies it (VAD, then
  ``WhisperTranscriber.identify_language`` on the chunk's window: one encoder pass, and
  when that is uncertain a decoding in each of the top languages) with its probability,
  and how many right and wrong detections fall under each threshold of
  ``answers.LANGUAGE_MIN_PROBABILITY`` (``language_uncertain``). Decodes only the
  uncertain clips.

- ``--raw-seeds 0,1,2,3,4``: raw's reference as the mean over several sampling seeds. Raw
  falls back to sampling on a window that fails its checks (see ``RAW_SEED``), so one seed's
  raw WER is one draw: on test, raw fell back on 9 of the 60 de/fr/es clips, and the same
  answers gave raw 44, 45 and 48 errors in three unseeded runs. The first seed runs in this
  process beside the pipeline; each other seed runs raw alone in a child process (the
  sampler is seeded once per thread, so a seed needs a fresh process), and the table gives
  raw's mean over the seeds with its range, and the pipeline (which never samples) against
  that mean and against the worst and best draw.

Both honour ``ARE_SPEECH_LANGUAGES`` (the operator's list of interview languages; unset:
every language), as a worker does, and print it.

    python bench/transcription_quality.py --split test
    python bench/transcription_quality.py --split dev --models base --limit 20
    python bench/transcription_quality.py --split dev --models base --long 75
    python bench/transcription_quality.py --split dev --models base --languages
    python bench/transcription_quality.py --split test --models base --raw-seeds 0,1,2,3,4
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]

from are_workers.config import Settings, get_settings  # noqa: E402
from are_workers.errors import InvalidInputError  # noqa: E402
from are_workers.ml.transcriber import (  # noqa: E402
    decode_audio,
    get_transcriber,
)
from are_workers.services.media.answer_transcription import check_understood  # noqa: E402
from are_workers.services.media.transcription import (  # noqa: E402
    default_options,
    normalize_for_wer,
    plan_transcription,
    transcribe_file,
)

GOAL = 0.005
RAW_SEED = 0
"""Raw faster-whisper falls back to sampling (temperature 0.2-1.0, best of 5) on a window
that fails its compression or log-probability checks, and CTranslate2 seeds its sampler
from ``std::random_device`` unless told otherwise: unseeded, the same answers gave raw
0.02 apart per voice between runs. Its generator is per thread and seeded once, at the
thread's first draw, so ``ctranslate2.set_random_seed`` is called once, before any model
runs: the same clips in the same order then get the same draws, run after run (another
subset or order draws differently). The pipeline never samples."""
VOICE_ORDER = ("en-us", "en-gb", "en-sc", "de", "fr", "es")


@dataclass
class Tally:
    words: int = 0
    errors: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    def wer(self, system: str) -> float:
        return self.errors[system] / self.words if self.words else float("nan")


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    previous = list(range(len(hyp) + 1))
    for i, ref_token in enumerate(ref, start=1):
        current = [i] + [0] * len(hyp)
        for j, hyp_token in enumerate(hyp, start=1):
            current[j] = min(
                previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref_token != hyp_token)
            )
        previous = current
    return previous[-1]


def tokens(text: str, *, verbatim: bool) -> list[str]:
    if not verbatim:
        return normalize_for_wer(text)
    import re

    return [t.strip("'") for t in re.sub(r"[^\w\s']", " ", text.lower()).split() if t.strip("'")]


def load_clips(set_dir: Path, audio_dir: Path, split: str) -> list[dict[str, Any]]:
    manifest = audio_dir / "manifest.jsonl"
    if not manifest.is_file():
        print(f"generating the audio into {audio_dir} (eval/speech/generate.py) ...", flush=True)
        subprocess.run(
            [sys.executable, str(set_dir / "generate.py"), str(audio_dir), "--check"], check=True
        )
    clips = [json.loads(line) for line in (set_dir / "manifest.jsonl").read_text().splitlines()]
    return [dict(c, path=audio_dir / c["file"]) for c in clips if c["split"] == split]


LONG_SEED = 20261206
PAUSE_SECONDS = (0.4, 1.5)
PAUSE_DBFS = -60.0


def build_long_clips(
    clips: list[dict[str, Any]], audio_dir: Path, split: str, seconds: float
) -> list[dict[str, Any]]:
    """Join the clips of each voice (shuffled with ``LONG_SEED``) into answers of at least
    ``seconds``, with a pause of faint white noise between two clips; a remainder shorter
    than half of ``seconds`` joins the last answer. Deterministic: same files every run."""
    import numpy as np
    from scipy.io import wavfile

    out_dir = audio_dir / f"long-{split}-{seconds:g}"
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(LONG_SEED)
    noise_rng = np.random.default_rng(LONG_SEED)
    pause_amplitude = 10 ** (PAUSE_DBFS / 20)
    long_clips: list[dict[str, Any]] = []
    for voice in VOICE_ORDER:
        own = sorted((c for c in clips if c["voice"] == voice), key=lambda c: c["clip_id"])
        if not own:
            continue
        rng.shuffle(own)
        groups: list[list[dict[str, Any]]] = [[]]
        for clip in own:
            if sum(c["duration_s"] for c in groups[-1]) >= seconds:
                groups.append([])
            groups[-1].append(clip)
        if len(groups) > 1 and sum(c["duration_s"] for c in groups[-1]) < seconds / 2:
            groups[-2].extend(groups.pop())
        for number, group in enumerate(groups):
            parts: list[Any] = []
            for index, clip in enumerate(group):
                if index:
                    pause = round(rng.uniform(*PAUSE_SECONDS) * 16_000)
                    parts.append(noise_rng.standard_normal(pause) * pause_amplitude)
                parts.append(decode_audio(clip["path"]).astype(np.float64))
            audio = np.concatenate(parts)
            clip_id = f"{voice}_long{number}"
            path = out_dir / f"{clip_id}.wav"
            pcm = np.clip(np.round(audio * 32767), -32768, 32767).astype(np.int16)
            wavfile.write(path, 16_000, pcm)
            long_clips.append(
                {
                    "clip_id": clip_id,
                    "path": path,
                    "voice": voice,
                    "language": group[0]["language"],
                    "noise": "long",
                    "snr_db": None,
                    "reference": " ".join(c["reference"] for c in group),
                    "duration_s": len(audio) / 16_000,
                    "parts": [c["clip_id"] for c in group],
                }
            )
    return long_clips


def language_table(clips: list[dict[str, Any]], settings: Settings) -> None:
    """Per clip, the language the pipeline detects and its probability; then a sweep of the
    ``language_uncertain`` threshold (see the module docstring)."""
    from are_workers.services.media.answers import LANGUAGE_MIN_PROBABILITY

    transcriber = get_transcriber(settings)
    if not transcriber.is_multilingual:
        raise SystemExit("--languages needs a multilingual model")
    decoding = default_options(settings).decoding
    print(f"candidate languages (ARE_SPEECH_LANGUAGES): {','.join(decoding.languages) or 'all'}")
    rows: list[tuple[dict[str, Any], str, float]] = []
    print(f"{'clip':<16}{'noise':<11}{'heard':>6}{'prob':>8}")
    for clip in clips:
        audio = decode_audio(clip["path"])
        plan = plan_transcription(clip["path"], settings=settings)
        speech = [r for chunk in plan.chunks for r in chunk.speech]
        if not speech:
            print(f"{clip['clip_id']:<16}no speech found")
            continue
        window = audio[speech[0][0] : speech[-1][1]]
        language, probability, decoded = transcriber.identify_language(window, options=decoding)
        rows.append((clip, language, probability))
        noise = "clean" if clip["noise"] == "none" else f"{clip['noise']} {clip['snr_db']}"
        mark = "" if language == clip["language"] else "  WRONG"
        if decoded is not None:  # only then is the token's own first choice worth a pass
            detected = transcriber._language_probabilities(window, decoding.languages)[0][0]
            mark += f"  (picked by decoding; the token said {detected})"
        print(f"{clip['clip_id']:<16}{noise:<11}{language:>6}{probability:>8.3f}{mark}")
    right = sorted(p for c, lang, p in rows if lang == c["language"])
    wrong = sorted(p for c, lang, p in rows if lang != c["language"])
    print(f"\n{len(right)} right, {len(wrong)} wrong detections")
    for language in sorted({c["language"] for c, _, _ in rows}):
        probabilities = sorted(p for c, lang, p in rows if c["language"] == language)
        hits = sum(lang == c["language"] for c, lang, _ in rows if c["language"] == language)
        print(
            f"  {language}: {hits}/{len(probabilities)} right; probability min "
            f"{probabilities[0]:.3f}, median {probabilities[len(probabilities) // 2]:.3f}"
        )
    print("  wrong ones at " + ", ".join(f"{p:.3f}" for p in wrong))
    print("threshold  right flagged (false language_uncertain)  wrong flagged (caught)")
    for threshold in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9):
        current = "  <- current" if threshold == LANGUAGE_MIN_PROBABILITY else ""
        false_flags = sum(p < threshold for p in right)
        caught = sum(p < threshold for p in wrong)
        print(
            f"{threshold:>9.2f}  {false_flags:>3}/{len(right)}{'':>36}"
            f"{caught:>3}/{len(wrong)}{current}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--split", choices=("dev", "test"), default="test")
    parser.add_argument("--models", default="tiny.en,base")
    parser.add_argument("--set", type=Path, default=ROOT / "eval" / "speech")
    parser.add_argument("--audio", type=Path, default=None, help="default: <data_dir>/eval-speech")
    parser.add_argument("--limit", type=int, default=0, help="first N clips only (a smoke run)")
    parser.add_argument("--voices", default="", help="only these voices (comma-separated)")
    parser.add_argument(
        "--every", type=int, default=1, help="every Nth clip (a sample across all voices)"
    )
    parser.add_argument("--verbatim", action="store_true", help="keep fillers in the WER")
    parser.add_argument("--show", type=float, default=0.0, help="print clips worse by this")
    parser.add_argument(
        "--long", type=float, default=0.0, help="join clips into answers of >= this many s"
    )
    parser.add_argument(
        "--languages",
        action="store_true",
        help="identified language per clip (decodes only the uncertain ones)",
    )
    parser.add_argument(
        "--seed", type=int, default=RAW_SEED, help="CTranslate2's sampling seed (raw's fallback)"
    )
    parser.add_argument("--dump", type=Path, default=None, help="per-clip results as JSON lines")
    parser.add_argument(
        "--raw-seeds",
        default="",
        help="raw's reference as the mean over these seeds (e.g. 0,1,2,3,4; overrides --seed)",
    )
    parser.add_argument("--raw-only", action="store_true", help=argparse.SUPPRESS)  # a child
    args = parser.parse_args()
    seeds = [int(s) for s in args.raw_seeds.split(",") if s.strip()]
    if seeds:
        args.seed = seeds[0]

    audio_dir = args.audio or get_settings().data_dir / "eval-speech"
    clips = load_clips(args.set, audio_dir, args.split)
    clips = clips[:: args.every]  # before the voice filter: the same sample either way
    if args.voices:
        clips = [c for c in clips if c["voice"] in args.voices.split(",")]
    if args.long:
        clips = build_long_clips(clips, audio_dir, args.split, args.long)
    if args.limit:
        clips = clips[: args.limit]
    if args.languages:
        for model_name in args.models.split(","):
            language_table(clips, Settings(whisper_model_path=model_name))
        return
    import ctranslate2

    ctranslate2.set_random_seed(args.seed)  # before the first draw of any thread: see RAW_SEED
    dump = args.dump.open("w", encoding="utf-8") if args.dump else None
    audio_seconds = sum(c["duration_s"] for c in clips)
    other_seeds = other_seed_texts(args, seeds[1:]) if seeds[1:] and not args.raw_only else {}
    print(f"{len(clips)} {args.split} clips, {audio_seconds / 60:.1f} min of audio")
    languages = get_settings().speech_language_codes
    print(f"candidate languages (ARE_SPEECH_LANGUAGES): {','.join(languages) or 'all'}")

    for model_name in args.models.split(","):
        settings = Settings(whisper_model_path=model_name)
        transcriber = get_transcriber(settings)
        model = transcriber._model  # the very model (and compute type) the pipeline uses
        config = transcriber.config
        by_voice: dict[str, Tally] = defaultdict(Tally)
        by_noise: dict[str, Tally] = defaultdict(Tally)
        seconds = {"raw": 0.0, "pipeline": 0.0}
        language_id = {"raw": [0, 0], "pipeline": [0, 0]}
        refused = [0, 0, 0, 0]  # non-English refused / seen, English refused / seen
        for clip in clips:
            started = time.perf_counter()
            audio = decode_audio(clip["path"])
            segments, info = model.transcribe(audio, beam_size=5)
            segments = list(segments)
            raw_text = " ".join(s.text.strip() for s in segments)
            seconds["raw"] += time.perf_counter() - started
            if args.raw_only:
                if dump is not None:
                    dump.write(
                        json.dumps(
                            {"model": model_name, "clip_id": clip["clip_id"], "raw": raw_text}
                        )
                        + "\n"
                    )
                    dump.flush()  # as the full record below: the parent reads it at exit
                continue
            started = time.perf_counter()
            transcript = transcribe_file(clip["path"], settings=settings)
            seconds["pipeline"] += time.perf_counter() - started
            if args.long:
                chunks = len(plan_transcription(clip["path"], settings=settings).chunks)
                print(
                    f"  {clip['clip_id']}: {clip['duration_s']:.1f} s, {chunks} chunks", flush=True
                )

            reference = tokens(clip["reference"], verbatim=args.verbatim)
            errors = {
                "raw": edit_distance(reference, tokens(raw_text, verbatim=args.verbatim)),
                "pipeline": edit_distance(
                    reference, tokens(transcript.text, verbatim=args.verbatim)
                ),
            }
            noise = "clean" if clip["noise"] == "none" else f"{clip['noise']} {clip['snr_db']}"
            if dump is not None:
                record = {
                    "model": config.model_name,
                    "clip_id": clip["clip_id"],
                    "voice": clip["voice"],
                    "noise": noise,
                    "words": len(reference),
                    "errors": errors,
                    "raw": raw_text,
                    "pipeline": transcript.text,
                    "raw_language": [info.language, round(info.language_probability, 4)],
                    "raw_temperatures": [s.temperature for s in segments],
                    "pipeline_language": transcript.language,
                }
                dump.write(json.dumps(record, ensure_ascii=False) + "\n")
                dump.flush()
            for seed, texts in other_seeds.items():
                heard = texts[(model_name, clip["clip_id"])]
                errors[f"raw@{seed}"] = edit_distance(
                    reference, tokens(heard, verbatim=args.verbatim)
                )
            for tally in (by_voice[clip["voice"]], by_noise[noise]):
                tally.words += len(reference)
                for system, count in errors.items():
                    tally.errors[system] += count
            if args.show and (errors["pipeline"] - errors["raw"]) / len(reference) > args.show:
                print(f"  {clip['clip_id']}: raw {errors['raw']} pipeline {errors['pipeline']}")
                print(f"    REF {clip['reference']}\n    RAW {raw_text}\n    OUR {transcript.text}")
            if transcriber.is_multilingual and clip["language"] != "en":
                for system, heard in (("raw", info.language), ("pipeline", transcript.language)):
                    language_id[system][0] += heard == clip["language"]
                    language_id[system][1] += 1
            if not transcriber.is_multilingual:
                slot = 0 if clip["language"] != "en" else 2
                refused[slot + 1] += 1
                try:
                    check_understood(
                        transcript,
                        english_only=True,
                        speech_seconds=lambda path=clip["path"], settings=settings: sum(
                            chunk.speech_seconds
                            for chunk in plan_transcription(path, settings=settings).chunks
                        ),
                    )
                except InvalidInputError:
                    refused[slot] += 1

        if args.raw_only:
            continue
        print()
        print(
            f"== {config.model_name} ({config.device}/{config.compute_type}, "
            f"{config.cpu_threads} threads), WER {'verbatim' if args.verbatim else 'normalised'}"
        )
        print(f"{'voice':<12}{'words':>7}{'raw':>9}{'pipeline':>10}{'diff':>9}  goal <= +{GOAL}")
        groups = [(v, by_voice[v]) for v in VOICE_ORDER if v in by_voice]
        for name, tally in [*groups, *sorted(by_noise.items())]:
            raw, ours = tally.wer("raw"), tally.wer("pipeline")
            verdict = "ok" if ours <= raw + GOAL else "MISSES"
            print(
                f"{name:<12}{tally.words:>7}{raw:>9.3f}{ours:>10.3f}{ours - raw:>+9.3f}  {verdict}"
            )
        if other_seeds:
            print_seed_table(seeds, groups, sorted(by_noise.items()))
        if transcriber.is_multilingual:
            for system, (right, seen) in language_id.items():
                if seen:
                    print(f"language id on de/fr/es, {system}: {right}/{seen} = {right / seen:.3f}")
        else:
            print(
                f"English-only refusal (unsupported_language): de/fr/es {refused[0]}/{refused[1]}, "
                f"English {refused[2]}/{refused[3]}"
            )
        for system, spent in seconds.items():
            print(f"real-time factor, {system}: {spent / audio_seconds:.3f}")
        print(f"pipeline / raw time: {seconds['pipeline'] / seconds['raw']:.2f}x", flush=True)


def other_seed_texts(args: argparse.Namespace, seeds: list[int]) -> dict[int, dict]:
    """Raw's transcript of every clip under each of ``seeds``, each seed in a child process
    of this script (``--raw-only``): {seed: {(model, clip_id): text}}."""
    texts: dict[int, dict] = {}
    for seed in seeds:
        out = Path(os.environ.get("TMPDIR", "/tmp")) / f"raw-seed-{seed}-{os.getpid()}.jsonl"
        command = [sys.executable, __file__, "--raw-only", "--seed", str(seed), "--dump", str(out)]
        for flag in ("split", "models", "set", "audio", "limit", "voices", "every", "long"):
            value = getattr(args, flag)
            if value not in (None, "", 0, 0.0):
                command += [f"--{flag}", str(value)]
        print(f"raw, seed {seed}: a child process", file=sys.stderr, flush=True)
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        texts[seed] = {}
        for line in out.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            texts[seed][(record["model"], record["clip_id"])] = record["raw"]
        out.unlink()
    return texts


def print_seed_table(
    seeds: list[int], groups: list[tuple[str, Tally]], noises: list[tuple[str, Tally]]
) -> None:
    """Raw over every seed: mean, range, and the pipeline against the mean."""
    names = ["raw", *(f"raw@{seed}" for seed in seeds[1:])]
    print(f"raw over seeds {','.join(map(str, seeds))} (the pipeline never samples):")
    print(
        f"{'voice':<12}{'raw mean':>9}{'min':>7}{'max':>7}{'pipeline':>10}{'vs mean':>9}"
        f"  goal <= +{GOAL}; seeds it meets"
    )
    for name, tally in [*groups, *noises]:
        draws = [tally.wer(system) for system in names]
        mean = sum(draws) / len(draws)
        ours = tally.wer("pipeline")
        met = sum(ours <= draw + GOAL for draw in draws)
        verdict = "ok" if ours <= mean + GOAL else "MISSES"
        print(
            f"{name:<12}{mean:>9.3f}{min(draws):>7.3f}{max(draws):>7.3f}{ours:>10.3f}"
            f"{ours - mean:>+9.3f}  {verdict}; {met}/{len(draws)}"
        )


if __name__ == "__main__":
    main()
