"""Per-answer video signals: is the candidate in frame, alone, facing the screen, well lit
and in focus. Frames are sampled (2 fps by default), not all analysed.

These signals derive from face detection, i.e. biometric data (GDPR Art. 9): the result is
marked ``data_category = "biometric"`` and must be stored and retained accordingly. They
describe recording conditions for a human reviewer; none of them is a judgement of the
candidate, and a missing face is as often a bad camera angle as an absent person.

The same per-frame classification feeds ``proctoring``; it lives here because the video
signals (ratios, intervals) and the proctoring events must never disagree on what a frame
showed.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from are_workers.config import Settings, get_settings
from are_workers.ml.vision import (
    DetectorInfo,
    FrameAnalysisOptions,
    FrameObservation,
    observe_video,
)
from are_workers.models.classification import DataCategory
from are_workers.services.media import BIOMETRIC, Interval, Signal, signals_to_dict
from are_workers.services.media.probe import MediaInfo, probe_media


class FrameState(StrEnum):
    """What a sampled frame showed, most severe first."""

    CAMERA_BLOCKED = "camera_blocked"
    MULTIPLE_FACES = "multiple_faces"
    FACE_AWAY = "face_away"
    NO_FACE = "no_face"
    FACE = "face"


@dataclass(frozen=True, slots=True)
class VideoAnalysisOptions:
    sample_fps: float = 2.0
    """Frames analysed per second of video. 2 fps catches anything lasting a second."""
    frame: FrameAnalysisOptions = field(default_factory=FrameAnalysisOptions)
    off_centre_x: float = 0.25
    """A face whose centre is more than this (fraction of the width) from the frame's centre
    counts as ``face_away``: the candidate leaned or looked well away from the screen."""
    off_centre_y: float = 0.30
    dark_luminance: float = 50.0
    bright_luminance: float = 210.0
    blurry_sharpness: float = 30.0
    """Variance of the Laplacian (at the analysis width) below which a frame is blurred.
    Low light lowers it too, since a dim image has little contrast to sharpen."""
    min_interval_seconds: float = 1.0
    """Intervals shorter than this are not listed: single-frame detector misses are noise."""

    def __post_init__(self) -> None:
        if self.sample_fps <= 0:
            raise ValueError("sample_fps must be positive")


def classify_frame(observation: FrameObservation, options: VideoAnalysisOptions) -> FrameState:
    """One state per frame; the order of the checks is the order of severity."""
    if observation.camera_blocked:
        return FrameState.CAMERA_BLOCKED
    if len(observation.faces) >= 2:
        return FrameState.MULTIPLE_FACES
    if observation.faces:
        face = observation.faces[0]
        if (
            abs(face.center_x - 0.5) > options.off_centre_x
            or abs(face.center_y - 0.5) > options.off_centre_y
        ):
            return FrameState.FACE_AWAY
        return FrameState.FACE
    if observation.profile_faces:
        return FrameState.FACE_AWAY
    return FrameState.NO_FACE


def coverage(
    observations: Sequence[FrameObservation], *, duration: float | None = None
) -> list[Interval]:
    """The time each observation stands for: until the next one; the last one for one
    sampling period (capped at ``duration``).

    Irregular snapshots get the same treatment, with any single gap capped at twice the
    median period, so that a camera that stopped sending snapshots is not assumed to have
    kept showing the last picture.
    """
    if not observations:
        return []
    times = [o.timestamp for o in observations]
    gaps = [b - a for a, b in itertools.pairwise(times) if b > a]
    period = statistics.median(gaps) if gaps else 1.0
    spans: list[Interval] = []
    for index, start in enumerate(times):
        end = times[index + 1] if index + 1 < len(times) else start + period
        end = min(end, start + 2 * period)
        if duration is not None:
            end = min(end, max(duration, start))
        spans.append(Interval(round(start, 3), round(end, 3)))
    return spans


def intervals_where(
    observations: Sequence[FrameObservation],
    flags: Sequence[bool],
    *,
    duration: float | None = None,
    min_seconds: float = 0.0,
) -> tuple[Interval, ...]:
    """Maximal time ranges of consecutive observations whose flag is set."""
    found: list[Interval] = []
    current: Interval | None = None
    spans = coverage(observations, duration=duration)
    for flag, span in zip(flags, spans, strict=True):
        if flag:
            if current is not None and abs(current.end - span.start) < 1e-6:
                current = Interval(current.start, span.end)
            else:
                if current is not None:
                    found.append(current)
                current = span
        elif current is not None:
            found.append(current)
            current = None
    if current is not None:
        found.append(current)
    return tuple(i for i in found if i.duration >= min_seconds - 1e-6)


@dataclass(frozen=True, slots=True)
class VideoAnalysis:
    """Video signals of one answer, with the intervals behind them. Biometric-derived."""

    duration: float
    sample_fps: float
    frames_decoded: int
    observations: tuple[FrameObservation, ...]
    signals: dict[str, Signal]
    multiple_faces_intervals: tuple[Interval, ...]
    no_face_intervals: tuple[Interval, ...]
    face_away_intervals: tuple[Interval, ...]
    data_category: DataCategory = BIOMETRIC
    detector: DetectorInfo | None = None
    """The face detector that ran (name and version); None for observations given
    directly to :func:`summarize_observations` without one."""

    def to_dict(self, *, include_frames: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "data_category": self.data_category.value,
            "detector": self.detector.to_dict() if self.detector else None,
            "duration": self.duration,
            "sample_fps": self.sample_fps,
            "frames_decoded": self.frames_decoded,
            "signals": signals_to_dict(self.signals),
            "multiple_faces_intervals": [i.to_dict() for i in self.multiple_faces_intervals],
            "no_face_intervals": [i.to_dict() for i in self.no_face_intervals],
            "face_away_intervals": [i.to_dict() for i in self.face_away_intervals],
        }
        if include_frames:
            data["frames"] = [
                {
                    "t": o.timestamp,
                    "faces": len(o.faces),
                    "profile_faces": o.profile_faces,
                    "luminance": o.mean_luminance,
                    "sharpness": o.sharpness,
                    "camera_blocked": o.camera_blocked,
                }
                for o in self.observations
            ]
        return data


def analyze_video(
    path: Path | str,
    *,
    options: VideoAnalysisOptions | None = None,
    settings: Settings | None = None,
    media: MediaInfo | None = None,
) -> VideoAnalysis:
    """Probe ``path`` (unless ``media`` is given), sample its frames and summarise them.

    Raises ``InvalidInputError`` (``no_video_track``, ``unsupported_codec``, ...) for media
    that has no usable video.
    """
    options = options or VideoAnalysisOptions()
    media = media or probe_media(path, settings=settings or get_settings())
    track = media.require_video()
    observed = observe_video(path, sample_fps=options.sample_fps, options=options.frame)
    return summarize_observations(
        observed.observations,
        duration=track.duration or observed.duration,
        frames_decoded=observed.frames_decoded,
        options=options,
        detector=observed.detector,
    )


def _ratio(count: int, total: int) -> float | None:
    return round(count / total, 3) if total else None


def summarize_observations(
    observations: Sequence[FrameObservation],
    *,
    duration: float,
    frames_decoded: int = 0,
    options: VideoAnalysisOptions | None = None,
    detector: DetectorInfo | None = None,
) -> VideoAnalysis:
    """Signals and intervals from sampled frames (pure: no I/O, easy to test)."""
    options = options or VideoAnalysisOptions()
    observations = tuple(observations)
    states = [classify_frame(o, options) for o in observations]
    total = len(observations)
    present = sum(1 for o in observations if o.faces or o.profile_faces)
    away = sum(1 for s in states if s is FrameState.FACE_AWAY)

    def interval_list(*wanted: FrameState) -> tuple[Interval, ...]:
        return intervals_where(
            observations,
            [s in wanted for s in states],
            duration=duration,
            min_seconds=options.min_interval_seconds,
        )

    multiple = interval_list(FrameState.MULTIPLE_FACES)
    no_face = interval_list(FrameState.NO_FACE, FrameState.CAMERA_BLOCKED)
    face_away = interval_list(FrameState.FACE_AWAY)
    luminances = [o.mean_luminance for o in observations]
    sharpness = [o.sharpness for o in observations if not o.camera_blocked]
    minimum = f"{options.min_interval_seconds:g} s"
    signals = {
        "frames_analysed": Signal(
            total,
            "frames",
            f"Frames sampled and analysed ({options.sample_fps:g} per second of video).",
        ),
        "face_presence_ratio": Signal(
            _ratio(present, total),
            "ratio",
            "Share of analysed frames in which a face (frontal or in profile) was detected.",
        ),
        "multiple_faces_ratio": Signal(
            _ratio(sum(1 for s in states if s is FrameState.MULTIPLE_FACES), total),
            "ratio",
            "Share of analysed frames in which more than one face was detected.",
        ),
        "multiple_faces_seconds": Signal(
            round(sum(i.duration for i in multiple), 2),
            "seconds",
            f"Total time with more than one face visible, in intervals of {minimum} or more.",
        ),
        "no_face_seconds": Signal(
            round(sum(i.duration for i in no_face), 2),
            "seconds",
            f"Total time with no face visible (including a covered or dark camera), in "
            f"intervals of {minimum} or more.",
        ),
        "face_away_ratio": Signal(
            _ratio(away, present),
            "ratio",
            f"Among frames with a face, the share where the face was only seen in profile or "
            f"its centre was more than {options.off_centre_x:.0%} of the width (or "
            f"{options.off_centre_y:.0%} of the height) from the frame centre: a proxy for "
            "looking away from the screen, not a measure of attention.",
        ),
        "camera_blocked_ratio": Signal(
            _ratio(sum(1 for s in states if s is FrameState.CAMERA_BLOCKED), total),
            "ratio",
            "Share of analysed frames that were almost black or uniform (lens covered, "
            "camera off, or a very dark room).",
        ),
        "mean_luminance": Signal(
            round(statistics.fmean(luminances), 1) if luminances else None,
            "luma 0-255",
            "Average brightness of the analysed frames (0 black, 255 white); roughly 80-180 "
            "is a well-lit webcam picture.",
        ),
        "dark_frame_ratio": Signal(
            _ratio(sum(1 for v in luminances if v < options.dark_luminance), total),
            "ratio",
            f"Share of frames with average brightness below {options.dark_luminance:g}/255 "
            "(too dark).",
        ),
        "bright_frame_ratio": Signal(
            _ratio(sum(1 for v in luminances if v > options.bright_luminance), total),
            "ratio",
            f"Share of frames with average brightness above {options.bright_luminance:g}/255 "
            "(overexposed).",
        ),
        "sharpness_median": Signal(
            round(statistics.median(sharpness), 1) if sharpness else None,
            "Laplacian variance",
            f"Median variance of the Laplacian of frames scaled to "
            f"{options.frame.analysis_width} px wide: higher is sharper; below "
            f"{options.blurry_sharpness:g} looks blurred.",
        ),
        "blurry_frame_ratio": Signal(
            _ratio(sum(1 for v in sharpness if v < options.blurry_sharpness), len(sharpness)),
            "ratio",
            f"Share of (not blocked) frames with sharpness below {options.blurry_sharpness:g}: "
            "out of focus, motion blur, or too little light.",
        ),
    }
    return VideoAnalysis(
        duration=duration,
        sample_fps=options.sample_fps,
        frames_decoded=frames_decoded,
        observations=observations,
        signals=signals,
        multiple_faces_intervals=multiple,
        no_face_intervals=no_face,
        face_away_intervals=face_away,
        detector=detector,
    )
