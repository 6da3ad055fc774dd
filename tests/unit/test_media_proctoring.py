"""Proctoring: events with times and a summary for human review, never a verdict."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest

from are_workers.errors import InvalidInputError
from are_workers.ml.vision import FaceBox, FrameObservation
from are_workers.services.media.proctoring import (
    REVIEW_NOTICE,
    EventKind,
    ProctoringOptions,
    detect_events,
    proctor_observations,
    proctor_snapshots,
    summarize_integrity,
)
from are_workers.services.media.video_analysis import analyze_video

MEDIA = Path(__file__).resolve().parents[1] / "fixtures" / "media"
TRUTH = json.loads((MEDIA / "labels.json").read_text())["interview.mp4"]


def _shot(kind: str) -> tuple[float, float]:
    (shot,) = [s for s in TRUTH["timeline"] if s["kind"] == kind]
    return shot["start"], shot["end"]


def test_events_on_the_labelled_interview() -> None:
    video = analyze_video(MEDIA / "interview.mp4")
    report = proctor_observations(video.observations, duration=video.duration)
    found = {(e.kind, e.start, e.end) for e in report.events}
    expected = {
        (EventKind.NO_FACE, *_shot("none")),
        (EventKind.MULTIPLE_FACES, *_shot("two_faces")),
        (EventKind.CAMERA_BLOCKED, *_shot("blocked")),
        (EventKind.FACE_AWAY, *_shot("off_centre")),
    }
    assert found == expected
    summary = report.summary
    assert summary.observed_seconds == pytest.approx(TRUTH["duration"])
    assert summary.counts == {
        "no_face": 1,
        "multiple_faces": 1,
        "face_away": 1,
        "camera_blocked": 1,
    }
    assert summary.seconds["multiple_faces"] == pytest.approx(2.0)
    assert summary.needs_human_review
    assert any("More than one face" in reason for reason in summary.review_reasons)
    data = report.to_dict()
    assert data["data_category"] == "biometric"
    assert data["summary"]["notice"] == REVIEW_NOTICE
    assert "verdict" not in json.dumps(data)


def test_a_clean_recording_needs_no_review() -> None:
    video = analyze_video(MEDIA / "no_audio.mp4")
    report = proctor_observations(video.observations, duration=video.duration)
    assert report.events == ()
    assert not report.summary.needs_human_review
    assert report.summary.review_reasons == ()


def _obs(t: float, *, faces: int = 1, profile: int = 0) -> FrameObservation:
    return FrameObservation(
        timestamp=t,
        faces=tuple(FaceBox(0.1 + 0.4 * i, 0.3, 0.25, 0.35) for i in range(faces))
        if faces != 1
        else (FaceBox(0.35, 0.3, 0.3, 0.4),),
        profile_faces=profile,
        mean_luminance=120.0,
        luminance_std=40.0,
        sharpness=150.0,
        camera_blocked=False,
    )


def test_turned_away_from_profile_detections() -> None:
    frames = [_obs(t / 2) for t in range(4)] + [
        _obs(2 + t / 2, faces=0, profile=1) for t in range(20)
    ]
    report = proctor_observations(frames, duration=12.0)
    (event,) = report.events
    assert (event.kind, event.start, event.end) == (EventKind.FACE_AWAY, 2.0, 12.0)
    assert report.summary.needs_human_review  # 10 s of 12 s turned away


def test_single_frame_glitches_are_not_events() -> None:
    frames = [_obs(t / 2, faces=0 if t == 5 else 1) for t in range(20)]
    assert detect_events(frames, duration=10.0) == ()
    strict = ProctoringOptions(min_event_seconds=0.5)
    (event,) = detect_events(frames, duration=10.0, options=strict)
    assert (event.kind, event.start, event.end) == (EventKind.NO_FACE, 2.5, 3.0)


def test_review_thresholds() -> None:
    frames = [_obs(t / 2, faces=0 if 4 <= t < 8 else 1) for t in range(40)]  # 2 s of 20 s
    events = detect_events(frames, duration=20.0)
    assert not summarize_integrity(events, observed_seconds=20.0).needs_human_review
    eager = ProctoringOptions(review_no_face_ratio=0.05)
    summary = summarize_integrity(events, observed_seconds=20.0, options=eager)
    assert summary.needs_human_review
    assert summary.review_reasons == ("No face was visible for 2.0 s of 20.0 s (longest 2.0 s).",)


def _snapshot(path: Path, at: float) -> bytes:
    capture = cv2.VideoCapture(str(path))
    capture.set(cv2.CAP_PROP_POS_MSEC, at * 1000)
    ok, frame = capture.read()
    capture.release()
    assert ok
    ok, jpeg = cv2.imencode(".jpg", frame)
    assert ok
    return jpeg.tobytes()


def test_snapshots() -> None:
    clip = MEDIA / "interview.mp4"
    shots = [(t * 10.0, _snapshot(clip, at)) for t, at in enumerate([1.0, 7.0, 7.5, 1.5])]
    report = proctor_snapshots(shots)
    (event,) = report.events
    assert (event.kind, event.start, event.end) == (EventKind.MULTIPLE_FACES, 10.0, 30.0)
    assert report.summary.observed_seconds == pytest.approx(40.0)
    assert report.summary.needs_human_review


def test_unreadable_snapshot() -> None:
    with pytest.raises(InvalidInputError) as caught:
        proctor_snapshots([(0.0, b"not an image")])
    assert caught.value.code == "corrupt_image"
