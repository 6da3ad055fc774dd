"""Delivery signals of a spoken answer, computed from the transcript's word timings.

Why from words and not from the audio: word timings are already there, cheap to store, and
give every number a meaning a recruiter can check against the transcript ("a 3.1 s pause
after *migration*"). The transcription step trims Whisper's word times to the voiced audio,
so pauses are measured from sound, not from Whisper's habit of stretching the last word of a
phrase into the silence after it.

These are descriptions of *how* something was said, for a human to weigh. They are not
scores of the candidate: speaking rate and pauses vary with language, accent, nerves,
disability and the question itself, and none of them is used to rank anyone automatically.

Answer relevance needs an embedding model; it is injected as ``similarity(question, answer)``
(cosine similarity of sentence embeddings, wired by the caller) so this module stays light.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from are_workers.services.media import Interval, Signal, signals_to_dict

if TYPE_CHECKING:
    from are_workers.ml.transcriber import Word
    from are_workers.services.media.transcription import Transcript

Similarity = Callable[[str, str], float]
"""``similarity(question, answer) -> float`` in [-1, 1] (cosine); usually in [0, 1]."""

_FILLER = re.compile(r"^(u+[hm]+|u+h+m+|e+r+m*|a+h+|h+m+|m+h*m+|e+h+|ä+h+m*|ö+h*m+|e+u+h+|h+e+u+)$")
"""Non-lexical fillers in Whisper's spellings: um, umm, uh, uhm, er, erm, ah, hmm, mm, mhm,
eh; German äh, ähm, öhm; French euh, heu (Spanish uses eh, covered). "like", "you know",
"also", "bueno" and "I mean" are not counted: they are usually meaningful words, and telling
the filler use apart needs more than a word list."""


def is_filler(token: str) -> bool:
    """Whether a word (any case, punctuation allowed) is a non-lexical filler."""
    return bool(_FILLER.match(token.lower().strip(".,!?;:'\"-…")))


@dataclass(frozen=True, slots=True)
class SpeechAnalyticsOptions:
    pause_min_seconds: float = 0.5
    """Silence between two words that counts as a pause. Shorter gaps are articulation
    (stop consonants, breaths) and below the precision of the word timings."""
    long_pause_seconds: float = 2.0
    """A pause at least this long is listed as a long pause (thinking, losing the thread,
    or a technical problem: the reviewer decides)."""


@dataclass(frozen=True, slots=True)
class SpeechAnalytics:
    """Signals by name (``{value, unit, definition}``) plus the evidence behind them."""

    signals: dict[str, Signal]
    long_pauses: tuple[Interval, ...] = ()
    filler_counts: dict[str, int] = field(default_factory=dict)

    @property
    def speech_detected(self) -> bool:
        return bool(self.signals["word_count"].value)

    def to_dict(self) -> dict[str, Any]:
        return {
            "speech_detected": self.speech_detected,
            "signals": signals_to_dict(self.signals),
            "long_pauses": [p.to_dict() for p in self.long_pauses],
            "filler_counts": dict(self.filler_counts),
        }


def analyze_speech(
    transcript: Transcript,
    *,
    question: str | None = None,
    similarity: Similarity | None = None,
    options: SpeechAnalyticsOptions | None = None,
) -> SpeechAnalytics:
    """Speaking rate, pauses, fillers, talk time and (optionally) relevance of an answer.

    An empty transcript gives ``word_count`` 0 and ``None`` for every rate, so the UI shows
    "no speech detected" rather than misleading zeros.
    """
    return analyze_words(
        transcript.words,
        duration=transcript.duration,
        answer_text=transcript.text,
        question=question,
        similarity=similarity,
        options=options,
    )


def analyze_words(
    words: Sequence[Word],
    *,
    duration: float,
    answer_text: str | None = None,
    question: str | None = None,
    similarity: Similarity | None = None,
    options: SpeechAnalyticsOptions | None = None,
) -> SpeechAnalytics:
    """:func:`analyze_speech` on bare words (times in seconds from the media start)."""
    options = options or SpeechAnalyticsOptions()
    words = sorted(words, key=lambda w: (w.start, w.end))
    pauses = [
        Interval(round(prev.end, 3), round(nxt.start, 3))
        for prev, nxt in itertools.pairwise(words)
        if round(nxt.start - prev.end, 3) >= options.pause_min_seconds
    ]
    long_pauses = tuple(p for p in pauses if p.duration >= options.long_pause_seconds)
    fillers = Counter(w.text.lower().strip(".,!?;:'\"-…") for w in words if is_filler(w.text))
    filler_total = sum(fillers.values())
    span = words[-1].end - words[0].start if words else 0.0
    pause_time = sum(p.duration for p in pauses)
    talk_time = max(span - pause_time, 0.0)

    def per_minute(count: float, seconds: float) -> float | None:
        return round(count * 60.0 / seconds, 1) if seconds > 0 else None

    relevance: float | None = None
    answer_text = answer_text if answer_text is not None else " ".join(w.text for w in words)
    if similarity is not None and question and answer_text.strip():
        relevance = round(float(similarity(question, answer_text)), 4)

    signals = {
        "word_count": Signal(
            len(words),
            "words",
            "Words recognised in the answer, fillers included.",
        ),
        "speaking_rate_wpm": Signal(
            per_minute(len(words), span),
            "words/minute",
            "Words per minute from the first to the last word, pauses included. "
            "Conversational English is typically 120-160; it varies with language and "
            "speaker and is not a measure of quality.",
        ),
        "articulation_rate_wpm": Signal(
            per_minute(len(words), talk_time),
            "words/minute",
            f"Words per minute of talk time, i.e. with pauses of {options.pause_min_seconds:g} s "
            "or more removed: how fast the candidate speaks when speaking.",
        ),
        "talk_time_seconds": Signal(
            round(talk_time, 2),
            "seconds",
            f"Time spent speaking: first to last word, minus pauses of "
            f"{options.pause_min_seconds:g} s or more.",
        ),
        "time_to_first_word_seconds": Signal(
            round(words[0].start, 2) if words else None,
            "seconds",
            "Time from the start of the recording to the first recognised word.",
        ),
        "pause_count": Signal(
            len(pauses),
            "pauses",
            f"Silences of {options.pause_min_seconds:g} s or more between two words.",
        ),
        "pause_ratio": Signal(
            round(pause_time / span, 3) if span > 0 else None,
            "ratio",
            f"Share of the time from the first to the last word spent in pauses of "
            f"{options.pause_min_seconds:g} s or more (0 = none, 1 = all).",
        ),
        "long_pause_count": Signal(
            len(long_pauses),
            "pauses",
            f"Pauses of {options.long_pause_seconds:g} s or more between two words; "
            "their times are listed with the analysis.",
        ),
        "longest_pause_seconds": Signal(
            round(max((p.duration for p in pauses), default=0.0), 2) if words else None,
            "seconds",
            "The longest silence between two words.",
        ),
        "filler_word_count": Signal(
            filler_total,
            "words",
            "Non-lexical fillers (um, uh, er, ah, hmm, mm). A lower bound: speech "
            "recognition drops many fillers even when prompted to keep them.",
        ),
        "filler_words_per_minute": Signal(
            per_minute(filler_total, talk_time),
            "words/minute",
            "Filler words per minute of talk time (a lower bound, see filler_word_count).",
        ),
        "answer_relevance": Signal(
            relevance,
            "similarity",
            "Semantic similarity of the answer's transcript to the question, in any "
            "language (cosine of multilingual-e5-small embeddings: unrelated texts score "
            "about 0.75, on-topic answers about 0.8 or more). It measures topic overlap, "
            "not whether the answer is correct. Empty when no question or no speech.",
        ),
    }
    return SpeechAnalytics(signals=signals, long_pauses=long_pauses, filler_counts=dict(fillers))
