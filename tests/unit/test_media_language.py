"""The answer's language from its chunks, and the notice a doubtful language leaves (pure
logic: chunk results are built here, as the transcriber would return them)."""

from __future__ import annotations

import pytest

from are_workers.errors import InvalidInputError
from are_workers.ml.transcriber import FILLER_PROMPT, DecodingOptions, Segment, Word, _prompt
from are_workers.services.media.answer_transcription import _LanguageTally, check_understood
from are_workers.services.media.answers import LANGUAGE_MIN_PROBABILITY, answer_notice
from are_workers.services.media.speech_analytics import is_filler
from are_workers.services.media.transcription import ChunkResult
from are_workers.services.media.transcription import Transcript as SpokenTranscript


def _chunk(index: int, language: str, probability: float, seconds: float) -> ChunkResult:
    words = (Word(0.0, seconds, "word", 0.9),) if seconds else ()
    segments = (Segment(0.0, seconds, "word", words, -0.2, 0.01),) if seconds else ()
    return ChunkResult(index, 3, 0.0, 30.0, language, probability, segments, "plan")


def test_the_answer_language_is_the_one_with_most_speech_and_its_certainty_is_shared() -> None:
    tally = _LanguageTally()
    tally.add(_chunk(0, "de", 0.9, 20.0), new=False)  # restored chunks count like new ones
    tally.add(_chunk(1, "de", 0.7, 20.0), new=True)
    tally.add(_chunk(2, "en", 0.99, 10.0), new=True)
    assert tally.language == "de"
    assert tally.chunks == [("de", 0.9), ("de", 0.7), ("en", 0.99)]
    assert tally.probability == pytest.approx(0.8 * 40 / 50)
    assert tally.new_chunks == 2


def test_silent_chunks_keep_their_language_on_the_checkpoint_but_do_not_vote() -> None:
    tally = _LanguageTally()
    tally.add(_chunk(0, "und", 0.0, 0.0), new=True)
    assert (tally.language, tally.probability, tally.chunks) == ("und", None, [("und", 0.0)])


@pytest.mark.parametrize(
    ("silent", "probability", "code"),
    [
        (True, None, "no_speech"),
        (False, None, None),  # an English-only model: no detection to doubt
        (False, 0.93, None),
        (False, LANGUAGE_MIN_PROBABILITY - 0.01, "language_uncertain"),
    ],
)
def test_the_notice_an_answer_keeps(silent: bool, probability: float | None, code: str) -> None:
    got, message = answer_notice(silent=silent, language="fr", language_probability=probability)
    assert got == code
    if code == "language_uncertain":
        assert "'fr', 49%" in (message or "") and "check it against the recording" in (
            message or ""
        )


def test_the_prompt_follows_the_chunk_language() -> None:
    filler = DecodingOptions(initial_prompt=FILLER_PROMPT, condition_on_previous_chunk=True)
    context = DecodingOptions(condition_on_previous_chunk=True)
    assert _prompt(DecodingOptions(), "en", ("en", "Before.")) is None  # the defaults
    assert _prompt(filler, "de", None) is None  # never an English prompt on German speech
    assert _prompt(filler, "en", ("en", "Before.")) == f"{FILLER_PROMPT} Before."
    assert _prompt(context, "de", ("en", "Before.")) is None
    assert _prompt(context, "de", ("de", "Vorher.")) == "Vorher."


def test_fillers_in_german_and_french_are_counted() -> None:
    assert all(is_filler(w) for w in ["äh", "Ähm,", "euh", "Heu...", "um", "uh"])
    assert not any(is_filler(w) for w in ["also", "bueno", "eher", "euro", "ah-ha-moment"])


def test_words_join_as_whisper_wrote_them() -> None:
    """French elisions and hyphens come as separate words ("c", "'est"); spacing them made
    "c 'est", which cost the pipeline a third of its French words against plain Whisper."""
    from are_workers.services.media.transcription import join_words, normalize_for_wer

    def words(*texts: str) -> tuple[Word, ...]:
        return tuple(Word(float(i), i + 0.5, t, 0.9) for i, t in enumerate(texts))

    french = join_words(words("Bon,", "c", "'est", "là", "-bas,", "l", "'occasion."), "fr")
    assert french == "Bon, c'est là-bas, l'occasion."
    assert normalize_for_wer(french) == normalize_for_wer("Bon, c'est là-bas, l'occasion.")
    assert join_words(words("We", "don't", "know."), "en") == "We don't know."
    assert join_words(words("我", "们", "好"), "zh") == "我们好"
    # numbers as base wrote them in German and Spanish multi-chunk answers of the dev split
    german = join_words(words("ungefähr", "52", ".000", "Euro,", "fast", "10", "%."), "de")
    assert german == "ungefähr 52.000 Euro, fast 10%."
    assert join_words(words("1", ",5", "Jahre"), "de") == "1,5 Jahre"
    assert join_words(words("Well,", ".NET", "and", "%", "signs"), "en") == "Well, .NET and % signs"


def _english_model_heard(*phrases: tuple[str, float]) -> SpokenTranscript:
    segments = []
    for i, (text, avg_logprob) in enumerate(phrases):
        words = tuple(
            Word(i * 3.0 + k * 0.2, i * 3.0 + k * 0.2 + 0.2, w, 0.6)
            for k, w in enumerate(text.split())
        )
        segments.append(Segment(i * 3.0, i * 3.0 + 2.9, text, words, avg_logprob, 0.01))
    return SpokenTranscript("en", 3.0 * len(phrases), "tiny.en", tuple(segments))


def test_an_english_only_model_looping_on_foreign_speech_stores_nothing() -> None:
    # Confidence and coverage alone would keep it (-0.7, word probability 0.6, full
    # coverage); the looping phrase is what the model makes of another language.
    looping = _english_model_heard(
        ("In my midst I am still having a steam glide.", -0.7),
        (
            "I'm having a high-end, high-end, high-end, high-end, high-end, high-end, high-end.",
            -0.7,
        ),
    )
    with pytest.raises(InvalidInputError) as caught:
        check_understood(looping, english_only=True, speech_seconds=lambda: 6.0)
    assert caught.value.code == "unsupported_language"
    # Noisy English at the same confidence, without a loop, is kept.
    noisy = _english_model_heard(
        ("In my last role I led a small team that rebuilt the billing service.", -0.7),
        ("The hardest part was the data migration, we could not lose one invoice.", -0.7),
    )
    check_understood(noisy, english_only=True, speech_seconds=lambda: 6.0)


def test_an_uncertain_language_is_picked_by_decoding_never_by_a_loop() -> None:
    """The decoding in the spoken language wins on mean token log-probability, a decoding
    that repeats one phrase loses whatever its score, and when every one loops (or none has
    words) the language token's first choice stays."""
    from types import SimpleNamespace

    from are_workers.ml.transcriber import (
        HALLUCINATION_COMPRESSION_RATIO,
        DecodingOptions,
        _decoding_score,
    )

    def decoding(logprob: float, tokens: int, ratio: float = 1.5) -> list[SimpleNamespace]:
        return [SimpleNamespace(avg_logprob=logprob, tokens=[0] * tokens, compression_ratio=ratio)]

    spoken = _decoding_score(decoding(-0.4, 30) + decoding(-0.2, 10))
    assert spoken == (True, pytest.approx(-0.35))
    loop = _decoding_score(decoding(-0.05, 80, HALLUCINATION_COMPRESSION_RATIO + 1))
    assert spoken > loop == _decoding_score([]) == (False, 0.0)
    assert _decoding_score(decoding(-0.3, 20)) > spoken
    # the same bound as the answer's language_uncertain notice
    assert DecodingOptions().uncertain_language_below == LANGUAGE_MIN_PROBABILITY


def test_an_uncertain_language_is_picked_among_languages_of_the_likeliest_script() -> None:
    """Decoded in a language of another script, speech comes out transliterated and can
    score well (Spanish under babble written as Greek): the decodings compete only among
    the languages of the script holding most of the token's probability (Latin here even
    with Thai first), and with an organisation's languages only among those."""
    from typing import Any

    from are_workers.ml.transcriber import WhisperTranscriber, writing_system

    assert [writing_system(c) for c in ("es", "el", "zh", "yue", "th", "ru", "vi")] == [
        "Latn", "Grek", "Hani", "Hani", "Thai", "Cyrl", "Latn",
    ]  # fmt: skip
    token = [("es", 0.30), ("el", 0.25), ("zh", 0.2), ("it", 0.1), ("ru", 0.1), ("en", 0.05)]
    decoded: list[list[str]] = []

    class Heard(WhisperTranscriber):
        def __init__(self) -> None:  # no model: the token and the decodings are given
            pass

        def _language_probabilities(self, clip: Any, languages: Any = ()) -> Any:
            return [(c, p) for c, p in token if not languages or c in languages]

        def _pick_language(self, clip: Any, candidates: Any, options: Any, context: Any) -> Any:
            decoded.append(list(candidates))
            return candidates[-1], []

    heard = Heard()
    assert heard.identify_language(None, options=DecodingOptions()) == ("it", 0.1, [])  # type: ignore[arg-type]
    heard.identify_language(None, options=DecodingOptions(languages=("ru", "el", "es")))  # type: ignore[arg-type]
    token[:] = [("ru", 0.4), ("en", 0.35), ("uk", 0.25)]
    heard.identify_language(None, options=DecodingOptions())  # type: ignore[arg-type]
    token[:] = [("th", 0.3), ("fr", 0.2), ("hu", 0.2), ("ja", 0.1), ("nn", 0.1), ("en", 0.1)]
    heard.identify_language(None, options=DecodingOptions())  # type: ignore[arg-type]
    assert decoded == [["es", "it"], ["es"], ["ru", "uk"], ["fr", "hu", "nn"]]
    assert heard.identify_language(None, options=DecodingOptions(languages=("fr",)))[:2] == (  # type: ignore[arg-type]
        "fr",
        0.2,
    )
    # English is decoded only where the token put it first (a forced English decoding of
    # other speech is a fluent translation, and scores well): not among es, it above.
    token[:] = [("en", 0.4), ("de", 0.35), ("cy", 0.25)]
    heard.identify_language(None, options=DecodingOptions())  # type: ignore[arg-type]
    assert decoded[-1] == ["en", "de", "cy"]
