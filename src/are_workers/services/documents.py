"""Turn an uploaded resume file (PDF, DOCX, RTF, TXT/MD) into clean text, safely.

Why so defensive: the bytes come from the internet. The type is read from magic bytes, never
from the file name (a renamed ``.exe`` stays an ``.exe``). Every limit (file size, PDF pages,
decompressed bytes, time) is checked before the expensive step it protects, so a zip bomb or a
10,000-page PDF is refused instead of exhausting the worker. Every refusal is an
:class:`~are_workers.errors.InvalidInputError` whose message tells a candidate or recruiter what
is wrong and what to do: retrying the job cannot fix the file, so the ledger must not retry.

The returned text is normalised once (Unicode NFKC, newlines, whitespace) and then treated as
the *original*: parsing and chunking keep character offsets into it, so evidence can be quoted
verbatim later.
"""

from __future__ import annotations

import io
import re
import time
import unicodedata
import zipfile
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from are_workers.errors import InvalidInputError

if TYPE_CHECKING:
    from are_workers.config import Settings

__all__ = [
    "UNDETERMINED",
    "DocumentType",
    "ErrorCode",
    "ExtractedText",
    "ExtractionLimits",
    "LanguageGuess",
    "clean_text",
    "detect_document_type",
    "detect_language",
    "extract_file",
    "extract_text",
    "rtf_to_text",
]

_MIB = 1024 * 1024
_SUPPORTED_HINT = "Upload your resume as a PDF, Word (.docx), RTF or plain text file."


class ErrorCode(StrEnum):
    """The ``code`` of every :class:`InvalidInputError` raised here (stable, for the ledger/UI)."""

    EMPTY_FILE = "empty_file"
    FILE_TOO_LARGE = "file_too_large"
    UNSUPPORTED_TYPE = "unsupported_file_type"
    CORRUPT_FILE = "corrupt_file"
    PDF_ENCRYPTED = "pdf_encrypted"
    PDF_SCANNED = "pdf_scanned"
    TOO_MANY_PAGES = "too_many_pages"
    DECOMPRESSED_TOO_LARGE = "decompressed_too_large"
    TIMEOUT = "extraction_timeout"
    NO_TEXT = "no_text"


class DocumentType(StrEnum):
    PDF = "pdf"
    DOCX = "docx"
    RTF = "rtf"
    TEXT = "text"


@dataclass(frozen=True, slots=True)
class ExtractionLimits:
    """Ceilings for one extraction; the defaults equal :class:`~are_workers.config.Settings`."""

    max_file_bytes: int = 20 * _MIB
    max_pdf_pages: int = 50
    max_decompressed_bytes: int = 50 * _MIB
    max_seconds: float = 30.0
    max_zip_entries: int = 2_000
    max_compression_ratio: float = 200.0
    """A DOCX member inflating more than this from its compressed size is treated as a bomb."""

    @classmethod
    def from_settings(cls, settings: Settings, *, max_seconds: float = 30.0) -> ExtractionLimits:
        return cls(
            max_file_bytes=settings.max_file_bytes,
            max_pdf_pages=settings.max_pdf_pages,
            max_decompressed_bytes=settings.max_decompressed_bytes,
            max_seconds=max_seconds,
        )


@dataclass(frozen=True, slots=True)
class LanguageGuess:
    """An ISO 639-1 code (or ``"und"``) and how far ahead of the runner-up it was (0..1)."""

    code: str
    confidence: float


@dataclass(frozen=True, slots=True)
class ExtractedText:
    """The normalised text of one document and what was learnt while reading it."""

    text: str
    document_type: DocumentType
    language: str
    language_confidence: float
    page_count: int | None = None
    warnings: tuple[str, ...] = field(default=())

    @property
    def char_count(self) -> int:
        return len(self.text)


# --- type detection ---------------------------------------------------------------------------

_FOREIGN_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"BM", "a bitmap image"),
    (b"\x7fELF", "a program"),
    (b"\xca\xfe\xba\xbe", "a program"),
    (b"\xcf\xfa\xed\xfe", "a program"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old-format Office document (.doc)"),
    (b"\x1f\x8b", "a compressed archive"),
    (b"Rar!\x1a\x07", "a compressed archive"),
    (b"7z\xbc\xaf\x27\x1c", "a compressed archive"),
    (b"%!PS", "a PostScript file"),
    (b"ID3", "an audio file"),
    (b"OggS", "an audio or video file"),
    (b"\x1aE\xdf\xa3", "a video file"),
)
_ZIP_LOCAL_HEADER = b"PK\x03\x04"


def _unsupported(what: str, extra: str = "") -> InvalidInputError:
    advice = extra or _SUPPORTED_HINT
    return InvalidInputError(
        f"This file is {what}, not a resume document we can read. {advice}",
        code=ErrorCode.UNSUPPORTED_TYPE,
    )


def _describe_zip(data: bytes) -> DocumentType:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise InvalidInputError(
            "This file looks like a Word document or archive but is damaged and cannot be "
            "opened. Save it again from your editor, or upload a PDF.",
            code=ErrorCode.CORRUPT_FILE,
        ) from exc
    if "word/document.xml" in names:
        return DocumentType.DOCX
    if any(name.startswith("xl/") for name in names):
        raise _unsupported("an Excel spreadsheet")
    if any(name.startswith("ppt/") for name in names):
        raise _unsupported("a PowerPoint presentation")
    if "content.xml" in names:
        raise _unsupported(
            "an OpenDocument file",
            "Save it as Word (.docx) or PDF from your editor and upload that instead.",
        )
    raise _unsupported("a ZIP archive")


def detect_document_type(data: bytes) -> DocumentType:
    """The document type from the content itself; the file name is never consulted.

    Raises :class:`InvalidInputError` (``unsupported_file_type``) for anything else, naming
    what the file appears to be so the user understands the refusal.
    """
    if not data:
        raise InvalidInputError(
            "The uploaded file is empty. Upload your resume again.", code=ErrorCode.EMPTY_FILE
        )
    # PDF readers accept the header anywhere in the first KiB (some generators prepend junk).
    if b"%PDF-" in data[:1024]:
        return DocumentType.PDF
    if data.startswith(_ZIP_LOCAL_HEADER) or data.startswith(b"PK\x05\x06"):
        return _describe_zip(data)
    stripped = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith(b"{\\rtf"):
        return DocumentType.RTF
    if data.startswith(b"MZ") and b"\x00" in data[:256]:
        raise _unsupported("a Windows program")
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        raise _unsupported("a WebP image")
    for signature, what in _FOREIGN_SIGNATURES:
        if data.startswith(signature):
            if "old-format" in what:
                raise _unsupported(
                    what, "Open it in Word and save it as .docx or PDF, then upload that."
                )
            raise _unsupported(what)
    if _decode_text(data) is None:
        raise _unsupported("a binary file of an unknown kind")
    return DocumentType.TEXT


# --- text normalisation -----------------------------------------------------------------------

_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200b\u200c\u200d\u2060\ufeff"), None)
_LINE_BREAKS = {ord(ch): "\n" for ch in "\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"}
_CONTROL_RE = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f]")
_HORIZONTAL_SPACE_RE = re.compile(r"[^\S\n\t]+")
_BLANK_LINES_RE = re.compile(r"\n{3,}")


def clean_text(text: str) -> str:
    """Normalise extracted text once, so every later offset refers to the same string.

    NFKC folds PDF ligatures ("ﬁ" -> "fi") and full-width forms; soft hyphens and zero-width
    characters go; all line breaks become ``\\n``; runs of spaces collapse; at most one blank
    line is kept between paragraphs.
    """
    text = unicodedata.normalize("NFKC", text.replace("\r\n", "\n"))
    text = text.translate(_INVISIBLE).translate(_LINE_BREAKS)
    text = _CONTROL_RE.sub("", text)
    text = _HORIZONTAL_SPACE_RE.sub(" ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    return _BLANK_LINES_RE.sub("\n\n", text).strip()


#: What redaction writes over a contact detail, one per masked character (█): no tokenizer
#: or skill list reads it as a word, and offsets stay those of the extracted text.
MASK = "\u2588"


def is_masked(text: str) -> bool:
    """A line that is (almost) all redaction mask: a contact detail, nothing to read."""
    visible = [ch for ch in text if not ch.isspace()]
    return sum(ch != MASK for ch in visible) < 3


def _decode_text(data: bytes) -> str | None:
    """Decode a plain-text file, or None when the bytes are not text."""
    for bom, encoding in (
        (b"\xef\xbb\xbf", "utf-8-sig"),
        (b"\xff\xfe\x00\x00", "utf-32"),
        (b"\x00\x00\xfe\xff", "utf-32"),
        (b"\xff\xfe", "utf-16"),
        (b"\xfe\xff", "utf-16"),
    ):
        if data.startswith(bom):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError:
                return None
    if b"\x00" in data[:8192]:
        return None
    for encoding in ("utf-8", "cp1252"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        text = data.decode("latin-1")
    sample = text[:20_000]
    controls = sum(1 for ch in sample if unicodedata.category(ch) == "Cc" and ch not in "\t\n\r\f")
    if controls > max(2, len(sample) // 100):
        return None
    return text


# --- per-format extractors --------------------------------------------------------------------


class _Deadline:
    """Cooperative time limit: checked between pages/paragraphs (native code can't be cut)."""

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._expires = time.monotonic() + seconds

    def check(self) -> None:
        if time.monotonic() > self._expires:
            raise InvalidInputError(
                f"Reading this file took longer than {self._seconds:g} seconds, so we stopped. "
                "Upload a simpler or shorter version (a PDF exported from your editor works best).",
                code=ErrorCode.TIMEOUT,
            )


def _too_large_decompressed(limits: ExtractionLimits) -> InvalidInputError:
    return InvalidInputError(
        "This file expands to more than "
        f"{limits.max_decompressed_bytes // _MIB} MB when opened, which is far more than a "
        "resume needs (it may contain very large images or be malformed). "
        "Upload a smaller version, for example a PDF export without embedded media.",
        code=ErrorCode.DECOMPRESSED_TOO_LARGE,
    )


def _corrupt(kind: str) -> InvalidInputError:
    return InvalidInputError(
        f"This {kind} is damaged and cannot be read. Open it and save or export it again, "
        "then upload the new copy.",
        code=ErrorCode.CORRUPT_FILE,
    )


def _pdf_has_images(page: Any) -> bool:
    try:
        resources = page.get("/Resources") or {}
        xobjects = resources.get("/XObject") or {}
        return any(xobjects[name].get("/Subtype") == "/Image" for name in xobjects)
    except Exception:  # a broken resource dict just means "unknown"
        return False


def _extract_pdf(
    data: bytes, limits: ExtractionLimits, deadline: _Deadline
) -> tuple[str, int, list[str]]:
    from pypdf import PasswordType, PdfReader
    from pypdf.errors import FileNotDecryptedError, LimitReachedError

    warnings: list[str] = []
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            # Many PDFs are "encrypted" only to restrict printing; they open with no password.
            try:
                opened = reader.decrypt("") != PasswordType.NOT_DECRYPTED
            except Exception:  # an unsupported cipher is, for the user, still "can't open"
                opened = False
            if not opened:
                raise InvalidInputError(
                    "This PDF is password-protected. Upload a copy without a password "
                    "(in most PDF viewers: Print > Save as PDF).",
                    code=ErrorCode.PDF_ENCRYPTED,
                )
        page_count = len(reader.pages)
        if page_count > limits.max_pdf_pages:
            raise InvalidInputError(
                f"This PDF has {page_count} pages; we accept resumes of up to "
                f"{limits.max_pdf_pages} pages. Upload just your resume.",
                code=ErrorCode.TOO_MANY_PAGES,
            )
        texts: list[str] = []
        decompressed = 0
        any_images = False
        for page in reader.pages:
            deadline.check()
            contents = page.get_contents()
            decompressed += len(contents.get_data()) if contents is not None else 0
            if decompressed > limits.max_decompressed_bytes:
                raise _too_large_decompressed(limits)
            page_text = page.extract_text() or ""
            if not page_text.strip():
                any_images = any_images or _pdf_has_images(page)
            texts.append(page_text)
    except InvalidInputError:
        raise
    except FileNotDecryptedError as exc:
        raise InvalidInputError(
            "This PDF is password-protected. Upload a copy without a password.",
            code=ErrorCode.PDF_ENCRYPTED,
        ) from exc
    except LimitReachedError as exc:
        raise _too_large_decompressed(limits) from exc
    except Exception as exc:
        # pypdf raises many types on garbage input (PdfReadError, KeyError, ValueError...).
        raise _corrupt("PDF") from exc

    text = "\n\n".join(texts)
    if sum(ch.isalpha() for ch in text) < 20:
        if any_images:
            raise InvalidInputError(
                "This PDF contains only images of text (it looks scanned), so we cannot read "
                "it. Upload the original document, or a PDF exported from Word or Google Docs.",
                code=ErrorCode.PDF_SCANNED,
            )
        raise InvalidInputError(
            "This PDF contains no readable text. Upload a PDF exported from your editor, "
            "or a Word (.docx) file.",
            code=ErrorCode.NO_TEXT,
        )
    empty_pages = sum(1 for page_text in texts if not page_text.strip())
    if empty_pages:
        warnings.append(f"{empty_pages} of {len(texts)} pages had no text layer")
    return text, len(texts), warnings


def _check_zip_sizes(data: bytes, limits: ExtractionLimits, deadline: _Deadline) -> None:
    """Refuse a zip bomb before python-docx inflates anything.

    First the declared sizes (cheap, from the central directory), then the actual ones while
    streaming each member in small blocks: a forged header cannot make us inflate more than
    the limit, because we stop counting as soon as it is passed.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
            if len(members) > limits.max_zip_entries:
                raise _too_large_decompressed(limits)
            declared = sum(member.file_size for member in members)
            if declared > limits.max_decompressed_bytes:
                raise _too_large_decompressed(limits)
            for member in members:
                ratio = member.file_size / max(member.compress_size, 1)
                if member.file_size > _MIB and ratio > limits.max_compression_ratio:
                    raise _too_large_decompressed(limits)
            actual = 0
            for member in members:
                deadline.check()
                with archive.open(member) as stream:
                    while block := stream.read(64 * 1024):
                        actual += len(block)
                        if actual > limits.max_decompressed_bytes:
                            raise _too_large_decompressed(limits)
    except InvalidInputError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as exc:
        raise _corrupt("Word document") from exc
    except Exception as exc:  # zlib.error, NotImplementedError (unknown compression)...
        raise _corrupt("Word document") from exc


_W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_MC_FALLBACK = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"


def _textbox_lines(element: Any) -> list[str]:
    """Text inside Word text boxes anchored in ``element`` (python-docx skips these).

    Templates put whole resume columns in text boxes. Word stores each box twice (a modern
    and a legacy ``mc:Fallback`` copy), so the fallback copy is skipped.
    """
    lines: list[str] = []
    for box in element.iter(f"{{{_W_NS}}}txbxContent"):
        if any(ancestor.tag == _MC_FALLBACK for ancestor in box.iterancestors()):
            continue
        for paragraph in box.iter(f"{{{_W_NS}}}p"):
            line = "".join(node.text or "" for node in paragraph.iter(f"{{{_W_NS}}}t"))
            if line.strip():
                lines.append(line)
    return lines


def _docx_block_lines(container: Any, deadline: _Deadline, seen_cells: set[Any]) -> list[str]:
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    lines: list[str] = []
    for block in container.iter_inner_content():
        deadline.check()
        if isinstance(block, Paragraph):
            lines.append(block.text)
            lines.extend(_textbox_lines(block._p))
        elif isinstance(block, Table):
            for row in block.rows:
                cells: list[list[str]] = []
                for cell in row.cells:
                    # Merged cells repeat across their span. The set holds the XML elements
                    # themselves: lxml proxies (and so their id()) are only stable while alive.
                    if cell._tc in seen_cells:
                        continue
                    seen_cells.add(cell._tc)
                    cell_lines = _docx_block_lines(cell, deadline, seen_cells)
                    cells.append([line for line in cell_lines if line.strip()])
                if all(len(cell_lines) <= 1 for cell_lines in cells):
                    # A label/value row ("Languages | Go, Java") reads as one line.
                    lines.append(" | ".join(cell_lines[0] for cell_lines in cells if cell_lines))
                else:
                    lines.extend(line for cell_lines in cells for line in cell_lines)
                    lines.append("")
    return lines


def _extract_docx(data: bytes, limits: ExtractionLimits, deadline: _Deadline) -> str:
    _check_zip_sizes(data, limits, deadline)
    import docx

    try:
        document = docx.Document(io.BytesIO(data))
        seen_cells: set[Any] = set()
        lines: list[str] = []
        # Templates often put the name and contact line in the page header.
        for section in document.sections[:1]:
            if not section.different_first_page_header_footer:
                header = section.header
            else:
                header = section.first_page_header
            if not header.is_linked_to_previous:
                lines.extend(_docx_block_lines(header, deadline, seen_cells))
        lines.extend(_docx_block_lines(document, deadline, seen_cells))
    except InvalidInputError:
        raise
    except Exception as exc:
        raise _corrupt("Word document") from exc
    return "\n".join(lines)


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# RTF: a tokenizer over control words, hex escapes, groups and text. Destinations (font tables,
# pictures, metadata) are skipped whole; everything else keeps its text.
_RTF_TOKEN_RE = re.compile(
    r"\\([a-z]{1,32})(-?\d{1,10})? ?|\\'([0-9a-fA-F]{2})|\\([^a-zA-Z])|([{}])|[\r\n]+|(.)",
    re.DOTALL,
)
_RTF_DESTINATIONS = _words(
    "aftncn aftnsep aftnsepc annotation atnauthor atndate atnicn atnid atnparent atnref "
    "atntime atrfend atrfstart author background bkmkend bkmkstart blipuid buptim category "
    "colorschememapping colortbl comment company creatim datafield datastore defchp defpap do "
    "doccomm docvar dptxbxtext ebcend ebcstart factoidname falt fchars ffdeftext ffentrymcr "
    "ffexitmcr ffformat ffhelptext ffl ffname ffstattext field file filetbl fldinst fldtype "
    "fname fontemb fontfile fonttbl footer footerf footerl footerr footnote formfield ftncn "
    "ftnsep ftnsepc g generator gridtbl header headerf headerl headerr hl hlfr hlinkbase hlloc "
    "hlsrc hsv htmltag info keycode keywords latentstyles lchars levelnumbers leveltext "
    "lfolevel linkval list listlevel listname listoverride listoverridetable listpicture "
    "liststylename listtable listtext lsdlockedexcept macc maccPr mailmerge maln malnScr "
    "manager margPr mbar mbarPr mbaseJc mbegChr mborderBox mborderBoxPr mbox mboxPr mchr mcount "
    "mctrlPr md mdeg mdegHide mden mdiff mdPr me mendChr meqArr meqArrPr mf mfName mfPr mfunc "
    "mfuncPr mgroupChr mgroupChrPr mgrow mhideBot mhideLeft mhideRight mhideTop mhtmltag mlim "
    "mlimloc mlimlow mlimlowPr mlimupp mlimuppPr mm mmaddfieldname mmath mmathPict mmathPr "
    "mmaxdist mmc mmcJc mmconnectstr mmconnectstrdata mmcPr mmcs mmdatasource mmheadersource "
    "mmmailsubject mmodso mmodsofilter mmodsofldmpdata mmodsomappedname mmodsoname "
    "mmodsorecipdata mmodsosort mmodsosrc mmodsotable mmodsoudl mmodsoudldata mmodsouniquetag "
    "mmPr mmquery mmr mnary mnaryPr mnoBreak mnum mobjDist moMath moMathPara moMathParaPr "
    "mopEmu mphant mphantPr mplcHide mpos mr mrad mradPr mrPr msepChr mshow mshp msPre msPrePr "
    "msSub msSubPr msSubSup msSubSupPr msSup msSupPr mstrikeBLTR mstrikeH mstrikeTLBR mstrikeV "
    "msub msubHide msup msupHide mtransp mtype mvertJc mvfmf mvfml mvtof mvtol mzeroAsc "
    "mzeroDesc mzeroWid nesttableprops nextfile nonesttables objalias objclass objdata object "
    "objname objsect objtime oldcprops oldpprops oldsprops oldtprops oleclsid operator panose "
    "password passwordhash pgp pgptbl picprop pict pn pnseclvl pntext pntxta pntxtb printim "
    "private propname protend protstart protusertbl pxe result revtbl revtim rsidtbl rxe shp "
    "shpgrp shpinst shppict shprslt shptxt sn sp staticval stylesheet subject sv svb tc "
    "template themedata title txe ud upr userprops wgrffmtfilter windowcaption writereservation "
    "writereservhash xe xform xmlattrname xmlattrvalue xmlclose xmlname xmlnstbl xmlopen"
)
_RTF_SPECIAL = {
    "par": "\n",
    "sect": "\n\n",
    "page": "\n\n",
    "line": "\n",
    "row": "\n",
    "cell": "\t",
    "tab": "\t",
    "emdash": "\u2014",
    "endash": "\u2013",
    "emspace": " ",
    "enspace": " ",
    "qmspace": " ",
    "bullet": "\u2022",
    "lquote": "\u2018",
    "rquote": "\u2019",
    "ldblquote": "\u201c",
    "rdblquote": "\u201d",
}

_RTF_SYMBOLS = {
    "~": "\u00a0",
    "{": "{",
    "}": "}",
    "\\": "\\",
    "\n": "\n",
    "\r": "\n",
    "-": "",
    "_": "-",
}


def rtf_to_text(rtf: str) -> str:
    r"""Plain text of an RTF document: control words stripped, ``\par`` as newlines.

    Handles ``\'hh`` (cp1252) and ``\uN`` escapes with their ``\ucN`` fallback characters,
    and skips ignorable destinations (``{\*...}``, font tables, pictures, metadata).
    """
    stack: list[tuple[int, bool]] = []
    ignorable = False
    fallback_chars = 1
    skip = 0
    out: list[str] = []
    for match in _RTF_TOKEN_RE.finditer(rtf):
        word, arg, hexcode, symbol, brace, char = match.groups()
        if brace:
            skip = 0
            if brace == "{":
                stack.append((fallback_chars, ignorable))
            elif stack:
                fallback_chars, ignorable = stack.pop()
        elif symbol:
            skip = 0
            if symbol == "*":
                ignorable = True
            elif not ignorable:
                out.append(_RTF_SYMBOLS.get(symbol, ""))
        elif word:
            skip = 0
            if word in _RTF_DESTINATIONS:
                ignorable = True
            elif ignorable:
                continue
            elif word in _RTF_SPECIAL:
                out.append(_RTF_SPECIAL[word])
            elif word == "uc":
                fallback_chars = int(arg or 1)
            elif word == "u" and arg is not None:
                code = int(arg)
                out.append(chr(code + 0x10000 if code < 0 else code))
                skip = fallback_chars
        elif hexcode:
            if skip > 0:
                skip -= 1
            elif not ignorable:
                out.append(bytes([int(hexcode, 16)]).decode("cp1252", errors="replace"))
        elif char:
            if skip > 0:
                skip -= 1
            elif not ignorable:
                out.append(char)
    return "".join(out)


# --- language -----------------------------------------------------------------------------------

UNDETERMINED = "und"
"""ISO 639-2 code for "undetermined": too little text, or no language clearly ahead."""

# Function words plus the words resumes are made of ("Berufserfahrung", "compétences"): resumes
# are terse, and bullet fragments carry few classic stopwords.
_STOPWORDS: dict[str, frozenset[str]] = {
    "en": _words(
        "the and of to in for with on at by from as is was were are be been this that which "
        "who have has had will would our their my i an it its or not but all also into over "
        "than through during experience education skills responsible managed developed led "
        "worked including years team using work"
    ),
    "de": _words(
        "der die das und ist im den dem des ein eine einer eines zu mit von für auf bei "
        "als auch sich nicht oder wir ich sind wurde wurden durch aus nach über unter zum zur "
        "berufserfahrung ausbildung kenntnisse verantwortlich entwicklung jahre sowie bis "
        "heute studium tätigkeiten"
    ),
    "fr": _words(
        "le la les et des du de un une en dans pour avec sur par au aux est sont été qui que "
        "ne pas plus ou je nous leur ses son sa ce cette expérience formation compétences "
        "responsable développement gestion équipe depuis ans professionnelle langues"
    ),
    "es": _words(
        "el la los las y de del en con por para un una es son fue que se su sus al como más "
        "pero o yo nosotros este esta entre experiencia educación formación habilidades "
        "responsable desarrollo gestión equipo desde años actualidad idiomas"
    ),
    "nl": _words(
        "de het een en van in op met voor aan bij als ook is zijn was werd wordt naar door "
        "over uit om dat die niet of ik wij onze mijn werkervaring opleiding vaardigheden "
        "verantwoordelijk ontwikkeling beheer jaar heden talen"
    ),
    "it": _words(
        "il lo la i gli le e di del della dei delle in con per su da un una è sono che non "
        "come anche più o io noi nel nella al alla esperienza istruzione formazione competenze "
        "responsabile sviluppo gestione anni oggi lingue lavorativa"
    ),
    "pt": _words(
        "o a os as e de do da dos das em no na nos nas com por para um uma é são foi que se "
        "seu sua ao como mais mas ou eu nós experiência educação formação competências "
        "habilidades responsável desenvolvimento gestão equipe anos atual idiomas"
    ),
}
_WORD_RE = re.compile(r"[^\W\d_]+")


def detect_language(text: str, *, min_hits: int = 5, sample_chars: int = 20_000) -> LanguageGuess:
    """Guess the language of ``text`` (en/de/fr/es/nl/it/pt) from the function words it uses.

    Why not a model: the pipeline only records the language (and can warn that an
    English-trained embedding matches other languages poorly). Function words identify a
    European language from a few dozen words, in microseconds, with nothing to download.
    A word in several lists ("de", "la") splits its vote, so distinctive words decide.
    Returns ``"und"`` with fewer than ``min_hits`` known words or no clear winner.
    """
    scores: dict[str, float] = dict.fromkeys(_STOPWORDS, 0.0)
    hits = 0
    for word in _WORD_RE.findall(text[:sample_chars]):
        folded = word.casefold()
        languages = [code for code, stopwords in _STOPWORDS.items() if folded in stopwords]
        if not languages:
            continue
        hits += 1
        for code in languages:
            scores[code] += 1.0 / len(languages)
    if hits < min_hits:
        return LanguageGuess(UNDETERMINED, 0.0)
    ranked = sorted(scores.items(), key=lambda item: -item[1])[:2]
    best_code, best = ranked[0]
    runner_up = ranked[1][1] if len(ranked) > 1 else 0.0
    confidence = round((best - runner_up) / best, 3)
    if confidence < 0.2:
        return LanguageGuess(UNDETERMINED, confidence)
    return LanguageGuess(best_code, confidence)


# --- entry points -------------------------------------------------------------------------------


def _check_size(size: int, limits: ExtractionLimits) -> None:
    if size == 0:
        raise InvalidInputError(
            "The uploaded file is empty. Upload your resume again.", code=ErrorCode.EMPTY_FILE
        )
    if size > limits.max_file_bytes:
        raise InvalidInputError(
            f"This file is {size / _MIB:.1f} MB; the limit is {limits.max_file_bytes / _MIB:g} "
            "MB. Upload a smaller version (for example a PDF without large images).",
            code=ErrorCode.FILE_TOO_LARGE,
        )


def extract_text(data: bytes, *, limits: ExtractionLimits | None = None) -> ExtractedText:
    """Extract, normalise and language-tag the text of one resume file.

    Raises :class:`InvalidInputError` with one of :class:`ErrorCode`'s codes for every input
    that cannot become a usable resume text.
    """
    limits = limits or ExtractionLimits()
    _check_size(len(data), limits)
    document_type = detect_document_type(data)
    deadline = _Deadline(limits.max_seconds)
    page_count: int | None = None
    warnings: list[str] = []
    if document_type is DocumentType.PDF:
        raw, page_count, warnings = _extract_pdf(data, limits, deadline)
    elif document_type is DocumentType.DOCX:
        raw = _extract_docx(data, limits, deadline)
    else:
        decoded = _decode_text(data)
        if decoded is None:  # detect_document_type let it through, so only RTF gets here
            raise _corrupt("RTF file")
        raw = rtf_to_text(decoded) if document_type is DocumentType.RTF else decoded
    deadline.check()
    text = clean_text(raw)
    if sum(ch.isalpha() for ch in text) < 20:
        raise InvalidInputError(
            "We found no readable text in this file. Check that it is your resume and upload "
            "it again, as a PDF or Word (.docx) file.",
            code=ErrorCode.NO_TEXT,
        )
    language = detect_language(text)
    return ExtractedText(
        text=text,
        document_type=document_type,
        language=language.code,
        language_confidence=language.confidence,
        page_count=page_count,
        warnings=tuple(warnings),
    )


def extract_file(path: Path, *, limits: ExtractionLimits | None = None) -> ExtractedText:
    """:func:`extract_text` for a file on disk; checks the size before reading it."""
    limits = limits or ExtractionLimits()
    _check_size(path.stat().st_size, limits)
    return extract_text(path.read_bytes(), limits=limits)
