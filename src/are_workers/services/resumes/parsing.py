"""Structure in resume text: sections, skills, employment periods, education and contact.

Why rules and not a model: every field here must be explainable to a recruiter ("5.5 years:
Jan 2020 - Present at Lumen Payments plus ...") and stable across runs, and resumes follow
strong conventions (a heading per section, a date range per role). All offsets index the text
that was parsed (the :class:`~.extraction.ExtractedText` text), so any finding can be quoted
verbatim. A resume without recognisable headings still parses: everything lands in one
``body`` section and the other extractors run over the whole text.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from are_workers.services.skills import SkillMatch, SkillTaxonomy, get_taxonomy

__all__ = [
    "ContactInfo",
    "EducationEntry",
    "EmploymentPeriod",
    "ParsedResume",
    "Section",
    "find_contact",
    "find_education",
    "find_employment_periods",
    "find_sections",
    "merge_months",
    "parse_resume",
]

# --- sections -----------------------------------------------------------------------------------

_SECTION_ALIASES: dict[str, tuple[str, ...]] = {
    "summary": (
        "summary",
        "professional summary",
        "career summary",
        "executive summary",
        "profile",
        "professional profile",
        "personal profile",
        "about",
        "about me",
        "objective",
        "career objective",
        "overview",
        "personal statement",
        "profil",
        "kurzprofil",
        "über mich",
        "perfil",
        "perfil profesional",
        "resumen",
        "sobre mí",
        "samenvatting",
        "profiel",
        "profilo",
        "sommario",
        "resumo",
        "objectif",
    ),
    "experience": (
        "experience",
        "work experience",
        "professional experience",
        "employment",
        "employment history",
        "work history",
        "career history",
        "relevant experience",
        "clinical experience",
        "experience professionnelle",
        "expérience professionnelle",
        "expérience",
        "expériences",
        "expériences professionnelles",
        "berufserfahrung",
        "berufliche erfahrung",
        "beruflicher werdegang",
        "erfahrung",
        "praxiserfahrung",
        "experiencia",
        "experiencia laboral",
        "experiencia profesional",
        "werkervaring",
        "ervaring",
        "esperienza",
        "esperienze",
        "esperienza lavorativa",
        "esperienze professionali",
        "experiência",
        "experiência profissional",
        "professional background",
        "career",
        "positions held",
    ),
    "education": (
        "education",
        "education and training",
        "academic background",
        "academic history",
        "academic qualifications",
        "educational background",
        "training",
        "clinical rotations",
        "ausbildung",
        "bildung",
        "bildungsweg",
        "studium",
        "formation",
        "éducation",
        "formation académique",
        "formación",
        "educación",
        "formación académica",
        "estudios",
        "opleiding",
        "opleidingen",
        "istruzione",
        "formazione",
        "istruzione e formazione",
        "educação",
        "formação",
        "formação académica",
        "formação acadêmica",
    ),
    "skills": (
        "skills",
        "technical skills",
        "core skills",
        "key skills",
        "skills and tools",
        "skills and technologies",
        "core competencies",
        "competencies",
        "areas of expertise",
        "expertise",
        "technologies",
        "tech stack",
        "tools",
        "tools and technologies",
        "kenntnisse",
        "fähigkeiten",
        "it kenntnisse",
        "it-kenntnisse",
        "fachkenntnisse",
        "kompetenzen",
        "compétences",
        "compétences techniques",
        "competences",
        "habilidades",
        "competencias",
        "conocimientos",
        "vaardigheden",
        "competenties",
        "competenze",
        "competências",
        "skills summary",
        "technical proficiencies",
    ),
    "certifications": (
        "certifications",
        "certification",
        "certificates",
        "licenses",
        "licences",
        "licenses and certifications",
        "licences and certifications",
        "certifications and licenses",
        "certifications and licences",
        "credentials",
        "zertifikate",
        "zertifizierungen",
        "certificaciones",
        "certificats",
        "certificazioni",
        "certificações",
        "certificaten",
    ),
    "projects": (
        "projects",
        "personal projects",
        "selected projects",
        "key projects",
        "side projects",
        "open source",
        "projekte",
        "projets",
        "proyectos",
        "projecten",
        "progetti",
        "projetos",
    ),
    "languages": (
        "languages",
        "language skills",
        "sprachen",
        "sprachkenntnisse",
        "langues",
        "idiomas",
        "talen",
        "lingue",
        "línguas",
    ),
    "awards": (
        "awards",
        "honors",
        "honours",
        "awards and honors",
        "achievements",
        "auszeichnungen",
    ),
    "publications": ("publications", "papers", "publikationen", "veröffentlichungen"),
    "volunteering": (
        "volunteering",
        "volunteer experience",
        "volunteer work",
        "community involvement",
        "ehrenamt",
        "bénévolat",
        "voluntariado",
    ),
    "interests": ("interests", "hobbies", "interessen", "centres d'intérêt", "intereses"),
    "references": ("references", "referees", "referenzen", "références", "referencias"),
    "contact": (
        "contact",
        "contact information",
        "contact details",
        "personal details",
        "personal information",
        "persönliche daten",
        "kontakt",
        "coordonnées",
        "datos personales",
        "contatti",
    ),
}


def _heading_key(text: str) -> str:
    text = text.strip().strip("#*_=~-\u2014\u2013•·|:").strip()
    text = text.replace("&", " and ").replace("/", " and ")
    return " ".join(text.split()).casefold()


_HEADING_INDEX: dict[str, str] = {
    _heading_key(alias): name for name, aliases in _SECTION_ALIASES.items() for alias in aliases
}
_INLINE_HEADING_RE = re.compile(
    r"^[#*_\s]*([^\W\d][\w\s&/'\u2019-]{1,40}?)[*_\s]*[:\uff1a]\s*(\S.*)$"
)
# Inside these sections "Languages: Go, Java" or "Tools: Jira" label a list; they do not
# start a new section. "Certifications: BLS" there still does.
_SUBLABEL_SECTIONS = frozenset({"skills", "contact", "languages"})
_SUBLABEL_NAMES = frozenset({"skills", "languages", "contact"})


# Words that name a section when a heading is not in the alias list ("Where I've worked",
# "Technical Toolbox", "Parcours professionnel"). The first cue word in a heading decides.
_SECTION_CUES: dict[str, tuple[str, ...]] = {
    "experience": (
        "experience", "experiences", "work", "worked", "working", "employment", "employers",
        "career", "jobs", "positions", "roles", "placements", "history", "erfahrung",
        "berufserfahrung", "werdegang", "tätigkeiten", "stationen", "praxis", "expérience",
        "expériences", "parcours", "emplois", "postes", "experiencia", "trayectoria",
        "esperienza", "esperienze",
    ),
    "skills": (
        "skills", "skill", "toolbox", "toolkit", "tools", "stack", "technologies", "know",
        "knowledge", "expertise", "competencies", "competences", "strengths", "abilities",
        "capabilities", "kenntnisse", "fähigkeiten", "kompetenzen", "compétences", "savoir-faire",
        "outils", "habilidades", "competencias", "conocimientos", "competenze",
    ),
    "education": (
        "education", "studies", "study", "studied", "academic", "academics", "degrees",
        "qualifications", "training", "schooling", "ausbildung", "studium", "bildung",
        "schulbildung", "hochschulbildung", "formation", "formations", "études", "diplômes",
        "educación", "formación", "estudios", "istruzione", "formazione",
    ),
    "certifications": (
        "licences", "licenses", "licence", "license", "registrations", "registration",
        "certifications", "certificates", "certification", "credentials", "accreditations",
        "memberships", "zulassungen", "zertifikate", "zertifizierungen", "approbation",
        "certificats", "habilitations", "certificaciones",
    ),
    "summary": (
        "summary", "profile", "about", "objective", "overview", "statement", "introduction",
        "profil", "zusammenfassung", "perfil", "resumen",
    ),
    "projects": (
        "projects", "portfolio", "built", "made", "projekte", "projets", "proyectos", "progetti",
    ),
    "languages": ("languages", "sprachen", "sprachkenntnisse", "langues", "idiomas", "lingue"),
    "awards": (
        "awards", "honors", "honours", "achievements", "accomplishments", "distinctions",
        "prizes", "auszeichnungen", "prix",
    ),
    "publications": ("publications", "papers", "talks", "veröffentlichungen", "publikationen"),
    "volunteering": (
        "volunteering", "volunteer", "voluntary", "ehrenamt", "ehrenamtliches", "bénévolat",
        "voluntariado",
    ),
    "interests": ("interests", "hobbies", "pastimes", "interessen", "freizeit", "loisirs"),
    "references": ("references", "referees", "referenzen", "références"),
    "contact": ("contact", "kontakt", "coordonnées"),
}  # fmt: skip
# Words a heading may carry besides its cue ("My", "so far", "and", "berufliche", "de").
_HEADING_FILLERS = frozenset((
    "a", "an", "and", "the", "of", "in", "on", "at", "to", "for", "with", "my", "our", "me", "i",
    "i've", "i'm", "what", "where", "how", "things", "have", "has", "been", "so", "far", "other",
    "additional", "further", "more", "relevant", "selected", "key", "main", "professional",
    "technical", "core", "personal", "general", "it", "computer", "software", "digital",
    "clinical", "teaching", "research", "industry", "leadership", "management", "soft", "hard",
    "transferable", "programming", "language", "highlights", "recent", "previous", "past",
    "current", "und", "mein", "meine", "meiner", "bisheriger", "bisherige", "berufliche",
    "beruflicher", "beruflichen", "weitere", "sonstige", "persönliche", "fachliche", "ich", "kann",
    "was", "et", "mes", "ma", "mon", "de", "du", "des", "la", "le", "les", "l'", "autres",
    "professionnel", "professionnelle", "professionnels", "professionnelles", "personnel",
    "personnelle", "techniques", "informatiques", "académique", "y", "mis", "otros", "otras",
    "profesional", "laboral",
))  # fmt: skip
_CUE_INDEX: dict[str, str] = {word: name for name, words in _SECTION_CUES.items() for word in words}
_COMPOUND_CUES = (  # German compounds: "Programmierkenntnisse", "Fremdsprachenkenntnisse"
    ("kenntnisse", "skills"),
    ("erfahrung", "experience"),
    ("ausbildung", "education"),
    ("sprachen", "languages"),
    ("zertifikate", "certifications"),
)
_ALL_CAPS_RE = re.compile(r"[^\W\d_]{2}")
_ENTRY_SECTIONS = frozenset({"experience", "education", "projects", "volunteering"})
_UNDERLINE_RE = re.compile(r"^\s*(?:={3,}|-{3,})\s*$")
_NOT_A_HEADING_RE = re.compile(r"[\d@|·•,()\[\]]|\s[-\u2013\u2014]\s|https?:|www\.")
_BULLET_RE = re.compile(r"^[-*+•\u2013]\s")


def _cue_word(word: str) -> str | None:
    word = word.strip("'\u2019\"*_").casefold()
    if word in _CUE_INDEX:
        return _CUE_INDEX[word]
    return next((name for suffix, name in _COMPOUND_CUES if word.endswith(suffix)), None)


def _section_by_cue(heading: str) -> str | None:
    """The section a heading names by its words: every word is a cue or a filler, and the
    first cue decides ("Where I've worked" → experience, "Licences & Registrations" →
    certifications). A job title such as "Customer Experience Manager" has other words."""
    key = _heading_key(heading).replace("\u2019", "'")
    words = re.findall(r"[^\W\d_][\w'-]*", key)
    name = None
    for word in words:
        cue = _cue_word(word)
        if cue is not None:
            name = name or cue
        elif word not in _HEADING_FILLERS:
            return None
    return name


def _is_all_caps(text: str) -> bool:
    return text.upper() == text and bool(_ALL_CAPS_RE.search(text))


def _names_skills(text: str) -> bool:
    covered = sum(match.end - match.start for match in get_taxonomy().find(text))
    return covered * 2 >= len(text.replace(" ", ""))


def _may_open_other(
    heading: str,
    look: _Layout,
    current: str | None,
    marks: Sequence[tuple[str, str, int, int]],
    lines: Sequence[tuple[int, int, str]],
    index: int,
) -> bool:
    """Whether a heading whose words name no section may still open one (``other``).

    Only a line written with ``#``, underlined, or in ALL CAPS like a heading before it;
    not the name or job title that opens a resume, not an acronym or a skill in capitals
    ("BSN", "SQL SERVER"), and not an employer in capitals inside an experience section
    ("ACME CORPORATION" over "Engineer, 2019 - 2021"). "Responsibilities:" labels a job's
    duties, so a colon alone is not enough.
    """
    if look in (_Layout.ALONE, _Layout.COLON):
        return False
    if not marks:
        before = sum(1 for _, _, line in lines[:index] if line.strip())
        if before == 0 or _looks_like_name(heading):
            return False  # "# Jane Doe" is the resume's title
    if look is _Layout.CAPS:
        if not any(_is_all_caps(mark[1]) for mark in marks):
            return False
        if not re.search(r"[^\W\d_]{4}", heading) or _names_skills(heading):
            return False
    return not (current in _ENTRY_SECTIONS and _dated_soon(lines, index))


class _Layout(enum.Enum):
    """How a line looks like a heading, strongest first."""

    MARKED = "marked"  # "# Heading" or underlined
    COLON = "colon"  # "Heading:" (also how a job's "Responsibilities:" are labelled)
    CAPS = "caps"  # ALL CAPS: also how names and job titles open a resume
    ALONE = "alone"  # a short capitalised line on its own with content after it


def _layout_heading(
    line: str, next_line: str | None, previous_blank: bool
) -> tuple[str, _Layout] | None:
    """A line that looks like a heading by its layout, as its text and how it looks."""
    stripped = line.strip()
    markdown = stripped.startswith("#")
    text = stripped.strip("#*_ \t").strip()
    colon = text.endswith((":", "\uff1a"))
    text = text.rstrip(":\uff1a").strip("*_ ")
    words = text.split()
    if not words or len(words) > 6 or len(text) > 50 or _NOT_A_HEADING_RE.search(text):
        return None
    if _BULLET_RE.match(stripped) or text[-1] in ".!?;":
        return None
    if not text[0].isupper() and not (markdown and text[0].isalpha()):
        return None
    underlined = next_line is not None and bool(_UNDERLINE_RE.match(next_line))
    if markdown or underlined:
        return text, _Layout.MARKED
    if colon:
        return text, _Layout.COLON
    if _is_all_caps(text):
        return text, _Layout.CAPS
    followed = next_line is not None and bool(next_line.strip())
    return (text, _Layout.ALONE) if previous_blank and followed else None


def _dated_soon(lines: Sequence[tuple[int, int, str]], index: int) -> bool:
    """Whether a date comes within the next three lines: a line before it in an experience
    section is an employer or job title, not a heading."""
    following = [line for _, _, line in lines[index + 1 :] if line.strip()][:3]
    return any(re.search(rf"(?<!\d){_YEAR}(?!\d)", line) for line in following)


@dataclass(frozen=True, slots=True)
class Section:
    """A span of the resume under one heading. ``start:end`` is the content, heading excluded."""

    name: str
    heading: str | None
    start: int
    end: int
    text: str

    @property
    def is_empty(self) -> bool:
        return not self.text.strip()


def _iter_lines(text: str) -> Iterable[tuple[int, int, str]]:
    offset = 0
    for line in text.split("\n"):
        yield offset, offset + len(line), line
        offset += len(line) + 1


_IDENTITY_MAX_WORDS = 8


def _identity_end(text: str, stop: int) -> int:
    """Where the identity block (name, title, contact lines) at the top of a resume ends:
    at the first line after the first that names a year or reads as a sentence of
    substance (eight words or more), whichever comes first; ``stop`` at the latest."""
    seen = 0
    for start, _end, line in _iter_lines(text[:stop]):
        stripped = line.strip()
        if not stripped:
            continue
        seen += 1
        if seen == 1:
            continue
        words = re.findall(r"[^\W\d_][\w'\u2019.-]*", stripped)
        if re.search(rf"(?<!\d){_YEAR}(?!\d)", stripped) or len(words) >= _IDENTITY_MAX_WORDS:
            return start
    return stop


def find_sections(text: str) -> list[Section]:
    """Split ``text`` at its headings (multi-lingual, case-insensitive).

    A heading is a short line that is exactly a known section title once decoration (``#``,
    ``**``, a trailing colon, ``&``/``and``) is stripped, or such a title followed by a colon
    and content ("Skills: Python, SQL"). Other headings are found by layout: a short line
    (at most six words, no sentence punctuation) written with ``#``, underlined, in ALL CAPS
    or ending with a colon, or a capitalised line standing alone with content after it. Its
    words name it ("Where I've worked" → experience, "Kenntnisse" → skills, "Formation" →
    education); a strongly marked heading whose words name nothing becomes ``other``, so
    what follows it is not read as part of the section before. Inside a skills section,
    "Languages: Go, Java" and "Tools: Jira" are sub-labels, not new sections. Text before
    the first heading becomes ``header``; with no headings at all everything is one ``body``
    section.
    """
    marks: list[tuple[str, str, int, int]] = []  # name, heading, heading_start, content_start
    current: str | None = None
    lines = list(_iter_lines(text))
    previous_blank = True
    skip_underline = False
    for index, (start, end, line) in enumerate(lines):
        stripped = line.strip()
        if skip_underline:
            skip_underline = False
            continue
        if not stripped or len(stripped) > 60:
            previous_blank = not stripped
            continue
        next_line = lines[index + 1][2] if index + 1 < len(lines) else None
        underlined = next_line is not None and bool(_UNDERLINE_RE.match(next_line))
        content_start = min((lines[index + 1][1] if underlined else end) + 1, len(text))
        name = _HEADING_INDEX.get(_heading_key(stripped))
        heading = stripped
        if name is None and (layout := _layout_heading(line, next_line, previous_blank)):
            heading, look = layout
            name = _section_by_cue(heading)
            if name is None and _may_open_other(heading, look, current, marks, lines, index):
                name = "other"
        previous_blank = False
        if name is not None:
            marks.append((name, heading, start, content_start))
            current = name
            skip_underline = underlined
            continue
        inline = _INLINE_HEADING_RE.match(line)
        if inline:
            name = _HEADING_INDEX.get(_heading_key(inline.group(1)))
            if name is not None and not (current in _SUBLABEL_SECTIONS and name in _SUBLABEL_NAMES):
                marks.append((name, inline.group(1).strip(), start, start + inline.start(2)))
                current = name
    if not marks:
        return [Section("body", None, 0, len(text), text)]
    sections: list[Section] = []
    first_heading = marks[0][2]
    if text[:first_heading].strip():
        identity_end = _identity_end(text, first_heading)
        sections.append(Section("header", None, 0, identity_end, text[:identity_end]))
        if text[identity_end:first_heading].strip():
            # A resume without headings at its top: what follows the name and contact
            # lines is its substance (dated roles, a summary), not a header.
            sections.append(
                Section("body", None, identity_end, first_heading, text[identity_end:first_heading])
            )
    for index, (name, heading, _heading_start, content_start) in enumerate(marks):
        content_end = marks[index + 1][2] if index + 1 < len(marks) else len(text)
        content_end = max(content_end, content_start)
        sections.append(
            Section(name, heading, content_start, content_end, text[content_start:content_end])
        )
    return sections


# --- employment periods -------------------------------------------------------------------------

_MONTHS: dict[str, int] = {}
for _number, _names in enumerate(
    (
        "january jan januar janv janvier enero ene januari gennaio gen janeiro",
        "february feb februar févr fevr février fevrier febrero februari febbraio fevereiro fev",
        "march mar märz mär mrz mars marzo maart março",
        "april apr avril avr abril abr aprile",
        "may mai mayo mei maggio mag maio",
        "june jun juni juin junio giugno giu junho",
        "july jul juli juil juillet julio luglio lug julho",
        "august aug augusti août aout agosto ago augustus",
        "september sep sept septembre septiembre setiembre settembre set setembro",
        "october oct okt oktober octobre octubre ottobre ott outubro out",
        "november nov novembre noviembre novembro",
        "december dec dez dezember déc dec décembre decembre diciembre dic dicembre dezembro",
    ),
    start=1,
):
    for _name in _names.split():
        _MONTHS.setdefault(_name, _number)

_MONTH_RE = "|".join(sorted((re.escape(name) for name in _MONTHS), key=len, reverse=True))
# A season stands for its middle month ("since spring 2021" starts in April 2021); winter for
# January, the winter that a year's number names in most writing ("Winter 2020" = early 2020).
# A season is never exact: its period is marked imprecise, as a year alone is.
_SEASONS: dict[str, int] = {}
for _number, _names in (
    (4, "spring frühjahr frühling printemps primavera voorjaar lente"),
    (7, "summer sommer été ete verano zomer estate verão verao"),
    (10, "autumn fall herbst automne otoño otono najaar herfst autunno outono"),
    (1, "winter hiver invierno inverno"),
):
    for _name in _names.split():
        _SEASONS[_name] = _number
_SEASON_RE = "|".join(sorted((re.escape(name) for name in _SEASONS), key=len, reverse=True))
_YEAR = r"(?:19[5-9]\d|20\d\d)"
_DATE = (
    rf"(?:(?:{_MONTH_RE})\.?,?\s+{_YEAR}"  # Jan 2019, Sept. 2019, January, 2019
    rf"|(?:l['\u2019]\s*)?\b(?:{_SEASON_RE})(?:\s+of)?,?\s+{_YEAR}"  # spring 2021, l'été 2013
    rf"|(?<![\d/.])(?:0?[1-9]|1[0-2])\s*[/.\-]\s*{_YEAR}"  # 03/2017, 3.2017
    rf"|(?<![\d/.]){_YEAR}\s*[/\-]\s*(?:0?[1-9]|1[0-2])(?![\d/])"  # 2017-03
    rf"|(?<![\d/.]){_YEAR})(?![\d])"  # 2017
)
_PRESENT = (
    r"present|current|currently|now|today|ongoing|to date|date|heute|aktuell|jetzt|laufend|"
    r"aujourd['\u2019]hui|présent|actuel|actuellement|en cours|actualidad|presente|actual|hoy|"
    r"heden|nu|huidig|oggi|attuale|atual|momento"
)
# A range's two ends: a dash, an arrow ("2019 → 2022"), a word, or the cell border of a table
# whose first two columns are From and To ("Sep 2016 | Dec 2021 | Vehicle Technician").
_RANGE_SEP = (
    r"\s*(?:-{1,2}|\u2013|\u2014|~|\u2192|\u27f6|-{1,2}>|\||to|until|till|through|thru|bis|au|à|"
    r"a|hasta|al|tot|t/m|até)\s*"
)
_RANGE_RE = re.compile(
    rf"(?P<start>{_DATE}){_RANGE_SEP}(?:(?P<end>{_DATE})|(?P<present>{_PRESENT})\b)"
    rf"|\b(?:since|seit|depuis|desde|sinds|dal|dall['\u2019]|from)\s+(?P<since>{_DATE})"
    rf"(?!{_RANGE_SEP}(?:{_DATE}|{_PRESENT}))",
    re.IGNORECASE,
)
_MONTH_NAME_RE = re.compile(rf"({_MONTH_RE})\.?,?\s+({_YEAR})", re.IGNORECASE)
_MONTH_NUMBER_RE = re.compile(rf"(\d{{1,2}})\s*[/.\-]\s*({_YEAR})")
_YEAR_MONTH_RE = re.compile(rf"({_YEAR})\s*[/\-]\s*(\d{{1,2}})")
_SEASON_NAME_RE = re.compile(
    rf"(?:l['\u2019]\s*)?({_SEASON_RE})(?:\s+of)?,?\s+({_YEAR})", re.IGNORECASE
)


@dataclass(frozen=True, slots=True)
class EmploymentPeriod:
    """One date range as written ("Jan 2019 - Present"), resolved to whole months.

    ``start_month``/``end_month`` are month indexes (``year * 12 + month - 1``), end exclusive.
    Year-only dates are read as mid-year, the expected value when the month is unknown:
    "2015 - 2018" counts 36 months; a single year ("2018 - 2018") counts 6.
    """

    raw: str
    start: int
    end: int
    start_month: int
    end_month: int
    is_current: bool
    precise: bool
    section: str
    line: str

    @property
    def months(self) -> int:
        return self.end_month - self.start_month

    @property
    def start_date(self) -> date:
        return date(self.start_month // 12, self.start_month % 12 + 1, 1)

    @property
    def end_date(self) -> date | None:
        """First day of the month after the period; None while current."""
        if self.is_current:
            return None
        return date(self.end_month // 12, self.end_month % 12 + 1, 1)


@dataclass(frozen=True, slots=True)
class _Date:
    """One end of a range as written: a year, its month when known, whether the month is exact."""

    year: int
    month: int | None = None
    exact: bool = False


def _parse_date(token: str) -> _Date | None:
    token = token.strip()
    if match := _MONTH_NAME_RE.fullmatch(token):
        return _Date(int(match.group(2)), _MONTHS[match.group(1).casefold()], exact=True)
    if match := _SEASON_NAME_RE.fullmatch(token):
        return _Date(int(match.group(2)), _SEASONS[match.group(1).casefold()])
    if match := _MONTH_NUMBER_RE.fullmatch(token):
        month = int(match.group(1))
        return _Date(int(match.group(2)), month, exact=True) if 1 <= month <= 12 else None
    if match := _YEAR_MONTH_RE.fullmatch(token):
        month = int(match.group(2))
        return _Date(int(match.group(1)), month, exact=True) if 1 <= month <= 12 else None
    if re.fullmatch(_YEAR, token):
        return _Date(int(token))
    return None


def _month_span(start: _Date, end: _Date | None, today: date) -> tuple[int, int, bool] | None:
    start_year, start_month = start.year, start.month
    if end is None:
        end_exclusive = today.year * 12 + today.month  # the current month counts
        precise = start.exact
    else:
        end_year, end_month = end.year, end.month
        if start_month is None and end_month is None and start_year == end_year:
            return start_year * 12 + 3, start_year * 12 + 9, False
        end_exclusive = end_year * 12 + (end_month if end_month is not None else 6)
        precise = start.exact and end.exact
    begin = start_year * 12 + (start_month - 1 if start_month is not None else 6)
    if end_exclusive <= begin or end_exclusive - begin > 50 * 12:
        return None
    if begin > today.year * 12 + today.month:
        return None
    return begin, end_exclusive, precise


def _line_around(text: str, start: int, end: int) -> str:
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", end)
    return text[line_start : line_end if line_end >= 0 else len(text)].strip()


def find_employment_periods(
    text: str, *, today: date | None = None, sections: Sequence[Section] | None = None
) -> list[EmploymentPeriod]:
    """Every date range in ``text``, resolved to months and tagged with its section."""
    today = today or date.today()  # a calendar date, not an instant
    sections = sections if sections is not None else find_sections(text)
    periods: list[EmploymentPeriod] = []
    for match in _RANGE_RE.finditer(text):
        if match.group("since"):
            start, end, current = _parse_date(match.group("since")), None, True
        else:
            start = _parse_date(match.group("start"))
            current = match.group("present") is not None
            end = None if current else _parse_date(match.group("end"))
            if not current and end is None:
                continue
        if start is None:
            continue
        span = _month_span(start, end, today)
        if span is None:
            continue
        section = next(
            (s.name for s in sections if s.start <= match.start() < max(s.end, s.start + 1)),
            "header",
        )
        periods.append(
            EmploymentPeriod(
                raw=match.group(0),
                start=match.start(),
                end=match.end(),
                start_month=span[0],
                end_month=span[1],
                is_current=current,
                precise=span[2],
                section=section,
                line=_line_around(text, match.start(), match.end()),
            )
        )
    return periods


def merge_months(periods: Iterable[EmploymentPeriod]) -> int:
    """Months covered by the union of ``periods``: overlapping roles count once."""
    spans = sorted((p.start_month, p.end_month) for p in periods)
    total = 0
    current_start, current_end = None, None
    for start, end in spans:
        if current_end is None or start > current_end:
            if current_start is not None and current_end is not None:
                total += current_end - current_start
            current_start, current_end = start, end
        else:
            current_end = max(current_end, end)
    if current_start is not None and current_end is not None:
        total += current_end - current_start
    return total


# Sections whose dates are not employment (graduation years, certificate dates...).
_NON_EMPLOYMENT_SECTIONS = frozenset(
    {"education", "certifications", "awards", "publications", "languages", "skills", "projects"}
)


def _work_periods(
    periods: Sequence[EmploymentPeriod], sections: Sequence[Section]
) -> list[EmploymentPeriod]:
    if any(section.name == "experience" for section in sections):
        return [p for p in periods if p.section == "experience"]
    return [p for p in periods if p.section not in _NON_EMPLOYMENT_SECTIONS]


# --- education ----------------------------------------------------------------------------------

_DEGREE_PATTERNS: tuple[tuple[str, str], ...] = (
    ("doctorate", r"ph\.?\s?d\.?|d\.?phil\.?|doctor of [a-z]+|doctorate|doktor|promotion|doctorat"),
    (
        "master",
        r"m\.?\s?sc\.?|m\.?s\.?(?=\s)|m\.?a\.?(?=\s)|mba|m\.?eng\.?|m\.?p\.?h\.?|msn|mfa|ll\.?m\.?"
        r"|master(?:['\u2019]?s)?(?: of| in| degree)?|máster|maestría|mestrado|laurea magistrale",
    ),
    (
        "bachelor",
        r"b\.?\s?sc\.?|b\.?s\.?(?=\s)|b\.?a\.?(?=\s)|bba|b\.?eng\.?|bfa|bsn|ll\.?b\.?"
        r"|bachelor(?:['\u2019]?s)?(?: of| in| degree)?|licence|licenciatura|grado en|laurea"
        r"|bacharelado",
    ),
    ("associate", r"associate(?:['\u2019]?s)?(?: degree| of)|a\.a\.s?\.?|adn"),
    (
        "diploma",
        r"diploma|diplôme|diplom(?:-[a-z]+)?|certificate|bootcamp|staatsexamen|ausbildung zum"
        r"|ausbildung zur|high school|ged|abitur|baccalauréat|bachillerato",
    ),
)
_DEGREE_RE = re.compile(
    "|".join(
        rf"(?P<{level}>(?<![\w.])(?:{pattern})(?![\w]))" for level, pattern in _DEGREE_PATTERNS
    ),
    re.IGNORECASE,
)
_INSTITUTION_RE = re.compile(
    r"universit|college|institut|school|academy|académie|academia|polytechn|hochschule|"
    r"fachhochschule|école|escuela|scuola|politecnico|ifsi|faculdade|facultad|gymnasium|lycée",
    re.IGNORECASE,
)
_SEGMENT_SPLIT_RE = re.compile(r"\s*(?:,|\||·|•|\s[-\u2013\u2014]\s|\t|\(|\))\s*")


@dataclass(frozen=True, slots=True)
class EducationEntry:
    """One degree: the degree as written, its level, institution and (graduation) year."""

    degree: str | None
    level: str | None
    institution: str | None
    year: int | None
    raw: str
    start: int
    end: int


def _education_entry(raw: str, start: int, end: int, max_year: int) -> EducationEntry:
    segments = [s for s in _SEGMENT_SPLIT_RE.split(raw.strip().lstrip("#*-• ")) if s.strip()]
    degree = level = institution = None
    degree_match = _DEGREE_RE.search(raw)
    if degree_match:
        level = degree_match.lastgroup
        degree = next((s for s in segments if _DEGREE_RE.search(s)), degree_match.group(0))
    institution = next((s for s in segments if _INSTITUTION_RE.search(s) and s != degree), None)
    if institution is None:
        institution = next(
            (
                s
                for s in segments
                if s != degree and re.search(r"[^\W\d]{3}", s) and not re.search(_YEAR, s)
            ),
            None,
        )
    years = [int(y) for y in re.findall(rf"(?<!\d){_YEAR}(?!\d)", raw) if int(y) <= max_year]
    return EducationEntry(
        degree=degree.strip() if degree else None,
        level=level,
        institution=institution.strip() if institution else None,
        year=max(years) if years else None,
        raw=raw.strip(),
        start=start,
        end=end,
    )


def find_education(
    text: str, sections: Sequence[Section], *, today: date | None = None
) -> list[EducationEntry]:
    """Degrees in the education sections: a line naming a degree starts an entry, and the
    lines after it (institution, years) belong to it until a blank line or the next degree."""
    today = today or date.today()  # a calendar date, not an instant
    max_year = today.year + 6  # "expected 2028"
    entries: list[EducationEntry] = []
    for section in sections:
        if section.name not in {"education", "body"}:
            continue
        groups: list[list[tuple[int, int]]] = [[]]
        group_has_degree = False
        for start, end, line in _iter_lines(section.text):
            if not line.strip():
                groups.append([])
                group_has_degree = False
                continue
            is_degree = bool(_DEGREE_RE.search(line))
            if section.name == "body":
                # No headings: only a line that names a degree and a school or year counts.
                if is_degree and (_INSTITUTION_RE.search(line) or re.search(_YEAR, line)):
                    groups.append([(start, end)])
                    groups.append([])
                continue
            if is_degree and group_has_degree:
                groups.append([])
            group_has_degree = group_has_degree or is_degree
            groups[-1].append((start, end))
        for group in groups:
            if not group:
                continue
            start, end = section.start + group[0][0], section.start + group[-1][1]
            if _DEGREE_RE.search(text[start:end]):
                entries.append(_education_entry(text[start:end], start, end, max_year))
    return entries


# --- contact ------------------------------------------------------------------------------------

_EMAIL_RE = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_PHONE_RE = re.compile(r"(?<![\w+])\+?\(?\d[\d \t().\-/]{6,}\d(?!\w)")
_LINK_RE = re.compile(
    r"(?:https?://)?(?:www\.)?(?:linkedin\.com|github\.com|gitlab\.com|behance\.net|"
    r"dribbble\.com)/[\w\-./%]+",
    re.IGNORECASE,
)
_NAME_TOKEN_RE = re.compile(r"[A-ZÀ-ÖØ-Þ][\w'\u2019.\-]*|[a-zà-ÿ]{1,3}", re.UNICODE)
_NOT_A_NAME = re.compile(r"resume|résumé|curriculum|vitae|lebenslauf|\bcv\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class ContactInfo:
    """Who the candidate is, for the profile. Any field may be None."""

    name: str | None = None
    email: str | None = None
    phone: str | None = None
    links: tuple[str, ...] = ()


def _looks_like_name(candidate: str) -> bool:
    tokens = candidate.split()
    if not 2 <= len(tokens) <= 5 or len(candidate) > 60:
        return False
    if any(ch.isdigit() for ch in candidate) or "@" in candidate or _NOT_A_NAME.search(candidate):
        return False
    if _heading_key(candidate) in _HEADING_INDEX:
        return False
    capitalised = sum(1 for token in tokens if token[0].isupper())
    return capitalised >= 2 and all(_NAME_TOKEN_RE.fullmatch(token) for token in tokens)


def _find_phone(text: str) -> str | None:
    for match in _PHONE_RE.finditer(text):
        candidate = match.group(0).strip()
        digits = re.sub(r"\D", "", candidate)
        if not 7 <= len(digits) <= 15:
            continue
        if re.fullmatch(rf"{_YEAR}\s*[-\u2013/]\s*{_YEAR}", candidate) or re.search(
            r"\d/\d", candidate
        ):
            continue  # a date range, not a phone number
        return candidate
    return None


def find_contact(text: str, sections: Sequence[Section] | None = None) -> ContactInfo:
    """Name, email, phone and profile links, looked for in the header first."""
    sections = sections if sections is not None else find_sections(text)
    head = next((s.text for s in sections if s.name in {"header", "body"}), text[:500])
    contact_sections = " \n".join(s.text for s in sections if s.name == "contact")
    search_space = head + "\n" + contact_sections + "\n" + text
    email = _EMAIL_RE.search(search_space)
    name = None
    for line in (head or text).split("\n")[:8]:
        candidate = line.strip().lstrip("#").strip()
        candidate = re.sub(r"^(?:name|nom|nombre)\s*:\s*", "", candidate, flags=re.IGNORECASE)
        candidate = re.split(r"\s*[,|·]\s*", candidate)[0]
        if _looks_like_name(candidate):
            name = candidate
            break
    links = tuple(dict.fromkeys(match.group(0) for match in _LINK_RE.finditer(text)))
    return ContactInfo(
        name=name,
        email=email.group(0) if email else None,
        phone=_find_phone(head + "\n" + contact_sections) or _find_phone(text),
        links=links,
    )


# --- the whole resume ---------------------------------------------------------------------------

_EVIDENCE_SECTIONS = frozenset({"experience", "projects", "summary", "volunteering", "body"})


@dataclass(frozen=True, slots=True)
class ParsedResume:
    """Everything the rules found in one resume text; JSON-ready through :meth:`to_dict`."""

    text: str
    language: str | None
    sections: tuple[Section, ...]
    contact: ContactInfo
    skills: tuple[SkillMatch, ...]
    employment_periods: tuple[EmploymentPeriod, ...]
    experience_months: int
    education: tuple[EducationEntry, ...]
    skill_sections: tuple[str, ...] = field(default=())
    """The section name of each entry in ``skills`` (same order)."""

    @property
    def years_of_experience(self) -> float:
        return round(self.experience_months / 12, 1)

    @property
    def skill_names(self) -> list[str]:
        """Distinct canonical skills in order of first mention."""
        return list(dict.fromkeys(match.name for match in self.skills))

    @property
    def evidenced_skills(self) -> list[str]:
        """Skills mentioned where work is described (experience, projects, summary), not only
        listed: a long skills list with no evidence is how keyword stuffing looks."""
        return list(
            dict.fromkeys(
                match.name
                for match, section in zip(self.skills, self.skill_sections, strict=True)
                if section in _EVIDENCE_SECTIONS
            )
        )

    def section(self, name: str) -> list[Section]:
        return [section for section in self.sections if section.name == name]

    @property
    def section_names(self) -> list[str]:
        return [section.name for section in self.sections]

    def to_dict(self) -> dict[str, Any]:
        """JSON types only (dates as ISO strings), for a DB JSON column or a message."""
        return {
            "language": self.language,
            "contact": {
                "name": self.contact.name,
                "email": self.contact.email,
                "phone": self.contact.phone,
                "links": list(self.contact.links),
            },
            "sections": [
                {"name": s.name, "heading": s.heading, "start": s.start, "end": s.end}
                for s in self.sections
            ],
            "skills": self.skill_names,
            "evidenced_skills": self.evidenced_skills,
            "skill_mentions": [
                {"name": m.name, "surface": m.surface, "start": m.start, "end": m.end}
                for m in self.skills
            ],
            "employment_periods": [
                {
                    "raw": p.raw,
                    "start": p.start_date.isoformat(),
                    "end": p.end_date.isoformat() if p.end_date else None,
                    "is_current": p.is_current,
                    "months": p.months,
                    "section": p.section,
                    "line": p.line,
                }
                for p in self.employment_periods
            ],
            "experience_months": self.experience_months,
            "years_of_experience": self.years_of_experience,
            "education": [
                {
                    "degree": e.degree,
                    "level": e.level,
                    "institution": e.institution,
                    "year": e.year,
                }
                for e in self.education
            ],
        }


def parse_resume(
    text: str,
    *,
    language: str | None = None,
    taxonomy: SkillTaxonomy | None = None,
    today: date | None = None,
) -> ParsedResume:
    """Parse one resume text (normally :attr:`ExtractedText.text`).

    ``today`` resolves "Present"; pass it in tests and when re-parsing old uploads.
    """
    today = today or date.today()  # a calendar date, not an instant
    taxonomy = taxonomy or get_taxonomy()
    sections = find_sections(text)
    periods = find_employment_periods(text, today=today, sections=sections)
    skills = taxonomy.find(text)
    skill_sections = tuple(
        next((s.name for s in sections if s.start <= m.start < s.end), "header") for m in skills
    )
    return ParsedResume(
        text=text,
        language=language,
        sections=tuple(sections),
        contact=find_contact(text, sections),
        skills=tuple(skills),
        employment_periods=tuple(periods),
        experience_months=merge_months(_work_periods(periods, sections)),
        education=tuple(find_education(text, sections, today=today)),
        skill_sections=skill_sections,
    )
