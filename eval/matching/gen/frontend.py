#!/usr/bin/env python3
"""Write the DOCX and PDF resumes of the `frontend` family from sources/<id>.txt.

Each line of a source file becomes one paragraph (empty lines become empty
paragraphs / small gaps). Lines that are section headings are styled as
headings but keep their exact text. For the resumes listed in TABLE_IDS, runs
of consecutive lines containing " | " are written as a DOCX table, one row per
line and one cell per " | "-separated field.

Usage (from anywhere):  python eval/matching/gen/frontend.py
Needs: python-docx, reportlab (e.g. python3 -m venv /tmp/evalgen-frontend &&
/tmp/evalgen-frontend/bin/pip install python-docx reportlab).
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

FAMILY = "frontend"
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)  # eval/matching

# resume id -> output format (the TXT and MD resumes are written by hand)
FORMATS = {
    "frontend-r03": "docx", "frontend-r04": "pdf",
    "frontend-r07": "docx", "frontend-r08": "pdf",
    "frontend-r11": "docx", "frontend-r12": "pdf",
    "frontend-r15": "docx", "frontend-r16": "pdf",
    "frontend-r19": "docx", "frontend-r20": "pdf",
    "frontend-r23": "docx", "frontend-r24": "pdf",
    "frontend-r27": "docx", "frontend-r28": "pdf",
    "frontend-r31": "docx", "frontend-r32": "pdf",
}

# DOCX resumes whose " | " lines are laid out as tables
TABLE_IDS = {"frontend-r03", "frontend-r07", "frontend-r27", "frontend-r31"}

# exact lines that are section headings (styling only; text is unchanged)
HEADINGS = {
    # English
    "Summary", "Experience", "Education", "Other", "Threadneedle Learning", "Pollenpath",
    "Ancoats Web Co.", "About me", "Training", "Previous career", "Skills", "Profile",
    "At the Minster Grand", "At Ouse Street", "Qualifications",
    "PROFILE", "EXPERIENCE", "EDUCATION", "CERTIFICATES", "SKILLS", "SUMMARY",
    "TALKS AND WRITING",
    # German
    "Profil", "Berufserfahrung", "Kundenportal (Rheinkontor)", "Bürgerportale (Stadtwerk Digital)",
    "Ausbildung", "Sprachen", "Kenntnisse", "Über mich", "Stationen", "Bei Weserwelle",
    "Bei Hansedruck", "Weiterbildung", "Freizeit", "Publikationen und Vorträge", "Ehrenamt",
    "Hobbys", "ÜBER MICH", "BERUFSERFAHRUNG", "AUSBILDUNG", "KENNTNISSE", "SPRACHEN",
    # French
    "En bref", "Expérience", "Formation", "Compétences", "Langues", "Centres d'intérêt",
    "Alternance", "Projets d'école", "Parcours", "Outils", "Loisirs",
    "PROFIL", "EXPÉRIENCE", "FORMATION", "COMPÉTENCES", "LANGUES",
}

FIXED_DATE = datetime.datetime(2026, 11, 1, 9, 0, 0)


def read_lines(rid):
    with open(os.path.join(ROOT, "sources", rid + ".txt"), encoding="utf-8") as fh:
        return fh.read().rstrip("\n").split("\n")


def blocks(rid, lines):
    """Yield ('line', text) or ('table', [rows]) items."""
    i = 0
    use_tables = rid in TABLE_IDS
    while i < len(lines):
        if use_tables and " | " in lines[i]:
            rows = []
            while i < len(lines) and " | " in lines[i]:
                rows.append(lines[i].split(" | "))
                i += 1
            yield ("table", rows)
        else:
            yield ("line", lines[i])
            i += 1


def write_docx(rid, lines, path):
    doc = Document()
    normal = doc.styles["Normal"]
    normal.font.name = "Calibri"
    normal.font.size = Pt(10.5)
    first = True
    for kind, item in blocks(rid, lines):
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
    props.author = lines[0]
    props.title = "CV " + lines[0]
    props.created = FIXED_DATE
    props.modified = FIXED_DATE
    props.last_modified_by = lines[0]
    props.revision = 1
    doc.save(path)


def pdf_fonts():
    """Bitstream Vera ships with reportlab; embedding it gives the PDF a ToUnicode
    map, so bullets, dashes and accents extract cleanly. Fall back to Helvetica."""
    try:
        import reportlab
        fdir = os.path.join(os.path.dirname(reportlab.__file__), "fonts")
        pdfmetrics.registerFont(TTFont("Vera", os.path.join(fdir, "Vera.ttf")))
        pdfmetrics.registerFont(TTFont("VeraBd", os.path.join(fdir, "VeraBd.ttf")))
        return "Vera", "VeraBd"
    except Exception:
        return "Helvetica", "Helvetica-Bold"


def write_pdf(rid, lines, path):
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
            write_docx(rid, lines, path)
        elif fmt == "pdf":
            write_pdf(rid, lines, path)
        else:
            sys.exit("unknown format %r for %s" % (fmt, rid))
        print("wrote", os.path.relpath(path, ROOT), os.path.getsize(path), "bytes")


if __name__ == "__main__":
    main()
