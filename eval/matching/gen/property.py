#!/usr/bin/env python3
"""Write the DOCX and PDF resumes of the `property` family from sources/<id>.txt.

Every line of a source file becomes one paragraph (an empty line becomes an
empty paragraph in DOCX and a small gap in PDF). The first line (the name) is
set large and bold; lines listed in HEADINGS are styled as headings, with their
text unchanged. For the DOCX resumes in TABLE_IDS, each run of consecutive lines
containing " | " becomes a Word table: one row per line, one cell per
" | "-separated field (so the cells, joined with " | ", give the line back).

Usage (from anywhere):  python eval/matching/gen/property.py
Needs: python-docx and reportlab, e.g.
    python3 -m venv /tmp/evalgen-property
    /tmp/evalgen-property/bin/pip install python-docx reportlab
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

FAMILY = "property"
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)  # eval/matching

# resume id -> output format (the TXT and MD resumes are written by hand)
FORMATS = {}
for _n in range(1, 33):
    _rid = "%s-r%02d" % (FAMILY, _n)
    if _n % 4 == 3:
        FORMATS[_rid] = "docx"
    elif _n % 4 == 0:
        FORMATS[_rid] = "pdf"

# DOCX resumes whose " | " lines are laid out as tables
TABLE_IDS = {"property-r03", "property-r07", "property-r15", "property-r27"}

# exact lines that are section headings (styling only; the text is unchanged)
HEADINGS = {
    # English
    "About me", "Career", "How I work", "Qualifications", "Outside work", "PROFILE",
    "EXPERIENCE", "EDUCATION", "OTHER", "QUALIFICATIONS", "Career, one line each",
    "What that involves", "Elsewhere", "WORK HISTORY", "INTERESTS", "Profile", "Experience",
    "In a sentence", "Where I've been", "What clients get", "Toolbox", "Off the clock",
    # German
    "Profil", "Berufserfahrung", "Ausbildung & Qualifikationen", "Sprachen", "Hobbys",
    "Kurzprofil", "Aufgaben", "Ausbildung", "Sonstiges", "Über mich", "Freizeit",
    "Tätigkeiten seit 2015 (eigenes Sachverständigenbüro, Bamberg)", "Davor",
    # French
    "Parcours", "Missions actuelles", "Formation", "Langues", "Loisirs",
    "Expérience professionnelle", "Centres d'intérêt", "Mon métier", "Expérience",
    "Certifications", "Ce que je repère sur le terrain",
}

FIXED_DATE = datetime.datetime(2026, 12, 1, 9, 0, 0)


def read_lines(rid):
    with open(os.path.join(ROOT, "sources", rid + ".txt"), encoding="utf-8") as fh:
        return fh.read().rstrip("\n").split("\n")


def blocks(rid, lines):
    """Yield ('line', text) or ('table', rows) items, in order."""
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
    map, so bullets, dashes, guillemets and accents extract cleanly. Falls back
    to Helvetica."""
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
