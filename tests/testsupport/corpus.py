"""A corpus of odd, broken and hostile image payloads, each with what the preprocessor must say."""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass

from PIL import Image


@dataclass(frozen=True)
class Case:
    name: str
    data: bytes
    error: str | None  # a word the error must contain; None: the image must be classified


def _encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _picture(mode: str = "RGB", size: tuple[int, int] = (64, 48)) -> Image.Image:
    image = Image.new("RGB", size, (30, 120, 200))
    image.paste((240, 200, 10), (0, 0, size[0] // 2, size[1]))
    return image.convert(mode)


def _png_declaring(width: int, height: int) -> bytes:
    """A small, valid-looking PNG whose header claims ``width`` x ``height`` pixels."""
    raw = _encode(Image.new("L", (8, 8)), "PNG")
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return raw[:8] + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk)) + raw[33:]


def _exif_rotated() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise on display
    return _encode(_picture(size=(80, 40)), "JPEG", exif=exif.tobytes())


def _animated_gif() -> bytes:
    frames = [Image.new("P", (32, 32), i) for i in range(3)]
    return _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)


def _sixteen_bit() -> bytes:
    return _encode(Image.new("I;16", (40, 30), 40000), "PNG")


def _palette_with_transparency() -> bytes:
    image = _picture().convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    return _encode(image, "PNG", transparency=0)


def hostile_corpus(max_bytes: int) -> list[Case]:
    """Bad inputs (each with its own error) and odd-but-valid images (which must succeed)."""
    jpeg = _encode(_picture(), "JPEG", quality=90)
    png = _encode(_picture(), "PNG")
    return [
        Case("zero bytes", b"", "empty"),
        Case("plain text", b"hello, this is not an image\n" * 4, "not an image"),
        Case("html page", b"<!doctype html><html><body>hi</body></html>", "not an image"),
        Case("svg", b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>', "not an image"),
        Case("pdf header", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "not an image"),
        Case("random bytes", bytes(range(256)) * 8, "not an image"),
        Case("truncated jpeg", jpeg[: len(jpeg) // 2], "truncated"),
        Case("truncated png", png[: len(png) // 2], "truncated"),
        Case("png magic, jpeg body", b"\x89PNG\r\n\x1a\n" + jpeg[8:], "not an image"),
        Case("jpeg magic only", b"\xff\xd8\xff\xe0" + b"\x00" * 64, "not an image"),
        Case("decompression bomb", _png_declaring(30_000, 30_000), "pixels"),
        Case("9000x9000 under pillow's limit", _png_declaring(9_000, 9_000), "pixels"),
        Case("oversized payload", png + b"\0" * (max_bytes + 1 - len(png)), "bytes"),
        Case("cmyk jpeg", _encode(_picture("CMYK"), "JPEG"), None),
        Case("16-bit png", _sixteen_bit(), None),
        Case("palette png with transparency", _palette_with_transparency(), None),
        Case("rgba png", _encode(_picture("RGBA"), "PNG"), None),
        Case("grey + alpha png", _encode(_picture("LA"), "PNG"), None),
        Case("greyscale jpeg", _encode(_picture("L"), "JPEG"), None),
        Case("exif-rotated jpeg", _exif_rotated(), None),
        Case("animated gif", _animated_gif(), None),
        Case("bmp", _encode(_picture(), "BMP"), None),
        Case("webp", _encode(_picture(), "WEBP"), None),
        Case("tiff", _encode(_picture(), "TIFF"), None),
        Case("1x1 pixel", _encode(Image.new("RGB", (1, 1), (9, 9, 9)), "PNG"), None),
        Case("1x3000 sliver", _encode(Image.new("RGB", (1, 3000), (9, 90, 9)), "PNG"), None),
    ]
