"""Resume sections found by layout and wording when a heading is not in the alias list.

The resumes here were written for these tests: unknown headings, ALL CAPS headings, none at
all, German and French headings, and a compact one-line-per-job layout.
"""

from __future__ import annotations

from datetime import date

import pytest

from are_workers.services.resumes.parsing import find_sections, parse_resume

TODAY = date(2025, 6, 15)


def _outline(text: str) -> list[tuple[str, str | None, str]]:
    sections = find_sections(text)
    for section in sections:
        assert text[section.start : section.end] == section.text
    return [(s.name, s.heading, s.text.strip().split("\n")[0]) for s in sections]


def test_unknown_headings_are_named_by_their_words() -> None:
    text = """\
Jane Smith
jane.smith@example.com · +44 7700 900123

Where I've worked
Acme Ltd — Software Engineer
Jan 2020 - Present
Built payment APIs in Python.

Toolbox
Python, Go, PostgreSQL

Studies
BSc Computer Science, University of Leeds, 2019
"""
    assert _outline(text) == [
        ("header", None, "Jane Smith"),
        ("experience", "Where I've worked", "Acme Ltd — Software Engineer"),
        ("skills", "Toolbox", "Python, Go, PostgreSQL"),
        ("education", "Studies", "BSc Computer Science, University of Leeds, 2019"),
    ]
    parsed = parse_resume(text, today=TODAY)
    assert parsed.contact.name == "Jane Smith"
    assert parsed.experience_months == 66  # Jan 2020 - Jun 2025; the 2019 degree is not work
    assert [e.institution for e in parsed.education] == ["University of Leeds"]


def test_all_caps_headings_and_an_unknown_one_after_skills() -> None:
    text = """\
TOM REED
SITE CARPENTER
tom.reed@example.com

SKILLS
Hand tools, CNC routers, AutoCAD

MY JOURNEY
Hill Joinery, Site Carpenter, 2018 - 2024
Oak & Ash Ltd, Apprentice, 2015 - 2018

LICENCES AND REGISTRATIONS
CSCS Gold Card, 2019
"""
    assert _outline(text) == [
        ("header", None, "TOM REED"),  # the name and title in capitals open the resume
        ("skills", "SKILLS", "Hand tools, CNC routers, AutoCAD"),
        ("other", "MY JOURNEY", "Hill Joinery, Site Carpenter, 2018 - 2024"),
        ("certifications", "LICENCES AND REGISTRATIONS", "CSCS Gold Card, 2019"),
    ]
    parsed = parse_resume(text, today=TODAY)
    assert parsed.years_of_experience == 9.0  # the jobs were not swallowed into skills


def test_no_headings_at_all() -> None:
    text = """\
Priya Shah, priya@example.com
Pharmacist with six years in community pharmacy.
Boots, Pharmacist, 2019 - Present. Lloyds, Pre-registration Pharmacist, 2018 - 2019.
MPharm, University of Bath, 2018.
"""
    assert [s.name for s in find_sections(text)] == ["body"]
    parsed = parse_resume(text, today=TODAY)
    assert parsed.contact.email == "priya@example.com"
    assert parsed.experience_months > 60


def test_german_headings() -> None:
    text = """\
Lena Vogel
lena.vogel@example.de

Beruflicher Werdegang
03/2019 - heute  Pflegefachkraft, Charité Berlin
Versorgung von Intensivpatienten.

Programmierkenntnisse
Python, SQL

Schulbildung
Abitur, Gymnasium Pankow, 2012

Zulassungen
Staatliche Anerkennung als Pflegefachkraft
"""
    assert [(name, heading) for name, heading, _ in _outline(text)] == [
        ("header", None),
        ("experience", "Beruflicher Werdegang"),
        ("skills", "Programmierkenntnisse"),
        ("education", "Schulbildung"),
        ("certifications", "Zulassungen"),
    ]
    assert parse_resume(text, today=TODAY).experience_months == 76


def test_french_headings() -> None:
    text = """\
Julie Martin
julie.martin@example.fr

PARCOURS PROFESSIONNEL
Comptable, Cabinet Durand, 2017 - 2024
Tenue de la comptabilité générale.

Formation
Master CCA, Université de Lyon, 2017

Savoir-faire
Excel, SAP

Habilitations
Permis B
"""
    assert [(name, heading) for name, heading, _ in _outline(text)] == [
        ("header", None),
        ("experience", "PARCOURS PROFESSIONNEL"),
        ("education", "Formation"),
        ("skills", "Savoir-faire"),
        ("certifications", "Habilitations"),
    ]
    parsed = parse_resume(text, today=TODAY)
    assert [e.level for e in parsed.education] == ["master"]


def test_compact_one_line_per_job() -> None:
    text = """\
Sam Lee, sam@example.com
CAREER SO FAR
2021-now  Lead Nurse, St Mary's Hospital
2016-2021 Staff Nurse, City Hospital
2014-2016 Healthcare Assistant, Oak Care Home
WHAT I KNOW
Triage, IV therapy, Epic
"""
    assert _outline(text) == [
        ("header", None, "Sam Lee, sam@example.com"),
        ("experience", "CAREER SO FAR", "2021-now  Lead Nurse, St Mary's Hospital"),
        ("skills", "WHAT I KNOW", "Triage, IV therapy, Epic"),
    ]
    parsed = parse_resume(text, today=TODAY)
    assert [p.section for p in parsed.employment_periods] == ["experience"] * 3
    assert parsed.years_of_experience == 11.0


def test_employer_names_and_job_titles_do_not_open_sections() -> None:
    text = """\
Ana Ruiz
ana@example.com

EXPERIENCE
GLOBEX CORPORATION
Senior Analyst, Jan 2019 - Dec 2023
Customer Experience Manager
Initech, Jan 2016 - Dec 2018

EDUCATION
BA Economics, University of Bristol, 2015
"""
    assert [name for name, _, _ in _outline(text)] == ["header", "experience", "education"]
    assert parse_resume(text, today=TODAY).experience_months == 96


def test_markdown_underlined_and_colon_headings() -> None:
    text = """\
# Ben Ito

Things I've built
=================
A Django app for booking, 2022

## Side quests
Marathon running

Extras
------
Driving licence

Responsibilities:
Not a section of its own
"""
    assert _outline(text) == [
        ("header", None, "# Ben Ito"),
        ("projects", "Things I've built", "A Django app for booking, 2022"),
        ("other", "Side quests", "Marathon running"),
        ("other", "Extras", "Driving licence"),  # "Responsibilities:" stays inside
    ]


@pytest.mark.parametrize(
    ("heading", "name"),
    [
        ("Where I've worked", "experience"),
        ("Career", "experience"),
        ("Career History", "experience"),
        ("Berufserfahrung", "experience"),
        ("Beruflicher Werdegang", "experience"),
        ("Parcours", "experience"),
        ("Expérience professionnelle", "experience"),
        ("Clinical Placements", "experience"),
        ("Toolbox", "skills"),
        ("What I know", "skills"),
        ("Kenntnisse", "skills"),
        ("Compétences", "skills"),
        ("IT Skills", "skills"),
        ("Studies", "education"),
        ("Ausbildung", "education"),
        ("Formation", "education"),
        ("Licences", "certifications"),
        ("Registrations", "certifications"),
        ("Zulassungen", "certifications"),
        ("Licences & Registrations", "certifications"),
        ("Hobbies", "interests"),
        ("Odds & Ends", "other"),
    ],
)
def test_heading_names(heading: str, name: str) -> None:
    lines = [f"## {heading}", f"{heading}\n{'-' * len(heading)}"]
    lines += [heading.upper(), f"{heading}:"] if name != "other" else []
    for line in lines:
        text = f"Alex Doe\nalex@example.com\n+44 7700 900456\n\n{line}\nSome content here\n"
        assert [s.name for s in find_sections(text)] == ["header", name], line


def test_a_resume_without_headings_at_its_top_keeps_only_its_identity_block_as_header() -> None:
    text = """\
Tomasz Wieczorek - Night Shift Manager
Leeds · open to relocation · t.wieczorek@example.com
2021-now: Night Shift Manager, Northgate Parcels. 180 staff across inbound and despatch.
Run the labour plan for peak with two agencies and a weekly forecast.

QUALIFICATIONS
IOSH Managing Safely (2022)
"""
    outline = _outline(text)
    assert [name for name, _, _ in outline] == ["header", "body", "education"]
    assert outline[0][2] == "Tomasz Wieczorek - Night Shift Manager"
    assert outline[1][2].startswith("2021-now: Night Shift Manager")
    header = find_sections(text)[0]
    assert "labour plan" not in header.text and "t.wieczorek" in header.text


def test_a_summary_sentence_under_the_name_is_not_header() -> None:
    text = """\
Amélie Roux
Experienced secondary French teacher who plans lessons for mixed-ability groups every week.
Education
PGCE, University of Bristol
"""
    names = [name for name, _, _ in _outline(text)]
    assert names == ["header", "body", "education"]
