"""Contact details masked out of resume text before it is stored, chunked or embedded.

Why: the stored resume text (``parsed_resumes.raw_text`` and its sections), its chunks and
the judge's evidence are read by recruiters and models that need the work history, never
the candidate's email, phone, street address or profile links. The product keeps the contact
details it needs in their own columns (``candidates.email`` encrypted with a blind index,
``candidates.phone`` encrypted), so the free text does not have to carry them.

Why same-length masks: every offset computed downstream (sections, chunk spans, evidence
locators the UI highlights) stays valid against the text of the original document. Each
masked character becomes :data:`MASK`; line breaks are kept so that sections and lines are
found exactly as before.

What is and is not detected is listed in ``docs/compliance.md`` ("Contact details in resume
text"); the unit tests (``tests/unit/test_resume_redaction.py``) hold one example of each.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Literal

from are_workers.services.documents import MASK

Kind = Literal["email", "phone", "url", "address"]

_SEGMENT_END = r"\n|·•;"  # what ends one item of a contact line ("a | b · c")

# --- emails --------------------------------------------------------------------------------------

_EMAIL = re.compile(
    r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
    # "jane (at) example (dot) com", "jane[at]example.com"
    r"|(?<![\w.+-])[\w.+-]+\s*[\[(]\s*at\s*[\])]\s*[\w-]+"
    r"(?:\s*(?:[\[(]\s*dot\s*[\])]|\.)\s*[\w-]+)+",
    re.IGNORECASE,
)

# --- links ---------------------------------------------------------------------------------------

_PROFILE_HOSTS = (
    r"linkedin\.com|github\.com|gitlab\.com|bitbucket\.org|xing\.com|twitter\.com|x\.com|"
    r"stackoverflow\.com|medium\.com|behance\.net|dribbble\.com|kaggle\.com|instagram\.com|"
    r"facebook\.com|codepen\.io|huggingface\.co|mastodon\.social|about\.me"
)
_TLDS = (
    r"com|net|org|io|dev|me|de|fr|ch|at|nl|be|es|it|uk|eu|info|app|page|site|xyz|tech|blog|"
    r"co|ai|pl|se|dk|no|fi|pt|cz|ie|us|ca|au"
)
_URL = re.compile(
    r"\bhttps?://[^\s<>\"'|·•]+"
    r"|\bwww\.[^\s<>\"'|·•]+"
    rf"|(?<![\w@.-])(?:[\w-]+\.)*(?:{_PROFILE_HOSTS})(?:/[^\s<>\"'|·•]*)?"
    rf"|(?<![\w@.-])[a-z0-9][a-z0-9-]*(?:\.[a-z0-9-]+)*\.(?:{_TLDS})\b(?:/[^\s<>\"'|·•]*)?",
    re.IGNORECASE,
)
#: Technology names shaped like a domain: never a link.
_NOT_A_SITE = frozenset({"asp.net", "ado.net", "vb.net", "socket.io", "dot.net", "x.ai"})

# --- phone numbers -------------------------------------------------------------------------------

_PHONE = re.compile(r"(?<![\w+./-])(?:\+|00)?\(?\d[\d \t().\-/\u2013]{5,}\d(?![\w/])")
_PHONE_LABEL = re.compile(
    r"\b(?:tel|phone|mobile|mob|cell|fon|telefon|handy|t[ée]l[ée]phone|portable|fixe|m)\.?\s*"
    r"(?:\([^)]*\))?\s*[:.]?\s*$",
    re.IGNORECASE,
)
_YEAR = r"(?:19\d\d|20\d\d)"
_NOT_A_PHONE = (
    re.compile(r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}"),  # ISO date 2023-01-15
    re.compile(r"\d{1,2}[-/.]\d{1,2}[-/.](?:\d{4}|\d{2})"),  # 15.01.2023, 01/15/23
    re.compile(rf"(?:\d{{1,2}}[./])?{_YEAR}\s*[-\u2013/]\s*(?:\d{{1,2}}[./])?{_YEAR}"),  # ranges
    re.compile(rf"(?:{_YEAR}\s+)+{_YEAR}"),  # a list of years
)
_NANP = re.compile(r"\(?\d{3}\)?[-. ]\d{3}[-. ]\d{4}")  # 555-123-4567, (555) 123 4567


def _is_phone(text: str, start: int, candidate: str) -> bool:
    digits = sum(ch.isdigit() for ch in candidate)
    if not 7 <= digits <= 15:
        return False
    if any(pattern.fullmatch(candidate) for pattern in _NOT_A_PHONE):
        return False
    if "." in candidate and not re.search(r"[\s()+/-]", candidate):
        groups = candidate.split(".")
        if len(groups) < 3 or any(len(g) < 2 for g in groups):  # 3.11.4, 10.0.0.12
            return False
    international = candidate.startswith(("+", "00", "(", "0"))
    labelled = bool(_PHONE_LABEL.search(text[max(0, start - 24) : start]))
    return international or labelled or bool(_NANP.fullmatch(candidate))


def _phones(text: str) -> list[Redaction]:
    """Phone numbers; a run of numbers ("(555) 123-4567 555.123.4567") is tried from its
    longest prefix down, so two numbers side by side are both found."""
    found: list[Redaction] = []
    position = 0
    while (match := _PHONE.search(text, position)) is not None:
        start, value = match.start(), match.group(0)
        cuts = [m.start() for m in re.finditer(r"[ \t]+(?=\D?\d)", value)]
        for cut in [len(value), *reversed(cuts)]:
            number = value[:cut].rstrip(" \t-/")
            if _is_phone(text, start, number):
                found.append(Redaction("phone", start, start + len(number)))
                position = start + len(number)
                break
        else:
            position = start + (cuts[0] if cuts else len(value))
        position = max(position, start + 1)
    return found


# --- street addresses ----------------------------------------------------------------------------

_CAP = r"[A-ZÀ-ÖØ-Þ][\w'\u2019.\-]*"
_EN_STREET = (
    r"Street|St|Road|Rd|Avenue|Ave|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|"
    r"Terrace|Close|Crescent|Parkway|Pkwy|Square|Sq|Highway|Hwy|Row|Mews|Gardens"
)
_DE_SUFFIX = r"stra(?:ß|ss)e|str\.|gasse|weg|allee|platz|ufer|chaussee"
_DE_WORD = r"Stra(?:ß|ss)e|Str\.|Gasse|Weg|Allee|Platz|Ring|Damm|Ufer|Chaussee"
_FR_WAY = (
    r"(?i:rue|avenue|av\.|boulevard|bd|impasse|all[ée]e|chemin|quai|faubourg)"
    r"|(?i:place|cours|route|passage|square)(?=[ \t]+(?:de|du|des|d['\u2019]|la|Saint|St))"
)
#: Following items of the same address: ", 10115 Berlin", ", Springfield, IL 62704".
_TAIL = rf"(?:,[ \t]*[A-ZÀ-ÖØ-Þ0-9][^,{_SEGMENT_END}]{{0,40}}){{0,3}}"
_ADDRESS = re.compile(
    # 221B Baker Street, 1600 Pennsylvania Avenue NW, Apt 4
    rf"\b\d{{1,5}}[A-Za-z]?(?:[-\u2013]\d{{1,5}})?,?[ \t]+(?:{_CAP}[ \t]+){{1,4}}"
    rf"(?:{_EN_STREET})\b\.?(?:[ \t]+(?:N|S|E|W|NE|NW|SE|SW)\b)?"
    rf"(?:,?[ \t]*(?:Apt|Suite|Unit|Flat|Floor)\.?[ \t]*\w+)?{_TAIL}"
    # Hauptstraße 12a, Berliner Straße 5, Am Alten Weg 3
    rf"|\b(?:{_CAP}(?:{_DE_SUFFIX})|(?:{_CAP}[ \t]+){{1,3}}(?:{_DE_WORD}))"
    rf"[ \t]+\d{{1,4}}[ \t]?[a-zA-Z]?\b{_TAIL}"
    # 12 rue de la Paix, 5 bis, avenue des Champs-Élysées
    rf"|\b\d{{1,4}}(?:[ \t]?(?:bis|ter))?,?[ \t]+(?:{_FR_WAY})\b[^,{_SEGMENT_END}]{{1,60}}{_TAIL}"
    # P.O. Box 123, Postfach 10 20 30, BP 45
    r"|\b(?:P\.?[ \t]?O\.?[ \t]+Box|Postfach|BP)[ \t]+\d[\d ]{0,8}\d?\b"
    # Springfield, IL 62704
    r"|\b[A-Z][a-z]+(?:[ \t][A-Z][a-z]+)*,[ \t]*[A-Z]{2}[ \t]+\d{5}(?:-\d{4})?\b"
    # SW1A 1AA, EC1V 9HX (UK postcodes)
    r"|\b[A-Z]{1,2}\d[A-Z\d]?[ \t]+\d[A-Z]{2}\b"
    # 10115 Berlin, 75002 Paris, CH-8001 Zürich, at the start of a line or item
    rf"|(?:^|(?<=[,{_SEGMENT_END}:]))[ \t]*(?:\d{{5}}|[A-Z]{{1,2}}-\d{{4,5}})[ \t]+{_CAP}",
    re.MULTILINE,
)
#: "Address: ..." masks the rest of the item, whatever it looks like.
_ADDRESS_LABEL = re.compile(
    rf"\b(?i:address|adresse|anschrift|wohnort|domicile)[ \t]*:[ \t]*([^{_SEGMENT_END}]+)"
)


@dataclass(frozen=True, slots=True)
class Redaction:
    kind: Kind
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class RedactedText:
    """The masked text (as long as the input) and what was masked where."""

    text: str
    redactions: tuple[Redaction, ...]

    @property
    def counts(self) -> dict[str, int]:
        return dict(sorted(Counter(r.kind for r in self.redactions).items()))


def find_contact_details(text: str) -> list[Redaction]:
    """Every span of ``text`` holding an email, phone number, link or street address,
    overlapping spans merged (the earlier kind wins), in text order."""
    spans: list[Redaction] = []
    spans += [Redaction("email", m.start(), m.end()) for m in _EMAIL.finditer(text)]
    for match in _URL.finditer(text):
        value = match.group(0).rstrip(".,;:)!?'\"")
        if value.lower() in _NOT_A_SITE:
            continue
        spans.append(Redaction("url", match.start(), match.start() + len(value)))
    spans += _phones(text)
    for match in _ADDRESS.finditer(text):
        value = match.group(0).rstrip(" \t,")
        start = match.start() + len(value) - len(value.lstrip(" \t"))
        if match.start() + len(value) > start:
            spans.append(Redaction("address", start, match.start() + len(value)))
    for match in _ADDRESS_LABEL.finditer(text):
        spans.append(Redaction("address", match.start(1), match.end(1)))
    merged: list[Redaction] = []
    for span in sorted(spans, key=lambda s: (s.start, -s.end)):
        if merged and span.start < merged[-1].end:
            last = merged[-1]
            merged[-1] = Redaction(last.kind, last.start, max(last.end, span.end))
        else:
            merged.append(span)
    return merged


def mask(text: str, spans: list[Redaction]) -> str:
    """``text`` with each span's characters replaced by :data:`MASK`, line breaks kept."""
    out = list(text)
    for span in spans:
        for index in range(span.start, span.end):
            if out[index] not in "\r\n":
                out[index] = MASK
    return "".join(out)


def redact_contact_details(text: str) -> RedactedText:
    """Mask emails, phone numbers, links and street addresses in ``text``, same length."""
    spans = find_contact_details(text)
    return RedactedText(mask(text, spans), tuple(spans))
