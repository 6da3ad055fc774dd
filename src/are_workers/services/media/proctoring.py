"""Proctoring: timestamped integrity events from frames or snapshots, and a summary that
says whether a *person* should look. It never says whether anyone cheated.

Why no verdict: every event has innocent explanations (a family member walking past, a
webcam at an angle, a dark room, a disability), the detector makes mistakes, and decisions
based solely on automated processing with significant effects are restricted (GDPR Art. 22,
EU AI Act high-risk rules for recruitment). So the output is evidence with times, a
``needs_human_review`` flag and the reasons for it; a reviewer watches those moments.

Everything here is derived from face detection, i.e. biometric data (GDPR Art. 9): results
carry ``data_category = "biometric"``; store them under the biometric retention policy and
only where the candidate consented to proctoring.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from are_workers.ml.vision import FrameAnalysisOptions, FrameObservation, observe_image
from are_workers.models.classification import DataCategory
from are_workers.services.media import BIOMETRIC
from are_workers.services.media.video_analysis import (
    FrameState,
    VideoAnalysisOptions,
    classify_frame,
    coverage,
    intervals_where,
)

REVIEW_NOTICE = (
    "These events are indicators for a person to review, not findings. Each has innocent "
    "explanations (camera angle, lighting, someone passing by) and the face detector makes "
    "mistakes. No decision about the candidate may be based on them alone."
)


class EventKind(StrEnum):
    NO_FACE = "no_face"
    MULTIPLE_FACES = "multiple_faces"
    FACE_AWAY = "face_away"
    CAMERA_BLOCKED = "camera_blocked"


_KIND_OF_STATE = {
    FrameState.NO_FACE: EventKind.NO_FACE,
    FrameState.MULTIPLE_FACES: EventKind.MULTIPLE_FACES,
    FrameState.FACE_AWAY: EventKind.FACE_AWAY,
    FrameState.CAMERA_BLOCKED: EventKind.CAMERA_BLOCKED,
}


@dataclass(frozen=True, slots=True)
class ProctoringOptions:
    min_event_seconds: float = 1.0
    """A condition must last this long to become an event (2 frames at 2 fps): one missed
    detection is not an event."""
    review_multiple_faces_seconds: float = 1.0
    """Any other face for this long asks for review."""
    review_camera_blocked_seconds: float = 3.0
    review_no_face_ratio: float = 0.15
    review_no_face_event_seconds: float = 10.0
    review_face_away_ratio: float = 0.30


@dataclass(frozen=True, slots=True)
class ProctoringEvent:
    kind: EventKind
    start: float
    end: float

    @property
    def duration(self) -> float:
        return round(self.end - self.start, 3)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "start": self.start,
            "end": self.end,
            "duration": self.duration,
        }


@dataclass(frozen=True, slots=True)
class IntegritySummary:
    """Counts and durations per event kind, and whether a person should review."""

    observed_seconds: float
    counts: dict[str, int]
    seconds: dict[str, float]
    needs_human_review: bool
    review_reasons: tuple[str, ...]
    notice: str = REVIEW_NOTICE
    data_category: DataCategory = BIOMETRIC

    def to_dict(self) -> dict[str, Any]:
        return {
            "data_category": self.data_category.value,
            "observed_seconds": self.observed_seconds,
            "counts": dict(self.counts),
            "seconds": dict(self.seconds),
            "needs_human_review": self.needs_human_review,
            "review_reasons": list(self.review_reasons),
            "notice": self.notice,
        }


@dataclass(frozen=True, slots=True)
class ProctoringReport:
    events: tuple[ProctoringEvent, ...]
    summary: IntegritySummary
    data_category: DataCategory = field(default=BIOMETRIC)

    def to_dict(self) -> dict[str, Any]:
        return {
            "data_category": self.data_category.value,
            "events": [event.to_dict() for event in self.events],
            "summary": self.summary.to_dict(),
        }


def detect_events(
    observations: Sequence[FrameObservation],
    *,
    duration: float | None = None,
    options: ProctoringOptions | None = None,
    video_options: VideoAnalysisOptions | None = None,
) -> tuple[ProctoringEvent, ...]:
    """Events in time order: runs of frames in one non-normal state lasting long enough."""
    options = options or ProctoringOptions()
    video_options = video_options or VideoAnalysisOptions()
    states = [classify_frame(o, video_options) for o in observations]
    events: list[ProctoringEvent] = []
    for state, kind in _KIND_OF_STATE.items():
        for interval in intervals_where(
            observations,
            [s is state for s in states],
            duration=duration,
            min_seconds=options.min_event_seconds,
        ):
            events.append(ProctoringEvent(kind, interval.start, interval.end))
    return tuple(sorted(events, key=lambda e: (e.start, e.kind.value)))


def summarize_integrity(
    events: Sequence[ProctoringEvent],
    *,
    observed_seconds: float,
    options: ProctoringOptions | None = None,
) -> IntegritySummary:
    """Totals per kind and the reasons, if any, a person should review the recording."""
    options = options or ProctoringOptions()
    counts = {kind.value: 0 for kind in EventKind}
    seconds = {kind.value: 0.0 for kind in EventKind}
    for event in events:
        counts[event.kind.value] += 1
        seconds[event.kind.value] = round(seconds[event.kind.value] + event.duration, 3)
    reasons: list[str] = []
    multiple = seconds[EventKind.MULTIPLE_FACES]
    if multiple >= options.review_multiple_faces_seconds:
        reasons.append(
            f"More than one face was visible for {multiple:.1f} s "
            f"({counts[EventKind.MULTIPLE_FACES]} time(s))."
        )
    blocked = seconds[EventKind.CAMERA_BLOCKED]
    if blocked >= options.review_camera_blocked_seconds:
        reasons.append(f"The camera showed a dark or uniform picture for {blocked:.1f} s.")
    no_face = seconds[EventKind.NO_FACE]
    longest_no_face = max((e.duration for e in events if e.kind is EventKind.NO_FACE), default=0.0)
    if observed_seconds > 0 and (
        no_face / observed_seconds >= options.review_no_face_ratio
        or longest_no_face >= options.review_no_face_event_seconds
    ):
        reasons.append(
            f"No face was visible for {no_face:.1f} s of {observed_seconds:.1f} s "
            f"(longest {longest_no_face:.1f} s)."
        )
    away = seconds[EventKind.FACE_AWAY]
    if observed_seconds > 0 and away / observed_seconds >= options.review_face_away_ratio:
        reasons.append(
            f"The face was turned away or far off-centre for {away:.1f} s of "
            f"{observed_seconds:.1f} s."
        )
    return IntegritySummary(
        observed_seconds=round(observed_seconds, 3),
        counts=counts,
        seconds=seconds,
        needs_human_review=bool(reasons),
        review_reasons=tuple(reasons),
    )


def proctor_observations(
    observations: Sequence[FrameObservation],
    *,
    duration: float | None = None,
    options: ProctoringOptions | None = None,
    video_options: VideoAnalysisOptions | None = None,
) -> ProctoringReport:
    """Events and summary from observed frames (a video's samples or snapshots)."""
    events = detect_events(
        observations, duration=duration, options=options, video_options=video_options
    )
    spans = coverage(observations, duration=duration)
    observed = sum(span.duration for span in spans)
    return ProctoringReport(
        events=events,
        summary=summarize_integrity(events, observed_seconds=observed, options=options),
    )


def proctor_snapshots(
    snapshots: Sequence[tuple[float, bytes | Path]],
    *,
    options: ProctoringOptions | None = None,
    video_options: VideoAnalysisOptions | None = None,
) -> ProctoringReport:
    """Proctor periodic webcam stills: ``(seconds since the session started, image)``.

    Each snapshot stands for the time until the next one (capped at twice the usual
    interval), so events have realistic durations even at one still every 10 s.
    """
    video_options = video_options or VideoAnalysisOptions()
    frame_options: FrameAnalysisOptions = video_options.frame
    observations = sorted(
        (observe_image(image, timestamp=t, options=frame_options) for t, image in snapshots),
        key=lambda o: o.timestamp,
    )
    return proctor_observations(observations, options=options, video_options=video_options)


__all__ = [
    "REVIEW_NOTICE",
    "EventKind",
    "IntegritySummary",
    "ProctoringEvent",
    "ProctoringOptions",
    "ProctoringReport",
    "detect_events",
    "proctor_observations",
    "proctor_snapshots",
    "summarize_integrity",
]
