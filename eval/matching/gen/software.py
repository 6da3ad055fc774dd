#!/usr/bin/env python3
"""Write the DOCX and PDF resumes of the `software` family from sources/software-rNN.txt.

Each line of a source file becomes one paragraph (an empty line becomes an empty
paragraph / a small gap).  Consecutive lines that contain a TAB become the rows of a
table, one cell per TAB-separated field.  Lines listed in HEADINGS[resume] are styled as
headings; the first line (the person's name) is styled as a title.  The text of every
paragraph is exactly the text of its source line.

Usage (from eval/matching/):
    python3 -m venv /tmp/evalgen-software
    /tmp/evalgen-software/bin/pip install python-docx reportlab
    /tmp/evalgen-software/bin/python gen/software.py
"""
import os
import sys
from xml.sax.saxutils import escape

from docx import Document
from docx.shared import Pt
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

FAMILY = "software"
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)  # eval/matching

# resume id -> output format
FORMATS = {
    "r01": "docx", "r04": "pdf", "r05": "docx", "r06": "pdf", "r09": "docx",
    "r12": "pdf", "r14": "docx", "r16": "pdf", "r19": "docx", "r20": "pdf",
    "r23": "pdf", "r24": "docx", "r26": "pdf", "r27": "docx", "r30": "pdf",
    "r32": "docx",
}

# lines styled as headings (everything else is body text)
HEADINGS = {
    "r01": ["Summary", "Experience", "Education", "Skills", "Languages"],
    "r04": ["Work", "Education", "Also"],
    "r05": ["Lebenslauf", "Profil", "Berufserfahrung", "Ausbildung", "Kenntnisse",
            "Sprachen", "Ehrenamt"],
    "r06": ["Parcours", "Formation", "Compétences", "Langues", "Centres d'intérêt"],
    "r09": ["About me", "Professional experience", "Education", "Skills", "Languages"],
    "r12": ["EXPERIENCE", "EDUCATION", "SKILLS", "INTERESTS"],
    "r14": ["Experience", "Education", "Skills", "Other"],
    "r16": ["Profil", "Berufserfahrung", "Ausbildung", "Kenntnisse", "Sprachen",
            "Interessen"],
    "r19": ["Expérience professionnelle", "Formation", "Compétences", "Certifications",
            "Langues"],
    "r20": ["Profile", "Experience", "Education", "Courses and certificates", "Skills"],
    "r23": ["Formation", "Expérience", "Certifications", "Compétences", "Langues",
            "Centres d'intérêt"],
    "r24": ["Experience", "Education", "Toolkit"],
    "r26": ["SKILLS SUMMARY", "EXPERIENCE", "EDUCATION", "INTERESTS"],
    "r27": ["Profile", "Experience", "Qualifications", "Languages"],
    "r30": ["Summary", "Experience", "Education", "Skills", "Languages"],
    "r32": ["PROFILE", "EXPERIENCE", "EDUCATION", "SKILLS", "LANGUAGES"],
}


def blocks(lines):
    """Group lines into ('para', line) and ('table', [rows]) blocks."""
    out = []
    for line in lines:
        if "\t" in line:
            row = line.split("\t")
            if out and out[-1][0] == "table":
                out[-1][1].append(row)
            else:
                out.append(("table", [row]))
        else:
            out.append(("para", line))
    return out


def write_docx(rid, lines, path):
    heads = set(HEADINGS.get(rid, []))
    doc = Document()
    normal = doc.styles["Normal"]
    normal.font.name = "Calibri"
    normal.font.size = Pt(10.5)
    for i, (kind, item) in enumerate(blocks(lines)):
        if kind == "table":
            ncols = max(len(r) for r in item)
            table = doc.add_table(rows=0, cols=ncols)
            table.style = "Table Grid"
            for row in item:
                cells = table.add_row().cells
                for j in range(ncols):
                    cells[j].text = row[j] if j < len(row) else ""
            continue
        if i == 0:
            p = doc.add_paragraph()
            run = p.add_run(item)
            run.bold = True
            run.font.size = Pt(18)
        elif item in heads:
            doc.add_heading(item, level=2)
        else:
            doc.add_paragraph(item)
    doc.save(path)


def write_pdf(rid, lines, path):
    heads = set(HEADINGS.get(rid, []))
    body = ParagraphStyle("body", fontName="Helvetica", fontSize=10, leading=13,
                          spaceAfter=2)
    head = ParagraphStyle("head", fontName="Helvetica-Bold", fontSize=12, leading=15,
                          spaceBefore=6, spaceAfter=3)
    title = ParagraphStyle("title", fontName="Helvetica-Bold", fontSize=17, leading=21,
                           spaceAfter=4)
    story = []
    for i, (kind, item) in enumerate(blocks(lines)):
        if kind == "table":
            ncols = max(len(r) for r in item)
            data = [[Paragraph(escape(r[j]) if j < len(r) else "", body)
                     for j in range(ncols)] for r in item]
            widths = [40 * mm] + [(170 - 40) * mm / max(1, ncols - 1)] * (ncols - 1)
            t = Table(data, colWidths=widths[:ncols])
            t.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP")]))
            story.append(t)
            continue
        if item == "":
            story.append(Spacer(1, 4))
        elif i == 0:
            story.append(Paragraph(escape(item), title))
        elif item in heads:
            story.append(Paragraph(escape(item), head))
        else:
            story.append(Paragraph(escape(item), body))
    doc = SimpleDocTemplate(path, pagesize=A4, leftMargin=20 * mm, rightMargin=20 * mm,
                            topMargin=18 * mm, bottomMargin=18 * mm,
                            title="Resume", author="")
    doc.build(story)


def main():
    for num, fmt in sorted(FORMATS.items()):
        rid = f"{FAMILY}-{num}"
        src = os.path.join(ROOT, "sources", f"{rid}.txt")
        with open(src, encoding="utf-8") as fh:
            lines = fh.read().split("\n")
        if lines and lines[-1] == "":
            lines = lines[:-1]
        out = os.path.join(ROOT, "resumes", f"{rid}.{fmt}")
        if fmt == "docx":
            write_docx(num, lines, out)
        else:
            write_pdf(num, lines, out)
        size = os.path.getsize(out)
        if size > 100_000:
            sys.exit(f"{out} is {size} bytes, over 100 KB")
        print(f"wrote {out} ({size} bytes)")


if __name__ == "__main__":
    main()
