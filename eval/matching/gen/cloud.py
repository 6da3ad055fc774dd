#!/usr/bin/env python3
"""Write the DOCX and PDF resumes of the `cloud` family from sources/<id>.txt.

Each line of a source file becomes one paragraph (empty lines become empty
paragraphs / small gaps). Lines listed in HEADINGS are styled as headings but
keep their exact text. In the DOCX resumes, every run of two or more
consecutive lines containing " | " is written as a table, one row per line and
one cell per " | "-separated field (a single " | " line, such as a contact
line, stays a plain paragraph).

Usage (from anywhere):  python eval/matching/gen/cloud.py
Needs: python-docx, reportlab (e.g. python3 -m venv /tmp/evalgen-cloud &&
/tmp/evalgen-cloud/bin/pip install python-docx reportlab).
"""
import datetime
import os
import sys
from xml.sax.saxutils import escape

from docx import Document
from docx.shared import Pt
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer

FAMILY = "cloud"
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)  # eval/matching

# resume id -> output format (the TXT and MD resumes are written by hand)
FORMATS = {}
for _n in range(1, 33):
    if _n % 4 == 3:
        FORMATS["%s-r%02d" % (FAMILY, _n)] = "docx"
    elif _n % 4 == 0:
        FORMATS["%s-r%02d" % (FAMILY, _n)] = "pdf"

# exact lines that are section headings (styling only; text is unchanged)
HEADINGS = {
    # English
    "Profile", "PROFILE", "Summary", "SUMMARY", "Experience", "EXPERIENCE", "Career history",
    "Work history", "Education", "EDUCATION", "Certifications", "CERTIFICATIONS", "Languages",
    "Skills", "SKILLS", "Courses", "Writing samples", "About me", "Qualifications", "Other",
    "CORE COMPETENCIES", "INTERESTS",
    "Larchfield Cloud Consulting (2021 – present)", "Dunmore Insurance Group (2017 – 2021)",
    "Stravaig Software (2015 – 2017)", "The Quayside Brasserie (2019 – now)",
    "Llandaff House Hotel (2014 – 2019)", "Vale Bistro (2011 – 2014)",
    "DevOps Engineer (Jan 2023 – present)", "Windows and Linux Systems Engineer (2018 – 2022)",
    "Digbeth Bank (2022 – present)", "Selly Oak Games (2018 – 2022)",
    # German
    "Lebenslauf", "Kurzprofil", "Profil", "Berufserfahrung", "Ausbildung", "Zertifikate",
    "Sprachen", "Kenntnisse", "Zu meiner Person", "Beruflicher Werdegang", "Weiterbildung",
    "Aufgaben im Plattformteam (seit 04/2020)", "Aufgaben als Linux-Administratorin (2018–2020)",
    "Was ich als Junior-Administrator mache", "Umschulung (2023 – 2024)",
    "PROFIL", "BERUFLICHER WERDEGANG", "AUSBILDUNG", "ZERTIFIKATE", "SPRACHEN", "KENNTNISSE",
    # French
    "EXPÉRIENCE PROFESSIONNELLE", "EXPÉRIENCE", "FORMATION", "LANGUES", "COMPÉTENCES",
    "En bref", "Expérience", "Formation", "Langues", "Compétences",
    "Ce que je fais depuis 2023", "En alternance (2021 – 2023)", "Alternance chez Flandres Maison",
    "Stage à la mairie", "Projets d'école",
}

FIXED_DATE = datetime.datetime(2026, 11, 1, 9, 0, 0)


def read_lines(rid):
    with open(os.path.join(ROOT, "sources", rid + ".txt"), encoding="utf-8") as fh:
        return fh.read().rstrip("\n").split("\n")


def blocks(lines):
    """Yield ('line', text) or ('table', [rows]) items."""
    i = 0
    while i < len(lines):
        j = i
        while j < len(lines) and " | " in lines[j]:
            j += 1
        if j - i >= 2:
            yield ("table", [lines[k].split(" | ") for k in range(i, j)])
            i = j
        else:
            yield ("line", lines[i])
            i += 1


def write_docx(lines, path):
    doc = Document()
    normal = doc.styles["Normal"]
    normal.font.name = "Calibri"
    normal.font.size = Pt(10.5)
    first = True
    for kind, item in blocks(lines):
        if kind == "table":
            ncols = max(len(r) for r in item)
            table = doc.add_table(rows=0, cols=ncols)
            table.style = "Table Grid"
            for r in item:
                cells = table.add_row().cells
                for j, text in enumerate(r):
                    cells[j].text = text
            continue
        if first:
            p = doc.add_paragraph()
            run = p.add_run(item)
            run.bold = True
            run.font.size = Pt(16)
            first = False
        elif item in HEADINGS:
            doc.add_heading(item, level=2)
        else:
            doc.add_paragraph(item)
    props = doc.core_properties
    name = lines[1] if lines[0] == "Lebenslauf" else lines[0]
    props.author = name
    props.title = "CV " + name
    props.created = FIXED_DATE
    props.modified = FIXED_DATE
    props.last_modified_by = name
    props.revision = 1
    doc.save(path)


def pdf_fonts():
    """Bitstream Vera ships with reportlab; embedding it gives the PDF a ToUnicode
    map, so dashes, quotes and accents extract cleanly. Fall back to Helvetica."""
    try:
        import reportlab
        fdir = os.path.join(os.path.dirname(reportlab.__file__), "fonts")
        pdfmetrics.registerFont(TTFont("Vera", os.path.join(fdir, "Vera.ttf")))
        pdfmetrics.registerFont(TTFont("VeraBd", os.path.join(fdir, "VeraBd.ttf")))
        return "Vera", "VeraBd"
    except Exception:
        return "Helvetica", "Helvetica-Bold"


def write_pdf(lines, path):
    regular, bold = pdf_fonts()
    styles = getSampleStyleSheet()
    body = ParagraphStyle("body", parent=styles["Normal"], fontName=regular,
                          fontSize=9.5, leading=13)
    head = ParagraphStyle("head", parent=body, fontName=bold,
                          fontSize=11.5, leading=15, spaceBefore=6)
    name = ParagraphStyle("name", parent=body, fontName=bold,
                          fontSize=16, leading=20)
    story = []
    for n, line in enumerate(lines):
        if line.strip() == "":
            story.append(Spacer(1, 5))
            continue
        style = name if n == 0 else (head if line in HEADINGS else body)
        story.append(Paragraph(escape(line), style))
    doc = SimpleDocTemplate(path, pagesize=A4, leftMargin=20 * mm, rightMargin=20 * mm,
                            topMargin=18 * mm, bottomMargin=18 * mm,
                            title="CV " + lines[0], author=lines[0], invariant=1)
    doc.build(story)


def main():
    out_dir = os.path.join(ROOT, "resumes")
    for rid, fmt in sorted(FORMATS.items()):
        lines = read_lines(rid)
        path = os.path.join(out_dir, "%s.%s" % (rid, fmt))
        if fmt == "docx":
            write_docx(lines, path)
        elif fmt == "pdf":
            write_pdf(lines, path)
        else:
            sys.exit("unknown format %r for %s" % (fmt, rid))
        print("wrote", os.path.relpath(path, ROOT), os.path.getsize(path), "bytes")


if __name__ == "__main__":
    main()
