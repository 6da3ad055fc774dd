"""The whole analysis of one local recording: probe, transcript, speech signals, video
signals and proctoring events. The media actors and ``are-workers media analyze FILE`` both
call :func:`analyze_media`, so what an engineer sees on the command line is exactly what a
job stores.

What runs depends on the tracks: audio gives transcript and speech signals, video gives video
signals and proctoring. A missing or undecodable track skips its part (recorded in
``skipped`` with the error code) unless the caller requires it, in which case its
``InvalidInputError`` is raised: a video-interview job requires both, an audio-only
screening question requires audio.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from are_workers.config import Settings, get_settings
from are_workers.errors import InvalidInputError
from are_workers.logs import configure_logging
from are_workers.services.media import Signal
from are_workers.services.media.probe import MediaInfo, probe_media
from are_workers.services.media.proctoring import (
    ProctoringOptions,
    ProctoringReport,
    proctor_observations,
)
from are_workers.services.media.speech_analytics import (
    Similarity,
    SpeechAnalytics,
    SpeechAnalyticsOptions,
    analyze_speech,
)
from are_workers.services.media.transcription import (
    ChunkResult,
    Transcript,
    TranscriptionOptions,
    transcribe_chunks,
)
from are_workers.services.media.video_analysis import (
    VideoAnalysis,
    VideoAnalysisOptions,
    analyze_video,
)


@dataclass(frozen=True, slots=True)
class AnalysisOptions:
    transcription: TranscriptionOptions = field(default_factory=TranscriptionOptions)
    speech: SpeechAnalyticsOptions = field(default_factory=SpeechAnalyticsOptions)
    video: VideoAnalysisOptions = field(default_factory=VideoAnalysisOptions)
    proctoring: ProctoringOptions = field(default_factory=ProctoringOptions)
    proctor: bool = True
    """Proctoring needs the candidate's consent to it; pass False when there is none."""


@dataclass(frozen=True, slots=True)
class MediaAnalysis:
    """Everything learned from one recording. ``skipped`` maps a part to the reason code."""

    media: MediaInfo
    transcript: Transcript | None
    speech: SpeechAnalytics | None
    video: VideoAnalysis | None
    proctoring: ProctoringReport | None
    skipped: dict[str, str]
    timings: dict[str, float]
    """Seconds spent per stage, for metrics and capacity planning."""

    def to_dict(self, *, include_frames: bool = False) -> dict[str, Any]:
        return {
            "media": self.media.to_dict(),
            "transcript": self.transcript.to_dict() if self.transcript else None,
            "speech": self.speech.to_dict() if self.speech else None,
            "video": self.video.to_dict(include_frames=include_frames) if self.video else None,
            "proctoring": self.proctoring.to_dict() if self.proctoring else None,
            "skipped": dict(self.skipped),
            "timings": dict(self.timings),
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)


def analyze_media(
    path: Path | str,
    *,
    question: str | None = None,
    similarity: Similarity | None = None,
    require_audio: bool = False,
    require_video: bool = False,
    completed_chunks: Sequence[ChunkResult] = (),
    on_chunk_done: Callable[[ChunkResult], None] | None = None,
    options: AnalysisOptions | None = None,
    settings: Settings | None = None,
) -> MediaAnalysis:
    """Analyse the recording at ``path``; see the module docstring for what runs when.

    ``completed_chunks``/``on_chunk_done`` pass straight to ``transcribe_chunks``: the actor
    persists each transcript chunk and resumes after a crash. ``similarity`` scores answer
    relevance against ``question`` (both optional).
    """
    options = options or AnalysisOptions()
    settings = settings or get_settings()
    timings: dict[str, float] = {}
    skipped: dict[str, str] = {}

    @contextmanager
    def timed(stage: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            timings[stage] = round(time.perf_counter() - started, 3)

    with timed("probe"):
        media = probe_media(path, settings=settings)
    has_audio = _usable(media.require_audio, require_audio, "transcription", skipped)
    has_video = _usable(media.require_video, require_video, "video", skipped)

    transcript = speech = None
    if has_audio:
        with timed("transcription"):
            transcript = transcribe_chunks(
                path,
                completed=completed_chunks,
                on_chunk_done=on_chunk_done,
                options=options.transcription,
                settings=settings,
                media=media,
            )
        with timed("speech_analytics"):
            speech = analyze_speech(
                transcript, question=question, similarity=similarity, options=options.speech
            )

    video = proctoring = None
    if has_video:
        with timed("video"):
            video = analyze_video(path, options=options.video, settings=settings, media=media)
        if options.proctor:
            with timed("proctoring"):
                proctoring = proctor_observations(
                    video.observations,
                    duration=video.duration,
                    options=options.proctoring,
                    video_options=options.video,
                )
        else:
            skipped["proctoring"] = "not_requested"
    return MediaAnalysis(
        media=media,
        transcript=transcript,
        speech=speech,
        video=video,
        proctoring=proctoring,
        skipped=skipped,
        timings=timings,
    )


def _usable(
    require: Callable[[], object], required: bool, part: str, skipped: dict[str, str]
) -> bool:
    try:
        require()
    except InvalidInputError as exc:
        if required:
            raise
        skipped[part] = exc.code
        return False
    return True


# --- presentation ---------------------------------------------------------------------


def _signal_lines(signals: dict[str, Signal]) -> list[str]:
    lines = []
    for name, signal in signals.items():
        value = "-" if signal.value is None else signal.value
        lines.append(f"  {name:<28} {value!s:>10} {signal.unit}")
    return lines


def _spans(intervals: Sequence[Any]) -> str:
    return ", ".join(f"{i.start:.1f}-{i.end:.1f} s" for i in intervals) or "none"


def format_analysis(analysis: MediaAnalysis) -> str:
    """A plain-text report for people (the CLI without ``--json``)."""
    media = analysis.media
    tracks = []
    if media.video:
        v = media.video
        tracks.append(f"video {v.codec} {v.width}x{v.height} {v.fps:g} fps")
    if media.audio:
        a = media.audio
        tracks.append(f"audio {a.codec} {a.sample_rate} Hz")
    lines = [f"{media.path.name}: {media.container}, {media.duration:.1f} s, {', '.join(tracks)}"]
    if analysis.transcript is not None:
        t = analysis.transcript
        said = f'"{t.text}"' if not t.is_empty else "(no speech detected)"
        lines += ["", f"Transcript ({t.language}, {t.model}): {said}"]
    if analysis.speech is not None:
        lines += ["", "Speech:", *_signal_lines(analysis.speech.signals)]
        if analysis.speech.long_pauses:
            lines.append(f"  long pauses: {_spans(analysis.speech.long_pauses)}")
    if analysis.video is not None:
        v_analysis = analysis.video
        lines += ["", "Video (biometric data):", *_signal_lines(v_analysis.signals)]
        lines.append(f"  multiple faces: {_spans(v_analysis.multiple_faces_intervals)}")
        lines.append(f"  no face: {_spans(v_analysis.no_face_intervals)}")
        lines.append(f"  face away: {_spans(v_analysis.face_away_intervals)}")
    if analysis.proctoring is not None:
        summary = analysis.proctoring.summary
        lines += ["", "Proctoring (indicators for human review, biometric data):"]
        for event in analysis.proctoring.events:
            lines.append(f"  {event.start:6.1f}-{event.end:6.1f} s  {event.kind.value}")
        verdict = "yes" if summary.needs_human_review else "no"
        lines.append(f"  needs human review: {verdict}")
        lines += [f"   - {reason}" for reason in summary.review_reasons]
    for part, reason in analysis.skipped.items():
        lines.append(f"(skipped {part}: {reason})")
    timing = ", ".join(f"{stage} {seconds:.2f}s" for stage, seconds in analysis.timings.items())
    lines += ["", f"Timings: {timing}"]
    return "\n".join(lines)


def run_analysis(
    path: Path, *, question: str | None = None, json_output: bool = False, frames: bool = False
) -> int:
    """Analyse ``path`` and print the result (text, or JSON for scripts), as ``are-workers
    media analyze`` does. Returns 2 with the user message on stderr for bad input, else 0."""
    settings = get_settings()
    configure_logging(settings.log_level, json=settings.log_json)  # stderr: stdout stays JSON
    try:
        analysis = analyze_media(path, question=question, settings=settings)
    except InvalidInputError as exc:
        sys.stderr.write(f"error ({exc.code}): {exc.user_message}\n")
        return 2
    if json_output:
        sys.stdout.write(json.dumps(analysis.to_dict(include_frames=frames), indent=2))
    else:
        sys.stdout.write(format_analysis(analysis))
    sys.stdout.write("\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m are_workers.services.media.analyze FILE [--json]``: the same as
    :func:`run_analysis`, which ``are-workers media analyze`` calls directly."""
    parser = argparse.ArgumentParser(
        prog="are-workers media analyze", description="Analyse one interview recording."
    )
    parser.add_argument("file", type=Path)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--question", help="the question asked, for answer relevance")
    parser.add_argument("--frames", action="store_true", help="include per-frame data (JSON)")
    args = parser.parse_args(argv)
    return run_analysis(
        args.file, question=args.question, json_output=args.json, frames=args.frames
    )


if __name__ == "__main__":
    raise SystemExit(main())
