"""Transcription of an answer in chunks, with a checkpoint after each chunk.

Why chunks: a 30-minute recording takes minutes of CPU, and a worker can be SIGKILLed at any
point (deploys, OOM killer, spot instances); Dramatiq's time limit cannot even interrupt
native code. So the recording is cut into chunks of at most 30 s of audio, each chunk's
words are handed to ``on_chunk_done`` (the actor persists them), and a restarted job passes
the stored chunks back in ``completed`` and continues with the next one.

How chunks are cut: Silero VAD finds the speech once for the whole recording; speech ranges
are packed greedily into chunks whose audio, from the first range's start to the last one's
end, lasts at most ``max_chunk_seconds`` (30 s = one Whisper window, see
``ml/transcriber.py``); each boundary goes in the middle of the silence between two ranges,
so no word is cut. The pauses *inside* a chunk are kept: Whisper reads speech with its
pauses in place better than the same speech with the pauses cut out. A single run of speech
longer than a chunk (nobody paused for half a second) is split at its quietest 300 ms near
the limit (energy envelope).

Why a resumed run equals an uninterrupted one:

- the plan (VAD ranges, cuts) depends only on the audio, never on timing or state;
- every chunk is decoded at temperature 0 with no sampling fallback, and prompted with the
  previous chunk's text only as stored (``condition_on_previous_chunk``, off by default),
  so its words are a pure function of its audio and of what was committed before it;
- word-time refinement uses thresholds computed from the *whole* recording;
- a fingerprint of the plan (model, compute type, options, ranges, cuts) is stored with each
  chunk; stored chunks from another plan raise :class:`StaleCheckpointError` instead of
  being silently mixed with new ones.

A silent recording is not an error: it yields an empty :class:`Transcript` (``is_empty``),
because "the candidate said nothing" is an outcome the recruiter should see, not a failed job.

In an actor (each chunk committed in its own transaction)::

    stored = [ChunkResult.from_dict(row.data) for row in load_chunks(response_id)]
    try:
        transcript = transcribe_chunks(
            path, completed=stored,
            on_chunk_done=lambda c: save_chunk(response_id, c.index, c.to_dict()),
        )
    except StaleCheckpointError:
        delete_chunks(response_id)  # settings or model changed since the crash
        raise  # or retry at once with completed=()
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from are_workers.config import Settings, get_settings
from are_workers.crypto import json_sha256
from are_workers.errors import AreWorkersError, InvalidInputError
from are_workers.ml.transcriber import (
    SAMPLE_RATE,
    WINDOW_SECONDS,
    DecodingOptions,
    Segment,
    SpeechRange,
    Word,
    decode_audio,
    detect_speech,
    get_transcriber,
)
from are_workers.services.media.probe import MediaInfo, probe_media
from are_workers.services.media.speech_analytics import is_filler

if TYPE_CHECKING:
    import numpy.typing as npt

FRAME_SECONDS = 0.02
FRAME_SAMPLES = round(FRAME_SECONDS * SAMPLE_RATE)
_SMOOTHING_FRAMES = 15  # 300 ms: about one syllable, so a cut never lands inside a word
_NEAR_QUIETEST_DB = 3.0
_SILENCE_FLOOR_DB = -100.0
PLAN_VERSION = 7
"""Bump when the planning or decoding logic changes: stored chunks then become stale."""

__all__ = [
    "ChunkResult",
    "ChunkSpan",
    "ChunkingOptions",
    "DecodingOptions",
    "Segment",
    "StaleCheckpointError",
    "Transcript",
    "TranscriptionOptions",
    "TranscriptionPlan",
    "Word",
    "assemble_transcript",
    "default_options",
    "join_words",
    "normalize_for_wer",
    "plan_chunks",
    "plan_transcription",
    "split_sentences",
    "transcribe_chunks",
    "transcribe_file",
    "word_error_rate",
]


class StaleCheckpointError(AreWorkersError):
    """Stored chunks were made under a different plan (model, options or code changed).

    Neither permanent nor transient: the caller deletes its stored chunks and starts again
    with ``completed=()``. Mixing them would give a transcript no single run produces.
    """


@dataclass(frozen=True, slots=True)
class ChunkingOptions:
    max_chunk_seconds: float = WINDOW_SECONDS
    """Most audio per chunk, from its first speech to its last (pauses inside included).
    30 s fills one Whisper window; less means more frequent checkpoints at some cost in
    speed and accuracy (less context per window)."""
    split_search_seconds: float = 10.0
    """For speech running longer than a chunk without a pause: how far before the limit to
    look for the quietest point to cut at."""

    def __post_init__(self) -> None:
        if not 0 < self.max_chunk_seconds <= WINDOW_SECONDS:
            raise ValueError(f"max_chunk_seconds must be in (0, {WINDOW_SECONDS:g}]")
        if not 0 < self.split_search_seconds < self.max_chunk_seconds:
            raise ValueError("need 0 < split_search_seconds < max_chunk_seconds")


@dataclass(frozen=True, slots=True)
class TranscriptionOptions:
    chunking: ChunkingOptions = field(default_factory=ChunkingOptions)
    decoding: DecodingOptions = field(default_factory=DecodingOptions)
    refine_word_times: bool = True
    """Whisper's word times (cross-attention alignment) tend to run into the silence after a
    phrase, which shortens measured pauses; trim each word's leading/trailing unvoiced part
    using the audio energy."""


def default_options(settings: Settings) -> TranscriptionOptions:
    """The options a worker transcribes with: the defaults, with the organisation's spoken
    languages (``ARE_SPEECH_LANGUAGES``) as the only candidates of language detection."""
    return TranscriptionOptions(decoding=DecodingOptions(languages=settings.speech_language_codes))


@dataclass(frozen=True, slots=True)
class ChunkSpan:
    """A stretch of the recording and the speech ranges in it (samples at 16 kHz)."""

    index: int
    start_sample: int
    end_sample: int
    speech: tuple[SpeechRange, ...]

    @property
    def start(self) -> float:
        return round(self.start_sample / SAMPLE_RATE, 3)

    @property
    def end(self) -> float:
        return round(self.end_sample / SAMPLE_RATE, 3)

    @property
    def speech_seconds(self) -> float:
        return round(sum(end - start for start, end in self.speech) / SAMPLE_RATE, 3)

    @property
    def window_seconds(self) -> float:
        """What Whisper hears: from the first speech to the last, pauses included."""
        if not self.speech:
            return 0.0
        return round((self.speech[-1][1] - self.speech[0][0]) / SAMPLE_RATE, 3)


@dataclass(frozen=True, slots=True)
class TranscriptionPlan:
    """Where the audio is cut, and the fingerprint stored with every chunk."""

    chunks: tuple[ChunkSpan, ...]
    duration: float
    fingerprint: str
    model: str


@dataclass(frozen=True, slots=True)
class ChunkResult:
    """One chunk's recognised speech: what ``on_chunk_done`` persists (see ``to_dict``)."""

    index: int
    total: int
    start: float
    end: float
    language: str
    language_probability: float
    segments: tuple[Segment, ...]
    plan_fingerprint: str

    @property
    def text(self) -> str:
        """The chunk's words as the next chunk is prompted with them."""
        return " ".join(segment.text for segment in self.segments)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; ``ChunkResult.from_dict(json.loads(json.dumps(d)))`` equals ``self``."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChunkResult:
        segments = tuple(
            Segment(
                start=s["start"],
                end=s["end"],
                text=s["text"],
                words=tuple(Word(**w) for w in s["words"]),
                avg_logprob=s["avg_logprob"],
                no_speech_prob=s["no_speech_prob"],
            )
            for s in data["segments"]
        )
        return cls(
            index=data["index"],
            total=data["total"],
            start=data["start"],
            end=data["end"],
            language=data["language"],
            language_probability=data["language_probability"],
            segments=segments,
            plan_fingerprint=data["plan_fingerprint"],
        )


@dataclass(frozen=True, slots=True)
class Transcript:
    """The whole answer: segments with words, times in seconds from the media start."""

    language: str
    """ISO 639-1 code; ``en`` with ``.en`` models; ``und`` when nothing was said."""
    duration: float
    model: str
    segments: tuple[Segment, ...]

    @property
    def text(self) -> str:
        return " ".join(segment.text for segment in self.segments)

    @property
    def words(self) -> tuple[Word, ...]:
        return tuple(word for segment in self.segments for word in segment.words)

    @property
    def is_empty(self) -> bool:
        """Nothing was said (or only silence/noise was recorded)."""
        return not self.segments

    def to_dict(self) -> dict[str, Any]:
        return {
            "language": self.language,
            "duration": self.duration,
            "model": self.model,
            "text": self.text,
            "is_empty": self.is_empty,
            "segments": [asdict(segment) for segment in self.segments],
        }


# --- planning -------------------------------------------------------------------------


def energy_envelope(audio: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """Power in dBFS per 20 ms frame (the last partial frame included)."""
    frames = -(-len(audio) // FRAME_SAMPLES)
    padded = np.zeros(frames * FRAME_SAMPLES, dtype=np.float64)
    padded[: len(audio)] = audio
    power = np.mean(padded.reshape(frames, FRAME_SAMPLES) ** 2, axis=1)
    return np.maximum(10.0 * np.log10(power + 1e-12), _SILENCE_FLOOR_DB)


def _smoothed(envelope: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    kernel = np.ones(_SMOOTHING_FRAMES) / _SMOOTHING_FRAMES
    return np.convolve(envelope, kernel, mode="same")


def _quietest_frame(smoothed: npt.NDArray[np.float64], low: int, high: int) -> int:
    """Middle of the latest stretch within 3 dB of the quietest point in [low, high)."""
    window = smoothed[low:high]
    quiet = np.flatnonzero(window <= window.min() + _NEAR_QUIETEST_DB)
    gaps = np.flatnonzero(np.diff(quiet) > 1)
    run_start = int(quiet[gaps[-1] + 1]) if gaps.size else int(quiet[0])
    return low + (run_start + int(quiet[-1]) + 1) // 2


def _split_long_ranges(
    speech: Sequence[SpeechRange], smoothed: npt.NDArray[np.float64], options: ChunkingOptions
) -> list[SpeechRange]:
    """Cut any range longer than a chunk at its quietest point near the limit."""
    limit = round(options.max_chunk_seconds * SAMPLE_RATE)
    search = round(options.split_search_seconds * SAMPLE_RATE)
    pieces: list[SpeechRange] = []
    for range_start, end in speech:
        start = range_start
        while end - start > limit:
            low = (start + limit - search) // FRAME_SAMPLES
            high = (start + limit) // FRAME_SAMPLES
            cut = _quietest_frame(smoothed, low, high) * FRAME_SAMPLES
            pieces.append((start, cut))
            start = cut
        pieces.append((start, end))
    return pieces


def plan_chunks(
    audio: npt.NDArray[np.float32],
    speech: Sequence[SpeechRange],
    options: ChunkingOptions | None = None,
) -> tuple[ChunkSpan, ...]:
    """Deterministic chunks for ``audio`` with VAD ranges ``speech`` (module docstring)."""
    options = options or ChunkingOptions()
    if not speech:
        return (ChunkSpan(index=0, start_sample=0, end_sample=len(audio), speech=()),)
    limit = round(options.max_chunk_seconds * SAMPLE_RATE)
    groups: list[list[SpeechRange]] = [[]]
    for piece in _split_long_ranges(speech, _smoothed(energy_envelope(audio)), options):
        if groups[-1] and piece[1] - groups[-1][0][0] > limit:
            groups.append([])
        groups[-1].append(piece)
    edges = [0]
    for before, after in itertools.pairwise(groups):
        edges.append((before[-1][1] + after[0][0]) // 2)  # the middle of the silence
    edges.append(len(audio))
    return tuple(
        ChunkSpan(index=i, start_sample=edges[i], end_sample=edges[i + 1], speech=tuple(group))
        for i, group in enumerate(groups)
    )


def _fingerprint(
    chunks: Sequence[ChunkSpan],
    samples: int,
    model: str,
    engine: str,
    options: TranscriptionOptions,
) -> str:
    payload = {
        "version": PLAN_VERSION,
        "samples": samples,
        "model": model,
        "engine": engine,
        "options": asdict(options),
        "chunks": [[chunk.end_sample, [list(r) for r in chunk.speech]] for chunk in chunks],
    }
    return json_sha256(payload)[:32]


def plan_transcription(
    path: Path | str,
    *,
    options: TranscriptionOptions | None = None,
    settings: Settings | None = None,
) -> TranscriptionPlan:
    """The plan ``transcribe_chunks`` will follow for ``path`` (VAD only; no Whisper run).

    Useful to an actor that wants to show progress ("chunk 3 of 60") before starting.
    """
    settings = settings or get_settings()
    options = options or default_options(settings)
    probe_media(path, settings=settings).require_audio()
    audio = _decode(path)
    return _plan(audio, options, settings)


def _decode(path: Path | str) -> npt.NDArray[np.float32]:
    audio = decode_audio(path)
    if audio.size == 0:
        raise InvalidInputError(
            "The audio track contains no decodable sound: it is damaged.", code="corrupt_media"
        )
    return audio


def _plan(
    audio: npt.NDArray[np.float32], options: TranscriptionOptions, settings: Settings
) -> TranscriptionPlan:
    from are_workers.ml.transcriber import resolve_config

    config = resolve_config(settings)
    speech = detect_speech(audio, min_silence_ms=options.decoding.vad_min_silence_ms)
    chunks = plan_chunks(audio, speech, options.chunking)
    engine = f"{config.device}/{config.compute_type}"
    return TranscriptionPlan(
        chunks=chunks,
        duration=round(len(audio) / SAMPLE_RATE, 3),
        fingerprint=_fingerprint(chunks, len(audio), config.model_name, engine, options),
        model=config.model_name,
    )


# --- word times -----------------------------------------------------------------------

_EDGE_PADDING = 0.04  # keep a little of each word's decay/onset, as a human annotator would
_MIN_TRIM = 0.1  # only fix clear overruns; below this Whisper's times are as good as ours


def voiced_threshold(envelope: npt.NDArray[np.float64]) -> float:
    """dBFS above which a frame counts as voiced: 10 dB over the noise floor (10th
    percentile), but never more than 40 dB below the loudest speech (99th percentile), so
    that recordings without pauses (no noise floor to see) still work."""
    floor, peak = np.percentile(envelope, [10, 99])
    return float(max(floor + 10.0, peak - 40.0))


def refine_words(
    segments: Sequence[Segment], envelope: npt.NDArray[np.float64], threshold: float
) -> tuple[Segment, ...]:
    """Trim each word's unvoiced lead-in and tail (see ``TranscriptionOptions``)."""
    refined: list[Segment] = []
    for segment in segments:
        words = tuple(_refine_word(w, envelope, threshold) for w in segment.words)
        refined.append(
            replace(segment, words=words, start=words[0].start, end=words[-1].end)
            if words
            else segment
        )
    return tuple(refined)


def _refine_word(word: Word, envelope: npt.NDArray[np.float64], threshold: float) -> Word:
    first = int(word.start / FRAME_SECONDS)
    last = int(np.ceil(word.end / FRAME_SECONDS))
    voiced = np.flatnonzero(envelope[first:last] > threshold)
    if voiced.size == 0:
        return word  # Whisper heard a word we cannot see in the energy: keep its times
    voiced_start = (first + int(voiced[0])) * FRAME_SECONDS - _EDGE_PADDING
    voiced_end = (first + int(voiced[-1]) + 1) * FRAME_SECONDS + _EDGE_PADDING
    start = voiced_start if voiced_start - word.start >= _MIN_TRIM else word.start
    end = voiced_end if word.end - voiced_end >= _MIN_TRIM else word.end
    if end - start < 2 * _EDGE_PADDING:
        return word
    return replace(word, start=round(start, 3), end=round(end, 3))


_SENTENCE_END = (".", "?", "!", "…")
SENTENCE_GAP_SECONDS = 1.0


_UNSPACED_LANGUAGES = frozenset({"zh", "ja", "th", "lo", "my", "yue", "bo"})
"""Written without spaces between words: Whisper's words there are characters."""
_JOINS_BEFORE = ("'", "\u2019", "-")
_JOINS_NUMBER = re.compile(r"[.,]\d|%")


def join_words(words: Sequence[Word], language: str = "en") -> str:
    """The text of ``words`` as Whisper wrote it. Its word times split "c'est" into "c" and
    "'est" and "là-bas" into "là" and "-bas" (the apostrophe and hyphen go with the next
    word), and "52.000" into "52" and ".000", "10%" into "10" and "%", so a word starting or a
    word ending with one joins without a space; in languages written without spaces nothing
    is spaced."""
    if language in _UNSPACED_LANGUAGES:
        return "".join(w.text for w in words)
    text = ""
    for word in words:
        joined = (
            not text
            or word.text.startswith(_JOINS_BEFORE)
            or text.endswith(_JOINS_BEFORE)
            or (text[-1].isdigit() and _JOINS_NUMBER.match(word.text) is not None)
        )
        text += word.text if joined else f" {word.text}"
    return text


def split_sentences(segments: Sequence[Segment], language: str = "en") -> tuple[Segment, ...]:
    """Split each window-long segment after sentence-final punctuation or a pause of a
    second or more: a chunk decodes as one segment, but people read transcripts by phrase.
    The window's confidence values are kept on every piece."""
    pieces: list[Segment] = []
    for segment in segments:
        current: list[Word] = []
        for index, word in enumerate(segment.words):
            current.append(word)
            following = segment.words[index + 1] if index + 1 < len(segment.words) else None
            if (
                following is None
                or word.text.endswith(_SENTENCE_END)
                or following.start - word.end >= SENTENCE_GAP_SECONDS
            ):
                pieces.append(
                    replace(
                        segment,
                        start=current[0].start,
                        end=current[-1].end,
                        text=join_words(current, language),
                        words=tuple(current),
                    )
                )
                current = []
    return tuple(pieces)


# --- running --------------------------------------------------------------------------


def transcribe_chunks(
    path: Path | str,
    *,
    completed: Sequence[ChunkResult] = (),
    on_chunk_done: Callable[[ChunkResult], None] | None = None,
    options: TranscriptionOptions | None = None,
    settings: Settings | None = None,
    media: MediaInfo | None = None,
) -> Transcript:
    """Transcribe ``path`` chunk by chunk, resuming after the chunks in ``completed``.

    ``on_chunk_done`` is called once per newly transcribed chunk, in order, before the next
    chunk starts; make it durable (commit) before returning, and idempotent per
    ``(recording, chunk.index)`` in case a crash lands between commit and the next call.
    After a crash, pass the stored chunks (``ChunkResult.from_dict``) as ``completed``:
    the result equals an uninterrupted run. Raises ``InvalidInputError`` for unusable media
    (probed first unless ``media`` is given) and ``StaleCheckpointError`` when ``completed``
    came from a different plan.
    """
    settings = settings or get_settings()
    options = options or default_options(settings)
    media = media or probe_media(path, settings=settings)
    media.require_audio()
    audio = _decode(path)
    plan = _plan(audio, options, settings)
    _check_completed(completed, plan)
    results = list(completed)
    if len(results) < len(plan.chunks):
        transcriber = get_transcriber(settings)
        envelope = energy_envelope(audio)
        threshold = voiced_threshold(envelope)
        for span in plan.chunks[len(results) :]:
            previous = results[-1] if results else None
            recognition = transcriber.recognize(
                audio,
                span.speech,
                options=options.decoding,
                context=(previous.language, previous.text) if previous else None,
                until=span.end_sample,
            )
            segments = recognition.segments
            if options.refine_word_times:
                segments = refine_words(segments, envelope, threshold)
            segments = split_sentences(segments, recognition.language)
            result = ChunkResult(
                index=span.index,
                total=len(plan.chunks),
                start=span.start,
                end=span.end,
                language=recognition.language,
                language_probability=recognition.language_probability,
                segments=segments,
                plan_fingerprint=plan.fingerprint,
            )
            if on_chunk_done is not None:
                on_chunk_done(result)
            results.append(result)
    return assemble_transcript(results, duration=plan.duration, model=plan.model)


def transcribe_file(
    path: Path | str,
    *,
    options: TranscriptionOptions | None = None,
    settings: Settings | None = None,
    media: MediaInfo | None = None,
) -> Transcript:
    """Transcribe ``path`` in one go (no checkpoints): for the CLI, tests and short clips."""
    return transcribe_chunks(path, options=options, settings=settings, media=media)


def _check_completed(completed: Sequence[ChunkResult], plan: TranscriptionPlan) -> None:
    for expected_index, chunk in enumerate(completed):
        if chunk.plan_fingerprint != plan.fingerprint:
            raise StaleCheckpointError(
                f"stored chunk {chunk.index} was made with plan {chunk.plan_fingerprint}, "
                f"the current plan is {plan.fingerprint}: delete stored chunks and restart"
            )
        if chunk.index != expected_index:
            raise StaleCheckpointError(
                f"stored chunks must be 0..{len(completed) - 1} in order; "
                f"got {chunk.index} at position {expected_index}"
            )
    if len(completed) > len(plan.chunks):
        raise StaleCheckpointError(
            f"{len(completed)} stored chunks but the plan has {len(plan.chunks)}"
        )


def assemble_transcript(
    chunks: Sequence[ChunkResult], *, duration: float, model: str
) -> Transcript:
    """Join chunk results (in index order) into one transcript.

    The language is the one with the most speech time across chunks; with no speech it is
    ``en`` for English-only models and ``und`` (undetermined) otherwise.
    """
    speech_by_language: dict[str, float] = {}
    for chunk in chunks:
        spoken = sum(s.end - s.start for s in chunk.segments)
        if spoken > 0:
            speech_by_language[chunk.language] = speech_by_language.get(chunk.language, 0) + spoken
    if speech_by_language:
        language = max(sorted(speech_by_language), key=lambda code: speech_by_language[code])
    else:
        language = "en" if model.endswith(".en") else "und"
    return Transcript(
        language=language,
        duration=duration,
        model=model,
        segments=tuple(
            s for chunk in sorted(chunks, key=lambda c: c.index) for s in chunk.segments
        ),
    )


# --- evaluation -----------------------------------------------------------------------

_PUNCTUATION = re.compile(r"[^\w\s']")
_SPACES = re.compile(r"\s+")


def normalize_for_wer(text: str) -> list[str]:
    """Tokens for WER: lower case, no punctuation, no fillers, hyphens split.

    Fixed on purpose (no number or spelling normalisation): a change here changes every
    WER ever reported, so it is versioned with the benchmark figures.
    """
    text = _PUNCTUATION.sub(" ", text.lower().replace("-", " "))
    tokens = [token.strip("'") for token in _SPACES.split(text)]
    return [token for token in tokens if token and not is_filler(token)]


def word_error_rate(reference: str, hypothesis: str) -> float:
    """(substitutions + deletions + insertions) / reference words, after normalising."""
    ref, hyp = normalize_for_wer(reference), normalize_for_wer(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    previous = list(range(len(hyp) + 1))
    for i, ref_token in enumerate(ref, start=1):
        current = [i] + [0] * len(hyp)
        for j, hyp_token in enumerate(hyp, start=1):
            current[j] = min(
                previous[j] + 1,
                current[j - 1] + 1,
                previous[j - 1] + (ref_token != hyp_token),
            )
        previous = current
    return previous[-1] / len(ref)
