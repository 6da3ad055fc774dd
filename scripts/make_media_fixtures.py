"""Build the real media fixtures under ``tests/fixtures/media`` (and the benchmark's clips).

Why generated and committed: the tests need real containers and codecs (H.264/AAC in MP4,
VP8/Opus in WebM, AAC in M4A, Opus in Ogg) with a *known truth* -- the exact words spoken
and, frame by frame, how many faces are visible -- so that WER and face-presence accuracy are
measured, not assumed. Speech comes from espeak-ng (fixed voice, rate and pitch, so it is
reproducible); faces come from a real photograph (``skimage.data.astronaut()``) composited
on a synthetic room, with face-free, two-face, off-centre and covered-camera intervals in
known proportions. The truth is written next to the clips in ``labels.json``.

Run ``python scripts/make_media_fixtures.py`` (needs ``apt-get install espeak-ng`` and the
``media`` + ``dev`` extras). The speech and the rendered pictures are deterministic, but the
encoded files are not bit-for-bit (Ogg serials and Matroska UIDs are random, and the
encoders' output varies slightly between runs), so regenerating changes the bytes, never the
truth in ``labels.json``. The committed files are what the tests use; re-run this only to
change a fixture.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import subprocess
import wave
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np
from skimage import data as skimage_data

FIXTURE_DIR = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "media"

ESPEAK_VOICE = "en-us"
ESPEAK_WORDS_PER_MINUTE = 150
ESPEAK_PITCH = 50

# The answer spoken in speech.m4a. The SSML break is a deliberate 2.5 s "long pause".
SPEECH_PARTS = (
    "In my last role I led a small team that rebuilt our billing service. "
    "We moved from a single large application to three smaller services. "
    "The hardest part was the data migration, because customers could not lose a single "
    "invoice.",
    "We wrote a checker that compared both systems every night. "
    "After two months the numbers matched, and we switched over without any downtime. "
    "I learned that careful testing and clear communication matter more than clever code.",
)
SPEECH_PAUSE_MS = 2500
SPEECH_LEAD_IN_SECONDS = 1.0  # silence before the answer starts: "time to first word"

INTERVIEW_TEXT = (
    "Thank you for the question. I enjoy building reliable systems, "
    "and I like working closely with the people who use them."
)


# --- speech ---------------------------------------------------------------------------


def synthesize_speech(text: str, *, ssml: bool = False) -> tuple[np.ndarray, int]:
    """Speak ``text`` with espeak-ng; returns (int16 mono samples, sample rate)."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise SystemExit("espeak-ng is not installed: apt-get install -y espeak-ng")
    argv = [
        espeak,
        "-v",
        ESPEAK_VOICE,
        "-s",
        str(ESPEAK_WORDS_PER_MINUTE),
        "-p",
        str(ESPEAK_PITCH),
        "--stdout",
    ]
    if ssml:
        argv.append("-m")
    wav_bytes = subprocess.run([*argv, text], check=True, capture_output=True).stdout
    with wave.open(io.BytesIO(wav_bytes)) as wav:
        rate = wav.getframerate()
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
    return samples.copy(), rate


def speech_ssml() -> str:
    return f'<speak>{SPEECH_PARTS[0]} <break time="{SPEECH_PAUSE_MS}ms"/> {SPEECH_PARTS[1]}</speak>'


def room_noise(seconds: float, rate: int, *, seed: int, level_dbfs: float = -62.0) -> np.ndarray:
    """Quiet, deterministic room noise: real recordings are never digital zero."""
    rng = np.random.default_rng(seed)
    amplitude = 32768.0 * 10 ** (level_dbfs / 20)
    return (rng.standard_normal(round(seconds * rate)) * amplitude).astype(np.int16)


def place_on_noise(
    speech: np.ndarray, rate: int, *, total_seconds: float, offset_seconds: float, seed: int
) -> np.ndarray:
    track = room_noise(total_seconds, rate, seed=seed)
    start = round(offset_seconds * rate)
    end = min(len(track), start + len(speech))
    mixed = track[start:end].astype(np.int32) + speech[: end - start]
    track[start:end] = np.clip(mixed, -32768, 32767).astype(np.int16)
    return track


# --- faces ----------------------------------------------------------------------------

# Head-and-shoulders crop of the astronaut photograph (x0, y0, x1, y1), 4:3.
_PERSON_CROP = (88, 10, 352, 208)


@dataclass(frozen=True)
class Shot:
    """One interval of a clip's timeline and its truth."""

    start: float
    end: float
    kind: str  # face | none | two_faces | blocked | off_centre | dim | tilted

    @property
    def faces(self) -> int:
        return {"face": 1, "off_centre": 1, "dim": 1, "tilted": 1, "two_faces": 2}.get(self.kind, 0)


INTERVIEW_TIMELINE = (
    Shot(0.0, 4.0, "face"),
    Shot(4.0, 6.0, "none"),
    Shot(6.0, 8.0, "two_faces"),
    Shot(8.0, 9.0, "blocked"),
    Shot(9.0, 10.5, "off_centre"),
    Shot(10.5, 12.0, "face"),
    Shot(12.0, 13.0, "dim"),
    Shot(13.0, 14.0, "tilted"),
)


NOISE_BANK = 8
TILT_DEGREES = 20.0  # head roll the frontal Haar cascade is known to struggle with


def _person() -> tuple[np.ndarray, np.ndarray]:
    """The astronaut's head and shoulders (BGR) with a soft elliptical alpha mask."""
    x0, y0, x1, y1 = _PERSON_CROP
    person = cv2.cvtColor(skimage_data.astronaut()[y0:y1, x0:x1], cv2.COLOR_RGB2BGR)
    height, width = person.shape[:2]
    mask = np.zeros((height, width), np.float32)
    cv2.ellipse(
        mask, (width // 2, height // 2 + 10), (width // 2 - 4, height // 2 + 20), 0, 0, 360, 1, -1
    )
    mask = cv2.GaussianBlur(mask, (0, 0), 6)
    return person, mask


def _room(width: int, height: int) -> np.ndarray:
    """A plain room: a lit wall gradient, a door and a shelf (no faces anywhere)."""
    ys = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    xs = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    wall = 150 + 50 * (1 - ys) - 25 * xs
    room = np.dstack([wall * 0.92, wall * 0.97, wall]).astype(np.float32)
    cv2.rectangle(
        room,
        (int(width * 0.72), int(height * 0.15)),
        (int(width * 0.92), height),
        (70, 90, 120),
        -1,
    )
    cv2.rectangle(
        room,
        (int(width * 0.05), int(height * 0.30)),
        (int(width * 0.30), int(height * 0.34)),
        (60, 60, 60),
        -1,
    )
    return room


def _paste(canvas: np.ndarray, person: np.ndarray, mask: np.ndarray, box: tuple[int, ...]) -> None:
    """Alpha-blend ``person`` scaled into ``box`` = (x, y, w, h); clips at the edges."""
    x, y, w, h = box
    scaled = cv2.resize(person, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32)
    alpha = cv2.resize(mask, (w, h), interpolation=cv2.INTER_LINEAR)[..., None]
    cx0, cy0 = max(x, 0), max(y, 0)
    cx1, cy1 = min(x + w, canvas.shape[1]), min(y + h, canvas.shape[0])
    if cx0 >= cx1 or cy0 >= cy1:
        return
    sx0, sy0 = cx0 - x, cy0 - y
    patch = scaled[sy0 : sy0 + cy1 - cy0, sx0 : sx0 + cx1 - cx0]
    a = alpha[sy0 : sy0 + cy1 - cy0, sx0 : sx0 + cx1 - cx0]
    region = canvas[cy0:cy1, cx0:cx1]
    canvas[cy0:cy1, cx0:cx1] = region * (1 - a) + patch * a


def render_frames(
    timeline: Sequence[Shot], *, width: int, height: int, fps: float, seed: int = 7
) -> Iterator[np.ndarray]:
    """Frames (BGR uint8) of ``timeline``, with gentle head motion and sensor noise."""
    person, mask = _person()
    room = _room(width, height)
    rng = np.random.default_rng(seed)
    # sensor noise from a small bank: drawing fresh Gaussian noise dominated 720p rendering
    noise_bank = [
        rng.normal(0.0, 3.0, (height, width, 3)).astype(np.float32) for _ in range(NOISE_BANK)
    ]
    duration = timeline[-1].end
    for index in range(round(duration * fps)):
        t = index / fps
        shot = next(s for s in timeline if s.start <= t < s.end)
        sway_x = round(3 * np.sin(2 * np.pi * 0.3 * t) * width / 320)
        sway_y = round(2 * np.sin(2 * np.pi * 0.2 * t) * height / 240)
        frame = room.copy()
        if shot.kind in {"face", "dim", "tilted"}:
            w = round(width * 0.80)
            h = round(w * person.shape[0] / person.shape[1])
            _paste(frame, person, mask, ((width - w) // 2 + sway_x, height - h + sway_y, w, h))
            if shot.kind == "dim":
                frame *= 0.3  # an unlit room at dusk
            elif shot.kind == "tilted":
                centre = (width / 2, height * 0.45)
                roll = cv2.getRotationMatrix2D(centre, TILT_DEGREES, 1.0)
                frame = cv2.warpAffine(frame, roll, (width, height), borderMode=cv2.BORDER_REFLECT)
        elif shot.kind == "off_centre":
            w = round(width * 0.55)
            h = round(w * person.shape[0] / person.shape[1])
            _paste(frame, person, mask, (-round(w * 0.30) + sway_x, height - h + sway_y, w, h))
        elif shot.kind == "two_faces":
            w = round(width * 0.48)
            h = round(w * person.shape[0] / person.shape[1])
            _paste(frame, person, mask, (round(width * 0.02) + sway_x, height - h, w, h))
            _paste(frame, person, mask, (round(width * 0.50) - sway_x, height - h + sway_y, w, h))
        elif shot.kind == "blocked":
            frame[:] = 8  # a hand or tape over the lens: almost black and uniform
        frame += noise_bank[int(rng.integers(NOISE_BANK))]
        yield np.clip(frame, 0, 255).astype(np.uint8)


# --- muxing ---------------------------------------------------------------------------


def write_media(
    path: Path,
    *,
    frames: Iterator[np.ndarray] | None = None,
    fps: int = 0,
    size: tuple[int, int] = (0, 0),
    audio: np.ndarray | None = None,
    sample_rate: int = 0,
    video_codec: str = "libx264",
    audio_codec: str = "aac",
    audio_rate: int = 22050,
    video_options: dict[str, str] | None = None,
    audio_bit_rate: int = 32_000,
) -> None:
    """Encode BGR frames and/or int16 mono audio into ``path`` with PyAV (no ffmpeg CLI)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    container_options = {"movflags": "faststart"} if path.suffix in {".mp4", ".m4a"} else {}
    with av.open(str(path), "w", options=container_options) as out:
        video_stream = audio_stream = None
        if frames is not None:
            video_stream = out.add_stream(video_codec, rate=fps)
            video_stream.width, video_stream.height = size
            video_stream.pix_fmt = "yuv420p"
            video_stream.options = video_options or {"crf": "30", "preset": "medium"}
        if audio is not None:
            audio_stream = out.add_stream(audio_codec, rate=audio_rate)
            audio_stream.layout = "mono"
            audio_stream.bit_rate = audio_bit_rate
        if video_stream is not None and frames is not None:
            for index, bgr in enumerate(frames):
                frame = av.VideoFrame.from_ndarray(bgr, format="bgr24")
                frame.pts = index
                out.mux(video_stream.encode(frame))
            out.mux(video_stream.encode(None))
        if audio_stream is not None and audio is not None:
            step = 4096
            for start in range(0, len(audio), step):
                block = audio[start : start + step].reshape(1, -1)
                frame = av.AudioFrame.from_ndarray(block, format="s16", layout="mono")
                frame.sample_rate = sample_rate
                frame.pts = start
                out.mux(audio_stream.encode(frame))
            out.mux(audio_stream.encode(None))


# --- the fixtures ---------------------------------------------------------------------


def build(directory: Path) -> dict[str, object]:
    directory.mkdir(parents=True, exist_ok=True)
    labels: dict[str, object] = {}

    speech, rate = synthesize_speech(speech_ssml(), ssml=True)
    total = SPEECH_LEAD_IN_SECONDS + len(speech) / rate + 1.0
    track = place_on_noise(speech, rate, total_seconds=total, offset_seconds=1.0, seed=1)
    write_media(directory / "speech.m4a", audio=track, sample_rate=rate)
    labels["speech.m4a"] = {
        "text": " ".join(SPEECH_PARTS),
        "speech_starts": SPEECH_LEAD_IN_SECONDS,
        "long_pause_seconds": SPEECH_PAUSE_MS / 1000,
        "duration": round(total, 3),
    }

    silence = room_noise(4.0, 48_000, seed=2)
    write_media(
        directory / "silence.ogg",
        audio=silence,
        sample_rate=48_000,
        audio_codec="libopus",
        audio_rate=48_000,
    )
    labels["silence.ogg"] = {"text": "", "duration": 4.0}

    width, height, fps = 320, 240, 12
    duration = INTERVIEW_TIMELINE[-1].end
    answer, answer_rate = synthesize_speech(INTERVIEW_TEXT)
    interview_audio = place_on_noise(
        answer, answer_rate, total_seconds=duration, offset_seconds=0.5, seed=3
    )
    write_media(
        directory / "interview.mp4",
        frames=render_frames(INTERVIEW_TIMELINE, width=width, height=height, fps=fps),
        fps=fps,
        size=(width, height),
        audio=interview_audio,
        sample_rate=answer_rate,
    )
    labels["interview.mp4"] = {
        "text": INTERVIEW_TEXT,
        "fps": fps,
        "size": [width, height],
        "duration": duration,
        "timeline": [
            {"start": s.start, "end": s.end, "kind": s.kind, "faces": s.faces}
            for s in INTERVIEW_TIMELINE
        ],
        "face_presence_ratio": sum((s.end - s.start) for s in INTERVIEW_TIMELINE if s.faces)
        / duration,
    }

    browser_timeline = (Shot(0.0, 2.0, "face"), Shot(2.0, 3.0, "none"), Shot(3.0, 4.0, "face"))
    browser_audio = place_on_noise(
        answer[: 4 * answer_rate], answer_rate, total_seconds=4.0, offset_seconds=0.2, seed=4
    )
    write_media(
        directory / "browser.webm",
        frames=render_frames(browser_timeline, width=width, height=height, fps=fps, seed=8),
        fps=fps,
        size=(width, height),
        audio=browser_audio,
        sample_rate=answer_rate,
        video_codec="libvpx",
        video_options={"crf": "30", "b": "200k", "deadline": "good"},
        audio_codec="libopus",
        audio_rate=48_000,
    )
    labels["browser.webm"] = {
        "duration": 4.0,
        "timeline": [
            {"start": s.start, "end": s.end, "kind": s.kind, "faces": s.faces}
            for s in browser_timeline
        ],
    }

    mute_timeline = (Shot(0.0, 3.0, "face"),)
    write_media(
        directory / "no_audio.mp4",
        frames=render_frames(mute_timeline, width=width, height=height, fps=fps, seed=9),
        fps=fps,
        size=(width, height),
    )
    labels["no_audio.mp4"] = {"duration": 3.0, "face_presence_ratio": 1.0}

    (directory / "labels.json").write_text(json.dumps(labels, indent=2) + "\n")
    return labels


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=FIXTURE_DIR)
    args = parser.parse_args(argv)
    build(args.out)
    for path in sorted(args.out.iterdir()):
        print(f"{path.stat().st_size:>9,d}  {path}")


if __name__ == "__main__":
    main()
