# ruff: noqa: RUF001 - real resumes write date ranges with en dashes; the parser must see them
"""Generate the sample resumes, job postings and relevance labels under ``samples/``.

Why generated: the resumes exist as PDF, DOCX, RTF, TXT and MD so extraction is exercised on
real files of every supported kind, while the *content* lives here as reviewable text. The
outputs are committed (small) so tests never need reportlab or a re-run; re-run this script
after editing a resume::

    python scripts/make_sample_data.py            # writes samples/
    python scripts/make_sample_data.py --check    # fails if samples/ is out of date (text)

Resume markup: ``# `` name, ``## `` section heading, ``### `` role/degree line, ``- `` bullet,
anything else a paragraph line; two leading spaces continue the line above. The ``.txt``
renderer writes headings in capitals, as people do.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"


@dataclass(frozen=True)
class Resume:
    filename: str
    body: str
    header_contact: bool = False  # DOCX: put the contact line in the page header
    skills_table: bool = False  # DOCX: render the skills section as a two-column table


RESUMES: list[Resume] = [
    Resume(
        "alex_chen_backend.pdf",
        """
# Alex Chen
alex.chen@example.com | +1 (415) 555-0132 | github.com/alexchen | San Francisco, CA

## Summary
Senior backend engineer with 8 years of experience designing and operating Python services on
PostgreSQL. I care about boring, observable systems, clean APIs and mentoring engineers.

## Experience
### Senior Backend Engineer, Lumen Payments - Jan 2020 – Present
- Lead a team of five building the payments ledger in Python (Django, FastAPI) on PostgreSQL 15.
- Cut p99 latency of the settlement API from 900 ms to 120 ms through query optimization
  and caching in Redis.
- Moved 40 services to Kubernetes on AWS with Terraform and Helm charts; on-call rotation owner.
- Introduced event-driven architecture with Kafka for ledger events, processing 2M messages a day.
### Backend Engineer, ShopFlow - Mar 2017 – Dec 2019
- Built REST APIs and background workers (Celery, RabbitMQ) for order processing.
- Designed the PostgreSQL schema and Alembic migrations for a multi-tenant catalogue.
- Set up CI/CD with GitHub Actions and Docker; raised unit test coverage to 85% with pytest.
### Software Engineer, DataNest - Jun 2015 – Feb 2017
- Wrote ETL jobs in Python and SQL; maintained a Flask admin tool.

## Education
### B.Sc. Computer Science, University of California, Davis, 2015

## Skills
Python, Django, FastAPI, Flask, PostgreSQL, Redis, Kafka, Celery, Docker, Kubernetes,
Terraform, AWS, GitHub Actions, REST APIs, gRPC, system design, observability (Prometheus, Grafana)

## Certifications
- AWS Certified Solutions Architect – Associate (2021)
""",
    ),
    Resume(
        "priya_raman_backend.docx",
        """
# Priya Raman
priya.raman@example.org | +44 20 7946 0958 | London, UK

## Profile
Backend engineer (5 years) building high-throughput services in Go and Java, with a strong
PostgreSQL and messaging background.

## Work Experience
### Backend Engineer, Transitly (London) - 04/2021 - present
- Own the journey-planning API in Go serving 3,000 requests per second.
- Migrated the timetable store from MySQL to Postgres with zero downtime.
- Built Kafka consumers and gRPC services; Docker and k8s in production.
### Software Developer, FinServe Ltd - 09/2019 - 03/2021
- Java Spring Boot microservices for loan applications; REST APIs and PostgreSQL.
- Wrote integration tests and improved CI pipelines in Jenkins.

## Education
### MSc Software Engineering, University of Manchester, 2019
### BEng Electronics, Anna University, 2017

## Technical Skills
Languages: Go, Java, Python, SQL
Data: PostgreSQL, MySQL, Redis, Kafka
Platform: Docker, Kubernetes, AWS, Linux, Prometheus
""",
        header_contact=True,
        skills_table=True,
    ),
    Resume(
        "marcus_oliveira_fullstack.md",
        """
# Marcus Oliveira
marcus.oliveira@example.com · (312) 555-0199 · Chicago, IL

## Summary
Full-stack developer with 3 years of experience shipping React front ends and Node.js APIs.

## Experience
### Full-Stack Developer, Brightcart — Jun 2022 – Present
- Built product pages in React and TypeScript; Node.js and Express.js REST APIs.
- Wrote PostgreSQL queries and migrations; introduced Docker for local development.
### Junior Web Developer, Pixelworks Agency — Jan 2021 – May 2022
- Built marketing sites with HTML, CSS and JavaScript; small PHP plugins.

## Education
### B.A. Information Systems, DePaul University, 2020

## Skills
JavaScript, TypeScript, React, Node.js, PostgreSQL, Docker, Git, Jest, HTML, CSS
""",
    ),
    Resume(
        "jamie_lee_junior_dev.txt",
        """
# Jamie Lee
jamie.lee@example.net
(646) 555-0147

## Objective
Career changer and coding bootcamp graduate looking for a first role as a junior Python developer.

## Projects
- Recipe API: a Flask REST API with SQLite, deployed on Heroku.
- Budget tracker: Python scripts that categorise bank exports with pandas.

## Experience
### Barista, Blue Bottle Coffee - 2019 - 2023
- Trained new staff; handled opening and closing shifts.
### Software Engineering Intern, CodeBridge - Jun 2024 - Sep 2024
- Fixed bugs in a Django admin; wrote unit tests with pytest.

## Education
### Software Engineering Bootcamp, General Assembly, 2024

## Skills
Python, Flask, Django, SQL, Git, HTML, CSS
""",
    ),
    Resume(
        "jordan_smith_keywords.pdf",
        """
# Jordan Smith
jordan.smith@example.com | 555-010-4477

## Skills
Python, Java, JavaScript, TypeScript, Go, Rust, C++, C#, Ruby on Rails, PHP, Kotlin, Swift,
Scala, SQL, PostgreSQL, MySQL, MongoDB, Redis, Elasticsearch, Cassandra, Snowflake, BigQuery,
Django, Flask, FastAPI, Spring Boot, Node.js, React, Angular, Vue.js, GraphQL, REST APIs,
gRPC, microservices, Kafka, RabbitMQ, Docker, Kubernetes, Helm charts, Terraform, Ansible,
Jenkins, GitHub Actions, CI/CD, AWS, Azure, GCP, Linux, machine learning, deep learning,
NLP, PyTorch, TensorFlow, scikit-learn, pandas, Spark, Airflow, dbt, ETL, Tableau, Power BI,
Looker, Excel, statistics, A/B testing, registered nurse, patient care, BLS, ACLS, Epic EHR,
medication administration, triage, financial modeling, GAAP, Salesforce, SEO, Figma,
UX design, Six Sigma, project management, Agile, Scrum, leadership, communication

## Experience
### Sales Associate, Mall Outlet - 2023 - 2024
- Helped customers and ran the register.

## Education
### High School Diploma, Lincoln High School, 2022
""",
    ),
    Resume(
        "sarah_johnson_rn.pdf",
        """
# Sarah Johnson, RN
sarah.johnson@example.com | (617) 555-0186 | Boston, MA

## Professional Summary
Registered Nurse with 7 years of acute care experience, 5 of them in a 24-bed medical ICU.
Calm under pressure, precise with medication administration and a patient advocate.

## Clinical Experience
### Staff Nurse, Medical ICU, Massachusetts General Hospital - Aug 2019 – Present
- Care for 1–2 critically ill patients per shift: ventilators, vasoactive drips, CRRT.
- Perform head-to-toe assessments, titrate medications per protocol, document in Epic.
- Charge nurse two shifts a week; precept new graduate nurses.
- Member of the sepsis quality committee; reduced CLABSI rates through infection control audits.
### Registered Nurse, Med-Surg Unit, Beth Israel Deaconess - Jun 2017 – Jul 2019
- Managed 5–6 patients per shift on a 32-bed medical-surgical floor.
- Wound care, IV therapy, patient education and discharge planning.

## Education
### Bachelor of Science in Nursing (BSN), Boston College, 2017

## Licenses & Certifications
- Registered Nurse, Massachusetts Board of Nursing (active)
- BLS, ACLS (American Heart Association), CCRN

## Skills
Critical care, telemetry, medication administration, Epic, patient education, care planning
""",
    ),
    Resume(
        "michael_brown_rn.docx",
        """
# Michael Brown
michael.brown@example.com | (503) 555-0112 | Portland, OR

## Summary
RN with 3 years on a busy medical-surgical floor and in the emergency department.

## Experience
### Registered Nurse, Providence Portland Medical Center - 05/2022 - Present
- Emergency department RN: triage, trauma support, rapid patient assessment.
- Administer medications and IV therapy; chart in Epic.
### Registered Nurse, Legacy Emanuel - 01/2021 - 04/2022
- Med-surg nursing for post-operative patients; wound care and patient education.

## Education
### Associate Degree in Nursing (ADN), Portland Community College, 2020

## Certifications
- Oregon RN License
- BLS, ACLS, PALS
""",
    ),
    Resume(
        "emily_davis_lpn.txt",
        """
# Emily Davis
emily.davis@example.com | (214) 555-0163

## Summary
Licensed Practical Nurse with 4 years in long-term care and rehabilitation.

## Experience
### LPN, Sunrise Senior Living - Feb 2021 - Present
- Medication administration for 20 residents; vital signs, wound care and charting.
- Communicate changes in condition to the RN supervisor and families.
### Certified Nursing Assistant, Oakwood Rehab - 2018 - 2021
- Activities of daily living, geriatric care, infection control.

## Education
### Practical Nursing Diploma, Dallas College, 2020

## Certifications
- LPN License (Texas), BLS
""",
    ),
    Resume(
        "david_wilson_nursing_student.md",
        """
# David Wilson
david.wilson@example.com | 555-013-2288

## Education
### Bachelor of Science in Nursing (expected 2026), University of Arizona

## Clinical Rotations
- Medical-surgical, pediatrics and labor and delivery rotations (480 hours).

## Experience
### Patient Care Technician, Banner Health - Jun 2023 - Present
- Vital signs, phlebotomy and patient transport on a telemetry unit.

## Certifications
- BLS (American Heart Association)
""",
    ),
    Resume(
        "laura_martinez_data_analyst.pdf",
        """
# Laura Martinez
laura.martinez@example.com | (737) 555-0171 | Austin, TX

## Summary
Data analyst with 4 years turning messy data into decisions: SQL, Tableau, Python and a
healthy respect for statistics.

## Experience
### Data Analyst, CityRide - Mar 2021 - Present
- Own weekly business reviews: SQL on Snowflake, dashboards in Tableau for 60 stakeholders.
- Designed A/B tests for pricing; measured a 4% lift in conversion with regression analysis.
- Automated reporting in Python (pandas) and Airflow, saving 10 analyst hours a week.
### Junior Data Analyst, RetailCo - Jan 2020 - Feb 2021
- Built Excel models (pivot tables, VLOOKUP) and Power BI reports on store sales.

## Education
### B.S. Statistics, University of Texas at Austin, 2019

## Skills
SQL, Python, pandas, Tableau, Power BI, Excel, statistics, A/B testing, Snowflake, dbt
""",
    ),
    Resume(
        "kevin_nguyen_data_scientist.docx",
        """
# Kevin Nguyen
kevin.nguyen@example.com | (206) 555-0154 | Seattle, WA

## Summary
Data scientist with 5 years of experience in machine learning and analytics.

## Experience
### Data Scientist, StreamBox - Jul 2020 - Present
- Built churn models with scikit-learn and XGBoost; deployed with FastAPI and Docker.
- SQL feature pipelines in BigQuery; experiment analysis for product teams.
### Analyst, Northwind Insurance - 2018 - 2020
- Actuarial reporting in SQL and Excel; Tableau dashboards.

## Education
### M.S. Data Science, University of Washington, 2018

## Skills
Python, SQL, scikit-learn, PyTorch, pandas, Spark, BigQuery, Tableau, statistics
""",
    ),
    Resume(
        "rachel_kim_financial_analyst.pdf",
        """
# Rachel Kim
rachel.kim@example.com | (212) 555-0138 | New York, NY

## Summary
Financial analyst (FP&A) with 6 years of budgeting, forecasting and variance analysis.

## Experience
### Senior Financial Analyst, Meridian Media - Apr 2021 - Present
- Lead the annual budget and rolling forecasts for a $300M business unit.
- Financial modeling in Excel; Power BI dashboards for monthly variance analysis.
### Financial Analyst, Harbor Bank - Jul 2018 - Mar 2021
- Month-end close support, reconciliations and management reporting under GAAP.

## Education
### BBA Finance, Baruch College, 2018

## Certifications
- CFA Level II candidate

## Skills
Excel, financial modeling, forecasting, budgeting, Power BI, SQL (basic), SAP
""",
    ),
    Resume(
        "tom_baker_accountant.txt",
        """
# Tom Baker
tom.baker@example.com | (312) 555-0107

## Experience
### Staff Accountant, Lakeside Manufacturing - 2019 - Present
- Accounts payable and accounts receivable for 300 vendors; bank reconciliation.
- General ledger entries and month-end close in QuickBooks and NetSuite.
### Bookkeeper, Baker & Sons - 2016 - 2019
- Payroll processing and tax preparation support.

## Education
### B.S. Accounting, Northern Illinois University, 2016

## Skills
Accounting, QuickBooks, NetSuite, Excel, payroll, GAAP
""",
    ),
    Resume(
        "olivia_garcia_sales.docx",
        """
# Olivia Garcia
olivia.garcia@example.com | (305) 555-0193 | Miami, FL

## Summary
B2B account executive with 6 years of closing mid-market SaaS deals.

## Experience
### Account Executive, CloudDesk - Feb 2021 - Present
- Exceeded quota 11 of 12 quarters; $1.8M annual bookings.
- Pipeline management and forecasting in Salesforce; consultative selling to CFOs.
### Sales Development Representative, LeadGenix - 2018 - 2021
- Cold calling and email prospecting; 40 qualified meetings a month.

## Education
### B.A. Communication, Florida International University, 2018

## Skills
Salesforce, HubSpot, negotiation, lead generation, account management, public speaking
""",
    ),
    Resume(
        "nina_patel_marketing.pdf",
        """
# Nina Patel
nina.patel@example.com | (408) 555-0175

## Summary
Digital marketing manager focused on SEO, paid search and marketing analytics.

## Experience
### Digital Marketing Manager, GreenLeaf Organics - May 2020 - Present
- Grew organic traffic 150% through SEO and content marketing.
- Managed a $2M Google Ads budget; reporting in Google Analytics and Looker.
- Ran email marketing campaigns in HubSpot; basic SQL for campaign attribution.
### Marketing Coordinator, Brandwise - 2017 - 2020
- Social media marketing and copywriting for consumer brands.

## Education
### B.A. Marketing, San Jose State University, 2017

## Skills
SEO, SEM, Google Ads, Google Analytics, HubSpot, content marketing, Excel, SQL
""",
    ),
    Resume(
        "ben_carter_designer.md",
        """
# Ben Carter
ben.carter@example.com | (720) 555-0121 | Denver, CO

## Summary
Product designer with 5 years of UX design for B2B software.

## Experience
### Senior Product Designer, Fieldnote - Jan 2022 - Present
- Led the redesign of the mobile app; user research with 40 customer interviews.
- Built and maintain the design system in Figma; accessibility reviews (WCAG 2.1).
### UX Designer, Appfolio - Aug 2019 - Dec 2021
- Wireframes, prototyping and usability testing for property-management workflows.

## Education
### BFA Graphic Design, Rhode Island School of Design, 2019

## Skills
Figma, Sketch app, Adobe Illustrator, user research, prototyping, design systems, typography
""",
    ),
    Resume(
        "sam_okafor_operations.docx",
        """
# Sam Okafor
sam.okafor@example.com | (404) 555-0168 | Atlanta, GA

## Summary
Operations manager with 9 years in warehouse and supply chain management.

## Experience
### Operations Manager, Peachtree Logistics - 2018 - Present
- Run a 200,000 sq ft distribution centre with 120 staff; OSHA compliance.
- Lean Six Sigma projects cut pick errors by 35%; inventory management in SAP.
- Weekly KPI reporting in Excel.
### Shift Supervisor, QuickShip - 2015 - 2018
- Shipping and receiving, forklift operation, staff training.

## Education
### B.S. Supply Chain Management, Georgia State University, 2015

## Certifications
- Six Sigma Green Belt
""",
    ),
    Resume(
        "anna_schmidt_de.pdf",
        """
# Anna Schmidt
anna.schmidt@example.de | +49 30 1234567 | Berlin

## Profil
Softwareentwicklerin mit sechs Jahren Erfahrung in der Entwicklung von Backend-Systemen.
Ich arbeite gerne mit Python und PostgreSQL und lege Wert auf saubere Schnittstellen.

## Berufserfahrung
### Senior Softwareentwicklerin, Mobilitaet Berlin GmbH - 01/2021 - heute
- Entwicklung von REST APIs mit Python (Django) und PostgreSQL für die Fahrplanauskunft.
- Einführung von Docker und Kubernetes; Betreuung der CI/CD-Pipeline mit GitLab CI.
### Softwareentwicklerin, Versicherung Nord AG - 09/2018 - 12/2020
- Entwicklung von Java-Anwendungen mit Spring Boot und Oracle-Datenbanken.

## Ausbildung
### M.Sc. Informatik, Technische Universität Berlin, 2018

## Kenntnisse
Python, Django, Java, PostgreSQL, Docker, Kubernetes, Linux, Git

## Sprachen
Deutsch (Muttersprache), Englisch (fließend)
""",
    ),
    Resume(
        "julien_moreau_fr.docx",
        """
# Julien Moreau
julien.moreau@example.fr | +33 6 12 34 56 78 | Lyon

## Profil
Infirmier diplômé d'État avec cinq ans d'expérience en réanimation et aux urgences.

## Expérience professionnelle
### Infirmier en réanimation, Hôpital Édouard Herriot - 03/2021 - aujourd'hui
- Prise en charge des patients sous ventilation, administration des médicaments et surveillance.
- Encadrement des étudiants infirmiers et participation au comité d'hygiène.
### Infirmier aux urgences, Clinique du Parc - 09/2019 - 02/2021
- Accueil et triage des patients, soins techniques et éducation thérapeutique.

## Formation
### Diplôme d'État d'Infirmier, IFSI Lyon, 2019

## Compétences
Réanimation, triage, soins de plaies, gestion des perfusions, dossier patient informatisé

## Langues
Français (langue maternelle), anglais (courant)
""",
    ),
    Resume(
        "chris_taylor_no_sections.txt",
        """
Chris Taylor
chris.taylor@example.com, (720) 555-0144
I am a DevOps engineer who has spent the last six years keeping production systems healthy.
From 2019 to 2025 I worked at Summit Cloud, where I ran Kubernetes clusters on AWS, wrote
Terraform modules, and built CI/CD pipelines in GitHub Actions for forty Python services.
Before that, from 2017 to 2019, I was a Linux system administrator at a regional hospital,
automating server builds with Ansible and Bash. I like Python, PostgreSQL, Prometheus and
Grafana, and I have mentored junior engineers on incident response.
""",
    ),
    Resume(
        "maria_rossi_healthcare_analyst.rtf",
        """
# Maria Rossi
maria.rossi@example.com | (617) 555-0129

## Summary
Healthcare data analyst with 3 years of experience analysing clinical and claims data.

## Experience
### Data Analyst, Beacon Health Partners - Sep 2022 - Present
- Write SQL against the Epic Clarity warehouse; Tableau dashboards for readmission rates.
- Statistical analysis in R of length-of-stay drivers; present findings to nursing leadership.
### Reporting Analyst, MedClaims Inc - Jun 2021 - Aug 2022
- Excel reporting on claims volumes; data quality checks.

## Education
### M.P.H. Biostatistics, Boston University, 2021

## Skills
SQL, R, Tableau, Excel, statistics, data visualization
""",
    ),
]

JOBS: dict[str, str] = {
    "backend_engineer.md": """
# Senior Backend Engineer (Python)

Company: Harbor Health Tech · Remote (US/EU)

## About the role
You will build and run the Python services behind our scheduling and billing products:
APIs, background workers and a PostgreSQL data model that must stay correct under load.

## Responsibilities
- Design and build REST APIs and background jobs in Python.
- Own PostgreSQL schemas, migrations and query performance.
- Run services in Docker on Kubernetes; take part in the on-call rotation.
- Review code and mentor engineers.

## Requirements
- [must] 4+ years of professional backend software development
- [must] Python (Django, FastAPI or Flask)
- [must] PostgreSQL, including schema design and query optimization
- [must] REST API design
- [must] Docker
- [nice] Kubernetes
- [nice] AWS
- [nice] Kafka or another message queue
- [nice] CI/CD (GitHub Actions or similar)
""",
    "registered_nurse.md": """
# Registered Nurse – Intensive Care Unit

Hospital: St. Mary's Regional Medical Center · Full-time, nights

## About the role
Join our 20-bed ICU caring for critically ill adults, as part of a collaborative team with
a 1:2 nurse-to-patient ratio.

## Responsibilities
- Assess, plan and deliver care for critically ill patients.
- Administer medications and titrate infusions per protocol.
- Document care in the electronic health record (Epic).
- Educate patients and families.

## Requirements
- [must] Active Registered Nurse (RN) license
- [must] BLS certification
- [must] 2+ years of acute care nursing experience
- [nice] ACLS certification
- [nice] ICU or critical care experience
- [nice] Bachelor of Science in Nursing (BSN)
- [nice] Epic EHR
""",
    "data_analyst.md": """
# Data Analyst

Company: Northstar Retail Group · Hybrid (Chicago)

## About the role
Help our merchandising and operations teams make decisions with data: build dashboards,
analyse experiments and answer ad-hoc questions.

## Requirements
- [must] 2+ years of experience as a data or business analyst
- [must] SQL
- [must] Tableau or Power BI
- [must] Excel
- [nice] Python (pandas)
- [nice] Statistics and A/B testing
- [nice] dbt or Snowflake
""",
}

# job -> resume -> relevance: 3 strong, 2 good, 1 weak, 0 none.
LABELS: dict[str, dict[str, int]] = {
    "backend_engineer.md": {
        "alex_chen_backend.pdf": 3,
        "priya_raman_backend.docx": 3,
        "anna_schmidt_de.pdf": 2,
        "chris_taylor_no_sections.txt": 2,
        "marcus_oliveira_fullstack.md": 2,
        "kevin_nguyen_data_scientist.docx": 1,
        "jamie_lee_junior_dev.txt": 1,
        "laura_martinez_data_analyst.pdf": 1,
        "jordan_smith_keywords.pdf": 0,
        "sarah_johnson_rn.pdf": 0,
        "michael_brown_rn.docx": 0,
        "emily_davis_lpn.txt": 0,
        "david_wilson_nursing_student.md": 0,
        "rachel_kim_financial_analyst.pdf": 0,
        "tom_baker_accountant.txt": 0,
        "olivia_garcia_sales.docx": 0,
        "nina_patel_marketing.pdf": 0,
        "ben_carter_designer.md": 0,
        "sam_okafor_operations.docx": 0,
        "julien_moreau_fr.docx": 0,
        "maria_rossi_healthcare_analyst.rtf": 0,
    },
    "registered_nurse.md": {
        "sarah_johnson_rn.pdf": 3,
        "michael_brown_rn.docx": 3,
        "julien_moreau_fr.docx": 2,
        "emily_davis_lpn.txt": 1,
        "david_wilson_nursing_student.md": 1,
        "maria_rossi_healthcare_analyst.rtf": 0,
        "jordan_smith_keywords.pdf": 0,
        "alex_chen_backend.pdf": 0,
        "priya_raman_backend.docx": 0,
        "marcus_oliveira_fullstack.md": 0,
        "jamie_lee_junior_dev.txt": 0,
        "laura_martinez_data_analyst.pdf": 0,
        "kevin_nguyen_data_scientist.docx": 0,
        "rachel_kim_financial_analyst.pdf": 0,
        "tom_baker_accountant.txt": 0,
        "olivia_garcia_sales.docx": 0,
        "nina_patel_marketing.pdf": 0,
        "ben_carter_designer.md": 0,
        "sam_okafor_operations.docx": 0,
        "anna_schmidt_de.pdf": 0,
        "chris_taylor_no_sections.txt": 0,
    },
    "data_analyst.md": {
        "laura_martinez_data_analyst.pdf": 3,
        "maria_rossi_healthcare_analyst.rtf": 3,
        "kevin_nguyen_data_scientist.docx": 2,
        "rachel_kim_financial_analyst.pdf": 2,
        "nina_patel_marketing.pdf": 1,
        "sam_okafor_operations.docx": 1,
        "tom_baker_accountant.txt": 1,
        "alex_chen_backend.pdf": 1,
        "jordan_smith_keywords.pdf": 0,
        "priya_raman_backend.docx": 0,
        "marcus_oliveira_fullstack.md": 0,
        "jamie_lee_junior_dev.txt": 0,
        "sarah_johnson_rn.pdf": 0,
        "michael_brown_rn.docx": 0,
        "emily_davis_lpn.txt": 0,
        "david_wilson_nursing_student.md": 0,
        "olivia_garcia_sales.docx": 0,
        "ben_carter_designer.md": 0,
        "anna_schmidt_de.pdf": 0,
        "julien_moreau_fr.docx": 0,
        "chris_taylor_no_sections.txt": 0,
    },
}


# --- renderers ----------------------------------------------------------------------------------


def _lines(body: str) -> list[str]:
    """Markup lines; a line indented by two spaces continues the previous one."""
    lines: list[str] = []
    for line in body.strip("\n").splitlines():
        if line.startswith("  ") and lines:
            lines[-1] += " " + line.strip()
        else:
            lines.append(line)
    return lines


def render_markdown(resume: Resume) -> bytes:
    out: list[str] = []
    for line in _lines(resume.body):
        if line.startswith("## ") and out:
            out.append("")
        out.append(line)
        if line.startswith(("# ", "## ")):
            out.append("")
    return ("\n".join(out) + "\n").encode("utf-8")


def render_text(resume: Resume) -> bytes:
    out: list[str] = []
    for line in _lines(resume.body):
        if line.startswith("# "):
            out.append(line[2:])
        elif line.startswith("## "):
            out.extend(["", line[3:].upper()])
        elif line.startswith("### "):
            out.append(line[4:])
        elif line.startswith("- "):
            out.append("* " + line[2:])
        else:
            out.append(line)
    return ("\n".join(out) + "\n").encode("utf-8")


def _rtf_escape(text: str) -> str:
    out: list[str] = []
    for ch in text:
        if ch in "\\{}":
            out.append("\\" + ch)
        elif ord(ch) < 128:
            out.append(ch)
        else:
            out.append(f"\\u{ord(ch) if ord(ch) < 32768 else ord(ch) - 65536}?")
    return "".join(out)


def render_rtf(resume: Resume) -> bytes:
    out = [
        r"{\rtf1\ansi\ansicpg1252\deff0{\fonttbl{\f0\fswiss Helvetica;}}",
        r"{\*\generator ARE sample data;}\f0\fs22",
    ]
    for line in _lines(resume.body):
        if line.startswith("# "):
            out.append(r"{\b\fs32 " + _rtf_escape(line[2:]) + r"}\par")
        elif line.startswith("## "):
            out.append(r"\par{\b\fs26 " + _rtf_escape(line[3:]) + r"}\par")
        elif line.startswith("### "):
            out.append(r"{\b " + _rtf_escape(line[4:]) + r"}\par")
        elif line.startswith("- "):
            out.append(r"\bullet  " + _rtf_escape(line[2:]) + r"\par")
        else:
            out.append(_rtf_escape(line) + r"\par")
    out.append("}")
    return ("\n".join(out) + "\n").encode("ascii")


def render_pdf(resume: Resume) -> bytes:
    from reportlab import rl_config
    from reportlab.lib.pagesizes import LETTER
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import inch
    from reportlab.platypus import ListFlowable, ListItem, Paragraph, SimpleDocTemplate, Spacer

    rl_config.invariant = 1  # no timestamps or random IDs: byte-identical re-runs
    styles = getSampleStyleSheet()
    story: list[object] = []
    bullets: list[object] = []

    def flush_bullets() -> None:
        if bullets:
            story.append(ListFlowable(list(bullets), bulletType="bullet", leftIndent=12))
            bullets.clear()

    for line in _lines(resume.body):
        escaped = line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        if line.startswith("- "):
            bullets.append(ListItem(Paragraph(escaped[2:], styles["BodyText"])))
            continue
        flush_bullets()
        if line.startswith("# "):
            story.append(Paragraph(escaped[2:], styles["Title"]))
        elif line.startswith("## "):
            story.extend([Spacer(1, 6), Paragraph(escaped[3:], styles["Heading2"])])
        elif line.startswith("### "):
            story.append(Paragraph(f"<b>{escaped[4:]}</b>", styles["BodyText"]))
        else:
            story.append(Paragraph(escaped, styles["BodyText"]))
    flush_bullets()
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=LETTER,
        title=resume.filename,
        author="ARE sample data",
        leftMargin=0.8 * inch,
        rightMargin=0.8 * inch,
    )
    document.build(story)
    return buffer.getvalue()


def render_docx(resume: Resume) -> bytes:
    import docx

    document = docx.Document()
    properties = document.core_properties
    properties.author = "ARE sample data"
    properties.created = properties.modified = datetime(2025, 1, 1)
    lines = _lines(resume.body)
    table_rows: list[tuple[str, str]] = []
    in_skills = False
    for line in lines:
        if resume.header_contact and "@" in line and not line.startswith("#"):
            document.sections[0].header.paragraphs[0].text = line
            continue
        if line.startswith("# "):
            document.add_heading(line[2:], level=0)
        elif line.startswith("## "):
            in_skills = resume.skills_table and "skill" in line.lower()
            document.add_heading(line[3:], level=1)
        elif line.startswith("### "):
            document.add_paragraph().add_run(line[4:]).bold = True
        elif line.startswith("- "):
            document.add_paragraph(line[2:], style="List Bullet")
        elif in_skills and ":" in line:
            label, _, values = line.partition(":")
            table_rows.append((label.strip(), values.strip()))
        else:
            document.add_paragraph(line)
    if table_rows:
        table = document.add_table(rows=0, cols=2)
        for label, values in table_rows:
            cells = table.add_row().cells
            cells[0].text = label
            cells[1].text = values
    buffer = io.BytesIO()
    document.save(buffer)
    return _fixed_zip_times(buffer.getvalue())


def _fixed_zip_times(data: bytes) -> bytes:
    """Rewrite a zip with fixed member timestamps, so re-running gives identical bytes."""
    source = zipfile.ZipFile(io.BytesIO(data))
    output = io.BytesIO()
    with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            info = zipfile.ZipInfo(item.filename, date_time=(2025, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            target.writestr(info, source.read(item))
    return output.getvalue()


RENDERERS: dict[str, Callable[[Resume], bytes]] = {
    ".pdf": render_pdf,
    ".docx": render_docx,
    ".txt": render_text,
    ".md": render_markdown,
    ".rtf": render_rtf,
}


def build() -> dict[Path, bytes]:
    """Every sample file and its content."""
    files: dict[Path, bytes] = {}
    for resume in RESUMES:
        renderer = RENDERERS[Path(resume.filename).suffix]
        files[SAMPLES / "resumes" / resume.filename] = renderer(resume)
    for name, posting in JOBS.items():
        files[SAMPLES / "jobs" / name] = (posting.strip() + "\n").encode("utf-8")
    resumes = {resume.filename for resume in RESUMES}
    for job, labels in LABELS.items():
        if job not in JOBS or set(labels) != resumes:
            raise SystemExit(f"labels for {job} must cover exactly the sample resumes")
    files[SAMPLES / "labels.json"] = (json.dumps(LABELS, indent=2) + "\n").encode("utf-8")
    return files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="compare text files with samples/ instead of writing"
    )
    args = parser.parse_args()
    files = build()
    if args.check:
        stale = [
            str(path.relative_to(ROOT))
            for path, content in files.items()
            if path.suffix in {".txt", ".md", ".rtf", ".json"}
            and (not path.exists() or path.read_bytes() != content)
        ]
        if stale:
            print("out of date:", ", ".join(stale))
            return 1
        print(f"{len(files)} sample files up to date")
        return 0
    for path, content in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    print(f"wrote {len(files)} files under {SAMPLES.relative_to(ROOT)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
