"""The evidence judge: does this passage show the candidate meets this requirement?

Why a judge of pairs, not a similarity: an embedding puts "completed an online course on
Kubernetes" close to "production Kubernetes operations"; similarity measures topic, not
support. For each (requirement, resume) the judge

1. retrieves the resume's passages (lines and sentences, with their section and offsets)
   closest to the requirement with the multilingual text model (``ml/multilingual.py``);
2. scores each retrieved passage with a small logistic model over features a recruiter
   would recognise: how close the passage is in meaning and in words (skills, synonyms,
   abbreviations), what the line *does* with the subject (built, ran, led vs wrote about,
   studied, assisted), where it sits (work history, skills list, education), whether it is a
   bare keyword list, whether a licence is held or only worked towards, and the dated role
   around it;
3. calibrates the best passage's score (with the second best's, and the resume's context:
   how well it shows the posting's other requirements) into P(requirement met) with a map
   fitted on a separate development fold (Platt scaling), and cites that passage.

A ✔ is P ≥ 0.5 and always quotes the passage that earned it; a ✘ quotes the closest passage
only as "closest, not evidence", never one the judge found supporting, and a ✘ whose quoted
line alone reads above 0.3 is shown as *uncertain* (a question for a person), not as an
absence.
Years per skill come from the dated roles whose lines evidence the requirement. The overall
score is a criteria-weighted mean of the probabilities (which mean, and how much more a
must-have weighs, are fitted: ``rank_power``, ``must_weight``); the ranking score multiplies
it by the expected share of must-haves met (``rank_alpha``, fitted too). The coefficients
are plain JSON (``data/judge_model.json``), trained by ``are-workers matching train-judge``
from labelled text with a fixed seed.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
import statistics
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property, lru_cache
from importlib import resources
from typing import Any

import numpy as np

from are_workers.services.documents import UNDETERMINED, detect_language, is_masked
from are_workers.services.matching.boosting import Trees
from are_workers.services.matching.language_levels import (
    LEVEL_NAMES,
    LanguageAsk,
    language_ask,
    level_shown,
)
from are_workers.services.matching.postings import min_years
from are_workers.services.resumes.parsing import ParsedResume, parse_resume
from are_workers.services.skills import SkillTaxonomy, get_taxonomy

JUDGE_NAME = "are-evidence-judge"
#: How many passages per requirement the judge reads closely.
TOP_PASSAGES = 8
MET = 0.5
#: A ✘ whose quoted line alone (its calibrated probability without the resume's context)
#: reads above this is *uncertain*, not "not evidenced": the probabilities are calibrated
#: (ECE 0.03 out of fold), so such a line is evidence more than three times in ten, and it is
#: shown for a person to read, not as proof of absence. The line's own probability, not the
#: requirement's: a strong resume's context can lift a requirement to 0.3 while the closest
#: line (a degree, for "AWS") shows nothing.
UNCERTAIN = 0.3
MUST_HAVE_WEIGHT = 2.0

EncodeFn = Callable[[Sequence[str]], np.ndarray]

# --- requirements and passages ----------------------------------------------------------------


@dataclass(frozen=True)
class Requirement:
    key: str
    text: str
    must_have: bool = True
    weight: float = 1.0
    kind: str = "other"
    min_years: float | None = None


@dataclass(frozen=True)
class Passage:
    text: str
    start: int
    end: int
    section: str
    role_months: int | None = None  # length of the dated role the line belongs to
    role_index: int | None = None
    # The line a wrapped fragment continues ("translation under IFRS" after "Wrote the
    # explainer ..."): what the sentence says it is (doing, describing) is read there.
    lead: str = ""
    # The line that heads the passage's dated role ("Deputy Editor, … magazine … since 2020"):
    # work described inside a role of writing, advising or assisting is not that work done.
    role_line: str = ""
    # Where the sentence a wrapped fragment belongs to starts, and its verbatim text (the
    # lines it continues and the fragment): what a ✔ quotes, so that "buildings." is never
    # the evidence. Unset for a line that continues nothing.
    quote_start: int | None = None
    quote_text: str = ""

    @property
    def quote(self) -> tuple[str, int, int]:
        """(text, start, end) of what the verdict cites: the whole sentence, verbatim."""
        if self.quote_start is None:
            return self.text, self.start, self.end
        return self.quote_text, self.quote_start, self.end

    @property
    def sentence(self) -> str:
        """The passage read with the line it continues: where doing, describing and
        not-yet wording are looked for."""
        return f"{self.lead} {self.text}" if self.lead else self.text


@dataclass(frozen=True)
class Verdict:
    requirement: Requirement
    probability: float
    met: bool
    passage: Passage | None
    rationale: str
    years: float | None = None
    passage_score: float = 0.0
    uncertain: bool = False
    """A ✘ whose quoted line is itself plausible evidence (see :data:`UNCERTAIN`)."""

    @property
    def band(self) -> str:
        """``met`` (✔), ``uncertain`` (a ✘ shown as a question for a person) or ``not_met``."""
        if self.met:
            return "met"
        return "uncertain" if self.uncertain else "not_met"

    @property
    def cited(self) -> tuple[str | None, int | None, int | None]:
        """(quote, start, end) of the cited passage (:attr:`Passage.quote`), or Nones."""
        return self.passage.quote if self.passage is not None else (None, None, None)

    def as_dict(self) -> dict[str, Any]:
        passage = self.passage
        quote, start, end = self.cited
        return {
            "key": self.requirement.key,
            "text": self.requirement.text,
            "must_have": self.requirement.must_have,
            "probability": round(self.probability, 4),
            "met": self.met,
            "verdict": self.band,
            "evidence": None
            if passage is None
            else {
                "quote": quote,
                "start": start,
                "end": end,
                "section": passage.section,
                "supports": self.met,
            },
            "years": self.years,
            "rationale": self.rationale,
        }


@dataclass(frozen=True)
class Judgement:
    verdicts: list[Verdict]
    overall: float  # 0..100
    must_have_coverage: float | None
    rank_score: float
    model: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "overall": self.overall,
            "must_have_coverage": self.must_have_coverage,
            "rank_score": self.rank_score,
            "model": self.model,
            "requirements": [v.as_dict() for v in self.verdicts],
        }


_SENTENCE = re.compile(r"(?<=[.;!?])\s+(?=[A-ZÄÖÜÉÈÀ0-9])")
_STRIP = " \t\r\n-*•·\u2013\u2014|>#"


def dated_roles(parsed: ParsedResume) -> list[Any]:
    """The date ranges that head roles (in work sections), in reading order: a passage's
    ``role_index`` points into this list."""
    return sorted(
        (p for p in parsed.employment_periods if p.section in {"experience", "body", "other"}),
        key=lambda p: p.start,
    )


def passages_of(parsed: ParsedResume) -> list[Passage]:
    """Lines of the resume (long ones split into sentences), with verbatim offsets, their
    section and the dated role each line sits under."""
    text = parsed.text
    periods = dated_roles(parsed)
    width = max((len(line.rstrip()) for line in text.splitlines()), default=0)
    found: list[Passage] = []
    for section in parsed.sections:
        position = section.start
        previous = ""
        last = ""  # the previous line as laid out
        chain: int | None = None  # where the sentence the next line may continue starts
        for raw in text[section.start : section.end].splitlines(keepends=True):
            line_start = position
            position += len(raw)
            lead = previous if _continues(previous, last, raw, width) else ""
            continued = chain if lead else None
            if raw.strip():
                previous = lead + " " + raw.strip() if lead else raw.strip()
                last = raw.rstrip()
            else:  # a blank line ends the paragraph: nothing after it continues it
                previous = last = ""
            pieces = _SENTENCE.split(raw) if len(raw) > 160 else [raw]
            offset = line_start
            starts: list[int] = []
            for piece in pieces:
                stripped = piece.strip(_STRIP)
                if len(stripped) < 3 or is_masked(stripped):
                    offset += len(piece)
                    continue
                start = text.find(stripped, offset)
                if start < 0:
                    continue
                # By the passage's end: a role's header line carries its own dates at the
                # end of the line ("Intern, CodeBridge - Jun 2024 - Sep 2024").
                role = _role_for(periods, start + len(stripped))
                cited = continued if continued is not None and not starts else None
                starts.append(start)
                found.append(
                    Passage(
                        stripped,
                        start,
                        start + len(stripped),
                        section.name,
                        role_months=periods[role].months if role is not None else None,
                        role_index=role,
                        lead=lead if piece is pieces[0] else "",
                        role_line=periods[role].line if role is not None else "",
                        quote_start=cited,
                        quote_text=text[cited : start + len(stripped)] if cited is not None else "",
                    )
                )
                offset = start + len(stripped)
            if starts:
                # The next line continues this line's last sentence (or, for a fragment
                # that is one sentence, the sentence it continues itself).
                chain = continued if continued is not None and len(starts) == 1 else starts[-1]
    return found


_CONTINUES = re.compile(r"^\s*[a-zäöüßéèêàçôû)\"”']")
_BULLET = re.compile(r"^\s*[-*•·\u2013\u2014>]\s")
_CAPITALISED = re.compile(r"^\s*([A-ZÄÖÜÉÈÀ][\w'\u2019/+#.-]*)")


def _continues(previous: str, last: str, line: str, width: int) -> bool:
    """Whether ``line`` is the layout's wrap of ``previous`` (the sentence so far; ``last``
    is the previous line as laid out): a long line that stops without a sentence's end,
    then one that starts in lower case or closes a bracket, or one that starts with a
    capitalised word that would not have fitted on the previous line ("… on AWS, wrote" /
    "Terraform modules, and built …" in a paragraph wrapped at ``width``, the text's longest
    line). A capital after a bulleted line continues it only when indented under it."""
    if len(previous) < 60 or previous.endswith((".", "!", "?", ":", ";")):
        return False
    if _CONTINUES.match(line):
        return True
    word = _CAPITALISED.match(line)
    if word is None or len(last) + 1 + len(word.group(1)) <= width:
        return False
    return not _BULLET.match(last) or line[:1].isspace()


def _role_for(periods: Sequence[Any], position: int) -> int | None:
    """The last dated range at or before this position (the role a bullet belongs to)."""
    best = None
    for index, period in enumerate(periods):
        if period.start <= position + 2:
            best = index
        else:
            break
    return best


# --- features ---------------------------------------------------------------------------------

_WORD = re.compile(r"[\w+#./-]+", re.UNICODE)
_STOP_WORDS = """a an and are as at be by for from have has in is it of on or our the to with
you your we will who what this that their they them us can ideally must plus bonus experience
experienced years year least minimum strong good solid proven ability able work working
knowledge understanding including e.g eg etc such some any well also both other skills skill
professional professionally real hands-on level"""
_STOP = frozenset(_STOP_WORDS.split())
DOING = (
    # English
    r"\b(built|build|building|ran|run|running|led|lead|leading|managed|manage|managing|"
    r"operat\w*|own(?:ed|s|ing)?|maintain\w*|develop\w*|implement\w*|design(?:ed|ing)|"
    r"deliver\w*|deploy\w*|migrat\w*|launch\w*|shipp?ed|wrote (?:the )?code|coded|"
    r"administer\w*|supervis\w*|coordinat\w*|negotiat\w*|closed|sold|prepar\w*|"
    r"teach\w*|taught|nurs\w*|treat\w*|care[ds]? for|responsible for|in charge of|"
    r"on[- ]call|worked (?:as|on|with|in)|works? (?:as|on|with|in)|handl\w*|perform\w*|"
    r"administ\w*|carried out|conduct\w*|achiev\w*|exceed\w*|grew|increas\w*|reduc\w*|"
    r"improv\w*|automat\w*|set up|introduc\w*|rebuilt|creat\w*|produc\w*|hired|mentor\w*|"
    # German
    r"leit\w*|geleitet|verantwort\w*|entwickel\w*|entwickelt|betreu\w*|betrieb\w*|"
    r"aufgebaut|umgesetzt|eingeführt|durchgeführt|gesteuert|unterrichte\w*|pflege\w*|"
    r"koordinier\w*|verhandel\w*|führ\w*|erstellt|optimiert|tätig als|"
    # French
    r"géré|gère|gestion|dirig\w*|pilot\w*|développ\w*|conçu|mis en place|mise en place|"
    r"responsable|encadr\w*|animé|assur\w*|réalis\w*|enseign\w*|soign\w*|négoci\w*|"
    r"coordonn\w*|supervis\w*|déploy\w*|optimis\w*)\b"
)
DESCRIBING = (
    r"\b(wrote about|writ(?:e|ing) about|blog\w*|article|documented|documentation|"
    r"user guide|tutorial|course|courses|mooc|udemy|coursera|bootcamp|certificate of "
    r"completion|completed an? (?:online )?course|studied|studying|student|learning|"
    r"self[- ]taught|attended|webinar|workshop|shadow\w*|observ\w*|assist\w*|helped|"
    r"supported the|support to|interested in|passion for|familiar with|exposure to|"
    r"basic knowledge|introduction to|in progress|working towards|currently pursuing|"
    r"planning to|aspiring|volunteer\w*|hobby|personal project|"
    # writing for readers, not doing the work
    r"explainer|guide to|newsletter|magazine|journalis\w*|for readers|survey of|thesis|"
    r"dissertation|published|podcast|keynote|panel|"
    # advising others on the work (a consultant, an auditor, a reviewer)
    r"advis\w*|consultan\w*|for (?:our |\w+ )?clients|beratung|berater\w*|conseil\w*|"
    # under someone else's direction
    r"under (?:the )?(?:direct |close )?supervision|while supervised|supervised by|"
    r"as directed by|help(?:s|ing)? (?:the|with)|support(?:s|ing)? the|"
    # German
    r"kurs|weiterbildung|schulung|studium|studiert|praktikum|hospitation|unterstützt|"
    r"assistiert|in ausbildung|grundkenntnisse|interesse an|bachelorarbeit|masterarbeit|"
    r"unter anleitung|"
    # French
    r"formation en ligne|cours|stage|stagiaire|étudiant\w*|assisté|aidé|notions|"
    r"en cours|sensibilisation|initiation|mémoire|sous (?:la )?supervision)\b"
)
_DOING = re.compile(DOING, re.IGNORECASE)
_DESCRIBING = re.compile(DESCRIBING, re.IGNORECASE)
_HELD = re.compile(
    r"\b(registered|licen[cs]ed|chartered|qualified|certified|accredited|member|pin\b|"
    r"registration number|holds?|held|valid|current|active|full (?:uk |eu )?licen[cs]e|"
    r"examiniert|staatlich anerkannt|zugelassen|approbiert|diplômée? d'état|titulaire|"
    r"inscrite?|habilité|agréé)",
    re.IGNORECASE,
)
_NOT_YET = re.compile(
    r"(working towards|in progress|pending|expected|studying for|part[- ]qualified|"
    r"trainee|student|level [i1] |due to (?:complete|qualify|finish|join|sit)|applied for|"
    r"awaiting|final[- ]year|enrol(?:l?ed|ling)? (?:on|in|for)|apprentice\w*|not started|"
    r"dropped out|did not (?:complete|finish)|not completed|"
    r"en cours|en attente|en préparation|candidat|prévue?\b|abandonn\w+|non (?:terminé|obtenu)|"
    r"in ausbildung|angestrebt|beantragt|ausstehend|in vorbereitung|voraussichtlich|"
    r"vorbereitungsdienst|referendar\w*|abgebrochen|nicht abgeschlossen|"
    # begun, not finished: a start date and no end ("started September 2025", "begonnen
    # 2024", "commencé en 2025"); a start told as a story ("started as a mechanic, got my
    # B1 in 2019") has no date beside it
    r"\b(?:started|begun|begonnen|commencée?|débutée?)\b[^.;\n]{0,20}\b(?:19|20)\d\d|"
    r"\b(?:19|20)\d\d(?:\s*[-\u2013]\s*(?:19|20)\d\d)?\s+begonnen)",
    re.IGNORECASE,
)
_LICENCE_REQ = re.compile(
    r"\b(licen[cs]e|registered|registration|chartered|qualified|qualification|certif\w*|"
    r"accredit\w*|pin|qts|aca|acca|cima|cpa|cfa|nmc|hcpc|cpc|status)\b",
    re.IGNORECASE,
)
_EXPERIENCE_REQ = re.compile(
    r"\b(experience|years?|production|professional\w*|track record|proven|worked|"
    r"background|hands-on|post-registration)\b",
    re.IGNORECASE,
)
LIST_SECTIONS = frozenset({"skills", "languages", "interests", "contact", "header"})
WORK_SECTIONS = frozenset({"experience", "summary", "projects", "body", "other", "volunteering"})
STUDY_SECTIONS = frozenset({"education", "certifications", "training", "courses"})

_BASE_FEATURES = (
    "bias",
    "sim",
    "sim_gap",
    "sim_z",
    "lexical",
    "lexical_sim",
    "lexical_idf",
    "anchor",
    "sim_en",
    "sim_en_z",
    "sim_pool_z",
    "sim_en_pool_z",
    "sim_specific",
    "sim_en_specific",
    "other_closest",
    "foreign",
    "foreign_sim_z",
    "skill_overlap",
    "alternative",
    "doing",
    "describing",
    "in_work",
    "in_list",
    "in_study",
    "in_cert",
    "is_list",
    "held",
    "not_yet",
    "licence_req",
    "licence_held",
    "exp_req_study",
    "exp_req_describing",
    "role_describing",
    "has_role",
    "role_years",
    "years_fit",
    "short",
)

#: Signals that count together: each pair's product is a feature too ("similar *and* in a
#: line of doing", "names the example *but* in German", "the words overlap *and* a licence or
#: registration is asked"), so the scorer can weigh one signal differently where another is
#: present.
INTERACTING = (
    "sim",
    "sim_en",
    "lexical",
    "skill_overlap",
    "alternative",
    "doing",
    "describing",
    "in_work",
    "foreign",
    "sim_specific",
    "licence_req",
)
INTERACTIONS = tuple(
    (a, b)
    for a, b in itertools.combinations(INTERACTING, 2)
    if (a, b) != ("sim", "lexical")  # that one is ``lexical_sim`` already
)
#: The multilingual similarity term by term: its vectors (multilingual-e5-small) have 384
#: dimensions, and the cosine of a requirement and a line is the sum over them of the
#: requirement's value times the line's. Each product is a feature too, so the scorer can
#: weigh the meanings that go with *showing* a requirement apart from those that only share
#: its topic: a similarity learned from the labelled pairs. Strongly regularised
#: (:data:`are_workers.services.matching.judge_training.TERM_L2`): on development, out of
#: fold, it raised NDCG@5 (0.884 -> 0.893) and pair AUC; evidence recall fell by 0.010.
SIMILARITY_TERMS = 384
TERM_FEATURES = tuple(f"sim_term_{i}" for i in range(SIMILARITY_TERMS))
#: The features of one line read on its own (:func:`pair_features`); the similarity's terms
#: follow them (:func:`candidate_pairs`).
PAIR_FEATURES: tuple[str, ...] = _BASE_FEATURES + tuple(f"{a}*{b}" for a, b in INTERACTIONS)
FEATURES: tuple[str, ...] = PAIR_FEATURES + TERM_FEATURES
#: The features the boosted trees read (:attr:`JudgeModel.trees`): the line's own signals;
#: trees form their own products of them.
TREE_FEATURES: tuple[str, ...] = _BASE_FEATURES[1:]
_TREE_COLUMNS = np.array([FEATURES.index(name) for name in TREE_FEATURES])


def tree_inputs(features: np.ndarray) -> np.ndarray:
    """The trees' columns of the pair features (:data:`TREE_FEATURES`)."""
    return features[:, _TREE_COLUMNS]


#: The features that compare a line with the posting's other requirements, alone or in a
#: product (unmeasured, NaN, for a posting of one requirement).
_COMPARING = frozenset({"sim_specific", "sim_en_specific", "other_closest"})
COMPARATIVE = tuple(name for name in FEATURES if _COMPARING & set(name.split("*")))


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in text if not unicodedata.combining(ch))


def _terms(text: str) -> set[str]:
    words = {w.strip("./-") for w in _WORD.findall(_fold(text))}
    return {w[:6] if len(w) > 6 else w for w in words if w and w not in _STOP and len(w) > 1}


_SEPARATORS = re.compile(r"[,|·/;•]|\s[-\u2013]\s")


_FOREIGN = re.compile(
    r"\b(und|der|die|das|mit|für|bei|von|seit|als|im|des|les|et|du|pour|avec|dans|aux|"
    r"une|sur|chez|depuis|en tant que)\b",
    re.IGNORECASE,
)


def _foreign(text: str) -> bool:
    """German or French wording: word overlap with an English requirement means little
    there, so the model leans on the multilingual similarity instead."""
    return len(_FOREIGN.findall(text)) >= 2 or bool(re.search(r"[äöüßéèêàçô]", text))


def _is_list(text: str) -> bool:
    """A keyword list: many separators, few words between them, no verb of doing; or a
    long run of short items that does not open with one ("Key skills: French (C2) ·
    German · … · Exam preparation · …": a noun like "preparation" does not make it work)."""
    separators = len(_SEPARATORS.findall(text))
    words = len(text.split())
    if separators >= 3 and separators * 3 >= words and not _DOING.search(text):
        return True
    items = [item for item in _SEPARATORS.split(text) if item.strip()]
    return (
        len(items) >= 6
        and statistics.median(len(item.split()) for item in items) <= 3
        and not _DOING.search(items[0])
    )


def _skills(taxonomy: SkillTaxonomy, text: str) -> set[str]:
    """A passage's skills and the kinds they are ("Manhattan Active WM" is warehouse
    management too): a line naming the product shows a requirement naming the kind."""
    return taxonomy.with_broader(m.name for m in taxonomy.find(text))


def _asked_skills(taxonomy: SkillTaxonomy, text: str) -> set[str]:
    """A requirement's skills, less those that are only examples of another it names:
    "a warehouse management system (Manhattan, Blue Yonder or similar)" asks for the kind,
    which any one product shows."""
    named = {m.name for m in taxonomy.find(text)}
    return {s for s in named if not (taxonomy.with_broader([s]) - {s}) & named}


# The examples a posting gives for a requirement: "(ACA, ACCA or CIMA)", "such as MEDDICC or
# Challenger", "(IOSH Managing Safely, NEBOSH General Certificate or equivalent)". A line that
# names one of them speaks to the requirement even when its wording is far away.
_ALT_INTRO = re.compile(
    r"\((?P<paren>[^()]{2,160})\)|\b(?:such as|e\.g\.|for example|for instance|like|including|"
    r"namely|z\.\s?b\.|wie|par exemple|comme|notamment)\s+(?P<tail>[^.;:()]{2,160})",
    re.IGNORECASE,
)
_ALT_SPLIT = re.compile(r",|;|\s+(?:or|and|oder|und|ou|et)\s+|\s/\s", re.IGNORECASE)
_ALT_LEAD = re.compile(
    r"^(?:for example|for instance|e\.g\.|such as|the|a|an|any|our|we use|we run|we have|"
    r"z\.\s?b\.|par exemple|ideally|preferably)\s+",
    re.IGNORECASE,
)
_ALT_VAGUE = re.compile(
    r"\b(similar|equivalent|other|others|comparable|etc|related|relevant|vergleichbar|"
    r"équivalent|similaire)\b",
    re.IGNORECASE,
)
#: A name-like token: two capitals ("IOSH", "FP&A", "TS") or a letter and a digit ("S/4HANA").
_NAME_TOKEN = re.compile(r"^(?:(?=(?:.*[A-Z]){2})|(?=.*[A-Za-z])(?=.*\d))\S+$")


def alternatives(text: str) -> tuple[frozenset[str], ...]:
    """The examples a requirement names, each as the terms (:func:`_terms`) a line must
    contain to name it: its name-like tokens when it has any ("IOSH Managing Safely" needs
    "IOSH"), else all its words. Vague ones ("or similar", "or equivalent") are dropped."""
    found: list[frozenset[str]] = []
    for match in _ALT_INTRO.finditer(text):
        for raw in _ALT_SPLIT.split(match.group("paren") or match.group("tail")):
            part = raw.strip(" .-\u2013'\"")
            while (shorter := _ALT_LEAD.sub("", part)) != part:
                part = shorter
            if len(part.split()) > 4:
                # The last example runs on into the sentence ("… or LEAP will help you
                # settle in"): its name is the run of capitalised words it starts with.
                lead = itertools.takewhile(lambda w: w[:1].isupper(), part.split())
                part = " ".join(lead)
            if len(part) < 2 or len(part.split()) > 4 or _ALT_VAGUE.search(part):
                continue
            names = [t for t in part.split() if _NAME_TOKEN.match(t.strip(".,"))]
            needed = (
                frozenset().union(*(_terms(t) for t in names)) if names else frozenset(_terms(part))
            )
            if needed and needed not in found:
                found.append(needed)
    return tuple(found)


def names_alternative(view: RequirementView, terms: set[str]) -> bool:
    """Whether a line's terms name one of the requirement's examples (a plural counts)."""
    return any(all(t in terms or f"{t}s" in terms for t in needed) for needed in view.alternatives)


@dataclass
class RequirementView:
    """A requirement prepared once for every resume it is judged against."""

    requirement: Requirement
    terms: set[str]
    skills: set[str]
    licence: bool
    experience: bool
    years: float | None
    query: np.ndarray | None = None  # the multilingual model's vector ("query:")
    aux_query: np.ndarray | None = None  # the English sentence model's vector
    # Over the resumes judged together: mean and spread of each one's closest passage
    # (multilingual, English); set by :func:`pool_norms`.
    pool_sim: tuple[float, float] | None = None
    pool_aux: tuple[float, float] | None = None
    alternatives: tuple[frozenset[str], ...] = ()
    language: LanguageAsk | None = None  # a spoken language asked for, with its level
    level: int | None = None  # a numbered qualification level or band asked for, at least
    team: int | None = None  # the size of team asked for, at least ("a team of 8 or more")
    # The posting's other requirements' vectors (multilingual, English): a line closer to
    # another requirement than to this one is more likely about that one.
    others: np.ndarray | None = None
    aux_others: np.ndarray | None = None


def pair_features(
    view: RequirementView,
    passage: Passage,
    *,
    sim: float,
    best_sim: float,
    mean_sim: float,
    std_sim: float,
    passage_skills: set[str],
    passage_terms: set[str],
    role_years: float | None,
    idf: dict[str, float] | None = None,
    sim_en: float = 0.0,
    sim_en_z: float = 0.0,
    specific: float = math.nan,
    specific_en: float = math.nan,
    other_closest: float = math.nan,
) -> np.ndarray:
    text = passage.text
    sentence = passage.sentence
    pool_z = _pool_z(sim, view.pool_sim)
    pool_en_z = _pool_z(sim_en, view.pool_aux)
    weights = idf or {}
    wanted = sum(weights.get(t, 1.0) for t in view.terms)
    found = sum(weights.get(t, 1.0) for t in view.terms & passage_terms)
    anchor_term = max(view.terms, key=lambda t: (weights.get(t, 1.0), t)) if view.terms else None
    overlap = len(view.terms & passage_terms) / max(1, len(view.terms))
    skill_overlap = len(view.skills & passage_skills) / len(view.skills) if view.skills else 0.0
    doing = 1.0 if _DOING.search(sentence) else 0.0
    describing = 1.0 if _DESCRIBING.search(sentence) else 0.0
    in_list = 1.0 if passage.section in LIST_SECTIONS else 0.0
    in_study = 1.0 if passage.section in STUDY_SECTIONS else 0.0
    in_cert = 1.0 if passage.section == "certifications" else 0.0
    in_work = 1.0 if passage.section in WORK_SECTIONS else 0.0
    held = 1.0 if _HELD.search(sentence) else 0.0
    not_yet = 1.0 if _NOT_YET.search(sentence) else 0.0
    licence = 1.0 if view.licence else 0.0
    experience = 1.0 if view.experience else 0.0
    years_fit = 0.0
    if view.years and role_years is not None:
        years_fit = min(1.0, role_years / view.years)
    values = {
        "bias": 1.0,
        "sim": sim,
        "sim_gap": sim - best_sim,
        "sim_z": (sim - mean_sim) / (std_sim + 1e-3),
        "lexical": overlap,
        "lexical_sim": overlap * sim,
        "lexical_idf": found / wanted if wanted else 0.0,
        "anchor": 1.0 if anchor_term is not None and anchor_term in passage_terms else 0.0,
        "sim_en": sim_en,
        "sim_en_z": sim_en_z,
        "sim_pool_z": pool_z,
        "sim_en_pool_z": pool_en_z,
        "sim_specific": specific,
        "sim_en_specific": specific_en,
        "other_closest": other_closest,
        "foreign": 1.0 if _foreign(text) else 0.0,
        "foreign_sim_z": ((sim - mean_sim) / (std_sim + 1e-3)) if _foreign(text) else 0.0,
        "skill_overlap": skill_overlap,
        "alternative": 1.0 if names_alternative(view, passage_terms) else 0.0,
        "doing": doing,
        "describing": describing,
        "in_work": in_work,
        "in_list": in_list,
        "in_study": in_study,
        "in_cert": in_cert,
        "is_list": 1.0 if _is_list(text) else 0.0,
        "held": held,
        "not_yet": not_yet,
        "licence_req": licence,
        "licence_held": licence * held * (1.0 - not_yet),
        "exp_req_study": experience * (in_study + describing > 0),
        "exp_req_describing": experience * describing * (1.0 - doing),
        "role_describing": 1.0 if _DESCRIBING.search(passage.role_line) else 0.0,
        "has_role": 1.0 if passage.role_months is not None else 0.0,
        "role_years": min(10.0, role_years or 0.0) / 10.0,
        "years_fit": years_fit,
        "short": 1.0 if len(text.split()) <= 3 else 0.0,
    }
    for a, b in INTERACTIONS:
        values[f"{a}*{b}"] = values[a] * values[b]
    return np.array([values[name] for name in PAIR_FEATURES], dtype=np.float64)


# --- the model ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class JudgeModel:
    """Logistic pair scorer plus a Platt map from the best pair scores (and the resume's
    context) to P(met)."""

    version: str
    weights: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    platt_a: float
    platt_b: float
    rank_alpha: float = 0.5
    platt_c: float = 0.0  # weight of the second-best passage's logit
    # Weight of the resume's context: the mean best-passage logit of the posting's *other*
    # requirements (a resume that shows the rest of the posting is likelier to meet this).
    platt_d: float = 0.0
    context_mean: float = 0.0  # the context is centred on its development mean
    # Weight of the resume being written in another language than the posting's English
    # (German, French…): the pair scorer reads such lines more cautiously than their
    # evidence warrants (its similarity in English and word overlap mean little there), and
    # the calibration corrects it like the rest, fitted on development data.
    platt_e: float = 0.0
    # Which mean of the probabilities the overall score is: 1 the weighted arithmetic mean, 0
    # the weighted geometric mean (one requirement with no evidence weighs more); fitted.
    rank_power: float = 1.0
    # How many times a must-have weighs against a nice-to-have in the overall score; fitted.
    must_weight: float = MUST_HAVE_WEIGHT
    meta: dict[str, Any] = field(default_factory=dict)
    # The pair scorer fitted without the features that compare a line with the posting's
    # other requirements (:data:`COMPARATIVE`): a posting of one requirement is judged by it.
    solo_weights: np.ndarray | None = None
    # Shallow boosted trees over the line's own signals (:data:`TREE_FEATURES`), fitted
    # from the logistic scorer's logit: corrections it cannot express with one weight per
    # feature (see :mod:`are_workers.services.matching.boosting`).
    trees: Trees | None = None

    def linear_logit(self, features: np.ndarray) -> np.ndarray:
        """The logistic scorer's part of the pair scores. A row whose comparative features
        cannot be measured (NaN: no other requirement to compare the line with) is scored
        by :attr:`solo_weights`."""
        z = (features - self.mean) / self.scale
        unmeasured = np.isnan(z).any(axis=1)
        z = np.nan_to_num(z)
        logits = z @ self.weights
        if unmeasured.any() and self.solo_weights is not None:
            logits[unmeasured] = z[unmeasured] @ self.solo_weights
        return logits

    def pair_logit(self, features: np.ndarray) -> np.ndarray:
        """The pair scores: the logistic scorer's, corrected by the trees."""
        logits = self.linear_logit(features)
        if self.trees is not None:
            logits = logits + self.trees.predict(tree_inputs(features))
        return logits

    def probability(
        self,
        logit: float,
        second: float | None = None,
        context: float | None = None,
        *,
        foreign: bool = False,
    ) -> float:
        """P(requirement met) from the best passage's logit (and the second best's: two
        lines that each half-show it are more than one; the resume's context, see
        :func:`resume_contexts`; and whether the resume is written in another language
        than English, :attr:`ResumeView.foreign`)."""
        z = self.platt_a * logit + self.platt_b
        if second is not None:
            z += self.platt_c * second
        if context is not None:
            z += self.platt_d * (context - self.context_mean)
        if foreign:
            z += self.platt_e
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))

    def digest(self) -> str:
        """A fingerprint of everything that decides a probability (the coefficients, the
        calibration and the ranking's choices, as written to JSON): the model's version ends
        with it, so stored evaluations of two different fits never share a version."""
        fitted = {k: v for k, v in self.to_json().items() if k not in ("version", "meta")}
        canonical = json.dumps(fitted, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:10]

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "features": list(FEATURES),
            "weights": [round(float(w), 6) for w in self.weights],
            "mean": [round(float(m), 6) for m in self.mean],
            "scale": [round(float(s), 6) for s in self.scale],
            "platt": [
                round(self.platt_a, 6),
                round(self.platt_b, 6),
                round(self.platt_c, 6),
                round(self.platt_d, 6),
                round(self.platt_e, 6),
            ],
            "context_mean": round(self.context_mean, 6),
            "rank_alpha": self.rank_alpha,
            "rank_power": self.rank_power,
            "must_weight": self.must_weight,
            "solo_weights": None
            if self.solo_weights is None
            else [round(float(w), 6) for w in self.solo_weights],
            # Only a model with trees names them, so a model without keeps its digest.
            **({} if self.trees is None else {"trees": self.trees.to_json()}),
            "meta": self.meta,
        }

    def to_text(self) -> str:
        """The JSON as committed: indented, with each list of numbers on one line (the
        trees are hundreds of short lists; one number a line would double the file)."""
        text = json.dumps(self.to_json(), indent=1)
        return (
            _NUMBER_LIST.sub(
                lambda m: "[" + ", ".join(v.strip().rstrip(",") for v in m[1].split("\n")) + "]",
                text,
            )
            + "\n"
        )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JudgeModel:
        if list(data["features"]) != list(FEATURES):
            raise ValueError("judge model features do not match this code: retrain it")
        return cls(
            version=str(data["version"]),
            weights=np.array(data["weights"], dtype=np.float64),
            mean=np.array(data["mean"], dtype=np.float64),
            scale=np.array(data["scale"], dtype=np.float64),
            platt_a=float(data["platt"][0]),
            platt_b=float(data["platt"][1]),
            platt_c=float(data["platt"][2]) if len(data["platt"]) > 2 else 0.0,
            platt_d=float(data["platt"][3]) if len(data["platt"]) > 3 else 0.0,
            platt_e=float(data["platt"][4]) if len(data["platt"]) > 4 else 0.0,
            context_mean=float(data.get("context_mean", 0.0)),
            rank_alpha=float(data.get("rank_alpha", 0.5)),
            rank_power=float(data.get("rank_power", 1.0)),
            must_weight=float(data.get("must_weight", MUST_HAVE_WEIGHT)),
            meta=dict(data.get("meta", {})),
            solo_weights=None
            if data.get("solo_weights") is None
            else np.array(data["solo_weights"], dtype=np.float64),
            trees=_trees_from_json(data.get("trees")),
        )


_NUMBER_LIST = re.compile(r"\[\n\s*([^\[\]{}\"]*?)\n\s*\]")


def _trees_from_json(data: dict[str, Any] | None) -> Trees | None:
    if data is None:
        return None
    if tuple(data["columns"]) != TREE_FEATURES:
        raise ValueError("judge model trees read other features than this code: retrain it")
    return Trees.from_json(data)


@lru_cache(maxsize=1)
def default_model() -> JudgeModel:
    raw = resources.files("are_workers.data").joinpath("judge_model.json").read_text()
    return JudgeModel.from_json(json.loads(raw))


# --- judging ----------------------------------------------------------------------------------


@dataclass
class ResumeView:
    """A resume prepared for judging: its passages, their vectors and terms."""

    parsed: ParsedResume
    passages: list[Passage]
    vectors: np.ndarray
    terms: list[set[str]]
    skills: list[set[str]]
    #: The same passages by the second (English sentence) model, when one is given.
    aux_vectors: np.ndarray | None = None

    @cached_property
    def foreign(self) -> bool:
        """Written in another language than the postings' English (the language the
        resume was stored with, else guessed from its function words; an undetermined one
        reads as English)."""
        language = self.parsed.language or detect_language(self.parsed.text).code
        return language not in ("en", UNDETERMINED)


def read_resume(
    text: str,
    encode_passages: EncodeFn,
    *,
    taxonomy: SkillTaxonomy | None = None,
    today: date | None = None,
    encode_aux: EncodeFn | None = None,
) -> ResumeView:
    taxonomy = taxonomy or get_taxonomy()
    parsed = parse_resume(text, taxonomy=taxonomy, today=today)
    passages = passages_of(parsed)
    texts = [p.text for p in passages]
    empty = np.zeros((0, 1), dtype=np.float32)
    return ResumeView(
        parsed,
        passages,
        encode_passages(texts) if passages else empty,
        [_terms(p.text) for p in passages],
        [_skills(taxonomy, p.text) for p in passages],
        aux_vectors=(encode_aux(texts) if passages else empty) if encode_aux else None,
    )


def requirement_view(requirement: Requirement, taxonomy: SkillTaxonomy) -> RequirementView:
    text = requirement.text
    return RequirementView(
        requirement,
        _terms(text),
        _asked_skills(taxonomy, text),
        bool(_LICENCE_REQ.search(text)),
        bool(_EXPERIENCE_REQ.search(text)),
        requirement.min_years if requirement.min_years is not None else min_years(text),
        alternatives=alternatives(text),
        language=language_ask(text),
        level=level_ask(text),
        team=team_ask(text),
    )


def prepare_requirements(
    requirements: Sequence[Requirement],
    encode_queries: EncodeFn,
    *,
    taxonomy: SkillTaxonomy | None = None,
    encode_aux: EncodeFn | None = None,
) -> list[RequirementView]:
    """Each requirement's view and vectors, computed once for the whole pool of resumes."""
    if not requirements:
        return []
    taxonomy = taxonomy or get_taxonomy()
    texts = [r.text for r in requirements]
    queries = encode_queries(texts)
    aux = encode_aux(texts) if encode_aux is not None else None
    views = []
    for i, requirement in enumerate(requirements):
        view = requirement_view(requirement, taxonomy)
        view.query = queries[i]
        view.aux_query = aux[i] if aux is not None else None
        if len(requirements) > 1:
            view.others = np.delete(queries, i, axis=0)
            view.aux_others = np.delete(aux, i, axis=0) if aux is not None else None
        views.append(view)
    return views


def pool_idf(resumes: Sequence[ResumeView]) -> dict[str, float]:
    """Inverse document frequency of each term over the passages of the resumes judged
    together (BM25's idf): a term most candidates write ("managed") counts for little, a
    specific one ("NMC", "Kubernetes") for much."""
    counts: dict[str, int] = {}
    total = 0
    for resume in resumes:
        for terms in resume.terms:
            total += 1
            for term in terms:
                counts[term] = counts.get(term, 0) + 1
    return {t: math.log(1 + (total - n + 0.5) / (n + 0.5)) for t, n in counts.items()}


#: Pool statistics need a pool: fewer resumes than this leave the pool features at 0.
POOL_MIN = 5
POOL_MIN_SPREAD = 0.02


def _pool_z(sim: float, norms: tuple[float, float] | None) -> float:
    if norms is None:
        return 0.0
    mean, std = norms
    return max(-4.0, min(4.0, (sim - mean) / max(std, POOL_MIN_SPREAD)))


def pool_norms(requirements: Sequence[RequirementView], resumes: Sequence[ResumeView]) -> None:
    """How close the pool's resumes come to each requirement, for comparing a passage with
    the other candidates' best ones: some requirements are written so that every
    similarity is low ("leading a team of three or more"), others so that every one is
    high. Sets ``pool_sim`` and ``pool_aux`` on each requirement view; a pool under
    ``POOL_MIN`` resumes says nothing about that (the features stay 0, "typical")."""
    readable = [r for r in resumes if r.passages]
    if len(readable) < POOL_MIN:
        return
    for view in requirements:
        if view.query is not None and readable:
            best = np.array([float((r.vectors @ view.query).max()) for r in readable])
            view.pool_sim = (float(best.mean()), float(best.std()))
        if view.aux_query is not None:
            aux = [r.aux_vectors for r in readable if r.aux_vectors is not None]
            if aux:
                best = np.array([float((vectors @ view.aux_query).max()) for vectors in aux])
                view.pool_aux = (float(best.mean()), float(best.std()))


def candidate_pairs(
    view: RequirementView,
    resume: ResumeView,
    query: np.ndarray,
    *,
    top: int = TOP_PASSAGES,
    idf: dict[str, float] | None = None,
    aux_query: np.ndarray | None = None,
) -> list[tuple[int, np.ndarray]]:
    """The requirement's closest passages with their features (index, features)."""
    if not resume.passages:
        return []
    if query.shape[-1] != SIMILARITY_TERMS:
        raise ValueError(
            f"the judge's coefficients were fitted on {SIMILARITY_TERMS}-dimension "
            f"multilingual vectors, and this encoder gives {query.shape[-1]}: judge with "
            "are_workers.ml.multilingual.get_encoder(), or retrain the judge "
            "(are-workers matching train-judge) with the new encoder"
        )
    sims = resume.vectors @ query
    if aux_query is not None and resume.aux_vectors is not None:
        aux = resume.aux_vectors @ aux_query
        aux_z = (aux - aux.mean()) / (aux.std() + 1e-3)
    else:
        aux = aux_z = np.zeros(len(resume.passages))
    # How much closer each line is to this requirement than to any other of the posting;
    # unmeasured (NaN: JudgeModel.pair_logit scores the row with its solo weights) for a
    # posting of one requirement.
    specific = np.full(len(resume.passages), np.nan)
    # Whether the line is the closest one of the resume to another requirement (that
    # requirement's evidence, more likely than this one's).
    taken = np.full(len(resume.passages), np.nan)
    if view.others is not None:
        others = resume.vectors @ view.others.T
        specific = sims - others.max(axis=1)
        taken = np.zeros(len(resume.passages))
        taken[others.argmax(axis=0)] = 1.0
    specific_en = np.full(len(resume.passages), np.nan)
    if view.aux_others is not None and aux_query is not None and resume.aux_vectors is not None:
        specific_en = aux - (resume.aux_vectors @ view.aux_others.T).max(axis=1)
    order = np.argsort(-sims, kind="stable")
    chosen = list(order[:top])
    # A passage naming a required skill, or one of the requirement's examples, is read even
    # when its wording is far away.
    if view.skills:
        chosen += [i for i in range(len(resume.passages)) if resume.skills[i] & view.skills]
    if view.alternatives:
        chosen += [i for i, terms in enumerate(resume.terms) if names_alternative(view, terms)]
    if view.language:
        asked = view.language.languages
        chosen += [i for i, p in enumerate(resume.passages) if level_shown(p.text, asked)]
    chosen = list(dict.fromkeys(int(i) for i in chosen))
    best, mean, std = float(sims[order[0]]), float(sims.mean()), float(sims.std())
    return [
        (
            i,
            np.concatenate(
                [
                    pair_features(
                        view,
                        resume.passages[i],
                        sim=float(sims[i]),
                        best_sim=best,
                        mean_sim=mean,
                        std_sim=std,
                        passage_skills=resume.skills[i],
                        passage_terms=resume.terms[i],
                        role_years=_years(resume.passages[i].role_months),
                        idf=idf,
                        sim_en=float(aux[i]),
                        sim_en_z=float(aux_z[i]),
                        specific=float(specific[i]),
                        specific_en=float(specific_en[i]),
                        other_closest=float(taken[i]),
                    ),
                    resume.vectors[i] * query,  # the similarity's terms
                ]
            ),
        )
        for i in chosen
    ]


def _years(months: int | None) -> float | None:
    return months / 12 if months is not None else None


def _evidence_years(resume: ResumeView, supporting: Sequence[int]) -> float | None:
    """Years of the dated roles whose lines evidence the requirement (overlaps merged)."""
    periods = dated_roles(resume.parsed)
    roles = {r for i in supporting if (r := resume.passages[i].role_index) is not None}
    spans = sorted(
        (periods[r].start_month, periods[r].end_month) for r in roles if r < len(periods)
    )
    if not spans:
        return None
    months, current = 0, spans[0]
    for start, end in spans[1:]:
        if start <= current[1]:
            current = (current[0], max(current[1], end))
        else:
            months += current[1] - current[0]
            current = (start, end)
    months += current[1] - current[0]
    return round(months / 12, 1)


#: Sections where a credential is *held* when listed (a licence, a certificate, a language).
CREDENTIAL_SECTIONS = frozenset({"certifications", "education", "languages"})
#: The most a listed-only mention can count for: a keyword in a list shows nothing done.
LISTED_ONLY_CAP = 0.05
#: The most a credential quoted as not yet held can count for (chosen on development postings).
NOT_YET_CAP = 0.3


def listed_only(view: RequirementView, passage: Passage) -> bool:
    """A bare listing: a skills/interests line or a keyword list. It evidences a credential
    in a credentials section, and nothing else (keyword stuffing earns nothing)."""
    listed = passage.section in {"skills", "interests", "header"} or _is_list(passage.text)
    if listed and view.language:
        # "German B2 (Goethe-Zertifikat)" in a languages line is the evidence itself.
        shown = level_shown(passage.text, view.language.languages)
        return shown is None or shown[0] < view.language.level
    return listed and not (view.licence and passage.section in CREDENTIAL_SECTIONS)


#: The most a language stated below the level asked can count for (and a numbered
#: qualification level or band below the one asked: "Level 2" for "Level 3 or higher").
LEVEL_SHORT_CAP = 0.3

_LEVEL_ASK = re.compile(r"\b(?:level|band|niveau|stufe)\s*([1-8])\b", re.IGNORECASE)
#: In a resume line also the short form ("L3 Food Hygiene", "NVQ 3").
_LEVEL_SHOWN = re.compile(r"\b(?:(?:level|band|niveau|stufe|nvq)\s*|l)([1-8])\b", re.IGNORECASE)


def level_ask(text: str) -> int | None:
    """The lowest numbered qualification level or band a requirement accepts ("a Level 3
    (or higher) certificate", "Band 6 or above"); ``None`` if it names none."""
    asked = [int(level) for level in _LEVEL_ASK.findall(text)]
    return min(asked) if asked else None


def _all_below(shown: Sequence[int], least: int | None) -> bool:
    """A line states a number (a level, a team size), and every one it states is below the
    least the requirement accepts."""
    return least is not None and bool(shown) and max(shown) < least


def level_short(view: RequirementView, passage: Passage) -> bool:
    """The line states a numbered level or band, and every one it states is below the
    lowest the requirement accepts: a Level 2 certificate does not show a Level 3."""
    shown = [int(level) for level in _LEVEL_SHOWN.findall(passage.text)]
    return _all_below(shown, view.level)


_COUNT_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20,
    "zwei": 2, "drei": 3, "vier": 4, "fünf": 5, "sechs": 6, "sieben": 7, "acht": 8, "neun": 9,
    "zehn": 10, "zwölf": 12, "deux": 2, "trois": 3, "quatre": 4, "cinq": 5, "sept": 7,
    "huit": 8, "neuf": 9, "dix": 10, "douze": 12,
}  # fmt: skip
_COUNT = r"(\d{1,5}|" + "|".join(_COUNT_WORDS) + r")"
_TEAM = r"(?:team|brigade|headcount|workforce|crew|équipe|equipe|belegschaft)"
_PEOPLE = (
    r"(?:people|persons?|staff|employees|colleagues|chefs?|cooks?|engineers?|accountants?|"
    r"nurses?|(?:direct )?reports|team members|operatives|agents|technicians|teachers|FTEs?|"
    r"mitarbeiter\w*|personen|köch\w*|beschäftigte\w*|kolleg\w*|fachkräfte\w*|"
    r"pflegekräfte\w*|personnes|collaborat\w*|cuisinier\w*|salarié\w*|employé\w*|"
    r"infirmi\w*|ingénieur\w*)"
)
_TEAM_ASK = re.compile(
    rf"\b{_TEAM}\s+of\s+(?:at least\s+)?{_COUNT}\s*(?:\+|or more|or above|or larger)|"
    rf"\b(?:at least\s+)?{_COUNT}\s*(?:\+|or more)\s+(?:[\w-]+\s+)?{_PEOPLE}\b|"
    rf"\bat least\s+{_COUNT}\s+(?:[\w-]+\s+)?{_PEOPLE}\b",
    re.IGNORECASE,
)
_TEAM_SHOWN = re.compile(
    rf"\b{_TEAM}\s+(?:of|de|d'|von|mit)\s*(?:around|about|up to|some|environ|rund|ca\.)?\s*"
    rf"{_COUNT}\b|\b{_COUNT}\s+(?:[\w-]+\s+)?{_PEOPLE}\b",
    re.IGNORECASE,
)


def _count(word: str) -> int:
    return int(word) if word.isdigit() else _COUNT_WORDS[word.casefold()]


def team_ask(text: str) -> int | None:
    """The smallest team a requirement accepts ("a brigade of 8 or more chefs", "a headcount
    of 80 or more", "at least three direct reports"); ``None`` if it asks none."""
    asked = [_count(a or b or c) for a, b, c in _TEAM_ASK.findall(text)]
    return min(asked) if asked else None


def team_short(view: RequirementView, passage: Passage) -> bool:
    """The line states the size of a team, and every size it states is below the smallest
    the requirement accepts: leading a brigade of 4 does not show a brigade of 8."""
    shown = [_count(a or b) for a, b in _TEAM_SHOWN.findall(passage.text)]
    return _all_below(shown, view.team)


def _language_level(view: RequirementView, resume: ResumeView) -> tuple[int, str, int] | None:
    """(level, language, passage): the best level the resume states for a language the
    requirement asks for, or ``None`` (none asked, or no level stated)."""
    if view.language is None:
        return None
    found = [
        (shown[0], passage.section in CREDENTIAL_SECTIONS, -i, shown[1])
        for i, passage in enumerate(resume.passages)
        if (shown := level_shown(passage.text, view.language.languages))
    ]
    if not found:
        return None
    # The highest level; at equal levels the languages (or credentials) line, then the first.
    level, _, index, language = max(found)
    return level, language, -index


#: The best-passage logit of a requirement with no passage at all (an unreadable resume).
NO_PASSAGE_LOGIT = -10.0

Scored = tuple[list[tuple[int, np.ndarray]], np.ndarray]


def score_pairs(
    model: JudgeModel,
    view: RequirementView,
    resume: ResumeView,
    idf: dict[str, float] | None = None,
) -> Scored:
    """The requirement's candidate passages (index, features) and each one's pair logit."""
    if view.query is None:
        raise ValueError("prepare the requirements first (prepare_requirements)")
    pairs = candidate_pairs(view, resume, view.query, idf=idf, aux_query=view.aux_query)
    if not pairs:
        return pairs, np.zeros(0)
    return pairs, model.pair_logit(np.stack([f for _, f in pairs]))


def top_two(logits: np.ndarray) -> tuple[float, float]:
    """The best and second-best pair logits (a lone passage's second is 5 below it; no
    passage at all reads as :data:`NO_PASSAGE_LOGIT`)."""
    if not len(logits):
        return NO_PASSAGE_LOGIT, NO_PASSAGE_LOGIT - 5.0
    ordered = np.sort(logits)[::-1]
    best = float(ordered[0])
    return best, float(ordered[1]) if len(ordered) > 1 else best - 5.0


def resume_contexts(bests: Sequence[float]) -> list[float | None]:
    """For each requirement, the mean best-passage logit of the posting's other
    requirements in this resume: how well the rest of the resume shows the posting. The
    calibration weighs it beside the requirement's own passages, fitted on development
    data like the rest. ``None`` (no context) for a posting's only requirement."""
    if len(bests) < 2:
        return [None] * len(bests)
    total = sum(bests)
    return [(total - b) / (len(bests) - 1) for b in bests]


def judge_requirement(
    model: JudgeModel,
    view: RequirementView,
    resume: ResumeView,
    scored: Scored,
    context: float | None = None,
) -> Verdict:
    requirement = view.requirement
    pairs, logits = scored
    if not pairs:
        return Verdict(requirement, 0.0, False, None, "The resume has no readable text.")
    order = [int(k) for k in np.argsort(-logits, kind="stable")]
    _, second = top_two(logits)
    probabilities = [
        model.probability(float(logits[k]), second, context, foreign=resume.foreign)
        for k in range(len(pairs))
    ]
    below = [
        level_short(view, resume.passages[i]) or team_short(view, resume.passages[i])
        for i, _ in pairs
    ]
    if any(below):
        probabilities = [
            min(p, LEVEL_SHORT_CAP) if short else p
            for p, short in zip(probabilities, below, strict=True)
        ]
        order = sorted(order, key=lambda k: (-probabilities[k], -float(logits[k])))
    listed = [listed_only(view, resume.passages[i]) for i, _ in pairs]
    # The cited passage: the best one that shows the requirement; a listing counts only up
    # to the cap, and only when nothing shown counts for more.
    shown = [k for k in order if not listed[k]]
    pick = shown[0] if shown else order[0]
    probability = probabilities[pick] if shown else 0.0
    capped = False
    if listed[order[0]] and min(probabilities[order[0]], LISTED_ONLY_CAP) > probability:
        pick, probability, capped = order[0], LISTED_ONLY_CAP, True
    best_i, pick_logit = pairs[pick][0], float(logits[pick])
    supporting = [pairs[k][0] for k in order if probabilities[k] >= MET and not listed[k]]
    years = _evidence_years(resume, supporting) if supporting else None
    needed = view.years
    too_short = bool(probability >= MET and needed and (years or 0.0) < needed)
    if too_short:
        # The line shows the work; the dated roles show too little of it (or none does):
        # not met, just below the line (a shorter tenure still ranks above no evidence).
        probability = min(probability, MET - 0.01)
    passage = resume.passages[best_i]
    not_yet = bool(view.licence and _NOT_YET.search(passage.sentence))
    if probability >= MET and not_yet:
        # A credential asked for, quoted as not yet held ("registration pending", "en
        # cours de qualification"): the quote shows it is missing.
        probability = min(probability, NOT_YET_CAP)
    stated = _language_level(view, resume)
    asked = view.language.level if view.language is not None else 0
    short = stated is not None and stated[0] < asked
    if stated is not None:
        # The resume says how well it speaks the language: that line is the evidence, at
        # the level asked or below it.
        passage = resume.passages[stated[2]]
        probability = min(probability, LEVEL_SHORT_CAP) if short else max(probability, MET)
    met = probability >= MET
    uncertain = False
    quoted_only = False  # a ✘ that quotes its closest line, not a rule's reason
    if met:
        rationale = "Evidenced in the " + passage.section + " section"
        if years is not None:
            rationale += f"; about {years:g} years in the roles that show it"
        if needed:
            rationale += f" (asked: {needed:g})"
    elif capped:
        rationale = "Only listed (a keyword, not shown in the work history)"
    elif short and stated is not None:
        level, language, _ = stated
        rationale = f"{language} at {LEVEL_NAMES[level]}, below the {LEVEL_NAMES[asked]} asked"
    elif not_yet:
        rationale = "Not yet held: the quoted passage says it is in progress"
    elif level_short(view, passage):
        rationale = f"A lower level or band than the {view.level} asked"
    elif team_short(view, passage):
        rationale = f"A smaller team than the {view.team} asked"
    elif too_short:
        uncertain = True
        rationale = (
            f"Shown, but not for long enough: the dated roles whose lines show it add up to "
            f"about {years or 0:g} of the {needed:g} years asked"
        )
    elif (line := model.probability(pick_logit, second, foreign=resume.foreign)) > UNCERTAIN:
        uncertain = True
        rationale = (
            f"Uncertain: the quoted line reads as evidence at {line:.0%} on its own and the "
            f"requirement at {probability:.0%}, below the {MET:.0%} a ✔ needs; a person should "
            "read it"
        )
        quoted_only = True
    else:
        rationale = "Not evidenced; the closest passage is quoted, it does not show it"
        quoted_only = True
    if needed and quoted_only:
        # Years asked: what the quoted line's own dated role adds up to, for the reader.
        role = _evidence_years(resume, [best_i])
        rationale += (
            f" (its dated role: about {role:g} of the {needed:g} years asked)"
            if role is not None
            else f" (no dated role shows it; {needed:g} years asked)"
        )
    return Verdict(
        requirement,
        round(probability, 4),
        met,
        passage,
        rationale + ".",
        years=years,
        passage_score=round(pick_logit, 4),
        uncertain=uncertain,
    )


#: The geometric mean reads a probability no lower than this (log 0 is undefined; the
#: calibrated probabilities stay above it in practice).
_PROBABILITY_FLOOR = 1e-3


def power_mean(values: Sequence[float], weights: Sequence[float], power: float) -> float:
    """The weighted power mean: 1 arithmetic, 0 geometric (the limit), between the two."""
    total = sum(weights) or 1.0
    if power == 0:
        logs = sum(
            w * math.log(max(v, _PROBABILITY_FLOOR)) for v, w in zip(values, weights, strict=True)
        )
        return math.exp(logs / total)
    mean = sum(w * max(v, 0.0) ** power for v, w in zip(values, weights, strict=True)) / total
    return float(mean ** (1 / power))


def aggregate(verdicts: Sequence[Verdict], model: JudgeModel) -> tuple[float, float | None, float]:
    """(overall 0..100, expected share of must-haves met, ranking score).

    The overall score is the weighted mean of the probabilities, of the kind the model was
    fitted with (``rank_power``: arithmetic, or geometric where a requirement nobody
    evidenced pulls the score down further than an average would).
    """
    if not verdicts:
        return 0.0, None, 0.0
    weights = [
        v.requirement.weight * (model.must_weight if v.requirement.must_have else 1.0)
        for v in verdicts
    ]
    overall = 100 * power_mean([v.probability for v in verdicts], weights, model.rank_power)
    musts = [v.probability for v in verdicts if v.requirement.must_have]
    coverage = sum(musts) / len(musts) if musts else None
    factor = (1 - model.rank_alpha) + model.rank_alpha * coverage if coverage is not None else 1.0
    return (
        round(overall, 2),
        None if coverage is None else round(coverage, 4),
        round(overall * factor, 4),
    )


def judge_resume(
    resume: ResumeView,
    requirements: Sequence[RequirementView],
    *,
    model: JudgeModel | None = None,
    idf: dict[str, float] | None = None,
) -> Judgement:
    """Every requirement (prepared by :func:`prepare_requirements`) against one resume."""
    model = model or default_model()
    scored = [score_pairs(model, view, resume, idf) for view in requirements]
    contexts = resume_contexts([top_two(logits)[0] for _, logits in scored])
    verdicts = [
        judge_requirement(model, view, resume, pairs, context)
        for view, pairs, context in zip(requirements, scored, contexts, strict=True)
    ]
    overall, coverage, rank = aggregate(verdicts, model)
    return Judgement(verdicts, overall, coverage, rank, f"{JUDGE_NAME}@{model.version}")


# --- without a database: a posting against resume texts -----------------------------------------


def requirements_from_posting(markdown: str) -> list[Requirement]:
    """The posting's requirements as the product parses them (``parse_job_markdown``)."""
    from are_workers.services.matching.postings import parse_job_markdown

    spec = parse_job_markdown(markdown)
    return [
        Requirement(
            key=f"req:{i}",
            text=r.text,
            must_have=r.must_have,
            kind=r.kind.value,
            min_years=r.min_years,
        )
        for i, r in enumerate(spec.requirements)
    ]


def evaluate(
    posting_md: str,
    resumes: dict[str, str],
    *,
    model: JudgeModel | None = None,
    today: date | None = None,
    encoder: Any = None,
    encode_aux: EncodeFn | None = None,
) -> dict[str, Judgement]:
    """Judge every resume text against a posting (the quality bench and tests use this; the
    job path calls the same functions with stored rows)."""
    from are_workers.ml.multilingual import get_encoder

    encoder = encoder or get_encoder()
    if encode_aux is None:
        # The coefficients were fitted with the English sentence model's similarity as a
        # feature: judging without it would read those features as 0 and shift every
        # probability (the job path passes the same model).
        from are_workers.services.embeddings import default_embedding_context

        encode_aux = default_embedding_context().embed
    taxonomy = get_taxonomy()
    wanted = prepare_requirements(
        requirements_from_posting(posting_md),
        encoder.queries,
        taxonomy=taxonomy,
        encode_aux=encode_aux,
    )
    views = {
        resume_id: read_resume(
            text, encoder.passages, taxonomy=taxonomy, today=today, encode_aux=encode_aux
        )
        for resume_id, text in resumes.items()
    }
    idf = pool_idf(list(views.values()))
    pool_norms(wanted, list(views.values()))
    return {
        resume_id: judge_resume(view, wanted, model=model, idf=idf)
        for resume_id, view in views.items()
    }
