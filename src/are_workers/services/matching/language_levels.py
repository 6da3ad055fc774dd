"""Spoken-language requirements and the levels resumes state (CEFR A1-C2, "native", …).

"Native or near-native French (C2)" is not shown by "Französisch (B1)", and "Working
proficiency in German" is shown by "German B2 (Goethe-Zertifikat)" even in a bare languages
line. The judge reads both sides here: what a requirement asks (which languages, at least
which level) and the best level a resume states for one of them.

Levels are CEFR steps 1-6 (A1 … C2); "native", "mother tongue" and "bilingual" count as 6,
"fluent" as C1, "working proficiency" as B2, "conversational" and "intermediate" as B1,
"basic" as A2. A requirement that names no level ("German or French would be a plus") asks
for B1: enough to work in the language. "A second European language" asks for any language
but English (the posting's), or only the ones it names ("(French, German or Spanish)"): a
native German speaker has one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Each language with the names it goes by in English, German and French resumes.
LANGUAGES: dict[str, tuple[str, ...]] = {
    "English": ("english", "englisch", "anglais"),
    "German": ("german", "deutsch", "allemand"),
    "French": ("french", "französisch", "franzosisch", "français", "francais"),
    "Spanish": ("spanish", "spanisch", "espagnol", "español", "espanol"),
    "Italian": ("italian", "italienisch", "italien"),
    "Portuguese": ("portuguese", "portugiesisch", "portugais"),
    "Dutch": ("dutch", "niederländisch", "néerlandais"),
    "Polish": ("polish", "polnisch", "polonais"),
    "Arabic": ("arabic", "arabisch", "arabe"),
    "Mandarin": ("mandarin", "chinese", "chinesisch", "chinois"),
    "Japanese": ("japanese", "japanisch", "japonais"),
    "Russian": ("russian", "russisch", "russe"),
    "Turkish": ("turkish", "türkisch", "turc"),
}
_NAME_OF = {alias: name for name, aliases in LANGUAGES.items() for alias in aliases}
_MENTION = re.compile(
    r"\b(" + "|".join(sorted(map(re.escape, _NAME_OF), key=len, reverse=True)) + r")\b",
    re.IGNORECASE,
)
#: (pattern, level): the highest level named in a window counts.
_LEVELS: tuple[tuple[re.Pattern[str], int], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), level)
    for pattern, level in (
        (r"\b(native|near[- ]native|mother[- ]tongue|first language|bilingual|c2|"
         r"muttersprach\w*|zweisprachig|langue maternelle|bilingue)\b", 6),
        (r"\b(c1|fluent\w*|fluency|fließend|fliessend|verhandlungssicher|courant|"
         r"couramment|advanced)\b", 5),
        (r"\b(b2|working proficiency|professional working|business[- ]level|"
         r"sehr gute kenntnisse|gute kenntnisse|bonne maîtrise|upper[- ]intermediate)\b", 4),
        (r"\b(b1|conversational|intermediate|intermédiaire|conversation|"
         r"kenntnisse|notions avancées)\b", 3),
        (r"\b(a2|basic|elementary|grundkenntnisse|notions|élémentaire)\b", 2),
        (r"\b(a1|beginner|débutant|anfänger)\b", 1),
    )
)  # fmt: skip
#: Words that make a requirement naming a language about speaking it.
_PROFICIENCY = re.compile(
    r"\b(proficien\w*|fluen\w*|native|speak\w*|spoken|command of|level|"
    r"(?:a|an|the)? ?(?:real |big |strong )?(?:plus|advantage|asset)|kenntnisse|maîtrise|"
    r"courant|a[12]|b[12]|c[12])\b",
    re.IGNORECASE,
)
#: A language beyond the one the posting is written in ("a second European language",
#: "another language", "eine weitere Fremdsprache", "une deuxième langue"): any language but
#: English (postings are read in English), or only the ones it names as examples.
_SECOND = re.compile(
    r"\b(?:second|another|additional|other|further|foreign|zweite|weitere|seconde|deuxième|"
    r"autre)\s+(?:(?:european|modern|spoken|europäische|européenne|vivante)\s+)?"
    r"(?:language|sprache|langue)\b|\bfremdsprache|\blangue étrangère",
    re.IGNORECASE,
)
_EUROPEAN = re.compile(r"europ", re.IGNORECASE)
_NOT_EUROPEAN = frozenset({"Arabic", "Mandarin", "Japanese"})
_TEACHING = re.compile(r"\b(teach\w*|taught|unterricht\w*|enseign\w*)\b", re.IGNORECASE)
#: Where one language's item ends: words before a language belong to it back to the
#: previous item's end; after it, up to the end of its item (commas inside brackets stay).
_ITEM_BREAK = re.compile(r"[,;·|()/]")


def _item_tail(text: str) -> str:
    """``text`` up to the end of its item: the first , ; · or | outside brackets."""
    depth = 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(0, depth - 1)
        elif ch in ",;·|" and depth == 0:
            return text[:i]
    return text


LEVEL_NAMES = {1: "A1", 2: "A2", 3: "B1", 4: "B2", 5: "C1", 6: "C2 or native"}
DEFAULT_ASK = 3


@dataclass(frozen=True)
class LanguageAsk:
    languages: frozenset[str]
    level: int


def _level(window: str) -> int | None:
    found = [level for pattern, level in _LEVELS if pattern.search(window)]
    return max(found) if found else None


def language_ask(requirement: str) -> LanguageAsk | None:
    """The languages a requirement asks to speak and the least level it asks, or ``None``
    when it asks for no language (teaching French is a teaching requirement)."""
    names = frozenset(_NAME_OF[m.group(1).casefold()] for m in _MENTION.finditer(requirement))
    if _TEACHING.search(requirement):
        return None
    if _SECOND.search(requirement):
        names = (names or frozenset(LANGUAGES)) - {"English"}
        if _EUROPEAN.search(requirement):
            names -= _NOT_EUROPEAN
    elif not names or not _PROFICIENCY.search(requirement):
        return None
    return LanguageAsk(names, _level(requirement) or DEFAULT_ASK)


def level_shown(text: str, languages: frozenset[str]) -> tuple[int, str] | None:
    """The best level ``text`` states for one of ``languages`` (level, language), reading the
    words between that language's name and the next language named."""
    mentions = list(_MENTION.finditer(text))
    best: tuple[int, str] | None = None
    for k, mention in enumerate(mentions):
        name = _NAME_OF[mention.group(1).casefold()]
        if name not in languages:
            continue
        start = max(mentions[k - 1].end() if k else 0, mention.start() - 25)
        lead = _ITEM_BREAK.split(text[start : mention.start()])[-1]
        end = mentions[k + 1].start() if k + 1 < len(mentions) else mention.end() + 60
        tail = _item_tail(text[mention.start() : end])
        level = _level(f"{lead} {tail}")
        if level is not None and (best is None or level > best[0]):
            best = (level, name)
    return best
