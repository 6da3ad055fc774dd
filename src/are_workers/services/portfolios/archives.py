"""Read an uploaded code archive (ZIP, tar.gz, tar.bz2, tar.xz, tar) safely, in memory.

Why in memory and never onto disk: nothing in a candidate's archive is ever run, opened by
another program or linked to, so there is no reason to materialise it. Without a file
system there is nothing for a zip-slip path, a symlink or a device file to reach; they are
still refused, because an archive that tries them was made to attack whoever unpacks it,
and a human should see that rather than a silently cleaned-up result.

Why every limit is enforced while decompressing, not only from the headers: a ZIP's sizes
and a tar's headers are written by the uploader. ZIP member sizes are checked up front (to
refuse cheaply) and again while reading; a tar stream is read through a byte budget, so a
gzip bomb or a giant GNU long-name header stops at the budget, whatever the headers claim.
ZIP entries whose data overlap (the "better zip bomb") are refused before anything is read.

Every refusal is an :class:`~are_workers.errors.InvalidInputError` with a stable ``code``
(:class:`ArchiveErrorCode`) and a message that tells the candidate what to change.
"""

from __future__ import annotations

import bz2
import gzip
import io
import itertools
import lzma
import posixpath
import re
import stat
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from are_workers.errors import InvalidInputError

if TYPE_CHECKING:
    from are_workers.config import Settings

__all__ = [
    "ArchiveContents",
    "ArchiveErrorCode",
    "ArchiveFile",
    "ArchiveFormat",
    "ArchiveLimits",
    "detect_archive_format",
    "iter_archive",
    "read_archive",
    "safe_member_path",
]

_MIB = 1024 * 1024
_READ_CHUNK = 64 * 1024
_DEFAULT_MAX_TOTAL = 200 * _MIB


class ArchiveErrorCode(StrEnum):
    """The ``code`` of every refusal raised here (stable, for the ledger and the UI)."""

    EMPTY = "empty_archive"
    ARCHIVE_TOO_LARGE = "archive_too_large"
    UNSUPPORTED = "unsupported_archive"
    CORRUPT = "corrupt_archive"
    ENCRYPTED = "archive_encrypted"
    UNSAFE_PATH = "archive_unsafe_path"
    UNSAFE_LINK = "archive_unsafe_link"
    SPECIAL_FILE = "archive_special_file"
    TOO_MANY_FILES = "archive_too_many_files"
    EXPANDS_TOO_LARGE = "archive_expands_too_large"
    MEMBER_TOO_LARGE = "archive_member_too_large"
    BOMB = "archive_bomb"


UNSAFE_CODES: frozenset[str] = frozenset(
    {
        ArchiveErrorCode.UNSAFE_PATH,
        ArchiveErrorCode.UNSAFE_LINK,
        ArchiveErrorCode.SPECIAL_FILE,
        ArchiveErrorCode.BOMB,
    }
)
"""Refusals that suggest an archive built to attack its reader, not an honest mistake:
the evaluation reports them as concerns for a human, not only as a failed item."""


class ArchiveFormat(StrEnum):
    ZIP = "zip"
    TAR = "tar"
    TAR_GZ = "tar.gz"
    TAR_BZ2 = "tar.bz2"
    TAR_XZ = "tar.xz"


@dataclass(frozen=True, slots=True)
class ArchiveLimits:
    """Ceilings for one archive. Defaults fit a portfolio repository, not a monorepo.

    The compression ratio is only judged once at least ``ratio_floor_bytes`` have expanded:
    a 10 KB text file may legitimately shrink 300-fold, a 1 MB one does not.
    """

    max_archive_bytes: int = 50 * _MIB
    max_total_bytes: int = _DEFAULT_MAX_TOTAL
    max_entries: int = 10_000
    max_member_bytes: int = 25 * _MIB
    max_compression_ratio: float = 200.0
    ratio_floor_bytes: int = 1 * _MIB
    max_path_depth: int = 48

    @classmethod
    def from_settings(cls, settings: Settings) -> ArchiveLimits:
        """Upload size from the settings; expansion at least the settings' decompressed limit."""
        return cls(
            max_archive_bytes=settings.max_file_bytes,
            max_total_bytes=max(settings.max_decompressed_bytes, _DEFAULT_MAX_TOTAL),
        )


@dataclass(frozen=True, slots=True)
class ArchiveFile:
    """One regular file of an archive. ``path`` is normalised: relative, ``/``-separated."""

    path: str
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass(frozen=True, slots=True)
class ArchiveContents:
    """Every regular file of an archive, plus what was deliberately left out and why."""

    format: ArchiveFormat
    files: tuple[ArchiveFile, ...]
    directories: tuple[str, ...]
    compressed_bytes: int
    notes: tuple[str, ...] = ()

    @property
    def total_bytes(self) -> int:
        return sum(file.size for file in self.files)

    def get(self, path: str) -> ArchiveFile | None:
        return next((file for file in self.files if file.path == path), None)


# --- messages ------------------------------------------------------------------------------


def _shown(path: str) -> str:
    """A member name as a person can read it in a message: no control characters, not huge."""
    printable = "".join(ch if ch.isprintable() else "?" for ch in path)
    return printable if len(printable) <= 120 else printable[:117] + "..."


def _mb(size: float) -> str:
    return f"{size / _MIB:g} MB" if size % _MIB == 0 else f"{size / _MIB:.1f} MB"


_RECREATE = "Create the archive again from inside your project folder and upload that."


def _refuse(code: ArchiveErrorCode, message: str) -> InvalidInputError:
    return InvalidInputError(message, code=code)


def _corrupt() -> InvalidInputError:
    return _refuse(
        ArchiveErrorCode.CORRUPT,
        "This archive is damaged or incomplete and cannot be unpacked. Create it again "
        "and upload the new copy.",
    )


def _expands_too_large(limits: ArchiveLimits) -> InvalidInputError:
    return _refuse(
        ArchiveErrorCode.EXPANDS_TOO_LARGE,
        f"This archive expands to more than {_mb(limits.max_total_bytes)} when unpacked, "
        "which is more than a portfolio needs. Leave out dependencies, build outputs and "
        "data sets (node_modules, venv, dist) and upload it again.",
    )


def _too_many_files(limits: ArchiveLimits) -> InvalidInputError:
    return _refuse(
        ArchiveErrorCode.TOO_MANY_FILES,
        f"This archive holds more than {limits.max_entries:,} files and folders. Leave out "
        "dependencies and generated files (node_modules, venv, build) and upload it again.",
    )


def _bomb(limits: ArchiveLimits) -> InvalidInputError:
    return _refuse(
        ArchiveErrorCode.BOMB,
        "This archive is compressed far more tightly than real code or documents (more "
        f"than {limits.max_compression_ratio:g} to 1), which is how archive bombs work, so "
        f"it was not unpacked. {_RECREATE}",
    )


def _member_too_large(path: str, size: int, limits: ArchiveLimits) -> InvalidInputError:
    return _refuse(
        ArchiveErrorCode.MEMBER_TOO_LARGE,
        f"The file '{_shown(path)}' in this archive is {_mb(size)} unpacked; the limit per "
        f"file is {_mb(limits.max_member_bytes)}. Leave out large data or binary files and "
        "upload the archive again.",
    )


# --- paths and links -----------------------------------------------------------------------

_DRIVE_RE = re.compile(r"^[A-Za-z]:")


def safe_member_path(name: str, *, max_depth: int = 48) -> str:
    """The normalised relative path of an archive member, or a refusal.

    Backslashes count as separators (Windows tools write them, and ``..\\..\\x`` is a
    classic); absolute paths, drive letters, ``..`` components and NUL bytes are refused
    rather than stripped, because an honest archive never contains them. Returns ``""`` for
    the archive root itself (``./``).
    """
    normalised = name.replace("\\", "/")
    if "\x00" in normalised:
        raise _refuse(
            ArchiveErrorCode.UNSAFE_PATH,
            f"This archive contains a file name with a NUL byte, so it was not unpacked. "
            f"{_RECREATE}",
        )
    if normalised.startswith("/") or _DRIVE_RE.match(normalised):
        raise _refuse(
            ArchiveErrorCode.UNSAFE_PATH,
            f"This archive contains an absolute path ('{_shown(name)}'), which would write "
            f"outside the folder it is unpacked into, so it was not unpacked. {_RECREATE}",
        )
    parts = [part for part in normalised.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise _refuse(
            ArchiveErrorCode.UNSAFE_PATH,
            f"This archive contains a path that climbs out of the archive ('{_shown(name)}'), "
            f"so it was not unpacked. {_RECREATE}",
        )
    if len(parts) > max_depth:
        raise _refuse(
            ArchiveErrorCode.UNSAFE_PATH,
            f"This archive nests folders more than {max_depth} levels deep "
            f"('{_shown(name)}'), so it was not unpacked. {_RECREATE}",
        )
    return "/".join(parts)


def _check_link(path: str, target: str, *, relative_to_link: bool) -> None:
    """Refuse a link whose target leaves the archive; a link that stays inside is harmless
    here (links are never followed) and is merely skipped by the caller."""
    clean = target.replace("\\", "/")
    base = posixpath.dirname(path) if relative_to_link else ""
    resolved = posixpath.normpath(posixpath.join(base, clean)) if clean else ""
    if (
        not clean
        or clean.startswith("/")
        or _DRIVE_RE.match(clean)
        or resolved == ".."
        or resolved.startswith("../")
    ):
        raise _refuse(
            ArchiveErrorCode.UNSAFE_LINK,
            f"This archive contains a link ('{_shown(path)}' -> '{_shown(target)}') that points "
            "outside the archive, so it was not unpacked. Create the archive without "
            "symbolic links and upload that.",
        )


def _special_file(path: str) -> InvalidInputError:
    return _refuse(
        ArchiveErrorCode.SPECIAL_FILE,
        f"This archive contains a device file or pipe ('{_shown(path)}'), which has no place "
        f"in a portfolio, so it was not unpacked. {_RECREATE}",
    )


# --- format detection ----------------------------------------------------------------------


def detect_archive_format(data: bytes) -> ArchiveFormat | None:
    """The archive format from magic bytes (the file name is never consulted), or None.

    A compressed stream is reported as a tar of that compression; whether it really holds
    a tar is only known once it is read.
    """
    if data.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return ArchiveFormat.ZIP
    if data.startswith(b"\x1f\x8b"):
        return ArchiveFormat.TAR_GZ
    if data.startswith(b"BZh"):
        return ArchiveFormat.TAR_BZ2
    if data.startswith(b"\xfd7zXZ\x00"):
        return ArchiveFormat.TAR_XZ
    if data[257:262] == b"ustar":
        return ArchiveFormat.TAR
    return None


# --- ZIP ----------------------------------------------------------------------------------------

_EOCD = b"PK\x05\x06"
_ZIP64_LOCATOR = b"PK\x06\x07"
_ZIP64_EOCD = b"PK\x06\x06"


def _zip_declared_entries(data: bytes) -> int | None:
    """Entry count from the end-of-central-directory record, read before ``zipfile``
    parses (and allocates for) every entry. None when the record cannot be found."""
    position = data.rfind(_EOCD, max(0, len(data) - 22 - 65_535))
    if position < 0 or position + 22 > len(data):
        return None
    (entries,) = struct.unpack_from("<H", data, position + 10)
    if entries != 0xFFFF:
        return int(entries)
    locator = position - 20
    if locator < 0 or data[locator : locator + 4] != _ZIP64_LOCATOR:
        return None
    (record_offset,) = struct.unpack_from("<Q", data, locator + 8)
    if record_offset + 40 > len(data) or data[record_offset : record_offset + 4] != _ZIP64_EOCD:
        return None
    (entries64,) = struct.unpack_from("<Q", data, record_offset + 32)
    return int(entries64)


def _zip_mode(info: zipfile.ZipInfo) -> int:
    return (info.external_attr >> 16) & 0xFFFF


def _check_zip_overlap(infos: list[zipfile.ZipInfo], limits: ArchiveLimits) -> None:
    """Refuse entries whose compressed data overlap: one kernel inflated by many entries."""
    ordered = sorted(infos, key=lambda info: info.header_offset)
    for previous, following in itertools.pairwise(ordered):
        if following.header_offset < previous.header_offset + 30 + previous.compress_size:
            raise _bomb(limits)


def _iter_zip(data: bytes, limits: ArchiveLimits, notes: list[str]) -> Iterator[_Member]:
    declared = _zip_declared_entries(data)
    if declared is not None and declared > limits.max_entries:
        raise _too_many_files(limits)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError) as exc:
        raise _corrupt() from exc
    with archive:
        infos = archive.infolist()
        if len(infos) > limits.max_entries:
            raise _too_many_files(limits)
        _check_zip_overlap(infos, limits)
        # Every entry is vetted before any data is inflated: a bad entry at the end of
        # the archive refuses it as cheaply as one at the start.
        planned: list[tuple[zipfile.ZipInfo, str]] = []
        declared_total = 0
        for info in infos:
            path = safe_member_path(info.filename, max_depth=limits.max_path_depth)
            mode = _zip_mode(info)
            kind = stat.S_IFMT(mode) if mode else 0
            if info.flag_bits & 0x1:
                raise _refuse(
                    ArchiveErrorCode.ENCRYPTED,
                    "This archive is password-protected. Upload a copy without a password.",
                )
            if kind in (stat.S_IFCHR, stat.S_IFBLK, stat.S_IFIFO, stat.S_IFSOCK):
                raise _special_file(info.filename)
            if info.is_dir() or kind == stat.S_IFDIR:
                if path:
                    yield _Member(path, _DIR, b"")
                continue
            if kind == stat.S_IFLNK:
                if info.file_size > 4096:
                    raise _corrupt()
                target = archive.read(info).decode("utf-8", errors="replace")
                _check_link(path, target, relative_to_link=True)
                notes.append(f"Skipped the link {_shown(path)}: links are never followed.")
                continue
            if (
                info.file_size >= limits.ratio_floor_bytes
                and info.file_size > limits.max_compression_ratio * max(info.compress_size, 1)
            ):
                raise _bomb(limits)
            if info.file_size > limits.max_member_bytes:
                raise _member_too_large(path, info.file_size, limits)
            declared_total += info.file_size
            if declared_total > limits.max_total_bytes:
                raise _expands_too_large(limits)
            planned.append((info, path))
        if (
            declared_total >= limits.ratio_floor_bytes
            and declared_total > limits.max_compression_ratio * len(data)
        ):
            raise _bomb(limits)
        for info, path in planned:
            yield _Member(path, _FILE, _read_zip_member(archive, info, limits))


def _read_zip_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, limits: ArchiveLimits
) -> bytes:
    chunks: list[bytes] = []
    size = 0
    try:
        with archive.open(info) as member:
            while chunk := member.read(_READ_CHUNK):
                size += len(chunk)
                if size > limits.max_member_bytes:  # zipfile stops at the declared size
                    raise _member_too_large(info.filename, size, limits)
                chunks.append(chunk)
    except InvalidInputError:
        raise
    except NotImplementedError as exc:  # deflate64, LZMA variants, ... that zipfile lacks
        raise _refuse(
            ArchiveErrorCode.UNSUPPORTED,
            "This archive uses a compression method we cannot read. Create it again with "
            "standard ZIP compression (or as .tar.gz) and upload that.",
        ) from exc
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, lzma.LZMAError) as exc:
        raise _corrupt() from exc
    return b"".join(chunks)


# --- tar --------------------------------------------------------------------------------------


class _BudgetExceededError(Exception):
    """Raised inside the tar stream; turned into a refusal outside tarfile's own handlers."""

    def __init__(self, error: InvalidInputError) -> None:
        super().__init__(error.user_message)
        self.error = error


class _BudgetReader(io.RawIOBase):
    """A decompressed stream that stops at a byte budget and at a compression ratio.

    Why: ``tarfile`` reads headers (GNU long names, pax records) of any declared size into
    memory, and a decompressor will inflate whatever it is given. Counting every byte that
    leaves the decompressor bounds memory and time whatever the headers say.
    """

    def __init__(
        self, source: io.BufferedIOBase, budget: int, compressed: int, limits: ArchiveLimits
    ):
        super().__init__()
        self._source = source
        self._budget = budget
        self._compressed = max(compressed, 1)
        self._limits = limits
        self.consumed = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        chunk = self._source.read(min(len(buffer), _READ_CHUNK))
        self.consumed += len(chunk)
        if self.consumed > self._budget:
            raise _BudgetExceededError(_expands_too_large(self._limits))
        if (
            self.consumed >= self._limits.ratio_floor_bytes
            and self.consumed > self._limits.max_compression_ratio * self._compressed
        ):
            raise _BudgetExceededError(_bomb(self._limits))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def _decompressor(data: bytes, archive_format: ArchiveFormat) -> io.BufferedIOBase:
    raw = io.BytesIO(data)
    if archive_format is ArchiveFormat.TAR_GZ:
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if archive_format is ArchiveFormat.TAR_BZ2:
        return bz2.BZ2File(raw, mode="rb")
    if archive_format is ArchiveFormat.TAR_XZ:
        return lzma.LZMAFile(raw, mode="rb")
    return raw


_TAR_ERRORS = (
    tarfile.TarError,
    gzip.BadGzipFile,
    zlib.error,
    lzma.LZMAError,
    EOFError,
    OSError,
    ValueError,
)


def _iter_tar(
    data: bytes, archive_format: ArchiveFormat, limits: ArchiveLimits, notes: list[str]
) -> Iterator[_Member]:
    # Headers and padding cost at most ~1 KiB per entry on top of the file data.
    budget = limits.max_total_bytes + 1024 * limits.max_entries + _MIB
    reader = _BudgetReader(_decompressor(data, archive_format), budget, len(data), limits)
    stream = io.BufferedReader(reader, buffer_size=_READ_CHUNK)
    entries = 0
    total = 0
    try:
        # "r|": a forward-only stream, so nothing is ever seeked to or read twice.
        with tarfile.open(fileobj=stream, mode="r|") as archive:
            for member in archive:
                entries += 1
                if entries > limits.max_entries:
                    raise _too_many_files(limits)
                path = safe_member_path(member.name, max_depth=limits.max_path_depth)
                if member.isdir():
                    if path:
                        yield _Member(path, _DIR, b"")
                    continue
                if member.issym() or member.islnk():
                    # Symlinks resolve from their own folder; hard links name a member path.
                    _check_link(path, member.linkname, relative_to_link=member.issym())
                    notes.append(f"Skipped the link {_shown(path)}: links are never followed.")
                    continue
                if member.ischr() or member.isblk() or member.isfifo():
                    raise _special_file(member.name)
                if not member.isreg():
                    notes.append(f"Skipped {_shown(path)}: not a regular file.")
                    continue
                total += member.size
                # Even if every compressed byte belonged to this member, it inflates too far.
                if total >= limits.ratio_floor_bytes and total > limits.max_compression_ratio * len(
                    data
                ):
                    raise _bomb(limits)
                if member.size > limits.max_member_bytes:
                    raise _member_too_large(path, member.size, limits)
                if total > limits.max_total_bytes:
                    raise _expands_too_large(limits)
                yield _Member(path, _FILE, _read_tar_member(archive, member, limits))
    except InvalidInputError:
        raise
    except _BudgetExceededError as exc:
        raise exc.error from None
    except _TAR_ERRORS as exc:
        # Only a stream that decompressed cleanly but holds no tar header is "not an archive";
        # a damaged compressed stream fails on the first read-ahead, before any header.
        if entries == 0 and isinstance(exc, tarfile.ReadError):
            raise _refuse(
                ArchiveErrorCode.UNSUPPORTED,
                "This file is not a ZIP or tar archive we can read (or it is damaged). "
                "Upload your code as a .zip or .tar.gz file.",
            ) from exc
        raise _corrupt() from exc


def _read_tar_member(
    archive: tarfile.TarFile, member: tarfile.TarInfo, limits: ArchiveLimits
) -> bytes:
    extracted = archive.extractfile(member)
    if extracted is None:
        return b""
    chunks: list[bytes] = []
    size = 0
    with extracted:
        while chunk := extracted.read(_READ_CHUNK):
            size += len(chunk)
            if size > limits.max_member_bytes:  # sparse members expand past their data
                raise _member_too_large(member.name, size, limits)
            chunks.append(chunk)
    return b"".join(chunks)


# --- entry points -------------------------------------------------------------------------------

_FILE = "file"
_DIR = "dir"


@dataclass(frozen=True, slots=True)
class _Member:
    path: str
    kind: str
    data: bytes


def iter_archive(
    data: bytes,
    *,
    limits: ArchiveLimits | None = None,
    notes: list[str] | None = None,
) -> Iterator[ArchiveFile]:
    """Each regular file of the archive as it is read, one in memory at a time.

    Refusals can come after some files were yielded (a tar is a stream), so a caller must
    treat an exception as "the whole archive is refused". Skipped entries (links, duplicate
    paths) are described in ``notes`` when a list is passed.
    """
    for member in _iter_members(
        data, limits or ArchiveLimits(), notes if notes is not None else []
    ):
        if member.kind == _FILE:
            yield ArchiveFile(member.path, member.data)


def _iter_members(data: bytes, limits: ArchiveLimits, notes: list[str]) -> Iterator[_Member]:
    if not data:
        raise _refuse(ArchiveErrorCode.EMPTY, "The uploaded archive is empty. Upload it again.")
    if len(data) > limits.max_archive_bytes:
        raise _refuse(
            ArchiveErrorCode.ARCHIVE_TOO_LARGE,
            f"This archive is {_mb(len(data))}; the limit is {_mb(limits.max_archive_bytes)}. "
            "Leave out dependencies, build outputs and data sets and upload it again.",
        )
    archive_format = detect_archive_format(data)
    if archive_format is None:
        raise _refuse(
            ArchiveErrorCode.UNSUPPORTED,
            "This file is not a ZIP or tar archive. Upload your code as a .zip or .tar.gz file.",
        )
    members = (
        _iter_zip(data, limits, notes)
        if archive_format is ArchiveFormat.ZIP
        else _iter_tar(data, archive_format, limits, notes)
    )
    seen: set[str] = set()
    for member in members:
        if member.path in seen:
            if member.kind == _FILE:
                notes.append(f"Skipped a second copy of {_shown(member.path)}; kept the first.")
            continue
        seen.add(member.path)
        yield member


def read_archive(data: bytes, *, limits: ArchiveLimits | None = None) -> ArchiveContents:
    """All regular files of an archive, in archive order, after every safety check.

    Raises :class:`InvalidInputError` (an :class:`ArchiveErrorCode`) for an empty, corrupt,
    unsupported, unsafe or oversized archive, and for one that holds no files at all.
    """
    limits = limits or ArchiveLimits()
    notes: list[str] = []
    files: list[ArchiveFile] = []
    directories: list[str] = []
    for member in _iter_members(data, limits, notes):
        if member.kind == _FILE:
            files.append(ArchiveFile(member.path, member.data))
        else:
            directories.append(member.path)
    if not files:
        raise _refuse(
            ArchiveErrorCode.EMPTY,
            "This archive contains no files. Add your project's files and upload it again.",
        )
    archive_format = detect_archive_format(data)
    assert archive_format is not None  # _iter_members refused anything else
    return ArchiveContents(
        format=archive_format,
        files=tuple(files),
        directories=tuple(directories),
        compressed_bytes=len(data),
        notes=tuple(notes),
    )
