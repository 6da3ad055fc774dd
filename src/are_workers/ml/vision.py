"""Frame sampling and face detection with OpenCV: what the camera saw, a few times a second.

Why Haar cascades: they ship inside ``opencv-python-headless`` (``cv2.data.haarcascades``),
run offline on a CPU at ~10-25 ms per 320-px frame, and need no model download or GPU. They
are a *coarse* detector: reliable for a frontal face filling a webcam frame, weak for heads
turned more than ~30 degrees, strong backlight, or faces smaller than a tenth of the frame.
Measured on the labelled fixture clips (``tests/fixtures/media/labels.json``: a real face
photograph, face-free room, two faces, dim light, a 20 degree head roll, covered camera;
H.264 at 320x240), the per-frame face count matched the truth on every sampled frame, and on
120 of 120 sampled frames of the benchmark's 720p30 render (see ``docs/benchmarks.md``).
Those clips are clean; expect misses on real webcams, which is why downstream signals use
ratios and minimum durations, and why nothing here decides anything.

Why sampling: an answer needs a face check a couple of times per second, not 30. Frames are
skipped with ``VideoCapture.grab()`` (demux + decode, no colour conversion or copy) and only
sampled frames are ``retrieve()``-d and analysed, which keeps 720p30 well above real time on
two cores.

``cv2`` is imported inside functions: importing this module costs nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from are_workers.errors import InvalidInputError

if TYPE_CHECKING:
    from cv2.typing import MatLike

FRONTAL_CASCADE = "haarcascade_frontalface_alt2.xml"
"""alt2 rather than ``default``: on the fixtures ``default`` also fired on the astronaut's
suit badge (a false second face), which would raise false ``multiple_faces`` events."""
PROFILE_CASCADE = "haarcascade_profileface.xml"


@dataclass(frozen=True, slots=True)
class FrameAnalysisOptions:
    """How each sampled frame is analysed. Thresholds are on 0-255 luma."""

    analysis_width: int = 320
    """Frames are downscaled to this width first: detection cost grows with pixels, and a
    webcam face is far larger than the detector's 20-24 px window."""
    min_face_fraction: float = 0.10
    """Smallest face reported, as a fraction of the frame width (a person at the desk is
    larger; smaller hits are mostly background clutter)."""
    scale_factor: float = 1.1
    min_neighbors: int = 4
    detect_profiles: bool = True
    """When no frontal face is found, look for a profile (both directions): a head turned
    away from the screen, as opposed to nobody there."""
    blocked_max_luminance: float = 25.0
    """Mean luma below this: the lens is covered or the room is dark; no face is possible."""
    blocked_max_contrast: float = 6.0
    """Luma standard deviation below this: a uniform frame (lens covered by a finger,
    tape or paper, or a frozen/blank camera feed)."""


@dataclass(frozen=True, slots=True)
class FaceBox:
    """A detected face, in fractions (0-1) of the frame's width and height."""

    x: float
    y: float
    width: float
    height: float

    @property
    def center_x(self) -> float:
        return self.x + self.width / 2

    @property
    def center_y(self) -> float:
        return self.y + self.height / 2

    @property
    def area(self) -> float:
        return self.width * self.height


@dataclass(frozen=True, slots=True)
class FrameObservation:
    """What one sampled frame showed. Biometric-derived (faces): see ``services.media``."""

    timestamp: float
    faces: tuple[FaceBox, ...]
    profile_faces: int
    mean_luminance: float
    luminance_std: float
    sharpness: float
    """Variance of the Laplacian at ``analysis_width``: low means blurred or out of focus.
    Comparable across videos only because every frame is first scaled to the same width."""
    camera_blocked: bool


@dataclass(frozen=True, slots=True)
class VideoObservations:
    """All sampled frames of a video plus what decoding saw."""

    observations: tuple[FrameObservation, ...]
    frames_decoded: int
    fps: float
    width: int
    height: int
    duration: float


class FaceDetector:
    """Frontal and profile Haar cascades. One per thread (see :func:`get_face_detector`):
    ``CascadeClassifier`` keeps per-call scratch state and is not documented thread-safe."""

    def __init__(self) -> None:
        import cv2

        root = Path(cv2.data.haarcascades)  # type: ignore[attr-defined]
        self._frontal = cv2.CascadeClassifier(str(root / FRONTAL_CASCADE))
        self._profile = cv2.CascadeClassifier(str(root / PROFILE_CASCADE))
        if self._frontal.empty() or self._profile.empty():
            raise RuntimeError(f"OpenCV Haar cascades missing or unreadable in {root}")

    def observe(
        self,
        bgr: MatLike,
        *,
        timestamp: float,
        options: FrameAnalysisOptions,
    ) -> FrameObservation:
        """Faces, lighting and blur of one BGR (or grey) frame."""
        import cv2

        gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY) if bgr.ndim == 3 else bgr
        height, width = gray.shape[:2]
        if width != options.analysis_width:
            scaled_height = max(1, round(height * options.analysis_width / width))
            gray = cv2.resize(
                gray, (options.analysis_width, scaled_height), interpolation=cv2.INTER_AREA
            )
        height, width = gray.shape[:2]
        mean, std = cv2.meanStdDev(gray)
        mean_luminance, luminance_std = float(mean[0][0]), float(std[0][0])
        sharpness = float(cv2.Laplacian(gray, cv2.CV_64F).var())
        blocked = (
            mean_luminance < options.blocked_max_luminance
            or luminance_std < options.blocked_max_contrast
        )
        faces: tuple[FaceBox, ...] = ()
        profiles = 0
        if not blocked:
            min_side = max(20, round(options.min_face_fraction * width))
            faces = tuple(
                FaceBox(x / width, y / height, w / width, h / height)
                for x, y, w, h in self._detect(self._frontal, gray, min_side, options)
            )
            if not faces and options.detect_profiles:
                profiles = len(self._detect(self._profile, gray, min_side, options)) + len(
                    self._detect(self._profile, cv2.flip(gray, 1), min_side, options)
                )
        return FrameObservation(
            timestamp=round(timestamp, 3),
            faces=tuple(sorted(faces, key=lambda f: (-f.area, f.x))),
            profile_faces=profiles,
            mean_luminance=round(mean_luminance, 2),
            luminance_std=round(luminance_std, 2),
            sharpness=round(sharpness, 1),
            camera_blocked=blocked,
        )

    @staticmethod
    def _detect(
        cascade: Any, gray: MatLike, min_side: int, options: FrameAnalysisOptions
    ) -> list[tuple[int, int, int, int]]:
        found = cascade.detectMultiScale(
            gray,
            scaleFactor=options.scale_factor,
            minNeighbors=options.min_neighbors,
            minSize=(min_side, min_side),
        )
        return [tuple(int(v) for v in box) for box in found]  # type: ignore[misc]


_local = threading.local()


def get_face_detector() -> FaceDetector:
    """This thread's detector (cascades load in ~50 ms; once per worker thread)."""
    detector: FaceDetector | None = getattr(_local, "detector", None)
    if detector is None:
        detector = FaceDetector()
        _local.detector = detector
    return detector


class _FrameSampler:
    """Iterate (timestamp, BGR frame) at ``sample_fps``; counts what it decoded on the way.

    A frame is sampled when its presentation time reaches the next tick of the sampling
    clock; timestamps come from the container (``CAP_PROP_POS_MSEC``), so variable-frame-rate
    browser recordings are sampled evenly in time, not in frame counts.
    """

    def __init__(self, path: Path, sample_fps: float) -> None:
        self.path = path
        self.period = 1.0 / sample_fps
        self.decoded = 0
        self.fps = 0.0
        self.width = 0
        self.height = 0
        self.last_timestamp = 0.0

    def __iter__(self) -> Iterator[tuple[float, MatLike]]:
        import cv2

        capture = cv2.VideoCapture(str(self.path), cv2.CAP_FFMPEG)
        if not capture.isOpened():
            raise InvalidInputError(
                "The video track could not be opened for analysis: its codec is not "
                "supported. Please upload MP4 (H.264) or WebM (VP8/VP9).",
                code="unsupported_codec",
            )
        try:
            self.fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
            self.width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
            self.height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
            half_frame = 0.5 / self.fps if self.fps > 0 else 0.0
            next_tick = 0.0
            frame_time = 1.0 / self.fps if self.fps > 0 else 0.0
            while capture.grab():
                self.decoded += 1
                timestamp = capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
                if self.decoded > 1 and timestamp <= self.last_timestamp:
                    # a container without usable timestamps: count frames instead
                    timestamp = self.last_timestamp + frame_time
                self.last_timestamp = timestamp
                if timestamp + half_frame < next_tick:
                    continue
                while next_tick <= timestamp + half_frame:
                    next_tick += self.period
                ok, frame = capture.retrieve()
                if ok:
                    yield timestamp, frame
        finally:
            capture.release()


def observe_video(
    path: Path | str,
    *,
    sample_fps: float = 2.0,
    options: FrameAnalysisOptions | None = None,
) -> VideoObservations:
    """Sample ``path`` at ``sample_fps`` and observe each sampled frame.

    Probe the file first (``services.media.probe``); this raises ``InvalidInputError`` only
    for what OpenCV alone cannot read.
    """
    if sample_fps <= 0:
        raise ValueError("sample_fps must be positive")
    options = options or FrameAnalysisOptions()
    detector = get_face_detector()
    sampler = _FrameSampler(Path(path), sample_fps)
    observations = tuple(
        detector.observe(frame, timestamp=timestamp, options=options)
        for timestamp, frame in sampler
    )
    if sampler.decoded == 0:
        raise InvalidInputError(
            "No video frames could be decoded: the video track is damaged.",
            code="corrupt_media",
        )
    frame_time = 1.0 / sampler.fps if sampler.fps > 0 else 0.0
    return VideoObservations(
        observations=observations,
        frames_decoded=sampler.decoded,
        fps=sampler.fps,
        width=sampler.width,
        height=sampler.height,
        duration=round(sampler.last_timestamp + frame_time, 3),
    )


def observe_image(
    image: bytes | Path | str,
    *,
    timestamp: float,
    options: FrameAnalysisOptions | None = None,
) -> FrameObservation:
    """Observe one still (a proctoring snapshot: JPEG/PNG/WebP bytes or a file path)."""
    import cv2
    import numpy as np

    raw = image if isinstance(image, bytes) else Path(image).read_bytes()
    frame = cv2.imdecode(np.frombuffer(raw, dtype=np.uint8), cv2.IMREAD_COLOR) if raw else None
    if frame is None:
        raise InvalidInputError(
            "The snapshot is not a readable image (JPEG, PNG or WebP expected).",
            code="corrupt_image",
        )
    return get_face_detector().observe(
        frame, timestamp=timestamp, options=options or FrameAnalysisOptions()
    )
