"""Archives: the sample archives read; every unsafe, oversized or broken archive is refused.

Each bad archive is built here, so the test shows exactly what makes it bad.
"""

from __future__ import annotations

import gzip
import io
import os
import stat
import struct
import tarfile
import zipfile
from pathlib import Path

import pytest

from are_workers.errors import InvalidInputError, PermanentError
from are_workers.services.portfolios.archives import (
    ArchiveErrorCode,
    ArchiveFormat,
    ArchiveLimits,
    iter_archive,
    read_archive,
    safe_member_path,
)

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples" / "portfolios"
MIB = 1024 * 1024


def make_zip(entries: list[tuple[str | zipfile.ZipInfo, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return buffer.getvalue()


def make_tar(
    entries: list[tuple[tarfile.TarInfo, bytes | None]], *, fmt: int = tarfile.PAX_FORMAT
) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as archive:
        for info, data in entries:
            if data is not None:
                info.size = len(data)
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return gzip.compress(buffer.getvalue(), mtime=0)


def tar_entry(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


def zip_symlink(name: str, target: str) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target.encode()


def refusal(data: bytes, code: ArchiveErrorCode, limits: ArchiveLimits | None = None) -> str:
    with pytest.raises(InvalidInputError) as caught:
        read_archive(data, limits=limits)
    error = caught.value
    assert isinstance(error, PermanentError)  # never retried
    assert error.code == code, error.user_message
    assert error.user_message.endswith(".")
    assert len(error.user_message) > 40
    return error.user_message


# --- good archives ---------------------------------------------------------------------------


def test_reads_the_sample_zip() -> None:
    contents = read_archive((SAMPLES / "backend_alex_chen" / "ledger-service.zip").read_bytes())
    assert contents.format is ArchiveFormat.ZIP
    paths = {file.path for file in contents.files}
    assert "ledger-service/src/ledger/service.py" in paths
    assert "ledger-service/.github/workflows/ci.yml" in paths
    assert contents.total_bytes == sum(len(f.data) for f in contents.files)
    readme = contents.get("ledger-service/README.md")
    assert readme is not None and readme.data.startswith(b"# ledger-service")


def test_reads_the_sample_tar_gz() -> None:
    contents = read_archive((SAMPLES / "backend_sam_okafor" / "ratelimit.tar.gz").read_bytes())
    assert contents.format is ArchiveFormat.TAR_GZ
    assert {"ratelimit/bucket.go", "ratelimit/bucket_test.go"} <= {f.path for f in contents.files}


def test_plain_tar_and_xz_are_read() -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("a/readme.md")
        info.size = 5
        archive.addfile(info, io.BytesIO(b"hello"))
    assert read_archive(buffer.getvalue()).format is ArchiveFormat.TAR
    import lzma

    xz = read_archive(lzma.compress(buffer.getvalue()))
    assert xz.format is ArchiveFormat.TAR_XZ
    assert xz.files[0].data == b"hello"


def test_paths_are_normalised_and_duplicates_skipped() -> None:
    data = make_zip([("./src//app.py", b"x = 1"), ("src/app.py", b"x = 2")])
    contents = read_archive(data)
    assert [f.path for f in contents.files] == ["src/app.py"]
    assert contents.files[0].data == b"x = 1"
    assert any("second copy" in note for note in contents.notes)


def test_iter_archive_yields_files_one_at_a_time() -> None:
    data = make_zip([("a.py", b"1"), ("b/", b""), ("b/c.py", b"2")])
    notes: list[str] = []
    assert [f.path for f in iter_archive(data, notes=notes)] == ["a.py", "b/c.py"]


# --- zip-slip and absolute paths -------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["../evil.py", "src/../../evil.py", "..\\..\\windows\\evil.dll", "a/b/../../../etc/passwd"],
)
def test_zip_slip_is_refused(name: str) -> None:
    message = refusal(make_zip([("ok.py", b"1"), (name, b"x")]), ArchiveErrorCode.UNSAFE_PATH)
    assert "climbs out of the archive" in message


@pytest.mark.parametrize("name", ["/etc/passwd", "C:/Windows/evil.dll", "\\\\server\\share\\x"])
def test_absolute_paths_are_refused(name: str) -> None:
    message = refusal(make_zip([(name, b"x")]), ArchiveErrorCode.UNSAFE_PATH)
    assert "absolute path" in message


def test_tar_slip_is_refused_even_after_good_members() -> None:
    data = make_tar([(tar_entry("ok.py"), b"1"), (tar_entry("../../evil.sh"), b"rm -rf /")])
    refusal(data, ArchiveErrorCode.UNSAFE_PATH)


def test_absurd_nesting_is_refused() -> None:
    refusal(make_zip([("a/" * 60 + "x.py", b"1")]), ArchiveErrorCode.UNSAFE_PATH)


def test_safe_member_path() -> None:
    assert safe_member_path("./a//b/./c.py") == "a/b/c.py"
    assert safe_member_path("a\\b.py") == "a/b.py"
    assert safe_member_path("./") == ""
    with pytest.raises(InvalidInputError):
        safe_member_path("a\x00b")


# --- links and special files -----------------------------------------------------------------


@pytest.mark.parametrize("target", ["../../etc/passwd", "/etc/passwd", "../../../outside", ""])
def test_zip_symlink_escaping_is_refused(target: str) -> None:
    data = make_zip([zip_symlink("src/link", target)])
    message = refusal(data, ArchiveErrorCode.UNSAFE_LINK)
    assert "points outside the archive" in message


def test_zip_symlink_inside_is_skipped_not_followed() -> None:
    data = make_zip([("src/real.py", b"x = 1"), zip_symlink("src/alias.py", "real.py")])
    contents = read_archive(data)
    assert [f.path for f in contents.files] == ["src/real.py"]
    assert any("links are never followed" in note for note in contents.notes)


@pytest.mark.parametrize(
    ("name", "kind", "target"),
    [
        ("link", tarfile.SYMTYPE, "../../etc"),
        ("a/b/link", tarfile.SYMTYPE, "../../../x"),
        ("link", tarfile.SYMTYPE, "/etc/shadow"),
        ("hard", tarfile.LNKTYPE, "../outside"),
        ("hard", tarfile.LNKTYPE, "/etc/passwd"),
    ],
)
def test_tar_links_escaping_are_refused(name: str, kind: bytes, target: str) -> None:
    refusal(make_tar([(tar_entry(name, kind, target), None)]), ArchiveErrorCode.UNSAFE_LINK)


def test_tar_link_then_file_through_it_never_leaves_memory() -> None:
    # The classic two-step: a link to a folder, then a file "inside" the link.
    data = make_tar(
        [(tar_entry("docs", tarfile.SYMTYPE, "src"), None), (tar_entry("docs/x.md"), b"# x")]
    )
    contents = read_archive(data)
    assert [f.path for f in contents.files] == ["docs/x.md"]


@pytest.mark.parametrize("kind", [tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE])
def test_tar_device_files_are_refused(kind: bytes) -> None:
    refusal(make_tar([(tar_entry("dev/sda", kind), None)]), ArchiveErrorCode.SPECIAL_FILE)


def test_zip_device_file_is_refused() -> None:
    info = zipfile.ZipInfo("dev/null")
    info.create_system = 3
    info.external_attr = (stat.S_IFCHR | 0o666) << 16
    refusal(make_zip([(info, b"")]), ArchiveErrorCode.SPECIAL_FILE)


# --- bombs and limits ----------------------------------------------------------------------------


def test_zip_bomb_by_ratio_is_refused() -> None:
    message = refusal(make_zip([("zeros.bin", bytes(4 * MIB))]), ArchiveErrorCode.BOMB)
    assert "archive bombs" in message


def test_tar_gz_bomb_by_ratio_is_refused() -> None:
    refusal(make_tar([(tar_entry("zeros.bin"), bytes(4 * MIB))]), ArchiveErrorCode.BOMB)


def test_small_highly_compressible_files_are_fine() -> None:
    # 500 KB of one byte shrinks ~1000-fold, but below the floor the ratio is not judged.
    contents = read_archive(make_zip([("data.txt", b"a" * 500_000)]))
    assert contents.total_bytes == 500_000


def test_too_many_files_is_refused_from_the_directory_record() -> None:
    data = make_zip([(f"f{i}.txt", b"") for i in range(10_001)])
    message = refusal(data, ArchiveErrorCode.TOO_MANY_FILES)
    assert "10,000 files" in message


def test_too_many_files_in_a_tar_is_refused() -> None:
    data = make_tar([(tar_entry(f"f{i}.txt"), b"") for i in range(30)])
    refusal(data, ArchiveErrorCode.TOO_MANY_FILES, ArchiveLimits(max_entries=20))


def test_expanding_past_the_total_is_refused() -> None:
    limits = ArchiveLimits(max_total_bytes=1 * MIB, max_member_bytes=1 * MIB)
    chunks = [(f"part{i}.bin", os.urandom(300_000)) for i in range(4)]  # incompressible
    message = refusal(make_zip(chunks), ArchiveErrorCode.EXPANDS_TOO_LARGE, limits)
    assert "expands to more than 1 MB" in message
    tar_chunks = [(tar_entry(name), data) for name, data in chunks]
    refusal(make_tar(tar_chunks), ArchiveErrorCode.EXPANDS_TOO_LARGE, limits)


def test_default_limit_message_names_200_mb() -> None:
    limits = ArchiveLimits()
    assert limits.max_total_bytes == 200 * MIB


def test_oversized_member_is_refused() -> None:
    limits = ArchiveLimits(max_member_bytes=100_000)
    message = refusal(
        make_zip([("big.bin", os.urandom(150_000))]), ArchiveErrorCode.MEMBER_TOO_LARGE, limits
    )
    assert "'big.bin'" in message


def test_huge_gnu_long_name_stops_at_the_byte_budget() -> None:
    # tarfile reads a GNU long-name record into memory whatever size it declares; the budget
    # reader stops it. Hex digits do not compress, so this is a size refusal, not a ratio one.
    limits = ArchiveLimits(max_total_bytes=1 * MIB, max_entries=10)
    name = os.urandom(1_500_000).hex()
    data = make_tar([(tar_entry(name), b"x")], fmt=tarfile.GNU_FORMAT)
    refusal(data, ArchiveErrorCode.EXPANDS_TOO_LARGE, limits)


def test_overlapping_zip_entries_are_refused() -> None:
    data = bytearray(make_zip([("a.txt", b"a" * 1000), ("b.txt", b"b" * 1000)]))
    # Point b's central-directory entry at a's local header: two entries, one kernel.
    second = data.rfind(b"PK\x01\x02")
    struct.pack_into("<I", data, second + 42, 0)
    refusal(bytes(data), ArchiveErrorCode.BOMB)


def test_archive_over_the_upload_limit_is_refused() -> None:
    refusal(
        make_zip([("a.bin", os.urandom(2000))]),
        ArchiveErrorCode.ARCHIVE_TOO_LARGE,
        ArchiveLimits(max_archive_bytes=1000),
    )


# --- corrupt, unsupported, empty -----------------------------------------------------------------


def test_truncated_zip_is_corrupt() -> None:
    data = make_zip([("a.py", b"print('hello')\n" * 200)])
    refusal(data[: len(data) // 2], ArchiveErrorCode.CORRUPT)


def test_zip_with_damaged_data_is_corrupt() -> None:
    data = bytearray(make_zip([("a.py", os.urandom(2000))]))
    data[100] ^= 0xFF  # inside the compressed data: CRC or inflate fails
    refusal(bytes(data), ArchiveErrorCode.CORRUPT)


def test_truncated_tar_gz_is_corrupt() -> None:
    data = make_tar([(tar_entry("a.bin"), os.urandom(50_000))])
    refusal(data[: len(data) // 2], ArchiveErrorCode.CORRUPT)


def test_gzip_without_a_tar_inside_is_unsupported() -> None:
    refusal(gzip.compress(b"just some text\n" * 10), ArchiveErrorCode.UNSUPPORTED)


def test_not_an_archive_is_unsupported() -> None:
    refusal(b"%PDF-1.7 not an archive", ArchiveErrorCode.UNSUPPORTED)


def test_encrypted_zip_is_refused() -> None:
    data = bytearray(make_zip([("secret.txt", b"hidden")]))
    central = data.rfind(b"PK\x01\x02")
    data[central + 8] |= 0x01  # general-purpose flag bit 0: encrypted
    refusal(bytes(data), ArchiveErrorCode.ENCRYPTED)


def test_empty_inputs() -> None:
    refusal(b"", ArchiveErrorCode.EMPTY)
    message = refusal(make_zip([("only/", b""), ("dirs/", b"")]), ArchiveErrorCode.EMPTY)
    assert "no files" in message
