"""Skill normalisation against the curated taxonomy in ``data/skills_taxonomy.json``.

Why a curated list instead of free-text skills: matching "psql" in a resume to "PostgreSQL" in
a job posting is what makes a skill overlap score meaningful, and the same canonical names are
what a recruiter filters on. Matching is case-insensitive on word boundaries, so "Java" never
fires inside "JavaScript" and "SQL" never fires inside "PostgreSQL". Short, ambiguous tokens
("RN", "R", "Go", "Excel") are listed as case-sensitive aliases: they match only as written.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from are_workers.models.jobs import Skill as SkillRow

__all__ = ["Skill", "SkillMatch", "SkillTaxonomy", "get_taxonomy", "skill_ids", "slugify"]

# A skill may not continue into a word on either side. "+" and "#" count as word characters
# so that "C" does not match inside "C++" or "C#".
_LEFT_BOUNDARY = r"(?<![\w+#])"
_RIGHT_BOUNDARY = r"(?![\w+#]|\.\w)"  # "github.com" is a link, not Git
# One- and two-letter aliases ("C", "R", "Go") also refuse neighbours that make them part of
# something else: "R&D", "C-suite", "John R. Smith", "Go-to-market".
# A single capital after "Grade", "Vitamin", "Ward"... is a label, not a language.
_LABEL_WORDS = (
    "grade",
    "vitamin",
    "hepatitis",
    "hep",
    "class",
    "type",
    "level",
    "plan",
    "part",
    "section",
    "tier",
    "phase",
    "building",
    "suite",
    "unit",
    "ward",
    "wing",
    "room",
    "floor",
    "appendix",
)
_SHORT_LEFT_BOUNDARY = r"(?<![\w+#&/.\-])" + "".join(f"(?<!(?i:{w}) )" for w in _LABEL_WORDS)
_SHORT_RIGHT_BOUNDARY = r"(?![\w+#&/\-]|\.\w|\.\s*[A-Z])"


@dataclass(frozen=True, slots=True)
class Skill:
    """One canonical skill and the spellings that mean it.

    ``broader``: the skills it is a kind of ("Manhattan WMS" is a warehouse management
    system, "Epic" an electronic health record, "Gong" a conversation intelligence tool), so
    that a line naming the product speaks to a requirement that names the kind."""

    name: str
    category: str
    aliases: tuple[str, ...] = ()
    case_sensitive_aliases: tuple[str, ...] = ()
    broader: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SkillMatch:
    """One occurrence of a skill in a text; offsets index the text that was searched."""

    name: str
    category: str
    surface: str
    start: int
    end: int


def _alias_pattern(alias: str) -> str:
    """Regex for one alias: its words may be separated by any run of spaces or hyphens."""
    words = re.split(r"[\s\-]+", alias.strip())
    body = r"[\s\-]+".join(re.escape(word) for word in words if word)
    if len(alias.strip()) <= 2:
        return _SHORT_LEFT_BOUNDARY + body + _SHORT_RIGHT_BOUNDARY
    return _LEFT_BOUNDARY + body + _RIGHT_BOUNDARY


def _alternation(aliases: Iterable[str]) -> str:
    # Longest first, so "Ruby on Rails" wins over "Ruby" and "Google Analytics" over "analytics".
    ordered = sorted(set(aliases), key=lambda alias: (-len(alias), alias))
    return "|".join(_alias_pattern(alias) for alias in ordered)


class SkillTaxonomy:
    """The canonical skills and a compiled matcher over all their aliases."""

    def __init__(self, skills: Iterable[Skill], *, version: str = "") -> None:
        self.version = version
        self._skills: dict[str, Skill] = {}
        self._by_insensitive: dict[str, Skill] = {}
        self._by_sensitive: dict[str, Skill] = {}
        for skill in skills:
            if skill.name.casefold() in self._skills:
                raise ValueError(f"duplicate skill in taxonomy: {skill.name!r}")
            self._skills[skill.name.casefold()] = skill
            insensitive = list(skill.aliases)
            if skill.name not in skill.case_sensitive_aliases:
                insensitive.append(skill.name)
            for alias in insensitive:
                self._register(self._by_insensitive, alias.casefold(), skill)
            for alias in skill.case_sensitive_aliases:
                self._register(self._by_sensitive, alias, skill)
        for skill in self._skills.values():
            for kind in skill.broader:
                if kind.casefold() not in self._skills:
                    raise ValueError(f"{skill.name!r} is a kind of unknown skill {kind!r}")
        self._insensitive_re = re.compile(_alternation(self._by_insensitive), re.IGNORECASE)
        self._sensitive_re = (
            re.compile(_alternation(self._by_sensitive)) if self._by_sensitive else None
        )

    @staticmethod
    def _register(index: dict[str, Skill], key: str, skill: Skill) -> None:
        key = " ".join(re.split(r"[\s\-]+", key.strip()))
        existing = index.get(key)
        if existing is not None and existing.name != skill.name:
            raise ValueError(f"alias {key!r} maps to both {existing.name!r} and {skill.name!r}")
        index[key] = skill

    @classmethod
    def from_file(cls, path: Path) -> SkillTaxonomy:
        """Load a taxonomy JSON (``{"version": ..., "skills": [{name, category, aliases}]}``)."""
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))

    @classmethod
    def from_dict(cls, document: dict[str, object]) -> SkillTaxonomy:
        raw_skills = document.get("skills")
        if not isinstance(raw_skills, list):
            raise ValueError("taxonomy JSON needs a 'skills' list")
        skills = [
            Skill(
                name=entry["name"],
                category=entry.get("category", "other"),
                aliases=tuple(entry.get("aliases", ())),
                case_sensitive_aliases=tuple(entry.get("case_sensitive_aliases", ())),
                broader=tuple(entry.get("broader", ())),
            )
            for entry in raw_skills
        ]
        return cls(skills, version=str(document.get("version", "")))

    def __len__(self) -> int:
        return len(self._skills)

    def __iter__(self) -> Iterator[Skill]:
        return iter(self._skills.values())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.casefold() in self._skills

    def get(self, name: str) -> Skill | None:
        """The skill whose canonical name is ``name`` (any case)."""
        return self._skills.get(name.casefold())

    def with_broader(self, names: Iterable[str]) -> set[str]:
        """``names`` and every skill they are a kind of, transitively (canonical names)."""
        out: set[str] = set()
        pending = list(names)
        while pending:
            skill = self._skills.get(pending.pop().casefold())
            if skill is None or skill.name in out:
                continue
            out.add(skill.name)
            pending.extend(skill.broader)
        return out

    def normalise(self, term: str) -> str | None:
        """Canonical name for one term as a person typed it ("psql" -> "PostgreSQL"), or None."""
        key = " ".join(re.split(r"[\s\-]+", term.strip()))
        skill = self._by_sensitive.get(key) or self._by_insensitive.get(key.casefold())
        return skill.name if skill else None

    def find(self, text: str) -> list[SkillMatch]:
        """Every skill mention in ``text``, in order, never two overlapping.

        Overlaps are resolved by taking the longer mention ("Ruby on Rails" over "Ruby").
        """
        candidates: list[tuple[int, int, Skill]] = []
        for match in self._insensitive_re.finditer(text):
            key = " ".join(re.split(r"[\s\-]+", match.group(0))).casefold()
            candidates.append((match.start(), match.end(), self._by_insensitive[key]))
        if self._sensitive_re is not None:
            for match in self._sensitive_re.finditer(text):
                key = " ".join(re.split(r"[\s\-]+", match.group(0)))
                candidates.append((match.start(), match.end(), self._by_sensitive[key]))
        candidates.sort(key=lambda item: (item[0], -(item[1] - item[0])))
        matches: list[SkillMatch] = []
        last_end = -1
        for start, end, skill in candidates:
            if start < last_end:
                continue
            matches.append(SkillMatch(skill.name, skill.category, text[start:end], start, end))
            last_end = end
        return matches

    def canonical_skills(self, text: str) -> list[str]:
        """Distinct canonical skill names in ``text``, in order of first mention."""
        return list(dict.fromkeys(match.name for match in self.find(text)))


@lru_cache(maxsize=1)
def get_taxonomy() -> SkillTaxonomy:
    """The packaged taxonomy, parsed and compiled once per process."""
    source = resources.files("are_workers").joinpath("data/skills_taxonomy.json")
    return SkillTaxonomy.from_dict(json.loads(source.read_text(encoding="utf-8")))


# --- the shared ``skills`` table ------------------------------------------------------------


def slugify(name: str) -> str:
    slug = "".join(ch if ch.isalnum() or ch in "+#." else "-" for ch in name.lower()).strip("-.")
    while "--" in slug:
        slug = slug.replace("--", "-")
    return slug or "skill"


def skill_ids(
    session: Session, taxonomy: SkillTaxonomy, names: Sequence[str]
) -> dict[str, uuid.UUID]:
    """Ids of the shared ``skills`` rows for these taxonomy skills, created when missing.

    Only the skills a document mentions are upserted, so the global table fills as it is
    used and a job never writes the whole taxonomy.

    Rows go in sorted by slug: two transactions inserting overlapping new skills in the
    order their documents mention them would each wait for the other's uncommitted index
    tuple (a deadlock). In one order, the later one just waits for the first to commit.
    """
    wanted = {slugify(name): taxonomy.get(name) for name in names if taxonomy.get(name)}
    if not wanted:
        return {}
    rows = [
        {"name": skill.name, "slug": slug, "category": skill.category}
        for slug, skill in sorted(wanted.items())
        if skill is not None
    ]
    session.execute(insert(SkillRow).values(rows).on_conflict_do_nothing(index_elements=["slug"]))
    found = session.execute(
        select(SkillRow.slug, SkillRow.id).where(SkillRow.slug.in_(list(wanted)))
    )
    return {wanted[slug].name: skill_id for slug, skill_id in found if wanted.get(slug)}  # type: ignore[union-attr]
