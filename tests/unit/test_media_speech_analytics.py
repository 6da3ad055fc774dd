"""Speech analytics from word timings: definitions travel with the values."""

from __future__ import annotations

import pytest

from are_workers.ml.transcriber import Segment, Word
from are_workers.services.media.speech_analytics import (
    SpeechAnalyticsOptions,
    analyze_speech,
    analyze_words,
    is_filler,
)
from are_workers.services.media.transcription import Transcript


def _words(*spec: tuple[str, float, float]) -> list[Word]:
    return [Word(start=s, end=e, text=t, probability=0.9) for t, s, e in spec]


ANSWER = _words(
    ("Umm,", 1.0, 1.3),
    ("I", 1.5, 1.6),
    ("built", 1.6, 1.9),
    ("a", 1.9, 2.0),
    ("billing", 2.0, 2.4),
    ("service.", 2.4, 3.0),
    # 3.0 s of silence
    ("Uh,", 6.0, 6.2),
    ("it", 6.3, 6.4),
    ("worked.", 6.4, 7.0),
)


def test_rates_pauses_and_fillers() -> None:
    result = analyze_words(ANSWER, duration=8.0)
    s = {name: signal.value for name, signal in result.signals.items()}
    assert s["word_count"] == 9
    assert s["speaking_rate_wpm"] == pytest.approx(9 * 60 / 6.0, abs=0.1)
    assert s["pause_count"] == 1
    assert s["pause_ratio"] == pytest.approx(3.0 / 6.0, abs=0.001)
    assert s["talk_time_seconds"] == pytest.approx(3.0)
    assert s["articulation_rate_wpm"] == pytest.approx(9 * 60 / 3.0, abs=0.1)
    assert s["long_pause_count"] == 1
    assert s["longest_pause_seconds"] == pytest.approx(3.0)
    assert s["time_to_first_word_seconds"] == pytest.approx(1.0)
    assert s["filler_word_count"] == 2
    assert s["filler_words_per_minute"] == pytest.approx(40.0)
    assert result.filler_counts == {"umm": 1, "uh": 1}
    assert [(p.start, p.end) for p in result.long_pauses] == [(3.0, 6.0)]
    assert s["answer_relevance"] is None  # no similarity injected


def test_every_signal_has_a_unit_and_a_definition() -> None:
    data = analyze_words(ANSWER, duration=8.0).to_dict()
    assert data["speech_detected"] is True
    for name, signal in data["signals"].items():
        assert set(signal) == {"value", "unit", "definition"}, name
        assert signal["unit"], name
        assert len(signal["definition"]) > 20, name


def test_thresholds_are_configurable() -> None:
    options = SpeechAnalyticsOptions(pause_min_seconds=0.15, long_pause_seconds=5.0)
    s = analyze_words(ANSWER, duration=8.0, options=options).signals
    assert s["pause_count"].value == 2  # 1.3->1.5 (0.2 s) and 3.0->6.0
    assert s["long_pause_count"].value == 0
    assert "0.15 s" in s["pause_count"].definition


def test_relevance_uses_the_injected_similarity() -> None:
    seen: list[tuple[str, str]] = []

    def similarity(question: str, answer: str) -> float:
        seen.append((question, answer))
        return 0.731234

    transcript = Transcript(
        language="en",
        duration=8.0,
        model="tiny.en",
        segments=(
            Segment(
                start=1.0,
                end=7.0,
                text="Umm, I built a billing service. Uh, it worked.",
                words=tuple(ANSWER),
                avg_logprob=-0.2,
                no_speech_prob=0.01,
            ),
        ),
    )
    result = analyze_speech(transcript, question="What did you build?", similarity=similarity)
    assert result.signals["answer_relevance"].value == pytest.approx(0.7312)
    assert seen == [("What did you build?", transcript.text)]


def test_no_speech_gives_empty_values_not_zeros() -> None:
    empty = Transcript(language="en", duration=4.0, model="tiny.en", segments=())
    result = analyze_speech(empty, question="Why?", similarity=lambda q, a: 1.0)
    assert not result.speech_detected
    s = result.signals
    assert s["word_count"].value == 0
    assert s["speaking_rate_wpm"].value is None
    assert s["pause_ratio"].value is None
    assert s["answer_relevance"].value is None


@pytest.mark.parametrize(
    "token", ["um", "Umm,", "uh", "Uhh...", "er", "erm", "ah", "hmm", "Mm", "mhm"]
)
def test_fillers(token: str) -> None:
    assert is_filler(token)


@pytest.mark.parametrize("token", ["like", "umbrella", "her", "a", "I", "oh", "hum", "arm"])
def test_not_fillers(token: str) -> None:
    assert not is_filler(token)
