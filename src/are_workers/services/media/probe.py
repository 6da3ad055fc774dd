"""Container inspection and validation with PyAV, before any model sees the file.

Why probe first: uploads from browsers and phones are often broken in ways that make a model
fail late and cryptically (or hallucinate on garbage). Opening the container, demuxing every
packet (cheap: no decoding) and decoding the first frame of each track finds, in well under a
second for a typical answer, every problem a recruiter could act on, and each becomes an
``InvalidInputError`` whose ``code`` the UI can map and whose message names the fix.

Error codes: ``missing_file``, ``empty_file``, ``corrupt_media``, ``truncated_media``,
``no_media_streams``, ``empty_media``, ``unsupported_codec``, ``media_too_long``,
``no_audio_track``, ``no_video_track``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from are_workers.config import Settings, get_settings
from are_workers.errors import InvalidInputError

if TYPE_CHECKING:
    import av.container
    import av.stream

TRUNCATION_TOLERANCE_SECONDS = 1.0
TRUNCATION_TOLERANCE_RATIO = 0.05
"""A container that declares N seconds but whose packets stop more than max(1 s, 5%) earlier
was cut off during upload. Smaller gaps are normal (encoder priming, rounded headers)."""


@dataclass(frozen=True, slots=True)
class AudioTrack:
    index: int
    codec: str
    sample_rate: int
    channels: int
    duration: float
    decodable: bool


@dataclass(frozen=True, slots=True)
class VideoTrack:
    index: int
    codec: str
    width: int
    height: int
    fps: float
    frames: int
    duration: float
    decodable: bool


@dataclass(frozen=True, slots=True)
class MediaInfo:
    """What is in a media file. ``duration`` is measured from packets, not trusted headers."""

    path: Path
    size_bytes: int
    container: str
    duration: float
    audio: AudioTrack | None
    video: VideoTrack | None

    def require_audio(self) -> AudioTrack:
        """The audio track, or the error a transcription job reports when there is none."""
        if self.audio is None:
            raise InvalidInputError(
                "The recording has no audio track, so there is nothing to transcribe. "
                "Check that the microphone was enabled and record the answer again.",
                code="no_audio_track",
            )
        if not self.audio.decodable:
            raise _unsupported(self.audio.codec, "audio")
        return self.audio

    def require_video(self) -> VideoTrack:
        """The video track, or the error a video-analysis job reports when there is none."""
        if self.video is None:
            raise InvalidInputError(
                "The recording has no video track (it is audio only), so there is no video "
                "to analyse. Check that the camera was enabled and record the answer again.",
                code="no_video_track",
            )
        if not self.video.decodable:
            raise _unsupported(self.video.codec, "video")
        return self.video

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["path"] = str(self.path)
        return data


def _unsupported(codec: str, kind: str) -> InvalidInputError:
    shown = codec if codec and codec != "none" else "an unknown codec"
    return InvalidInputError(
        f"The {kind} track uses {shown}, which cannot be decoded. Please upload MP4 "
        "(H.264/AAC), WebM (VP8/VP9/Opus), M4A, MP3, OGG or WAV.",
        code="unsupported_codec",
    )


def _corrupt(detail: str = "") -> InvalidInputError:
    return InvalidInputError(
        "The file could not be read as audio or video: it is damaged, incomplete, or not a "
        f"media file{detail}. Please upload the recording again.",
        code="corrupt_media",
    )


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} minutes" if seconds >= 90 else f"{seconds:.1f} seconds"


def probe_media(path: Path | str, *, settings: Settings | None = None) -> MediaInfo:
    """Inspect ``path`` and reject what cannot be analysed; see the module docstring.

    A file with a track of each kind is accepted even if one of them cannot be decoded
    (``decodable=False``): the audio of a video with an exotic codec is still transcribable.
    ``MediaInfo.require_audio``/``require_video`` raise when the needed track is unusable.
    """
    import av

    settings = settings or get_settings()
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError("The recording file is missing.", code="missing_file")
    size = path.stat().st_size
    if size == 0:
        raise InvalidInputError(
            "The recording is empty (0 bytes): the upload did not complete. "
            "Please record or upload it again.",
            code="empty_file",
        )
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.FFmpegError, UnicodeDecodeError) as exc:
        raise _corrupt() from exc
    with container:
        audio_stream = next(iter(container.streams.audio), None)
        video_stream = next((s for s in container.streams.video if not _is_cover_art(s)), None)
        if not any(s.type in {"audio", "video", "subtitle"} for s in container.streams):
            raise _corrupt(" (its header is incomplete)")  # e.g. cut inside the MP4 index
        if audio_stream is None and video_stream is None:
            raise InvalidInputError(
                "The file contains no audio or video track.", code="no_media_streams"
            )
        streams = [s for s in (audio_stream, video_stream) if s is not None]
        ends, packets = _demux_ends(container, streams)
        declared = container.duration / 1_000_000 if container.duration else None
        measured = max(ends.values(), default=0.0)
        if measured <= 0.0:
            raise InvalidInputError(
                "The recording has zero length: it contains no audio or video.",
                code="empty_media",
            )
        if declared is not None and measured < declared - max(
            TRUNCATION_TOLERANCE_SECONDS, TRUNCATION_TOLERANCE_RATIO * declared
        ):
            raise InvalidInputError(
                f"The recording is incomplete: it should last {_minutes(declared)} but the "
                f"data stops after {_minutes(measured)}. The upload was probably cut off; "
                "please upload it again.",
                code="truncated_media",
            )
        audio = video = None
        if audio_stream is not None:
            audio = AudioTrack(
                index=audio_stream.index,
                codec=_codec_name(audio_stream),
                sample_rate=int(getattr(audio_stream.codec_context, "sample_rate", 0) or 0),
                channels=int(getattr(audio_stream.codec_context, "channels", 0) or 0),
                duration=round(ends.get(audio_stream.index, 0.0), 3),
                decodable=_first_frame_decodes(container, audio_stream),
            )
        if video_stream is not None:
            rate = video_stream.average_rate or video_stream.guessed_rate
            video = VideoTrack(
                index=video_stream.index,
                codec=_codec_name(video_stream),
                width=int(getattr(video_stream.codec_context, "width", 0) or 0),
                height=int(getattr(video_stream.codec_context, "height", 0) or 0),
                fps=round(float(rate), 3) if rate else 0.0,
                frames=packets.get(video_stream.index, 0),
                duration=round(ends.get(video_stream.index, 0.0), 3),
                decodable=_first_frame_decodes(container, video_stream),
            )
        if not any(t.decodable for t in (audio, video) if t is not None):
            usable = audio or video
            assert usable is not None
            raise _unsupported(usable.codec, "audio" if usable is audio else "video")
        info = MediaInfo(
            path=path,
            size_bytes=size,
            container=str(container.format.name),
            duration=round(measured, 3),
            audio=audio,
            video=video,
        )
    if info.duration > settings.max_media_seconds:
        raise InvalidInputError(
            f"The recording is {_minutes(info.duration)} long; the limit is "
            f"{_minutes(settings.max_media_seconds)}. Please upload a shorter recording.",
            code="media_too_long",
        )
    return info


def _is_cover_art(stream: av.stream.Stream) -> bool:
    """Album art in M4A/MP3 shows up as a one-frame video stream; it is not video."""
    import av

    return bool(stream.disposition & av.stream.Disposition.attached_pic)


def _codec_name(stream: av.stream.Stream) -> str:
    context = stream.codec_context
    return str(context.name) if context is not None else "none"


def _demux_ends(
    container: av.container.InputContainer, streams: list[Any]
) -> tuple[dict[int, float], dict[int, int]]:
    """Per stream: where its last packet ends (seconds) and how many packets it has."""
    import av

    ends: dict[int, float] = {}
    counts: dict[int, int] = {}
    start_times = {
        s.index: float(s.start_time * s.time_base) if s.start_time is not None else 0.0
        for s in streams
    }
    try:
        for packet in container.demux(streams):
            if packet.pts is None or packet.time_base is None:
                continue  # flush packets at the end of each stream
            index = packet.stream.index
            end = float((packet.pts + (packet.duration or 0)) * packet.time_base)
            ends[index] = max(ends.get(index, 0.0), end - start_times[index])
            counts[index] = counts.get(index, 0) + 1
    except av.FFmpegError as exc:
        raise _corrupt(" (the data is unreadable part-way through)") from exc
    return ends, counts


FIRST_FRAME_PACKET_LIMIT = 64
"""Packets tried before a track that yields no frame is declared corrupt (a few broken packets
at the start are common in live recordings and harmless)."""


def _first_frame_decodes(container: av.container.InputContainer, stream: Any) -> bool:
    """Whether a decoder for ``stream`` exists (False: unsupported codec).

    Raises ``corrupt_media`` when a decoder exists but no frame comes out of the first
    packets.
    """
    import av

    context = stream.codec_context
    if context is None:
        return False
    try:
        container.seek(0, stream=stream)
        for tried, packet in enumerate(container.demux(stream)):
            if tried >= FIRST_FRAME_PACKET_LIMIT:
                break
            try:
                if context.decode(packet):
                    return True
            except av.InvalidDataError:
                continue
        if context.decode(None):
            return True
    except av.DecoderNotFoundError:
        return False
    except av.FFmpegError as exc:
        raise _corrupt(f" (its {stream.type} track cannot be decoded)") from exc
    raise _corrupt(f" (its {stream.type} track holds no decodable frames)")
