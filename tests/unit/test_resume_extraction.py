"""Extraction: real files in, clean text or a clear InvalidInputError out.

Bad inputs are generated here (encrypted and scanned PDFs, zip bombs, renamed files) so each
test shows exactly what makes the input bad; tests/fixtures/resumes holds a few tiny ones.
"""

from __future__ import annotations

import io
import shutil
import struct
import zipfile
from pathlib import Path

import pytest

from are_workers.config import Settings
from are_workers.errors import InvalidInputError, PermanentError
from are_workers.services.documents import (
    DocumentType,
    ErrorCode,
    ExtractionLimits,
    clean_text,
    detect_document_type,
    detect_language,
    extract_file,
    extract_text,
    rtf_to_text,
)

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples" / "resumes"
FIXTURES = ROOT / "tests" / "fixtures" / "resumes"

EXPECTED_TYPES = {
    ".pdf": DocumentType.PDF,
    ".docx": DocumentType.DOCX,
    ".rtf": DocumentType.RTF,
    ".txt": DocumentType.TEXT,
    ".md": DocumentType.TEXT,
}


def _refusal(data: bytes, limits: ExtractionLimits | None = None) -> InvalidInputError:
    with pytest.raises(InvalidInputError) as caught:
        extract_text(data, limits=limits)
    error = caught.value
    assert isinstance(error, PermanentError)  # never retried by the ledger
    assert error.user_message.endswith(".")
    assert len(error.user_message) > 30  # a sentence that says what to do, not a code
    return error


def _pdf(pages: list[str], **canvas_kwargs: object) -> bytes:
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, **canvas_kwargs)  # type: ignore[arg-type]
    for text in pages:
        if text:
            pdf.drawString(72, 720, text)
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def _docx(paragraphs: list[str]) -> bytes:
    import docx

    document = docx.Document()
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


# --- the sample resumes -------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(SAMPLES.iterdir()), ids=lambda p: p.name)
def test_every_sample_resume_extracts(path: Path) -> None:
    result = extract_file(path)
    assert result.document_type is EXPECTED_TYPES[path.suffix]
    assert result.char_count > 300
    assert "@example." in result.text  # the contact line survived, wherever the format put it
    assert "\r" not in result.text
    assert "  " not in result.text
    expected_language = {"anna_schmidt_de.pdf": "de", "julien_moreau_fr.docx": "fr"}
    assert result.language == expected_language.get(path.name, "en")
    assert result.page_count == (1 if path.suffix == ".pdf" else None)


def test_docx_header_and_table_text_are_extracted() -> None:
    text = extract_file(SAMPLES / "priya_raman_backend.docx").text
    assert text.startswith("priya.raman@example.org")  # from the page header
    assert "Languages | Go, Java, Python, SQL" in text  # a table row reads as one line
    assert "Platform | Docker, Kubernetes" in text


def test_rtf_sample_keeps_text_and_drops_control_words() -> None:
    text = extract_file(SAMPLES / "maria_rossi_healthcare_analyst.rtf").text
    assert text.startswith("Maria Rossi\n")
    assert "\u2022 Write SQL against the Epic Clarity warehouse" in text
    assert "\\" not in text
    assert "Helvetica" not in text
    assert "generator" not in text


def test_rtf_escapes() -> None:
    rtf = (
        r"{\rtf1\ansi{\fonttbl{\f0 Arial;}}{\*\generator Word;}\uc1"
        r"Ren\'e9e M\u252?ller\par Caf\'e9 \endash{} Z\u252?rich\tab 2020\par"
        r"{\info{\title secret}}Braces \{ok\} and back\\slash}"
    )
    assert rtf_to_text(rtf) == "Renée Müller\nCafé \u2013 Zürich\t2020\nBraces {ok} and back\\slash"


@pytest.mark.parametrize(
    ("name", "first_line"),
    [("resume_cp1252.txt", "José Núñez"), ("resume_utf16.txt", "Lena Berg")],
)
def test_text_encodings(name: str, first_line: str) -> None:
    result = extract_file(FIXTURES / name)
    assert result.document_type is DocumentType.TEXT
    assert result.text.splitlines()[0] == first_line


def test_clean_text_normalises_once() -> None:
    raw = "Pro\ufb01le\r\n\r\n\r\n\r\nsoft\u00adware  engi\u200bneer \t\n\x0cNext page\x00"
    assert clean_text(raw) == "Profile\n\nsoftware engineer\n\nNext page"


# --- type detection from magic bytes --------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "disguise"),
    [
        ("alex_chen_backend.pdf", "resume.docx"),
        ("priya_raman_backend.docx", "resume.pdf"),
        ("jamie_lee_junior_dev.txt", "resume.pdf"),
        ("maria_rossi_healthcare_analyst.rtf", "resume.txt"),
    ],
)
def test_type_comes_from_content_not_extension(tmp_path: Path, source: str, disguise: str) -> None:
    renamed = tmp_path / disguise
    shutil.copy(SAMPLES / source, renamed)
    assert extract_file(renamed).document_type is EXPECTED_TYPES[Path(source).suffix]


def test_png_renamed_pdf_is_refused() -> None:
    with pytest.raises(InvalidInputError) as caught:
        extract_file(FIXTURES / "photo_renamed.pdf")
    assert caught.value.code == ErrorCode.UNSUPPORTED_TYPE
    assert "PNG image" in caught.value.user_message


@pytest.mark.parametrize(
    ("data", "what"),
    [
        (b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + bytes(200), "Windows program"),
        (b"\x7fELF\x02\x01\x01" + bytes(100), "program"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF" + bytes(100), "JPEG image"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(500), ".doc"),
        (b"\x1f\x8b\x08\x00" + bytes(100), "compressed archive"),
        (bytes(range(256)) * 4, "binary file"),
    ],
)
def test_foreign_files_are_refused_by_content(data: bytes, what: str) -> None:
    error = _refusal(data)
    assert error.code == ErrorCode.UNSUPPORTED_TYPE
    assert what in error.user_message


def test_other_zip_containers_are_refused() -> None:
    for member, what in [("xl/workbook.xml", "Excel"), ("notes.txt", "ZIP archive")]:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr(member, "hello")
        error = _refusal(buffer.getvalue())
        assert error.code == ErrorCode.UNSUPPORTED_TYPE
        assert what in error.user_message


def test_detect_document_type_needs_no_parser() -> None:
    assert detect_document_type(b"junk\n%PDF-1.7\n...") is DocumentType.PDF
    assert detect_document_type(b"\xef\xbb\xbf{\\rtf1 hi}") is DocumentType.RTF
    assert detect_document_type("Résumé de Jean".encode()) is DocumentType.TEXT


# --- every refusal has its code ----------------------------------------------------------------


def test_empty_file() -> None:
    assert _refusal(b"").code == ErrorCode.EMPTY_FILE


def test_whitespace_only_text_has_no_text() -> None:
    assert _refusal(b"   \n\n\t  \n").code == ErrorCode.NO_TEXT


def test_oversized_file_is_refused_before_reading(tmp_path: Path) -> None:
    big = tmp_path / "resume.txt"
    big.write_bytes(b"Experience " * 2000)
    limits = ExtractionLimits(max_file_bytes=10_000)
    with pytest.raises(InvalidInputError) as caught:
        extract_file(big, limits=limits)
    assert caught.value.code == ErrorCode.FILE_TOO_LARGE
    assert "limit is" in caught.value.user_message


def test_password_protected_pdf() -> None:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(SAMPLES / "alex_chen_backend.pdf"))
    writer.encrypt(user_password="s3cret", owner_password="owner", algorithm="AES-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    error = _refusal(buffer.getvalue())
    assert error.code == ErrorCode.PDF_ENCRYPTED
    assert "password" in error.user_message


def test_pdf_restricted_only_by_owner_password_opens() -> None:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(SAMPLES / "alex_chen_backend.pdf"))
    writer.encrypt(user_password="", owner_password="owner", algorithm="RC4-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    assert "Alex Chen" in extract_text(buffer.getvalue()).text


def test_scanned_pdf_without_text_layer() -> None:
    from PIL import Image, ImageDraw
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    page = Image.new("L", (600, 200), 255)
    ImageDraw.Draw(page).text((20, 80), "Jane Doe - Registered Nurse - 10 years ICU", fill=0)
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer)
    pdf.drawImage(ImageReader(page), 50, 500, width=500, height=166)
    pdf.save()
    error = _refusal(buffer.getvalue())
    assert error.code == ErrorCode.PDF_SCANNED
    assert "scanned" in error.user_message


def test_pdf_with_blank_pages_has_no_text() -> None:
    assert _refusal(_pdf(["", ""])).code == ErrorCode.NO_TEXT


def test_too_many_pages() -> None:
    data = _pdf([f"Page {n} of a very long document" for n in range(4)])
    error = _refusal(data, ExtractionLimits(max_pdf_pages=3))
    assert error.code == ErrorCode.TOO_MANY_PAGES
    assert "4 pages" in error.user_message


def test_corrupt_pdf() -> None:
    assert _refusal((FIXTURES / "truncated.pdf").read_bytes()).code == ErrorCode.CORRUPT_FILE
    assert _refusal(b"%PDF-1.4\n" + bytes(range(256)) * 8).code == ErrorCode.CORRUPT_FILE


def test_corrupt_docx() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types")
        archive.writestr("word/document.xml", "<w:document><unclosed")
    assert _refusal(buffer.getvalue()).code == ErrorCode.CORRUPT_FILE


def _docx_with_padding(padding_bytes: int) -> bytes:
    """A real DOCX plus one highly compressible member (a few KB on disk)."""
    source = zipfile.ZipFile(io.BytesIO(_docx(["Jane Doe", "Experience: nurse since 2015"])))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for item in source.infolist():
            archive.writestr(item, source.read(item))
        archive.writestr("word/media/padding.bin", bytes(padding_bytes))
    return buffer.getvalue()


def test_zip_bomb_refused_by_declared_size() -> None:
    data = _docx_with_padding(3_000_000)
    assert len(data) < 60_000  # the Word template itself is ~36 KB
    error = _refusal(data, ExtractionLimits(max_decompressed_bytes=1_000_000))
    assert error.code == ErrorCode.DECOMPRESSED_TOO_LARGE


def test_zip_bomb_refused_by_compression_ratio() -> None:
    data = _docx_with_padding(8_000_000)  # under the 50 MB default, but 1000:1
    assert _refusal(data).code == ErrorCode.DECOMPRESSED_TOO_LARGE


def test_zip_bomb_with_forged_sizes_is_refused() -> None:
    """Headers that understate a member's size must not let it inflate unchecked."""
    data = bytearray(_docx_with_padding(3_000_000))
    forged = 0
    position = data.find(b"PK\x01\x02")
    while position >= 0:
        name_length = struct.unpack_from("<H", data, position + 28)[0]
        name = bytes(data[position + 46 : position + 46 + name_length])
        if name == b"word/media/padding.bin":
            struct.pack_into("<I", data, position + 24, 1000)  # uncompressed size: "1 KB"
            forged += 1
        position = data.find(b"PK\x01\x02", position + 4)
    assert forged == 1
    error = _refusal(bytes(data), ExtractionLimits(max_decompressed_bytes=1_000_000))
    assert error.code in {ErrorCode.DECOMPRESSED_TOO_LARGE, ErrorCode.CORRUPT_FILE}


def test_time_limit() -> None:
    data = (SAMPLES / "alex_chen_backend.pdf").read_bytes()
    error = _refusal(data, ExtractionLimits(max_seconds=0.0))
    assert error.code == ErrorCode.TIMEOUT


def test_limits_default_to_settings() -> None:
    settings = Settings(max_file_bytes=1234, max_pdf_pages=7, max_decompressed_bytes=5678)
    limits = ExtractionLimits.from_settings(settings)
    assert (limits.max_file_bytes, limits.max_pdf_pages, limits.max_decompressed_bytes) == (
        1234,
        7,
        5678,
    )
    defaults, fields = ExtractionLimits(), Settings.model_fields
    assert defaults.max_file_bytes == fields["max_file_bytes"].default
    assert defaults.max_pdf_pages == fields["max_pdf_pages"].default
    assert defaults.max_decompressed_bytes == fields["max_decompressed_bytes"].default


# --- language -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("I led the team that built the payments platform and was responsible for it.", "en"),
        (
            "Ich war für die Entwicklung der Plattform verantwortlich und habe das Team geleitet.",
            "de",
        ),
        ("J'ai dirigé l'équipe et j'étais responsable du développement de la plateforme.", "fr"),
        (
            "Dirigí el equipo y fui responsable del desarrollo de la plataforma con los clientes.",
            "es",
        ),
        ("Ik was verantwoordelijk voor de ontwikkeling van het platform en het team.", "nl"),
        ("Sono stato responsabile dello sviluppo della piattaforma e del gruppo di lavoro.", "it"),
        ("Fui responsável pelo desenvolvimento da plataforma e da equipe com os clientes.", "pt"),
        ("Python, SQL", "und"),
    ],
)
def test_language_detection(text: str, code: str) -> None:
    assert detect_language(text).code == code
