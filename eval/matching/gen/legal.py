#!/usr/bin/env python3
"""Write the DOCX and PDF resumes of the `legal` family from sources/legal-rNN.txt.

Every line of a source file becomes exactly one paragraph (or one table cell) in the
generated document, in the same order, so the plain text of the document is the text of
the source file. Layout (headings, tables, bullets) is decided per resume below and never
changes the text.

Usage (from anywhere):  python eval/matching/gen/legal.py
Needs: python-docx, reportlab  (pip install python-docx reportlab)
"""
from pathlib import Path
from xml.sax.saxutils import escape

from docx import Document
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.shared import Pt, RGBColor
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer

FAMILY = "legal"
ROOT = Path(__file__).resolve().parent.parent          # eval/matching
SOURCES = ROOT / "sources"
RESUMES = ROOT / "resumes"

# Per resume: format, the lines to render as headings, tables given as
# (text of the first cell, rows, cols) — the rows*cols lines starting at that line fill the
# table row by row — and how many lines at the top form the header block (name + details).
LAYOUT = {
    "legal-r03": {"fmt": "docx", "header": 3,
                  "headings": ["Kurzprofil", "Berufserfahrung", "Ausbildung", "Zulassung", "Sprachen"]},
    "legal-r04": {"fmt": "pdf", "header": 3,
                  "headings": ["Profil", "Parcours", "Formation", "Langues", "Outils"]},
    "legal-r07": {"fmt": "docx", "header": 3,
                  "headings": ["Profile", "Experience", "Education", "Systems"],
                  "tables": [("University of Law", 2, 2), ("Case management", 2, 2)]},
    "legal-r08": {"fmt": "pdf", "header": 2,
                  "headings": ["Roles", "Gaskell Rook – CP, day to day", "Education", "Other"]},
    "legal-r11": {"fmt": "docx", "header": 3,
                  "headings": ["About me", "Career history", "Qualifications", "Skills"]},
    "legal-r12": {"fmt": "pdf", "header": 2,
                  "headings": ["PERSONAL STATEMENT", "EMPLOYMENT", "QUALIFICATIONS", "SYSTEMS",
                               "INTERESTS"]},
    "legal-r15": {"fmt": "docx", "header": 3,
                  "headings": ["Profile", "Work history", "Education", "Skills", "Languages"]},
    "legal-r16": {"fmt": "pdf", "header": 3,
                  "headings": ["Profile", "Experience", "Qualifications", "Other"]},
    "legal-r19": {"fmt": "docx", "header": 3,
                  "headings": ["Summary", "Training contract", "Employer", "Education",
                               "Other experience", "Languages"],
                  "tables": [("Seat", 5, 2)]},
    "legal-r20": {"fmt": "pdf", "header": 3,
                  "headings": ["À propos", "Expériences", "Formation", "Langues", "Outils"]},
    "legal-r23": {"fmt": "docx", "header": 3,
                  "headings": ["About me", "Writing", "Education", "Other"]},
    "legal-r24": {"fmt": "pdf", "header": 3,
                  "headings": ["Profile", "Experience", "Education", "Other"]},
    "legal-r27": {"fmt": "docx", "header": 3,
                  "headings": ["Mon projet", "Expérience professionnelle", "Formation", "Langues",
                               "Informatique"]},
    "legal-r28": {"fmt": "pdf", "header": 3,
                  "headings": ["Über mich", "Stationen", "Ausbildung", "Kenntnisse", "Sprachen"]},
    "legal-r31": {"fmt": "docx", "header": 2,
                  "headings": ["Career", "What I do at Fen Court", "Qualifications", "Other"],
                  "tables": [("Years", 4, 2)]},
    "legal-r32": {"fmt": "pdf", "header": 3,
                  "headings": ["Profile", "Experience", "Qualifications", "Other"]},
}


def is_bullet(line: str) -> bool:
    """Long sentence-like lines are shown as bullets (purely visual)."""
    return line.endswith(".") and len(line) > 70


def plan(rid: str, lines: list[str]):
    """Yield blocks: ('title'|'sub'|'heading'|'bullet'|'para', line) or ('table', rows)."""
    cfg = LAYOUT[rid]
    starts = {t[0]: (t[1], t[2]) for t in cfg.get("tables", [])}
    missing = [h for h in list(cfg["headings"]) + list(starts) if h not in lines]
    assert not missing, f"{rid}: layout lines not in source: {missing}"
    i = 0
    while i < len(lines):
        line = lines[i]
        if i == 0:
            yield "title", line
        elif i < cfg["header"]:
            yield "sub", line
        elif line in starts:
            rows, cols = starts[line]
            cells = lines[i:i + rows * cols]
            yield "table", [cells[r * cols:(r + 1) * cols] for r in range(rows)]
            i += rows * cols
            continue
        elif line in cfg["headings"]:
            yield "heading", line
        elif is_bullet(line):
            yield "bullet", line
        else:
            yield "para", line
        i += 1


def write_docx(rid: str, lines: list[str], out: Path) -> None:
    doc = Document()
    style = doc.styles["Normal"]
    style.font.name = "Calibri"
    style.font.size = Pt(10.5)
    for kind, item in plan(rid, lines):
        if kind == "title":
            p = doc.add_paragraph()
            r = p.add_run(item)
            r.bold = True
            r.font.size = Pt(18)
            r.font.color.rgb = RGBColor(0x1F, 0x3A, 0x5F)
        elif kind == "sub":
            p = doc.add_paragraph(item)
            p.alignment = WD_ALIGN_PARAGRAPH.LEFT
        elif kind == "heading":
            doc.add_heading(item, level=2)
        elif kind == "bullet":
            doc.add_paragraph(item, style="List Bullet")
        elif kind == "para":
            doc.add_paragraph(item)
        elif kind == "table":
            rows = item
            table = doc.add_table(rows=len(rows), cols=len(rows[0]))
            table.style = "Table Grid"
            for r, row in enumerate(rows):
                for c, text in enumerate(row):
                    table.cell(r, c).text = text
    doc.save(out)


def write_pdf(rid: str, lines: list[str], out: Path) -> None:
    title = ParagraphStyle("title", fontName="Helvetica-Bold", fontSize=17, leading=21,
                           spaceAfter=4)
    sub = ParagraphStyle("sub", fontName="Helvetica", fontSize=10, leading=13)
    heading = ParagraphStyle("heading", fontName="Helvetica-Bold", fontSize=12, leading=15,
                             spaceBefore=9, spaceAfter=3)
    body = ParagraphStyle("body", fontName="Helvetica", fontSize=10, leading=13, spaceAfter=2)
    bullet = ParagraphStyle("bullet", parent=body, leftIndent=12, bulletIndent=2)
    story = []
    for kind, item in plan(rid, lines):
        if kind == "title":
            story.append(Paragraph(escape(item), title))
        elif kind == "sub":
            story.append(Paragraph(escape(item), sub))
        elif kind == "heading":
            story.append(Paragraph(escape(item), heading))
        elif kind == "bullet":
            story.append(Paragraph(escape(item), bullet, bulletText="•"))
        elif kind == "para":
            story.append(Paragraph(escape(item), body))
        else:  # tables are only used in DOCX resumes
            for row in item:
                for text in row:
                    story.append(Paragraph(escape(text), body))
    story.insert(1, Spacer(1, 0))
    doc = SimpleDocTemplate(str(out), pagesize=A4, leftMargin=18 * mm, rightMargin=18 * mm,
                            topMargin=16 * mm, bottomMargin=16 * mm, title=lines[0],
                            author=lines[0])
    doc.build(story)


def main() -> None:
    RESUMES.mkdir(parents=True, exist_ok=True)
    for rid, cfg in sorted(LAYOUT.items()):
        lines = (SOURCES / f"{rid}.txt").read_text(encoding="utf-8").splitlines()
        lines = [l for l in lines if l.strip()]
        out = RESUMES / f"{rid}.{cfg['fmt']}"
        if cfg["fmt"] == "docx":
            write_docx(rid, lines, out)
        else:
            write_pdf(rid, lines, out)
        print(f"wrote {out.relative_to(ROOT)} ({out.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
