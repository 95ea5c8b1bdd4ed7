"""Photo-like JPEGs made on the spot: smooth colour fields, shapes, texture, noise and blur.

The benchmark needs realistic payloads (camera-sized JPEGs whose decoding costs what a photo's
does) without downloading anything; these are deterministic for a seed, and varied enough that
a classifier's scores differ from image to image.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

DEFAULT_PHOTO_SIZE: tuple[int, int] = (640, 480)


def make_photo(
    rng: np.random.Generator, size: tuple[int, int] = DEFAULT_PHOTO_SIZE, quality: int = 0
) -> bytes:
    """One photo-like JPEG of ``size`` (width, height); ``quality`` 0 picks one in 75..94."""
    width, height = size
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    scale = max(width, height) / 10.0
    field = np.empty((height, width, 3), dtype=np.float32)
    for channel in range(3):
        a, b, phase = rng.uniform(-1, 1, 3)
        field[..., channel] = 128 + 100 * np.sin((a * x + b * y) / scale + phase * 6)
    image = Image.fromarray(np.clip(field, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(5, 25))):
        x0, y0 = int(rng.integers(0, width)), int(rng.integers(0, height))
        side = int(rng.integers(max(4, width // 64), max(5, width // 3)))
        box = (x0, y0, x0 + side, y0 + int(side * rng.uniform(0.3, 1.5)))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        kind = int(rng.integers(0, 3))
        if kind == 0:
            draw.ellipse(box, fill=colour)
        elif kind == 1:
            draw.rectangle(box, fill=colour)
        else:
            draw.line(box, fill=colour, width=int(rng.integers(1, 12)))
    noisy = np.asarray(image, dtype=np.float32) + rng.normal(0, rng.uniform(2, 20), (height, width, 3))
    image = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))
    image = image.filter(ImageFilter.GaussianBlur(float(rng.uniform(0, 1.5))))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality or int(rng.integers(75, 95)))
    return buffer.getvalue()


def make_photos(count: int, size: tuple[int, int] = DEFAULT_PHOTO_SIZE, seed: int = 0) -> list[bytes]:
    """``count`` different photo-like JPEGs, the same ones for the same seed."""
    rng = np.random.default_rng(seed)
    return [make_photo(rng, size) for _ in range(count)]


def write_photos(
    folder: Path, count: int, size: tuple[int, int] = DEFAULT_PHOTO_SIZE, seed: int = 0
) -> list[Path]:
    """Write :func:`make_photos` to ``folder`` as ``photo-000.jpg``, ...; returns the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, data in enumerate(make_photos(count, size, seed)):
        path = folder / f"photo-{index:03d}.jpg"
        path.write_bytes(data)
        paths.append(path)
    return paths
