"""Video analysis throughput: seconds of 720p30 video analysed per second of compute.

Measures the whole per-response video analysis as a media job runs it: probe (PyAV, every
packet demuxed), frame sampling at --sample-fps with ``VideoCapture.grab()``/``retrieve()``,
face detection (``--detector``: BlazeFace by default when the ``faces`` extra is installed,
or Haar, frontal plus profile when no frontal face), lighting and blur per sampled frame,
the signals, and the proctoring events. Goal: >= 4x real time on 2 cores at >= 2 fps.

The clip is rendered at run time with the fixture generator (the real astronaut photograph
on a synthetic room: one face, no face, two faces, off-centre, covered camera), encoded as
H.264 (CRF 23, like a webcam upload) + AAC speech in MP4. The per-frame face count is also
checked against the render's truth, which gives the detector's accuracy at 720p.
``--full-search-every 1`` runs BlazeFace's full search on every sampled frame (the method
before ``+reuse``, see ``FrameAnalysisOptions.full_search_every``) for a comparison in the
same session.

    python bench/video_analysis.py --seconds 60 --runs 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import make_media_fixtures as fixtures  # noqa: E402

from are_workers.ml.vision import FrameAnalysisOptions  # noqa: E402
from are_workers.services.media.probe import probe_media  # noqa: E402
from are_workers.services.media.proctoring import proctor_observations  # noqa: E402
from are_workers.services.media.video_analysis import (  # noqa: E402
    VideoAnalysisOptions,
    analyze_video,
)

PATTERN = (  # repeated to fill the clip: (seconds, kind)
    (8.0, "face"),
    (2.0, "none"),
    (3.0, "two_faces"),
    (1.0, "blocked"),
    (2.0, "off_centre"),
    (4.0, "face"),
)


def timeline(seconds: float) -> tuple[fixtures.Shot, ...]:
    shots: list[fixtures.Shot] = []
    t = 0.0
    while t < seconds:
        for length, kind in PATTERN:
            end = min(t + length, seconds)
            if end > t:
                shots.append(fixtures.Shot(t, end, kind))
            t = end
    return tuple(shots)


def render_clip(path: Path, seconds: float) -> tuple[fixtures.Shot, ...]:
    shots = timeline(seconds)
    speech, rate = fixtures.synthesize_speech(" ".join([fixtures.INTERVIEW_TEXT] * 8))
    audio = fixtures.place_on_noise(
        speech[: int(seconds * rate)], rate, total_seconds=seconds, offset_seconds=0.5, seed=5
    )
    fixtures.write_media(
        path,
        frames=fixtures.render_frames(shots, width=1280, height=720, fps=30),
        fps=30,
        size=(1280, 720),
        audio=audio,
        sample_rate=rate,
        video_options={"crf": "23", "preset": "veryfast"},
        audio_bit_rate=64_000,
    )
    return shots


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sample-fps", type=float, default=2.0)
    parser.add_argument("--clip", type=Path, help="reuse (or keep) the rendered clip here")
    parser.add_argument(
        "--detector", default="auto", choices=["auto", "blazeface", "haar"], help="face detector"
    )
    parser.add_argument(
        "--full-search-every",
        type=int,
        default=FrameAnalysisOptions().full_search_every,
        help="BlazeFace: search every N-th sampled frame in full, the others only when they "
        "disagree with the previous one (1: every frame in full, the method before +reuse)",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = args.clip or Path(tmp) / "answer-720p30.mp4"
        shots = timeline(args.seconds)
        if not path.exists():
            started = time.perf_counter()
            shots = render_clip(path, args.seconds)
            print(f"rendered {path.name} in {time.perf_counter() - started:.0f} s")
        options = VideoAnalysisOptions(
            sample_fps=args.sample_fps,
            frame=FrameAnalysisOptions(
                detector=args.detector, full_search_every=args.full_search_every
            ),
        )

        def analyse() -> tuple[float, dict[str, float]]:
            started = time.perf_counter()
            media = probe_media(path)
            probed = time.perf_counter()
            video = analyze_video(path, options=options, media=media)
            analysed = time.perf_counter()
            proctor_observations(video.observations, duration=video.duration)
            done = time.perf_counter()
            stages = {
                "probe": probed - started,
                "video": analysed - probed,
                "proctor": done - analysed,
            }
            return done - started, stages

        media = probe_media(path)
        assert media.video is not None
        print(
            f"clip: {media.duration:.1f} s, {media.video.width}x{media.video.height} "
            f"{media.video.fps:g} fps {media.video.codec}, {media.size_bytes / 1e6:.1f} MB, "
            f"{os.cpu_count()} CPUs"
        )
        analyse()  # warm-up: cascades, codecs (not timed)
        totals: list[float] = []
        stage_runs: list[dict[str, float]] = []
        for run in range(args.runs):
            total, stages = analyse()
            totals.append(total)
            stage_runs.append(stages)
            print(f"run {run + 1}: {total:.2f} s ({media.duration / total:.1f}x real time)")
        median = statistics.median(totals)
        stage_medians = {k: statistics.median(r[k] for r in stage_runs) for k in stage_runs[0]}

        video = analyze_video(path, options=options, media=media)
        hits = 0
        for observation in video.observations:
            truth = next((s for s in shots if s.start <= observation.timestamp < s.end), shots[-1])
            hits += len(observation.faces) == truth.faces
        presence_truth = sum(s.end - s.start for s in shots if s.faces) / shots[-1].end
        print()
        print(
            f"whole analysis: median {median:.2f} s for {media.duration:.0f} s of video = "
            f"{media.duration / median:.1f}x real time "
            f"({'meets' if media.duration / median >= 4 else 'MISSES'} the >= 4x goal)"
        )
        print("stages (median s): " + ", ".join(f"{k} {v:.3f}" for k, v in stage_medians.items()))
        detector = video.detector
        print(
            f"detector: {detector.name if detector else None} "
            f"{detector.version if detector else ''}, full search every "
            f"{args.full_search_every} sampled frames"
        )
        print(
            f"frames: {video.frames_decoded} decoded (grab), {len(video.observations)} analysed "
            f"at {args.sample_fps:g} fps"
        )
        print(
            f"detector at 720p: per-frame face count correct on {hits}/{len(video.observations)}"
            f" sampled frames ({hits / len(video.observations):.1%}); face presence "
            f"{video.signals['face_presence_ratio'].value} vs truth {presence_truth:.3f}"
        )


if __name__ == "__main__":
    main()
