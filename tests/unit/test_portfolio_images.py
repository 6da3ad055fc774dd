"""Images: metadata and quality of the sample images and of images made to be bad."""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from are_workers.errors import InvalidInputError
from are_workers.services.portfolios.images import (
    ImageErrorCode,
    ImageLimits,
    analyze_image,
    detect_image_format,
)

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples" / "portfolios"


def encode(image: Image.Image, fmt: str = "PNG", **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def checkerboard(size: int = 400, cell: int = 20) -> Image.Image:
    ys, xs = np.indices((size, size))
    pixels = (((xs // cell) + (ys // cell)) % 2 * 200 + 28).astype(np.uint8)
    return Image.fromarray(pixels, mode="L").convert("RGB")


def refusal(data: bytes, code: ImageErrorCode, limits: ImageLimits | None = None) -> str:
    with pytest.raises(InvalidInputError) as caught:
        analyze_image(data, limits=limits)
    assert caught.value.code == code
    assert caught.value.user_message.endswith(".")
    return caught.value.user_message


def test_sample_diagram_metadata_and_quality() -> None:
    info = analyze_image((SAMPLES / "backend_alex_chen" / "architecture.png").read_bytes())
    assert (info.format, info.width, info.height, info.mode) == ("PNG", 640, 360, "RGB")
    assert info.frames == 1 and not info.has_alpha and not info.has_exif
    assert info.megapixels == 0.23
    assert info.quality.flags == ()
    assert info.quality.score == 1.0
    assert info.quality.brightness > 0.8  # a white-background diagram
    json.dumps(info.to_stats())


def test_sample_chart_is_usable() -> None:
    info = analyze_image((SAMPLES / "analyst_maria_garcia" / "retention_chart.png").read_bytes())
    assert (info.width, info.height) == (480, 270)
    assert "blurry" not in info.quality.flags


def test_blur_lowers_sharpness_and_is_flagged() -> None:
    sharp = analyze_image(encode(checkerboard()))
    blurred = analyze_image(encode(checkerboard().filter(ImageFilter.GaussianBlur(6))))
    assert sharp.quality.sharpness > 10 * blurred.quality.sharpness
    assert "blurry" not in sharp.quality.flags
    assert "blurry" in blurred.quality.flags
    assert blurred.quality.score < 1.0


def test_sharpness_is_comparable_across_resolutions() -> None:
    small = analyze_image(encode(checkerboard(512, 32)))
    large = analyze_image(encode(checkerboard(2048, 128)))  # the same picture, 16x the pixels
    # Unscaled, the large one's Laplacian variance would be a quarter (edges are 4x sparser);
    # measured at one scale only the resampling's softening remains.
    assert 0.5 * small.quality.sharpness < large.quality.sharpness <= small.quality.sharpness
    assert "blurry" not in large.quality.flags


def test_dark_tiny_and_uniform_images_are_flagged() -> None:
    dark = analyze_image(encode(Image.new("RGB", (300, 300), (8, 8, 8))))
    assert {"too_dark", "nearly_uniform"} <= set(dark.quality.flags)
    tiny = analyze_image(encode(checkerboard(120, 10)))
    assert "low_resolution" in tiny.quality.flags


def test_jpeg_with_exif_records_presence_only() -> None:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    data = encode(checkerboard(), "JPEG", exif=exif.tobytes(), quality=90)
    info = analyze_image(data)
    assert info.format == "JPEG" and info.has_exif
    assert "PhoneMaker" not in json.dumps(info.to_stats())


def test_alpha_and_animation() -> None:
    rgba = analyze_image(encode(Image.new("RGBA", (256, 256), (255, 0, 0, 128))))
    assert rgba.has_alpha and rgba.mode == "RGBA"
    frames = [checkerboard(64, 8 + i) for i in range(3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    assert analyze_image(buffer.getvalue()).frames == 3


def test_truncated_image_is_corrupt() -> None:
    data = encode(checkerboard())
    message = refusal(data[: len(data) // 3], ImageErrorCode.CORRUPT)
    assert "damaged" in message


def test_garbage_after_a_png_signature_is_corrupt() -> None:
    refusal(b"\x89PNG\r\n\x1a\n" + b"garbage" * 50, ImageErrorCode.CORRUPT)


def test_pixel_bomb_is_refused_before_decoding() -> None:
    data = bytearray(encode(Image.new("L", (10, 10))))
    # Rewrite IHDR to declare 100,000 x 100,000 pixels, with a valid CRC.
    ihdr = data[12:29]
    ihdr[4:12] = struct.pack(">II", 100_000, 100_000)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    message = refusal(bytes(data), ImageErrorCode.TOO_MANY_PIXELS)
    assert "megapixels" in message


def test_not_an_image_empty_and_oversized() -> None:
    refusal(b"<svg xmlns='http://www.w3.org/2000/svg'/>", ImageErrorCode.UNSUPPORTED)
    refusal(b"", ImageErrorCode.EMPTY)
    refusal(encode(checkerboard()), ImageErrorCode.FILE_TOO_LARGE, ImageLimits(max_file_bytes=100))


def test_detect_image_format() -> None:
    assert detect_image_format(encode(checkerboard(32), "WEBP")) == "WEBP"
    assert detect_image_format(encode(checkerboard(32), "BMP")) == "BMP"
    assert detect_image_format(b"%PDF-1.4") is None
