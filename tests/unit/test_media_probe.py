"""Probe: real containers in, clear errors out for every kind of bad upload."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from are_workers.config import Settings
from are_workers.errors import InvalidInputError
from are_workers.services.media.probe import probe_media

MEDIA = Path(__file__).resolve().parents[1] / "fixtures" / "media"


def _code(path: Path, **kwargs: object) -> str:
    with pytest.raises(InvalidInputError) as caught:
        probe_media(path, **kwargs)  # type: ignore[arg-type]
    assert caught.value.user_message  # a sentence for people, never empty
    return caught.value.code


def test_interview_video_has_both_tracks() -> None:
    info = probe_media(MEDIA / "interview.mp4")
    assert info.audio is not None
    assert info.audio.codec == "aac"
    assert info.audio.decodable
    assert info.video is not None
    assert info.video.codec == "h264"
    assert (info.video.width, info.video.height, info.video.fps) == (320, 240, 12.0)
    assert info.video.frames == 168
    assert info.duration == pytest.approx(14.0, abs=0.05)


@pytest.mark.parametrize(
    ("name", "audio", "video"),
    [
        ("speech.m4a", "aac", None),
        ("silence.ogg", "opus", None),
        ("browser.webm", "opus", "vp8"),
        ("no_audio.mp4", None, "h264"),
    ],
)
def test_tracks_of_each_fixture(name: str, audio: str | None, video: str | None) -> None:
    info = probe_media(MEDIA / name)
    assert (info.audio.codec if info.audio else None) == audio
    assert (info.video.codec if info.video else None) == video


def test_missing_and_empty_files(tmp_path: Path) -> None:
    assert _code(tmp_path / "nope.mp4") == "missing_file"
    empty = tmp_path / "empty.mp4"
    empty.touch()
    assert _code(empty) == "empty_file"


def test_not_a_media_file(tmp_path: Path) -> None:
    junk = tmp_path / "answer.mp4"
    junk.write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    assert _code(junk) == "corrupt_media"


@pytest.mark.parametrize("name", ["interview.mp4", "speech.m4a", "browser.webm"])
def test_truncated_upload(tmp_path: Path, name: str) -> None:
    data = (MEDIA / name).read_bytes()
    cut = tmp_path / name
    cut.write_bytes(data[: len(data) // 2])
    assert _code(cut) == "truncated_media"


def test_truncated_before_the_index(tmp_path: Path) -> None:
    """An MP4 cut inside its header cannot even be opened: reported as corrupt."""
    cut = tmp_path / "cut.mp4"
    cut.write_bytes((MEDIA / "interview.mp4").read_bytes()[:300])
    assert _code(cut) == "corrupt_media"


def test_unsupported_video_codec_keeps_audio_usable(tmp_path: Path) -> None:
    patched = tmp_path / "odd.mp4"
    patched.write_bytes((MEDIA / "interview.mp4").read_bytes().replace(b"avc1", b"zzzz"))
    info = probe_media(patched)
    assert info.video is not None
    assert not info.video.decodable
    assert info.require_audio().codec == "aac"
    with pytest.raises(InvalidInputError) as caught:
        info.require_video()
    assert caught.value.code == "unsupported_codec"


def test_required_track_missing() -> None:
    with pytest.raises(InvalidInputError) as caught:
        probe_media(MEDIA / "no_audio.mp4").require_audio()
    assert caught.value.code == "no_audio_track"
    with pytest.raises(InvalidInputError) as caught:
        probe_media(MEDIA / "speech.m4a").require_video()
    assert caught.value.code == "no_video_track"


def test_zero_length_media(tmp_path: Path) -> None:
    """A well-formed container (WAV header) with no samples at all."""
    path = tmp_path / "zero.wav"
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16_000)
        wav.writeframes(b"")
    assert _code(path) == "empty_media"


def test_longer_than_the_limit() -> None:
    settings = Settings(max_media_seconds=10)
    assert _code(MEDIA / "speech.m4a", settings=settings) == "media_too_long"
    assert probe_media(MEDIA / "no_audio.mp4", settings=settings).duration == pytest.approx(3.0)
