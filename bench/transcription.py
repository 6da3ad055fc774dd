"""Our transcription pipeline vs raw faster-whisper: same audio, model, settings, one run.

Ours = ``transcribe_file``: probe (PyAV demux of every packet), decode, Silero VAD once,
energy envelope, chunk plan (<= 30 s of audio per chunk), one faster-whisper call per chunk
(decoded like plain faster-whisper, timestamps included), hallucination filter, word-time
refinement, sentence split. Raw = one ``WhisperModel.transcribe`` call on the file with the
same decoding settings (tiny.en int8, beam 5, temperature 0, the same prompt, VAD with the
same minimum silence, word timestamps), consuming every segment, in two variants:
faster-whisper's default timestamp mode ("raw", as ours since plan 3), and
``without_timestamps=True`` ("raw-nots", as ours was until plan 3). All use the *same loaded
model*. Runs alternate after a warm-up of each; medians of --runs are compared, in wall time
and in process CPU time (steadier on a shared machine). Goal: ours <= 1.1x raw.

The audio is generated at run time: espeak-ng reading varied sentences with pauses of
0.6-2.2 s between them (like a spoken answer), encoded as AAC in M4A.

    python bench/transcription.py --minutes 3 --runs 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import make_media_fixtures as fixtures  # noqa: E402

from are_workers.ml.transcriber import get_transcriber  # noqa: E402
from are_workers.services.media.transcription import (  # noqa: E402
    TranscriptionOptions,
    transcribe_file,
    word_error_rate,
)

SENTENCES = [
    "In my last role I led a small team that rebuilt our billing service.",
    "We moved from a single large application to three smaller services.",
    "The hardest part was the data migration, because customers could not lose an invoice.",
    "We wrote a checker that compared both systems every night.",
    "After two months the numbers matched, and we switched over without any downtime.",
    "I learned that careful testing and clear communication matter more than clever code.",
    "When priorities conflict, I write down the trade-offs and ask the product owner to decide.",
    "My manager once asked me to ship a feature in a week that needed a month.",
    "I proposed a smaller first version, and we delivered the rest over the next sprint.",
    "Outside of work I volunteer as a mentor for people who are new to programming.",
    "I enjoy explaining difficult ideas with simple examples and small experiments.",
    "In five years I would like to lead a platform team and grow other engineers.",
]


def build_answer(minutes: float, directory: Path) -> tuple[Path, str]:
    """An M4A of about ``minutes`` of speech with varied pauses; returns (path, text)."""
    parts: list[str] = []
    words: list[str] = []
    seconds = 0.0
    index = 0
    while seconds < minutes * 60:
        sentence = SENTENCES[index % len(SENTENCES)]
        pause_ms = 600 + (index * 370) % 1600
        parts.append(f'{sentence} <break time="{pause_ms}ms"/>')
        words.append(sentence)
        seconds += len(sentence.split()) / fixtures.ESPEAK_WORDS_PER_MINUTE * 60 + pause_ms / 1000
        index += 1
    speech, rate = fixtures.synthesize_speech(f"<speak>{' '.join(parts)}</speak>", ssml=True)
    track = fixtures.place_on_noise(
        speech, rate, total_seconds=len(speech) / rate + 1.0, offset_seconds=0.5, seed=11
    )
    path = directory / "answer.m4a"
    fixtures.write_media(path, audio=track, sample_rate=rate, audio_bit_rate=48_000)
    return path, " ".join(words)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path, reference = build_answer(args.minutes, Path(tmp))
        transcriber = get_transcriber()
        model = transcriber._model  # the very model our pipeline uses
        options = TranscriptionOptions()
        decoding = options.decoding

        def raw(*, without_timestamps: bool = False) -> str:
            segments, _ = model.transcribe(
                str(path),
                language="en",
                beam_size=decoding.beam_size,
                temperature=0.0,
                initial_prompt=decoding.initial_prompt,
                without_timestamps=without_timestamps,
                word_timestamps=True,
                vad_filter=True,
                vad_parameters={"min_silence_duration_ms": decoding.vad_min_silence_ms},
            )
            return " ".join(s.text.strip() for s in segments if s.words is not None)

        def raw_nots() -> str:
            return raw(without_timestamps=True)

        def ours() -> str:
            return transcribe_file(path, options=options).text

        config = transcriber.config
        print(
            f"model {config.model_name} on {config.device}/{config.compute_type}, "
            f"{config.cpu_threads} threads; audio {path.stat().st_size / 1e6:.2f} MB"
        )
        variants = {"raw": raw, "raw-nots": raw_nots, "ours": ours}
        texts = {name: fn() for name, fn in variants.items()}  # warm-up (not timed)
        wall: dict[str, list[float]] = {name: [] for name in variants}
        cpu: dict[str, list[float]] = {name: [] for name in variants}
        for run in range(args.runs):
            for name, fn in variants.items():
                started, cpu_started = time.perf_counter(), time.process_time()
                texts[name] = fn()
                wall[name].append(time.perf_counter() - started)
                cpu[name].append(time.process_time() - cpu_started)
            print(f"run {run + 1}: " + ", ".join(f"{n} {wall[n][-1]:.2f}s" for n in variants))

        from are_workers.services.media.probe import probe_media

        duration = probe_media(path).duration
        print()
        print(f"audio: {duration:.1f} s of espeak-ng speech ({len(reference.split())} words)")
        medians = {n: (statistics.median(wall[n]), statistics.median(cpu[n])) for n in variants}
        for name, (wall_s, cpu_s) in medians.items():
            print(
                f"{name:<9} median wall {wall_s:6.2f} s ({duration / wall_s:5.1f}x real time), "
                f"cpu {cpu_s:6.2f} s, WER {word_error_rate(reference, texts[name]):.1%}"
            )
        for base in ("raw", "raw-nots"):
            ratio_wall = medians["ours"][0] / medians[base][0]
            ratio_cpu = medians["ours"][1] / medians[base][1]
            verdict = "meets" if ratio_wall <= 1.1 else "MISSES"
            print(
                f"ours / {base} = {ratio_wall:.3f}x wall, {ratio_cpu:.3f}x cpu "
                f"({verdict} the <= 1.1x goal)"
            )


if __name__ == "__main__":
    main()
