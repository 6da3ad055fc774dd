"""Job postings: reading a posting written in Markdown, and embedding a job for matching.

Why requirements are typed here: the evaluator scores each requirement by its kind (a skill
must be evidenced in the work history, an experience requirement also needs the years, an
education requirement looks at education), so a posting's bullet list is turned into
``job_requirements`` rows with a kind, a must-have flag and minimum years.
"""

from __future__ import annotations

import enum
import itertools
import re
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from are_workers.errors import NotFoundError
from are_workers.models.embeddings import EmbeddingEntity
from are_workers.models.jobs import JobPosting, JobRequirement, JobStatus, RequirementKind
from are_workers.models.subscription import UsageKind, UsageUnit
from are_workers.services.embeddings import EmbeddingContext, upsert_chunk_embeddings
from are_workers.services.model_registry import record_usage
from are_workers.services.skills import SkillTaxonomy, get_taxonomy

_NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "ein": 1, "einem": 1, "zwei": 2, "drei": 3, "vier": 4, "fünf": 5,
    "un": 1, "deux": 2, "trois": 3, "quatre": 4, "cinq": 5,
}  # fmt: skip
_YEARS = re.compile(
    rf"\b(\d{{1,2}}|{'|'.join(_NUMBER_WORDS)})"
    r"(?:\s*(?:-|\u2013|to|bis|à)\s*\d{1,2})?\s*\+?\s*"
    r"(?:years?|yrs?|jahre?n?|ans?|années?)(?![\w-])",
    re.IGNORECASE,
)
_EDUCATION = re.compile(
    r"\b(degree|bachelor|master|bsc|msc|ba|ph\.?d|diploma|adn|bsn|studium|hochschulabschluss"
    r"|ausbildung|berufsausbildung|nvq|diplôme|bac\s*\+\s*\d)\b",
    re.IGNORECASE,
)
_CERTIFICATION = re.compile(
    r"\b(licen[cs]e|certif\w*|registered|registration|zulassung|approbation|permis)\b", re.I
)
_FLUENCY = r"\b(?:fluent|native|proficien\w+|fließend|verhandlungssicher|courant|bilingue)\b"
_LANGUAGES = (
    r"\b(?:english|german|french|spanish|englisch|deutsch|französisch|anglais|allemand|français"
    r"|espagnol)\b"
)
_LANGUAGE = re.compile(rf"{_FLUENCY}.*{_LANGUAGES}|{_LANGUAGES}.*{_FLUENCY}", re.IGNORECASE)


@dataclass(frozen=True)
class RequirementSpec:
    text: str
    kind: RequirementKind
    must_have: bool
    min_years: float | None = None


@dataclass(frozen=True)
class JobSpec:
    title: str
    description: str
    requirements: list[RequirementSpec] = field(default_factory=list)

    @property
    def has_requirements(self) -> bool:
        """False when nothing in the posting read as a requirement: matching against such a
        job would only compare titles, so the caller records an error instead."""
        return bool(self.requirements)


def classify_requirement(text: str, taxonomy: SkillTaxonomy | None = None) -> RequirementKind:
    """A requirement's kind from its wording (years → experience, degree → education …)."""
    taxonomy = taxonomy or get_taxonomy()
    if _YEARS.search(text):
        return RequirementKind.EXPERIENCE
    if _EDUCATION.search(text):
        return RequirementKind.EDUCATION
    if _LANGUAGE.search(text):
        return RequirementKind.LANGUAGE
    if _CERTIFICATION.search(text):
        return RequirementKind.CERTIFICATION
    if taxonomy.find(text):
        return RequirementKind.SKILL
    return RequirementKind.OTHER


def min_years(text: str) -> float | None:
    """The lower bound of the years asked for ("3-5 years" → 3, "two years" → 2)."""
    match = _YEARS.search(text)
    if match is None:
        return None
    number = match.group(1).casefold()
    return float(_NUMBER_WORDS[number] if number in _NUMBER_WORDS else int(number))


# --- reading a posting --------------------------------------------------------------------------


class _Role(enum.Enum):
    """What a posting section is about, from its heading."""

    MUST = "must"  # requirements: items are must-haves unless they say otherwise
    NICE = "nice"  # nice-to-haves: items are not must-haves unless they say "must"
    NEUTRAL = "neutral"  # unknown heading (or none): the content decides
    EXCLUDED = "excluded"  # duties, benefits, about us: never requirements


_HEADING_EXCLUDED = re.compile(
    r"\babout\s+(?:us|the\s+(?:company|team|employer|organi[sz]ation|client|hospital|trust))\b"
    r"|\bwho\s+we\s+are\b|\bour\s+(?:company|story|mission|values|culture|team|offer)\b"
    r"|\bcompany\b|\bbenefits?\b|\bperks?\b|\bwhat\s+we\s+offer|\bwe\s+offer\b|\bin\s+return\b"
    r"|what'?s\s+in\s+it\s+for\s+you|\bsalary\b|\bcompensation\b|\bpay\b|\brewards?\b"
    r"|\bresponsibilit|\bduties\b|\btasks?\b|\baccountabilit|\bday[\s-]to[\s-]day\b|\btypical\s+day"
    r"|\bwhat\s+you(?:'ll|\s+will)\s+(?:do|be\s+doing|work\s+on|achieve)\b"
    r"|\byou(?:'ll|\s+will)\b(?!\s+(?:need|have|bring|ideally|also\s+(?:need|have)))"
    r"|\bhow\s+to\s+apply|\bapplication\s+process|\bhiring\s+process|\binterview"
    r"|\bequal\s+opportunit|\bdiversity\b|\bwhy\s+(?:join|us|work)\b|\blife\s+at\b"
    r"|aufgaben|\bwir\s+bieten|\bbieten\s+wir|\bunser\s+angebot|\bvorteile\b|über\s+uns"
    r"|was\s+(?:dich|sie)\s+erwartet|\bmissions?\b|\bnous\s+offrons|\bnous\s+proposons"
    r"|ce\s+que\s+nous\s+(?:offrons|proposons)|\bavantages\b|qui\s+sommes[\s-]nous"
    r"|à\s+propos\s+de\s+nous|\bvos\s+responsabilités|rémunération",
    re.IGNORECASE,
)
_HEADING_NICE = re.compile(
    r"nice[\s-]to[\s-]haves?|good[\s-]to[\s-]haves?|\bbonus|\bpreferred|\bpreferable|\bdesirable|\bdesired\b"
    r"|would\s+be\s+(?:great|nice|good)|\bplus\b|\bpluspunkte?\b|\bideally|\bextra\s+(?:credit|points)"
    r"|\beven\s+better|we'?d\s+love|would\s+love|stand\s+out|\boptional|\badvantag|\bassets?\b"
    r"|wünschenswert|von\s+vorteil|idealerweise|\bun\s+plus\b|\batouts?\b|souhaité|apprécié"
    r"|idéalement",
    re.IGNORECASE,
)
_HEADING_MUST = re.compile(
    r"\bmust|\bessential|\brequired|\bmandatory|\bminimum|\bbasic\s+qualif|erforderlich"
    r"|\bzwingend|\bmuss\b|\bmüssen\b|\brequis|indispensable|obligatoire|exigé",
    re.IGNORECASE,
)
_HEADING_REQUIREMENTS = re.compile(
    r"requirement|qualifi|\bwhat\s+you\s+bring|\byou\s+bring|\bbring\s+with"
    r"|\bwhat\s+you(?:'ll|\s+will)?\s+need|\byou(?:'ll|\s+will)\s+(?:need|have|bring)"
    r"|looking\s+for|about\s+you|your\s+profile|\bprofile\b|who\s+you\s+are|\byou\s+are\b"
    r"|\bthe\s+(?:ideal\s+)?person\b|\bthe\s+successful\s+(?:candidate|applicant)"
    r"|\bexpect\s+(?:you|from\s+you)|\bis\s+this\s+you|\bwhat\s+we\s+need|\bneed\s+from\s+you"
    r"|person\s+specification|could\s+this\s+be\s+you|sounds?\s+like\s+you"
    r"|\byou\s+have\b|ideal\s+candidate|\bthe\s+candidate|\bskills?\b|\bexperience|\bexpertise"
    r"|competenc|knowledge|criteria|person\s+spec|what\s+it\s+takes|\bbackground\b|\bprofil\b"
    r"|mitbring|bringst|anforderung|voraussetzung|qualifikation|kenntnisse|kompetenz|erfahrung"
    r"|compétences|exigences|pr[ée][\s-]?requis|vous\s+apportez|vous\s+avez|vous\s+êtes"
    r"|expérience|savoir[\s-]être|savoir[\s-]faire|\bqualités\b",
    re.IGNORECASE,
)

# Phrases that make a line read like something a candidate must have or be.
_CONTENT_CUES = re.compile(
    r"\d+\s*\+?\s*(?:years?|yrs?|jahre?n?|ans|années?)(?![\w-])"
    r"|\b(?:one|two|three|four|five|six|seven|eight|nine|ten)\s*\+?\s*years?"
    r"|\bexperience\s+(?:with|in|of|using|as|on|working|leading|managing|delivering|across)\b"
    r"|\bexperienced\b|\bproven\b|track\s+record|hands[\s-]on|background\s+in|exposure\s+to"
    r"|\bdegree\b|\bbachelor|\bmaster'?s?\b|\bdiploma|\bph\.?d\b|\bb\.?sc\b|\bm\.?sc\b"
    r"|\bqualified\b|\bqualification|licen[cs]e|registration|\bregistered\b|certifi|accredit"
    r"|\bclearance\b|abilit(?:y|ies)\s+to|\bable\s+to\b|\bcapable\s+of|willing(?:ness)?\s+to"
    r"|\byou\s+(?:must\s+|should\s+|will\s+|also\s+)?(?:have|hold|are|bring|can|know)\b"
    r"|\byou\s+(?:must|should)\s+be\b|\b(?:confident|comfortable)\s+(?:in|with|using|\w+ing)\b"
    r"|\bright\s+to\s+work\b|\b(?:language|communication|people|technical)\s+skills\b"
    r"|\b(?:previous|prior|relevant|some|solid|extensive|demonstrable|recent|practical|"
    r"customer\s+service|sales|retail|industry|clinical|management)\s+experience\b"
    r"|\bat\s+least\s+(?:a|an|one|two|three|four|five|\d+)\s+(?:years?|months?)\b"
    r"|\bavailab(?:le|ility)\s+(?:to|for)\b|\b(?:gcses?|a[\s-]levels?|nvq|hnd|hnc|btec)\b"
    r"|\bwe(?:'re|\s+are)\s+looking\s+for\b|\bsomeone\s+who\b"
    r"|\byou\s+(?:already\s+|regularly\s+)?(?:write|speak|use|build|run|lead|manage|own)\b"
    r"|\bexperience\s+\w+ing\b|\bwe\s+(?:need|require|expect|are\s+looking\s+for)\b"
    r"|\byou(?:'ll|\s+will)\s+need\b"
    r"|\byou'(?:ve|re)\b|knowledge\s+of|understanding\s+of|familiar(?:ity)?\s+with|proficien"
    r"|\bfluen|\bskilled\b|\bcompetent\b|expertise\s+in|command\s+of|\bstrong\s+\w+\s+skills"
    r"|erfahrung|kenntnisse|abgeschlossen|studium|ausbildung|\bdu\s+(?:hast|bist|bringst)\b"
    r"|\bsie\s+(?:haben|sind|bringen)\b|sicher(?:er|e|en)?\s+umgang|fähigkeit|verhandlungssicher"
    r"|fließend|expérience|connaissance|maîtrise|diplôme|vous\s+(?:avez|êtes|maîtrisez|possédez)"
    r"|capacité|titulaire|bac\s*\+|aisance",
    re.IGNORECASE,
)
_NICE_MARKER = re.compile(
    r"\bideally\b|\bpreferabl[ey]\b|\bpreferred\b|\ba\s+(?:big\s+|real\s+|strong\s+)?plus\b"
    r"|\ba\s+(?:big\s+|real\s+)?bonus\b|\bbonus\s+(?:points?|if)\b|^\s*bonus\b"
    r"|\bthat(?:'s|\s+is)\s+(?:great|a\s+(?:bonus|plus)|ideal)\b"
    r"|(?:nice|good)[\s-]to[\s-]have|\beven\s+better\b|\bdesirable\b|\ban\s+advantage\b|\badvantageous\b"
    r"|would\s+be\s+(?:great|nice|good|a\s+plus|helpful|useful|beneficial|an\s+advantage)"
    r"|not\s+(?:required|essential|mandatory|necessary)|\boptional\b|\bhelpful\b"
    r"|(?:is|are)n't\s+(?:required|essential|mandatory|necessary)|would\s+help\b"
    r"|we'?d\s+(?:like|love)\s+(?:you\s+to\s+have|to\s+see)|\(\s*d(?:esirable)?\s*\)\s*$"
    r"|wünschenswert|von\s+vorteil|idealerweise|wäre\s+(?:schön|toll|super|ein\s+plus)"
    r"|\bun\s+(?:plus|atout)\b|idéalement|de\s+préférence|\bsouhaitée?s?\b|\bappréciée?s?\b",
    re.IGNORECASE,
)
_MUST_MARKER = re.compile(
    r"\bmust\b|\bessential\b|\brequired\b|\bmandatory\b|\bcompulsory\b|\berforderlich\b"
    r"|\bzwingend\b|\bvorausgesetzt\b|\bobligatoire\b|\bindispensable\b|\brequise?s?\b"
    r"|\(\s*e(?:ssential)?\s*\)\s*$"
    r"|\bexigée?s?\b",
    re.IGNORECASE,
)
_BRACKET_MARKER = re.compile(  # used with .match(text, pos): no "^"
    r"\s*\[(must|nice|required|preferred|must[\s-]have|nice[\s-]to[\s-]have)\]\s*", re.I
)
_BULLET = re.compile(r"^(\s*)(?:[-*+\u2022\u2013\u25aa\u25cf]|\d{1,2}[.)])\s+")
_ATX_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_BOLD_HEADING = re.compile(r"^\s*(?:\*\*|__)([^*_\n]{2,80}?)\s*:?\s*(?:\*\*|__)\s*:?\s*$")
_SETEXT_RULE = re.compile(r"^\s*(?:=+|-+)\s*$")
_RULE = re.compile(r"^\s*(?:[-*_]\s*){3,}$")
_SENTENCE_END = re.compile(
    r"[.!?]+[\"'\u201d)\]\u00bb]*\s+(?=[\"'\u201c(\u00ab\u201e]?[^\W\d_a-z]|\d)"
)
#: Words that ask something of the candidate wherever they stand, even in a paragraph about
#: the role ("…, so you'll need experience managing a front office team", "Candidates must
#: be time-served", "We can't consider applicants without the right to work").
_ASK_VERB = r"(?:also\s+)?(?:have|hold|be|possess|bring|know|understand|speak|already|demonstrate)"
_ASK = re.compile(
    r"\byou(?:'ll|\s+will)\s+(?:also\s+)?need\b"
    rf"|\byou\s+(?:must|should)\s+{_ASK_VERB}\b"
    rf"|\b(?:candidates?|applicants?)\s+(?:must|should|will\s+need\s+to)\s+{_ASK_VERB}\b"
    r"|\b(?:candidates?|applicants?)\s+will\s+need\b"
    r"|\bwe\s+(?:also\s+)?need\s+you\s+to\b|\bwe(?:'d|\s+would)\s+(?:also\s+)?expect\s+you\b"
    r"|\byou(?:'ll|\s+will)\s+(?:have|bring)\s+(?:at\s+least|\d|strong|good|excellent|proven"
    r"|previous|solid|extensive|experience|a\s+(?:degree|diploma|qualification|licen[cs]e"
    r"|background|track\s+record))"
    r"|\byou(?:'ll|\s+will)\s+be\s+(?:qualified|registered|fluent|confident|comfortable|able"
    r"|experienced|skilled)\b"
    r"|\b(?:can(?:no|')?t|unable\s+to)\s+consider\s+(?:applicants|candidates|applications)"
    r"\s+without\b|\b(?:is|are)\s+(?:essential|a\s+must|required|needed|important|vital|crucial)\b"
    r"|\bit'?s\s+essential\s+that\b|\bto\s+be\s+considered\b"
    r"|\bdu\s+(?:musst|solltest|brauchst)\b|\bsie\s+(?:müssen|sollten)\b"
    r"|\bvous\s+(?:devez|devrez)\b",
    re.IGNORECASE,
)
#: ", so you'll need …", ", which means you must …": a duty followed by what it asks for.
_CONSEQUENCE = re.compile(
    r"[,;]\s+(?:so|which\s+means|meaning|and\s+so|therefore|donc)\s+(?=\S)", re.IGNORECASE
)
#: A label that opens a paragraph: bold ("**About you.** …") or a must/nice word and a colon
#: ("Essential: …", "Desirable: …").
_LEAD = re.compile(
    r"^\s*(?:(?:\*\*|__)(?P<bold>[^*_\n]{2,40}?)[.:]?(?:\*\*|__)[.:]?"
    r"|(?P<plain>(?:essential|desirable|required|preferred|must[\s-]haves?|nice[\s-]to[\s-]haves?"
    r"|good[\s-]to[\s-]haves?|bonus|optional|mandatory)(?:\s+\w+)?)\s*:)\s+(?=\S)",
    re.IGNORECASE,
)
_ASIDE = re.compile(r"\((?:[^()\s]+\s+){4,}[^()]*\)")
#: Sentences that are about the employer's hiring, never a requirement of the candidate.
_NOT_ASKED = re.compile(
    r"equal\s+opportunit|receive\s+consideration|without\s+regard\s+to|welcomes?\s+applications"
    r"|(?:unable|not\s+able)\s+to\s+(?:offer\s+)?(?:visa\s+)?sponsor"
    r"|\b(?:we\s+)?(?:don't|do\s+not)\s+(?:ask\s+for|need|require)\b",
    re.IGNORECASE,
)
#: ", ideally …", ", preferably …" after a requirement: a nice-to-have of its own
#: ("1+ year in customer support, ideally for a SaaS product").
_QUALIFIER = re.compile(
    r",\s+(?=(?:ideally|preferably|idealerweise|vorzugsweise|idéalement|de\s+préférence)\b)",
    re.IGNORECASE,
)
_TABLE_ROW = re.compile(r"^\s*\|.*\|\s*$")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)*\|?\s*$")
_SEMICOLON = re.compile(r"\s*;\s*")
_CONJUNCTION = re.compile(r",\s+(?:and|but|while|whereas|und|aber|sowie|et|mais)\s+")
#: A clause after ", and" that starts with its own subject ("…, and you write TypeScript")
#: is a requirement of its own when both halves read as one.
_OWN_SUBJECT = re.compile(r"\s*(?:you|we|du|sie|ihr|vous|nous)\b", re.IGNORECASE)
_ABBREVIATION = re.compile(
    r"(?:e\.?g|i\.?e|etc|incl|approx|ca|min|max|dr|mr|mrs|ms|st|vs|no|z\.b|bzw|d\.h|u\.a|inkl"
    r"|ggf|evtl|mind|env|cf|p\.ex|resp)\.",
    re.IGNORECASE,
)
_TRAILING = ".;,:!?\u2026 \t\n"


def _normalise(text: str) -> str:
    """Curly apostrophes as straight ones; the same length, so offsets still hold."""
    return text.replace("\u2019", "'").replace("\u2018", "'")


def _heading_role(heading: str) -> _Role:
    """A section's role from its heading; a heading that mixes duties with requirements
    ("What you'll do and bring") is left to the content."""
    heading = _normalise(heading)
    excluded = _HEADING_EXCLUDED.search(heading)
    nice = _HEADING_NICE.search(heading)
    must = _HEADING_MUST.search(heading)
    requirements = _HEADING_REQUIREMENTS.search(heading)
    if excluded:
        return _Role.NEUTRAL if (nice or must or requirements) else _Role.EXCLUDED
    if nice and not must:
        return _Role.NICE
    if nice or must or requirements:
        return _Role.MUST
    return _Role.NEUTRAL


def _marker(text: str) -> bool | None:
    """True for an inline must-have marker, False for a nice-to-have one, None without.
    "Nice" wins a tie: "is not required but would be great" is not a must-have."""
    # a marker inside a longer aside qualifies the aside ("a SIEM (ideally Sentinel, it's
    # what we run)"), one that is the whole aside qualifies the item ("Terraform (nice to
    # have)")
    text = _ASIDE.sub(" ", _normalise(text))
    if _NICE_MARKER.search(text):
        return False
    if _MUST_MARKER.search(text):
        return True
    return None


def _reads_like_requirement(text: str) -> bool:
    return bool(_CONTENT_CUES.search(_normalise(text)))


@dataclass
class _Block:
    """A bullet list (one span per item) or a prose paragraph (one span) in one section."""

    role: _Role
    is_list: bool
    spans: list[tuple[int, int]]


def _lines(text: str) -> list[tuple[int, int, str]]:
    lines, offset = [], 0
    for line in text.split("\n"):
        lines.append((offset, offset + len(line), line))
        offset += len(line) + 1
    return lines


def _pseudo_heading(line: str, next_line: str | None, starts_paragraph: bool) -> str | None:
    """A heading not written with ``#``: a bold-only line, a short line ending with a colon,
    or a short unpunctuated line that names a known section ("Requirements")."""
    if match := _BOLD_HEADING.match(line):
        return match.group(1)
    stripped = line.strip()
    words = stripped.split()
    if not words or _BULLET.match(line):
        return None
    if stripped.endswith(":") and len(words) <= 8:
        return stripped.rstrip(":").strip()
    if (
        starts_paragraph
        and len(words) <= 6
        and stripped[-1] not in ".!,;"  # "Is this you?" is a heading
        and (
            next_line is None
            or not next_line.strip()
            or _BULLET.match(next_line)
            or _LEAD.match(next_line)
        )
        and _heading_role(stripped) is not _Role.NEUTRAL
        and (
            not _reads_like_requirement(stripped)
            or (
                len(words) <= 3
                and bool(_HEADING_NICE.search(stripped) or _HEADING_MUST.search(stripped))
            )
        )
    ):
        return stripped
    return None


def _cells(line: str, offset: int) -> list[tuple[int, int]]:
    """The cells of a Markdown table row as spans of the posting, trimmed."""
    bars = [i for i, ch in enumerate(line) if ch == "|" and (i == 0 or line[i - 1] != "\\")]
    cells = []
    for left, right in itertools.pairwise(bars):
        text = line[left + 1 : right]
        lead = len(text) - len(text.lstrip())
        cells.append((offset + left + 1 + lead, offset + left + 1 + len(text.rstrip())))
    return cells


def _column_role(header: str) -> _Role:
    """A table column's role from its header: only an explicit cue counts ("Essential",
    "Desirable"); "Criteria" or "Area" names the rows."""
    if _HEADING_NICE.search(header) and not _HEADING_MUST.search(header):
        return _Role.NICE
    return _Role.MUST if _HEADING_MUST.search(header) else _Role.NEUTRAL


def _blocks(markdown: str) -> tuple[str | None, list[_Block]]:
    """The posting's title and its lists and paragraphs, each with its section's role.

    Headings nest: a sub-heading without a cue of its own ("**Technical**" under
    "## Requirements") keeps its parent's role.
    """
    lines = _lines(markdown)
    title: str | None = None
    stack: list[tuple[int, _Role]] = []
    blocks: list[_Block] = []
    current: _Block | None = None
    skip_next = False
    previous_blank = True
    columns: list[_Role] | None = None  # the roles of the current table's columns

    def role() -> _Role:
        return stack[-1][1] if stack else _Role.NEUTRAL

    def open_heading(level: int, text: str, *, is_title: bool = False) -> None:
        nonlocal current
        current = None
        while stack and stack[-1][0] >= level:
            stack.pop()
        own = _Role.NEUTRAL if is_title else _heading_role(text)
        stack.append((level, role() if own is _Role.NEUTRAL and stack else own))

    for index, (start, end, line) in enumerate(lines):
        if skip_next:
            skip_next = False
            previous_blank = True
            continue
        next_line = lines[index + 1][2] if index + 1 < len(lines) else None
        stripped = line.strip()
        if not stripped or _RULE.match(line):
            previous_blank = True
            if current is not None and not current.is_list:
                current = None
            continue
        if atx := _ATX_HEADING.match(line):
            is_title = title is None and atx.group(1) == "#"
            if is_title:
                title = atx.group(2).strip()
            open_heading(len(atx.group(1)), atx.group(2), is_title=is_title)
            previous_blank = True
            continue
        if (
            previous_blank
            and next_line is not None
            and _SETEXT_RULE.match(next_line)
            and not _BULLET.match(line)
        ):
            level = 1 if next_line.strip().startswith("=") else 2
            is_title = title is None and level == 1
            if is_title:
                title = stripped
            open_heading(level, stripped, is_title=is_title)
            skip_next = True
            continue
        heading = _pseudo_heading(line, next_line, previous_blank or current is None)
        if heading is not None:
            open_heading(7, heading)
            previous_blank = True
            continue
        if _TABLE_ROW.match(line):
            # A person specification as a table: each cell under an "Essential" or
            # "Desirable" column is a requirement of that kind; without such columns each
            # cell is an item of its section.
            current = None
            previous_blank = False
            if _TABLE_RULE.match(line):
                continue
            cells = _cells(line, start)
            if next_line is not None and _TABLE_RULE.match(next_line):
                columns = [_column_role(markdown[s:e]) for s, e in cells]
                continue
            known = columns or []
            by_column = any(r is not _Role.NEUTRAL for r in known)
            for i, (s, e) in enumerate(cells):
                column = known[i] if i < len(known) else _Role.NEUTRAL
                if s < e and (column is not _Role.NEUTRAL or not by_column):
                    blocks.append(_Block(column if by_column else role(), True, [(s, e)]))
            continue
        columns = None
        bullet = _BULLET.match(line)
        if bullet:
            if current is None or not current.is_list:
                current = _Block(role(), True, [])
                blocks.append(current)
            current.spans.append((start + bullet.end(), end))
        elif current is not None and current.is_list and not previous_blank and line[:1].isspace():
            current.spans[-1] = (current.spans[-1][0], end)  # a wrapped bullet continues
        elif current is not None and not current.is_list and not previous_blank:
            current.spans[-1] = (current.spans[-1][0], end)
        elif lead := _LEAD.match(line):
            # "**About you.** To be considered you'll need: …" heads its paragraph;
            # "Essential: GDC registration; a dental nursing qualification; …" is a list.
            bold, plain = lead.group("bold"), lead.group("plain")
            own = _heading_role(bold or plain)
            if bold is not None:
                open_heading(7, bold)
                current = _Block(role(), False, [(start + lead.end(), end)])
            else:
                items = _split(markdown, start + lead.end(), end, _SEMICOLON)
                current = _Block(own, True, items)
            blocks.append(current)
        else:
            current = _Block(role(), False, [(start + len(line) - len(line.lstrip()), end)])
            blocks.append(current)
        previous_blank = False
    return title, blocks


def _trim(markdown: str, start: int, end: int) -> tuple[int, int]:
    """The span without surrounding whitespace, emphasis and trailing punctuation."""
    while start < end and markdown[start].isspace():
        start += 1
    while end > start and markdown[end - 1] in _TRAILING:
        end -= 1
    if markdown.startswith("**", start) and markdown.endswith("**", start, end) and end - start > 4:
        start, end = start + 2, end - 2
        while end > start and markdown[end - 1] in _TRAILING:
            end -= 1
    return start, end


def _sentences(markdown: str, start: int, end: int) -> list[tuple[int, int]]:
    spans, cursor = [], start
    for match in _SENTENCE_END.finditer(markdown, start, end):
        word = markdown[cursor : match.start() + 1].rsplit(None, 1)[-1].casefold()
        if _ABBREVIATION.fullmatch(word):
            continue
        spans.append((cursor, match.start() + 1))
        cursor = match.end()
    spans.append((cursor, end))
    return spans


def _split(markdown: str, start: int, end: int, pattern: re.Pattern[str]) -> list[tuple[int, int]]:
    """Split at ``pattern``, never inside brackets ("(Jest, but any tool is fine)")."""
    parts, cursor = [], start
    for match in pattern.finditer(markdown, start, end):
        before = markdown[cursor : match.start()]
        if before.count("(") > before.count(")"):
            continue
        parts.append((cursor, match.start()))
        cursor = match.end()
    parts.append((cursor, end))
    return parts


def _clauses(markdown: str, start: int, end: int, *, must: bool = True) -> list[tuple[int, int]]:
    """A sentence split where its parts say different things about being required.

    At ";" when the parts' markers differ ("dbt; AWS is preferred") or two parts carry one
    ("Ideally X; Y is a plus"), and at ", and/but …" when two parts carry a marker of their
    own ("X is essential, and Y is a plus") or their markers differ and each part reads as a
    requirement alone ("You have 3 years' experience, and Xero would be great"); otherwise
    the sentence stays one requirement ("Python; Django; Flask", "Kafka, and Flink would be
    great"). In a must-have section a requirement followed by ", ideally …" or ",
    preferably …" is two: the must-have and the nice-to-have ("1+ year in customer support,
    ideally for a SaaS product").
    """
    parts = _split(markdown, start, end, _SEMICOLON)
    markers = [_marker(markdown[s:e]) for s, e in parts]
    if len(set(markers)) < 2 and sum(marker is not None for marker in markers) < 2:
        parts = [(start, end)]
    clauses: list[tuple[int, int]] = []
    for part in parts:
        pieces = _split(markdown, *part, _CONJUNCTION)
        texts = [markdown[s:e] for s, e in pieces]
        markers = [_marker(text) for text in texts]
        marked = sum(marker is not None for marker in markers)
        standalone = all(
            marker is not None or _reads_like_requirement(text)
            for marker, text in zip(markers, texts, strict=True)
        )
        own_subjects = len(pieces) > 1 and all(
            _OWN_SUBJECT.match(markdown, s, e) for s, e in pieces[1:]
        )
        split = marked > 1 or (standalone and (len(set(markers)) > 1 or own_subjects))
        for clause in pieces if split else [part]:
            head, *tail = _split(markdown, *clause, _QUALIFIER)
            text = markdown[head[0] : head[1]]
            if must and tail and _marker(text) is not False and _reads_like_requirement(text):
                clauses += [head, (tail[0][0], clause[1])]
            else:
                clauses.append(clause)
    return clauses


def _consequences(markdown: str, start: int, end: int) -> list[tuple[int, int]]:
    """A clause split before ", so …" or ", which means …" when what follows asks something
    of the candidate ("You'll lead a team of 12, so you'll need experience managing one"):
    the duty before it is not a requirement, what follows is."""
    for match in _CONSEQUENCE.finditer(markdown, start, end):
        before = markdown[start : match.start()]
        if before.count("(") <= before.count(")") and _ASK.search(markdown, match.end(), end):
            return [(start, match.start()), (match.end(), end)]
    return [(start, end)]


_FILLER = frozenset(
    [
        "it",
        "that",
        "this",
        "which",
        "but",
        "and",
        "though",
        "so",
        "also",
        "too",
        "would",
        "be",
        "is",
        "are",
        "isn't",
        "not",
        "great",
        "nice",
    ]
)


def _only_marker(text: str, marker: bool | None) -> bool:
    """A marker with nothing to require ("…, but it isn't essential"; "it would help");
    ``marker`` is ``_marker(text)``."""
    if marker is None:
        return False
    rest = _MUST_MARKER.sub(" ", _NICE_MARKER.sub(" ", _normalise(text)))
    return all(word in _FILLER for word in re.findall(r"[\w']+", rest.casefold()))


def _requirement(
    markdown: str, start: int, end: int, default_must: bool, forced: bool | None = None
) -> RequirementSpec | None:
    start, end = _trim(markdown, start, end)
    text = markdown[start:end]
    if not text:
        return None
    found = _marker(text)
    if _only_marker(text, found):
        return None
    marker = found if forced is None else forced
    must = default_must if marker is None else marker
    return RequirementSpec(text, classify_requirement(text), must, min_years(text))


def parse_job_markdown(markdown: str) -> JobSpec:
    """A posting as Markdown: a ``# Title``, prose, lists under headings.

    Requirements come from sections whose heading says so in English, German or French
    ("Requirements", "What you'll need", "About you", "Ihr Profil", "Votre profil"), and from
    lists elsewhere whose items mostly read like requirements (years, "experience with", a
    degree or licence), never from duties, benefits or "about us". Under a nice-to-have
    heading ("Nice to have", "Bonus points", "Wünschenswert", "Atouts") items are not
    must-haves. An item's own words override its section ("… is a plus", "must hold …"), and
    ``[must]``/``[nice]`` override both. Prose under a requirements heading yields one
    requirement per sentence or marked clause; elsewhere a clause that asks something of the
    candidate ("…, so you'll need experience managing a front office team", "Candidates must
    be time-served", "we can't consider applicants without the right to work") counts, and
    the nice-to-haves of its paragraph with it; statements about the employer's hiring
    (equal opportunities, sponsorship) never do. A person specification as a Markdown table
    gives one requirement per cell under its "Essential" and "Desirable" columns. Each
    requirement's text is a verbatim span of the posting, so evidence for it can be traced
    back; a posting with none gets ``[]``.
    """
    title, blocks = _blocks(markdown)
    requirements: list[RequirementSpec] = []
    seen: set[str] = set()

    def add(start: int, end: int, default_must: bool, forced: bool | None = None) -> None:
        requirement = _requirement(markdown, start, end, default_must, forced)
        if requirement is not None and requirement.text.casefold() not in seen:
            seen.add(requirement.text.casefold())
            requirements.append(requirement)

    for block in blocks:
        default_must = block.role is not _Role.NICE
        if block.is_list:
            cued = sum(
                _reads_like_requirement(markdown[s:e]) or _marker(markdown[s:e]) is not None
                for s, e in block.spans
            )
            take_all = block.role in (_Role.MUST, _Role.NICE) or (
                block.role is _Role.NEUTRAL and cued * 2 >= len(block.spans)
            )
            for start, end in block.spans:
                if bracket := _BRACKET_MARKER.match(markdown, start, end):
                    word = bracket.group(1).casefold()
                    add(bracket.end(), end, default_must, forced=word.startswith(("must", "req")))
                elif take_all:
                    for clause in _clauses(markdown, start, end, must=default_must):
                        add(*clause, default_must)
            continue
        # Prose: under a requirements heading, every piece that reads like one or is
        # marked; elsewhere only what asks something of the candidate ("you'll need",
        # "candidates must", "… is essential") or is both marked and reads like one, and
        # then also the marked pieces of the same paragraph ("PLC experience is preferred,
        # and mechanical skills would be a bonus"); under a duties, benefits or "about
        # us" heading only an ask that reads like a requirement ("…, so you'll need to be
        # comfortable reading traffic data").
        pieces = [
            piece
            for sentence in _sentences(markdown, *block.spans[0])
            for clause in _clauses(markdown, *sentence, must=default_must)
            for piece in _consequences(markdown, *clause)
        ]
        taken: list[tuple[int, int]] = []
        marked_only: list[tuple[int, int]] = []
        for s, e in pieces:
            piece = _normalise(markdown[s:e])
            if _NOT_ASKED.search(piece) and not _ASK.search(piece):
                continue
            marker = _marker(piece)
            marked = marker is not None
            cued = _reads_like_requirement(piece)
            asks = bool(_ASK.search(piece))
            if block.role is _Role.EXCLUDED:
                take = asks and cued
            elif block.role is _Role.NEUTRAL:
                take = asks or (marked and cued)
            else:
                take = marked or cued or asks
            if take:
                taken.append((s, e))
            elif marker is False and block.role is _Role.NEUTRAL:
                marked_only.append((s, e))  # "…, and mechanical skills would be a bonus"
        if taken:
            taken += marked_only
        for s, e in sorted(taken):
            add(s, e, default_must)
    return JobSpec(
        title=title or "Untitled job", description=markdown.strip(), requirements=requirements
    )


def create_job(session: Session, organization_id: uuid.UUID, spec: JobSpec) -> JobPosting:
    """Insert a job and its requirements (what the ATS does; used by the CLI and demo)."""
    job = JobPosting(
        organization_id=organization_id,
        title=spec.title[:300],
        description=spec.description,
        status=JobStatus.OPEN,
        evaluation_criteria={},
    )
    session.add(job)
    session.flush()
    for position, requirement in enumerate(spec.requirements):
        session.add(
            JobRequirement(
                organization_id=organization_id,
                job_id=job.id,
                text=requirement.text,
                kind=requirement.kind,
                must_have=requirement.must_have,
                weight=1.0,
                min_years=Decimal(str(requirement.min_years))
                if requirement.min_years is not None
                else None,
                position=position,
            )
        )
    session.flush()
    return job


def load_job(
    session: Session, organization_id: uuid.UUID, job_id: uuid.UUID
) -> tuple[JobPosting, list[JobRequirement]]:
    job = session.scalar(
        select(JobPosting).where(
            JobPosting.id == job_id, JobPosting.organization_id == organization_id
        )
    )
    if job is None:
        raise NotFoundError("This job does not exist in the organization.", code="job_not_found")
    requirements = list(
        session.scalars(
            select(JobRequirement)
            .where(
                JobRequirement.job_id == job.id,
                JobRequirement.organization_id == organization_id,
            )
            .order_by(JobRequirement.position)
        )
    )
    return job, requirements


def job_query_text(job: JobPosting, requirements: list[JobRequirement]) -> str:
    """What a job's retrieval vector encodes: its title and what it asks for."""
    if requirements:
        return f"{job.title}. " + "; ".join(r.text for r in requirements)
    return f"{job.title}. {job.description}"


def embed_job(
    session: Session,
    *,
    organization_id: uuid.UUID,
    job_id: uuid.UUID,
    embedding: EmbeddingContext,
) -> dict[str, Any]:
    """Vectors for the job (retrieval query) and each requirement (evidence), idempotent."""
    job, requirements = load_job(session, organization_id, job_id)
    model_id = embedding.ensure_model(session)
    embedded, _ = upsert_chunk_embeddings(
        session,
        organization_id=organization_id,
        entity_type=EmbeddingEntity.JOB,
        entity_id=job.id,
        owner={"job_id": job.id},
        chunks=[(0, "job", job_query_text(job, requirements), None, None)],
        model_id=model_id,
        embedding=embedding,
    )
    for requirement in requirements:
        done, _ = upsert_chunk_embeddings(
            session,
            organization_id=organization_id,
            entity_type=EmbeddingEntity.JOB_REQUIREMENT,
            entity_id=requirement.id,
            owner={"job_id": job.id},
            chunks=[(0, requirement.kind.value, requirement.text, None, None)],
            model_id=model_id,
            embedding=embedding,
        )
        embedded += done
    record_usage(
        session,
        organization_id=organization_id,
        kind=UsageKind.JOB_EMBEDDING,
        quantity=embedded,
        unit=UsageUnit.ITEM,
    )
    return {"job_id": str(job.id), "model_id": str(model_id), "embedded": embedded,
            "requirements": len(requirements)}  # fmt: skip
