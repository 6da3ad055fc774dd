"""Spoken-language requirements and stated levels (texts of our own)."""

from __future__ import annotations

from are_workers.services.matching.language_levels import language_ask, level_shown

BOTH = frozenset({"Italian", "Spanish"})


def test_what_a_requirement_asks() -> None:
    ask = language_ask("Business-level Italian (B2) for our Milan office")
    assert ask is not None and ask.languages == {"Italian"} and ask.level == 4
    native = language_ask("Native or near-native Spanish")
    assert native is not None and native.level == 6
    plus = language_ask("Italian or Spanish would be a plus")
    assert plus is not None and plus.languages == BOTH and plus.level == 3
    # Teaching a language, or a tool called fluent, is not speaking one.
    assert language_ask("Two years teaching Spanish to adults") is None
    assert language_ask("Fluency with Excel and SQL") is None


def test_a_second_language_is_any_but_english_or_one_of_those_named() -> None:
    ask = language_ask("A second European language would help with our visitors")
    assert ask is not None and ask.level == 3
    assert "Portuguese" in ask.languages and "English" not in ask.languages
    assert "Japanese" not in ask.languages  # not a European one
    named = language_ask("Another language (Dutch or Polish) is an advantage")
    assert named is not None and named.languages == {"Dutch", "Polish"}
    # A native German speaker applying in English has a second language; English does not count.
    line = "Sprachen: Deutsch (Muttersprache), Englisch (B1)"
    assert level_shown(line, ask.languages) == (6, "German")
    assert level_shown("English (native)", ask.languages) is None
    assert language_ask("Foreign language teaching experience") is None


def test_the_level_stated_for_each_language() -> None:
    line = "Languages: Portuguese (native), English (C2), Spanish (B1, DELE B1 2019), Italian (A2)"
    # Each language keeps its own level: English's C2 is not Spanish's.
    assert level_shown(line, frozenset({"Spanish"})) == (3, "Spanish")
    assert level_shown(line, BOTH) == (3, "Spanish")
    assert level_shown("Fluent Spanish; basic Italian", BOTH) == (5, "Spanish")
    assert level_shown("Sprachen: Italienisch: Muttersprache", BOTH) == (6, "Italian")
    assert level_shown("Spanish teacher, native speaker of Dutch", BOTH) is None
    assert level_shown("Managed the Madrid office", BOTH) is None
