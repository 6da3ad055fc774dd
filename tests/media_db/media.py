"""Recordings made at test time: a long multi-chunk answer, answers in other languages.

Why generated, not stored: the long answer is the speech fixture said twice (about 67 s,
four transcription chunks), which would add megabytes to the repository; PyAV writes it in
well under a second. Only the German answer is stored (``data/german_answer.mp4``, 80 KB),
because it needs espeak-ng to make; ``python -m tests.media_db.media`` re-creates it.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "media"
DATA = Path(__file__).resolve().parent / "data"
GERMAN_ANSWER = DATA / "german_answer.mp4"
GERMAN_TEXT = (
    "In meiner letzten Stelle habe ich ein kleines Team geleitet, das unseren "
    "Abrechnungsdienst neu gebaut hat. Der schwierigste Teil war die Datenmigration, weil "
    "Kunden keine einzige Rechnung verlieren durften."
)
SAMPLE_RATE = 16_000


def write_answer(
    path: Path, audio: npt.NDArray[np.float32], *, fps: int = 5, size: tuple[int, int] = (160, 120)
) -> Path:
    """An MP4 (H.264 + AAC) of ``audio`` (float32 mono 16 kHz) over a plain grey picture."""
    import av

    width, height = size
    seconds = len(audio) / SAMPLE_RATE
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        sound = container.add_stream("aac", rate=SAMPLE_RATE, layout="mono")
        grey = np.full((height, width, 3), 128, dtype=np.uint8)
        for index in range(round(seconds * fps)):
            frame = av.VideoFrame.from_ndarray(grey, format="rgb24")
            frame.pts, frame.time_base = index, Fraction(1, fps)
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        samples = np.clip(audio, -1, 1).astype(np.float32).reshape(1, -1)
        step = 1024
        for start in range(0, samples.shape[1], step):
            block = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(samples[:, start : start + step]), format="flt", layout="mono"
            )
            block.sample_rate, block.pts = SAMPLE_RATE, start
            container.mux(sound.encode(block))
        container.mux(sound.encode(None))
    return path


def long_answer(path: Path, *, repeats: int = 2) -> Path:
    """The speech fixture ``repeats`` times over, with video: 2 transcription chunks each."""
    from are_workers.ml.transcriber import decode_audio

    speech = decode_audio(FIXTURES / "speech.m4a")
    return write_answer(path, np.tile(speech, repeats))


def spoken(text: str, voice: str, path: Path) -> Path:
    """``text`` read by espeak-ng in ``voice``, as an answer video."""
    from are_workers.ml.transcriber import decode_audio

    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speech.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-w", str(wav), text], check=True)
        audio = decode_audio(wav)
    silence = np.zeros(SAMPLE_RATE, dtype=np.float32)
    return write_answer(path, np.concatenate([silence, audio, silence]))


class OutOfMemory:
    """The loaded CTranslate2 Whisper with its first ``failures`` encoder calls failing as
    CTranslate2 fails when the GPU is full; everything else goes to the real model."""

    def __init__(self, model: Any, failures: int) -> None:
        self._model = model
        self.failures = failures
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def encode(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.failures > 0:
            self.failures -= 1
            raise RuntimeError("CUDA failed with error out of memory")
        return self._model.encode(*args, **kwargs)


def with_out_of_memory(monkeypatch: pytest.MonkeyPatch, failures: int) -> OutOfMemory:
    """Inject: the process's Whisper model (tiny.en in tests) fails ``failures`` times."""
    from are_workers.ml.transcriber import get_transcriber

    whisper = get_transcriber()._model
    injected = OutOfMemory(whisper.model, failures)
    monkeypatch.setattr(whisper, "model", injected)
    return injected


if __name__ == "__main__":
    DATA.mkdir(exist_ok=True)
    spoken(GERMAN_TEXT, "de", GERMAN_ANSWER)
    sys.stdout.write(f"wrote {GERMAN_ANSWER} ({GERMAN_ANSWER.stat().st_size} bytes)\n")
