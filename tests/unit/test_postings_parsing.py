"""Reading requirements out of job postings written the way real postings are.

Every posting here was written for these tests: several occupations, English, German and
French, headings the parser has no exact list for, prose requirements, duty and benefit
lists that must stay out, and nice-to-haves by heading and by inline wording.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from are_workers.models.jobs import RequirementKind
from are_workers.services.matching.postings import JobSpec, parse_job_markdown

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "jobs"


def _requirements(markdown: str) -> list[tuple[str, bool]]:
    spec = parse_job_markdown(markdown)
    for requirement in spec.requirements:
        assert requirement.text in markdown, "a requirement must quote the posting verbatim"
    return [(r.text, r.must_have) for r in spec.requirements]


def _spec(markdown: str) -> JobSpec:
    spec = parse_job_markdown(markdown)
    for requirement in spec.requirements:
        assert requirement.text in markdown
    return spec


# --- whole postings -----------------------------------------------------------------------------

NURSE_PROSE = """\
# Staff Nurse - Acute Medical Unit

Riverside NHS Trust · Band 5 · Permanent

## About the role
You will join a busy 28-bed acute medical unit. The unit must meet its staffing targets on every shift, and you will rotate through days and nights.

## About you
You must hold an active NMC PIN. Ideally you have worked in acute care; experience with SystmOne is a plus. We value kindness and curiosity.

## What we offer
- 27 days' annual leave plus bank holidays
- NHS pension scheme
- Funded training, e.g. the IV therapy course
"""  # noqa: E501 (a paragraph is one line, as in most postings)


def test_prose_requirements_split_per_sentence_and_marked_clause() -> None:
    spec = _spec(NURSE_PROSE)
    assert spec.title == "Staff Nurse - Acute Medical Unit"
    assert [(r.text, r.must_have) for r in spec.requirements] == [
        ("You must hold an active NMC PIN", True),
        ("Ideally you have worked in acute care", False),
        ("experience with SystmOne is a plus", False),
    ]
    assert spec.has_requirements


FRONTEND = """\
# Frontend Engineer (React)

## What you'll do
- Build accessible user interfaces in React and TypeScript.
- Work with designers to turn Figma prototypes into components.
- Improve the performance of our web app.

## What you\u2019ll need
- 3-5 years of experience building web applications
- Strong knowledge of TypeScript and React
- Experience with automated testing (Jest, Playwright)

## Bonus points
- Next.js
- Experience with GraphQL

## Perks
- Remote-first, flexible hours
- A learning budget of 1,500 EUR per year
"""


def test_duties_and_perks_stay_out_and_bonus_points_are_nice() -> None:
    spec = _spec(FRONTEND)
    assert [(r.text, r.must_have) for r in spec.requirements] == [
        ("3-5 years of experience building web applications", True),
        ("Strong knowledge of TypeScript and React", True),
        ("Experience with automated testing (Jest, Playwright)", True),
        ("Next.js", False),
        ("Experience with GraphQL", False),
    ]
    first = spec.requirements[0]
    assert first.kind is RequirementKind.EXPERIENCE
    assert first.min_years == 3.0  # the lower bound of "3-5 years"


GERMAN = """\
# Pflegefachkraft (m/w/d) Intensivstation

## Deine Aufgaben
- Versorgung von Intensivpatientinnen und -patienten
- Dokumentation im Krankenhausinformationssystem
- Mitarbeit bei der Einarbeitung neuer Kolleginnen und Kollegen

## Das bringst du mit
- Abgeschlossene Ausbildung als Pflegefachkraft
- Mindestens 2 Jahre Berufserfahrung in der Intensivpflege
- Eine Fachweiterbildung Intensivpflege ist wünschenswert

## Von Vorteil
- Erfahrung mit ECMO

## Wir bieten
- 30 Tage Urlaub
- Betriebliche Altersvorsorge
"""


def test_german_posting() -> None:
    spec = _spec(GERMAN)
    assert [(r.text, r.must_have) for r in spec.requirements] == [
        ("Abgeschlossene Ausbildung als Pflegefachkraft", True),
        ("Mindestens 2 Jahre Berufserfahrung in der Intensivpflege", True),
        ("Eine Fachweiterbildung Intensivpflege ist wünschenswert", False),
        ("Erfahrung mit ECMO", False),
    ]
    kinds = [r.kind for r in spec.requirements]
    assert kinds[:2] == [RequirementKind.EDUCATION, RequirementKind.EXPERIENCE]
    assert spec.requirements[1].min_years == 2.0


FRENCH = """\
# Comptable confirmé(e)

## Vos missions
- Tenue de la comptabilité générale
- Préparation des déclarations fiscales
- Clôtures mensuelles et annuelles

## Votre profil
- Diplôme en comptabilité (Bac+3 minimum)
- 3 ans d'expérience en cabinet ou en entreprise
- Maîtrise d'Excel et de SAP

## Atouts
- Connaissance des normes IFRS
- Anglais courant

## Ce que nous offrons
- Télétravail deux jours par semaine
"""


def test_french_posting() -> None:
    spec = _spec(FRENCH)
    assert [(r.text, r.must_have) for r in spec.requirements] == [
        ("Diplôme en comptabilité (Bac+3 minimum)", True),
        ("3 ans d'expérience en cabinet ou en entreprise", True),
        ("Maîtrise d'Excel et de SAP", True),
        ("Connaissance des normes IFRS", False),
        ("Anglais courant", False),
    ]
    kinds = [r.kind for r in spec.requirements]
    assert kinds[0] is RequirementKind.EDUCATION
    assert kinds[1] is RequirementKind.EXPERIENCE
    assert kinds[4] is RequirementKind.LANGUAGE
    assert spec.requirements[1].min_years == 3.0


DRIVER = """\
# Delivery Driver

We are growing fast across the region.

**Who you are**
- You hold a full UK driving licence
- You are able to lift 25 kg
- Experience with route-planning apps would be great

**Benefits**
- Weekly pay
- Fuel card
"""


def test_bold_line_headings() -> None:
    assert _requirements(DRIVER) == [
        ("You hold a full UK driving licence", True),
        ("You are able to lift 25 kg", True),
        ("Experience with route-planning apps would be great", False),
    ]


TEACHER = """\
# Secondary Maths Teacher

## The school
A friendly comprehensive in Leeds with 1,100 pupils.

## The ideal fit
- Qualified Teacher Status (QTS) or equivalent
- A degree in mathematics or a related subject
- Ability to teach Maths up to A-level
- Experience with interactive whiteboards is desirable

## Your week
- Teach classes across Key Stages 3 and 4
- Plan and mark work
- Take part in parent evenings
"""


def test_unknown_heading_whose_list_reads_like_requirements() -> None:
    """Neither heading is known; the first list reads like requirements, the second like
    duties."""
    spec = _spec(TEACHER)
    assert [(r.text, r.must_have) for r in spec.requirements] == [
        ("Qualified Teacher Status (QTS) or equivalent", True),
        ("A degree in mathematics or a related subject", True),
        ("Ability to teach Maths up to A-level", True),
        ("Experience with interactive whiteboards is desirable", False),
    ]
    assert spec.requirements[1].kind is RequirementKind.EDUCATION


WAREHOUSE = """\
# Warehouse Operative

## Overview
Join our team at the Reading depot.

## Your day
- Pick and pack customer orders
- Load and unload deliveries
- Keep the warehouse tidy

## Benefits
- Free parking
"""

BARISTA = """\
# Barista

Come and make great coffee with us in Bristol. We open at 7am and close at 6pm.

## Perks
- Free drinks on shift
"""


@pytest.mark.parametrize("posting", [WAREHOUSE, BARISTA, "", "Just a sentence, no title."])
def test_no_recognisable_requirements(posting: str) -> None:
    spec = parse_job_markdown(posting)
    assert spec.requirements == []
    assert not spec.has_requirements


DATA_ENGINEER = """\
# Data Engineer

## Skills and experience
- Python and SQL are essential
- Airflow or Dagster, ideally in production
- Experience with Spark is a plus
- Terraform (nice to have)
- dbt; AWS is preferred
- Kafka, and Flink would be great
"""


def test_inline_markers_in_bullets() -> None:
    assert _requirements(DATA_ENGINEER) == [
        ("Python and SQL are essential", True),
        ("Airflow or Dagster, ideally in production", False),
        ("Experience with Spark is a plus", False),
        ("Terraform (nice to have)", False),
        ("dbt", True),  # the parts of a bullet say different things: split at ";"
        ("AWS is preferred", False),
        ("Kafka, and Flink would be great", False),  # one marker: one requirement
    ]


ELECTRICIAN = """\
# Electrician

Requirements
1. Level 3 NVQ in Electrotechnical Installation
2. 18th Edition wiring regulations certificate
3. Full driving licence

Nice to have
- ECS Gold Card
- Experience with commercial fit-outs, ideally
  in offices and retail units
"""


def test_plain_line_headings_numbered_lists_and_wrapped_bullets() -> None:
    assert _requirements(ELECTRICIAN) == [
        ("Level 3 NVQ in Electrotechnical Installation", True),
        ("18th Edition wiring regulations certificate", True),
        ("Full driving licence", True),
        ("ECS Gold Card", False),
        ("Experience with commercial fit-outs, ideally\n  in offices and retail units", False),
    ]


SRE = """\
Site Reliability Engineer
=========================

Requirements
------------

### Must haves
- 5+ years of experience running production Linux systems
- Kubernetes

### Nice-to-haves
- Go
- On-call experience

**Tooling**
- Terraform

## Preferred qualifications
- AWS certification
"""


def test_nested_and_underlined_headings() -> None:
    spec = _spec(SRE)
    assert spec.title == "Site Reliability Engineer"
    assert [(r.text, r.must_have) for r in spec.requirements] == [
        ("5+ years of experience running production Linux systems", True),
        ("Kubernetes", True),
        ("Go", False),
        ("On-call experience", False),
        ("Terraform", False),  # a sub-heading with no cue keeps its parent's role
        ("AWS certification", False),
    ]
    assert spec.requirements[0].min_years == 5.0


PHARMACIST = """\
# Pharmacist

Essential:
- Registration with the General Pharmaceutical Council
- Two years of experience in community pharmacy

Desirable:
- Independent prescriber qualification
"""


def test_colon_headings_essential_and_desirable() -> None:
    spec = _spec(PHARMACIST)
    assert [(r.text, r.must_have) for r in spec.requirements] == [
        ("Registration with the General Pharmaceutical Council", True),
        ("Two years of experience in community pharmacy", True),
        ("Independent prescriber qualification", False),
    ]
    assert spec.requirements[0].kind is RequirementKind.CERTIFICATION
    assert spec.requirements[1].min_years == 2.0


SECURITY = """\
# Security Officer

We guard offices across Manchester. A valid SIA door supervisor licence is required. The
building must be patrolled every hour. Experience with CCTV systems is a plus.
"""


def test_prose_outside_a_requirements_section_needs_a_marker_and_a_cue() -> None:
    assert _requirements(SECURITY) == [
        ("A valid SIA door supervisor licence is required", True),
        ("Experience with CCTV systems is a plus", False),
    ]


ACCOUNTANT_PROSE = """\
# Management Accountant

## Who you are
You are a part-qualified or fully qualified accountant (ACCA, CIMA or ACA). You have at least three years' experience in month-end reporting, and knowledge of Xero would be great. A collaborative, curious mindset matters to us.

## Your responsibilities
You will prepare the monthly management accounts. You must reconcile the bank daily.
"""  # noqa: E501 (a paragraph is one line, as in most postings)


def test_prose_under_a_requirements_heading_and_duties_in_prose() -> None:
    spec = _spec(ACCOUNTANT_PROSE)
    assert [(r.text, r.must_have) for r in spec.requirements] == [
        ("You are a part-qualified or fully qualified accountant (ACCA, CIMA or ACA)", True),
        ("You have at least three years' experience in month-end reporting", True),
        ("knowledge of Xero would be great", False),
    ]
    assert spec.requirements[1].min_years == 3.0


def test_bracket_markers_still_win() -> None:
    posting = """\
# Backend Developer

## Requirements
- [must] Python, ideally 3.12
- [nice] Experience with Rust is required for the team in Berlin
- [preferred] Go
- [required] SQL

## Benefits
- [nice] Elixir
"""
    assert _requirements(posting) == [
        ("Python, ideally 3.12", True),
        ("Experience with Rust is required for the team in Berlin", False),
        ("Go", False),
        ("SQL", True),
        ("Elixir", False),  # an explicit marker counts wherever it is
    ]


# --- headings, one at a time --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("heading", "must_have"),
    [
        ("Requirements", True),
        ("Minimum qualifications", True),
        ("What you'll need", True),
        ("What you will need", True),
        ("About you", True),
        ("Your profile", True),
        ("You bring", True),
        ("Who you are", True),
        ("Must haves", True),
        ("Essential", True),
        ("Essential criteria", True),
        ("Skills and experience", True),
        ("What we're looking for", True),
        ("Ihr Profil", True),
        ("Das bringst du mit", True),
        ("Anforderungen", True),
        ("Votre profil", True),
        ("Compétences requises", True),
        ("Profil recherché", True),
        ("Nice to have", False),
        ("Bonus points", False),
        ("Preferred qualifications", False),
        ("Desirable", False),
        ("Would be great", False),
        ("Plus", False),
        ("Wünschenswert", False),
        ("Von Vorteil", False),
        ("Un plus", False),
        ("Atouts", False),
        ("Responsibilities", None),
        ("What you'll do", None),
        ("Benefits", None),
        ("Perks", None),
        ("What we offer", None),
        ("About us", None),
        ("Who we are", None),
        ("Deine Aufgaben", None),
        ("Wir bieten", None),
        ("Vos missions", None),
        ("Ce que nous offrons", None),
    ],
)
def test_heading_decides_a_plain_list(heading: str, must_have: bool | None) -> None:
    """A list with no cues of its own ("Python", "Jira"): only its heading decides."""
    for markdown in (
        f"# Job\n\n## {heading}\n- Python\n- Jira\n",
        f"# Job\n\n{heading}:\n- Python\n",
    ):
        requirements = parse_job_markdown(markdown).requirements
        if must_have is None:
            assert requirements == [], markdown
        else:
            assert requirements, markdown
            assert all(r.must_have is must_have for r in requirements), markdown


def test_a_list_of_duties_under_an_unknown_heading_is_not_requirements() -> None:
    posting = "# Chef\n\n## In the kitchen\n- Prepare sauces\n- Run the pass\n- Order stock\n"
    assert parse_job_markdown(posting).requirements == []


def test_a_mixed_heading_leaves_it_to_the_content() -> None:
    posting = """\
# Paralegal

## The role and what you bring
- Draft contracts for review
- 2+ years of experience in a commercial law firm
- A law degree or CILEx qualification
"""
    assert _requirements(posting) == [
        ("Draft contracts for review", True),
        ("2+ years of experience in a commercial law firm", True),
        ("A law degree or CILEx qualification", True),
    ]


# --- the shipped samples ------------------------------------------------------------------------


def test_sample_postings_parse_as_before() -> None:
    backend = parse_job_markdown((SAMPLES / "backend_engineer.md").read_text())
    assert [(r.text, r.must_have) for r in backend.requirements] == [
        ("4+ years of professional backend software development", True),
        ("Python (Django, FastAPI or Flask)", True),
        ("PostgreSQL, including schema design and query optimization", True),
        ("REST API design", True),
        ("Docker", True),
        ("Kubernetes", False),
        ("AWS", False),
        ("Kafka or another message queue", False),
        ("CI/CD (GitHub Actions or similar)", False),
    ]
    nurse = parse_job_markdown((SAMPLES / "registered_nurse.md").read_text())
    assert len(nurse.requirements) == 7
    assert [r.must_have for r in nurse.requirements] == [True] * 3 + [False] * 4
    analyst = parse_job_markdown((SAMPLES / "data_analyst.md").read_text())
    assert len(analyst.requirements) == 7


def test_prose_clauses_with_their_own_subject_are_requirements_of_their_own() -> None:
    spec = parse_job_markdown(
        """# Platform Engineer

### Who you are

You must have four years of experience running Kubernetes clusters, and you write Go
every day. Since our customers are banks, we need real experience hardening Linux hosts
to CIS benchmarks. You write clear design documents (we use Notion, but any similar
tool is fine), and you have mentored junior engineers.
"""
    )
    texts = [r.text for r in spec.requirements]
    assert texts[0] == "You must have four years of experience running Kubernetes clusters"
    assert "you write Go\nevery day" in texts
    assert any(t.endswith("hardening Linux hosts\nto CIS benchmarks") for t in texts)
    # A comma inside brackets does not split; the clause after it does.
    assert any(t.endswith("(we use Notion, but any similar\ntool is fine)") for t in texts)
    assert "you have mentored junior engineers" in texts
    assert all(r.must_have for r in spec.requirements)


HOTEL = """\
### Front Office Manager

#### Your role

You'll lead our reception team of 12, so you'll need previous experience managing a front \
office team in a hotel. You'll own the rota and resolve complaints. We use Opera PMS - if \
you know it already, even better.

#### Perks

- Free meals on shift

Apply by 30 June. We are an equal opportunities employer and welcome applications from \
everyone. We can't consider applicants without the right to work in the UK.
"""


def test_what_a_paragraph_about_the_role_asks_is_a_requirement() -> None:
    assert _requirements(HOTEL) == [
        ("you'll need previous experience managing a front office team in a hotel", True),
        ("We use Opera PMS - if you know it already, even better", False),
        ("We can't consider applicants without the right to work in the UK", True),
    ]


PERSON_SPEC = """\
# Staff Nurse

| Criteria | Essential | Desirable |
|---|---|---|
| Qualifications | Registered Nurse (Adult), current NMC registration | Mentorship qualification |
| Other | Able to work nights and weekends | |

Requirements
1. 1+ year of experience on an acute ward, ideally in respiratory care

Preferred Qualifications
1. IV drug administration competency
"""


def test_a_person_specification_table_and_an_ideally_clause() -> None:
    assert _requirements(PERSON_SPEC) == [
        ("Registered Nurse (Adult), current NMC registration", True),
        ("Mentorship qualification", False),
        ("Able to work nights and weekends", True),
        ("1+ year of experience on an acute ward", True),
        ("ideally in respiratory care", False),
        ("IV drug administration competency", False),
    ]


DENTAL = """\
Dental Nurse
Harbourside Practice, 4 days a week. Salary £24,000 plus an annual bonus.

About the role
Working chairside, you'll prepare the surgery. You must follow our decontamination log on \
every shift.

Is this you?
Essential: GDC registration as a Dental Nurse; up-to-date Hepatitis B immunisation
Desirable: radiography certificate

**About you.** To be considered you'll need a full UK driving licence. Good with \
computers: if you've used SOE before that's great, but it isn't essential. We don't ask \
for a degree.

Criteria (E = essential, D = desirable)
- Level 3 Diploma in Dental Nursing (E)
- Experience with implant surgery (D)
"""


def test_inline_labels_lead_labels_and_letter_markers() -> None:
    assert _requirements(DENTAL) == [
        ("GDC registration as a Dental Nurse", True),
        ("up-to-date Hepatitis B immunisation", True),
        ("radiography certificate", False),
        ("To be considered you'll need a full UK driving licence", True),
        ("Good with computers: if you've used SOE before that's great", False),
        ("Level 3 Diploma in Dental Nursing (E)", True),
        ("Experience with implant surgery (D)", False),
    ]
