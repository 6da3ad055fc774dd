"""Portfolio images (screenshots, diagrams, design work): metadata and basic quality.

What is recorded: format, dimensions, colour mode, frame count, and three quality measures
on a grayscale copy scaled to at most 512 px on its long side: sharpness (variance of the
Laplacian), brightness (mean) and contrast (standard deviation). Why scale first: the
Laplacian variance of a photo grows with its resolution, so measuring every image at the
same scale makes one threshold mean the same thing for a phone photo and a 4K screenshot.

What is *not* recorded: EXIF contents. They can hold GPS coordinates and device serials,
which are personal data and no evidence of skill; only their presence is noted.

Why the pixel limit is checked before decoding: an image's header declares its size, and a
tiny PNG can declare 50,000 x 50,000 pixels (a decompression bomb). Pillow's own guard only
warns below twice its limit, so the limit is enforced here from the header.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import asdict, dataclass
from enum import StrEnum

import numpy as np

from are_workers.errors import InvalidInputError

__all__ = [
    "ImageErrorCode",
    "ImageInfo",
    "ImageLimits",
    "ImageQuality",
    "analyze_image",
    "detect_image_format",
    "image_tool_version",
]

_MIB = 1024 * 1024
_ANALYSIS_SIDE = 512


class ImageErrorCode(StrEnum):
    EMPTY = "empty_file"
    FILE_TOO_LARGE = "file_too_large"
    UNSUPPORTED = "unsupported_image"
    CORRUPT = "corrupt_image"
    TOO_MANY_PIXELS = "image_too_large"


@dataclass(frozen=True, slots=True)
class ImageLimits:
    max_file_bytes: int = 20 * _MIB
    max_pixels: int = 50_000_000
    """50 megapixels: above any camera or 8K screenshot a portfolio needs."""


@dataclass(frozen=True, slots=True)
class ImageQuality:
    """Quality measures on the normalised grayscale copy; ``flags`` name what is wrong.

    ``sharpness`` is the Laplacian variance on 0..255 gray levels (below ~100 reads as
    blurry at this scale); ``brightness`` and ``contrast`` are on 0..1.
    """

    sharpness: float
    brightness: float
    contrast: float
    flags: tuple[str, ...]

    @property
    def score(self) -> float:
        """0..1, a coarse usability score: 1.0 with no flags, 0.25 off per flag."""
        return max(0.0, 1.0 - 0.25 * len(self.flags))


@dataclass(frozen=True, slots=True)
class ImageInfo:
    format: str
    width: int
    height: int
    mode: str
    frames: int
    has_alpha: bool
    has_exif: bool
    dpi: tuple[float, float] | None
    quality: ImageQuality

    @property
    def megapixels(self) -> float:
        return round(self.width * self.height / 1_000_000, 3)

    def to_stats(self) -> dict[str, object]:
        """JSON-ready metadata for the item's ``stats``."""
        stats = asdict(self)
        stats["megapixels"] = self.megapixels
        stats["quality"]["score"] = self.quality.score
        return stats


_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"BM", "BMP"),
)


def detect_image_format(data: bytes) -> str | None:
    """PNG, JPEG, GIF, WEBP, TIFF or BMP from magic bytes; None for anything else."""
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "WEBP"
    return next((name for signature, name in _SIGNATURES if data.startswith(signature)), None)


def image_tool_version() -> str:
    import PIL

    return f"Pillow {PIL.__version__}"


def _corrupt() -> InvalidInputError:
    return InvalidInputError(
        "This image is damaged or incomplete and cannot be opened. Export it again "
        "(PNG or JPEG) and upload the new copy.",
        code=ImageErrorCode.CORRUPT,
    )


def _laplacian_variance(gray: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian: high when edges are crisp, low when blurred."""
    if gray.shape[0] < 3 or gray.shape[1] < 3:
        return 0.0
    lap = gray[:-2, 1:-1] + gray[2:, 1:-1] + gray[1:-1, :-2] + gray[1:-1, 2:] - 4 * gray[1:-1, 1:-1]
    return float(lap.var())


def _quality(gray: np.ndarray, width: int, height: int) -> ImageQuality:
    sharpness = _laplacian_variance(gray)
    brightness = float(gray.mean() / 255.0)
    contrast = float(gray.std() / 255.0)
    flags: list[str] = []
    if min(width, height) < 200:
        flags.append("low_resolution")
    if contrast < 0.03:
        flags.append("nearly_uniform")
    elif sharpness < 100.0:
        flags.append("blurry")
    if brightness < 0.12:
        flags.append("too_dark")
    elif brightness > 0.92 and contrast < 0.1:
        flags.append("washed_out")
    return ImageQuality(
        sharpness=round(sharpness, 2),
        brightness=round(brightness, 4),
        contrast=round(contrast, 4),
        flags=tuple(flags),
    )


def analyze_image(data: bytes, *, limits: ImageLimits | None = None) -> ImageInfo:
    """Metadata and quality of one image.

    Raises :class:`InvalidInputError` (:class:`ImageErrorCode`) for an empty, oversized,
    unsupported, corrupt or pixel-bomb image.
    """
    from PIL import Image, UnidentifiedImageError

    limits = limits or ImageLimits()
    if not data:
        raise InvalidInputError(
            "This image file is empty. Upload it again.", code=ImageErrorCode.EMPTY
        )
    if len(data) > limits.max_file_bytes:
        raise InvalidInputError(
            f"This image is {len(data) / _MIB:.1f} MB; the limit is "
            f"{limits.max_file_bytes / _MIB:g} MB. Upload a smaller export.",
            code=ImageErrorCode.FILE_TOO_LARGE,
        )
    if detect_image_format(data) is None:
        raise InvalidInputError(
            "This file is not an image we can read. Upload PNG, JPEG, GIF, WebP, TIFF or BMP.",
            code=ImageErrorCode.UNSUPPORTED,
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > limits.max_pixels:
                raise InvalidInputError(
                    f"This image is {width:,} x {height:,} pixels, more than the "
                    f"{limits.max_pixels / 1e6:g} megapixels we accept. Upload a smaller export.",
                    code=ImageErrorCode.TOO_MANY_PIXELS,
                )
            image_format = image.format or detect_image_format(data) or "unknown"
            mode = image.mode
            frames = int(getattr(image, "n_frames", 1))
            has_alpha = "A" in mode or (mode == "P" and "transparency" in image.info)
            has_exif = bool(image.getexif())
            dpi_raw = image.info.get("dpi")
            # JPEG decodes at 1/2..1/8 scale for free: the analysis copy is small anyway.
            image.draft("L", (_ANALYSIS_SIDE, _ANALYSIS_SIDE))
            gray_image = image.convert("L")
            gray_image.thumbnail((_ANALYSIS_SIDE, _ANALYSIS_SIDE))
            gray = np.asarray(gray_image, dtype=np.float32)
    except InvalidInputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InvalidInputError(
            f"This image declares more than the {limits.max_pixels / 1e6:g} megapixels we "
            "accept. Upload a smaller export.",
            code=ImageErrorCode.TOO_MANY_PIXELS,
        ) from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as exc:
        raise _corrupt() from exc
    dpi: tuple[float, float] | None = None
    if isinstance(dpi_raw, tuple) and len(dpi_raw) == 2:
        dpi = (round(float(dpi_raw[0]), 2), round(float(dpi_raw[1]), 2))
    return ImageInfo(
        format=image_format,
        width=width,
        height=height,
        mode=mode,
        frames=frames,
        has_alpha=has_alpha,
        has_exif=has_exif,
        dpi=dpi,
        quality=_quality(gray, width, height),
    )
