"""A small labelled image set made on the spot: coloured shapes on coloured backgrounds.

The demo and the tests need a classifier that is really trained, with real labels, without
downloading anything; four shape classes drawn at random sizes, places and colours are enough
for a small CNN to learn in seconds and hard enough that an untrained one is at chance.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SHAPE_LABELS: tuple[str, ...] = ("circle", "square", "triangle", "cross")


def _colours(rng: np.random.Generator) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    while True:
        fg = rng.integers(0, 256, 3)
        bg = rng.integers(0, 256, 3)
        if np.abs(fg.astype(int) - bg.astype(int)).sum() > 200:  # keep the shape visible
            return tuple(int(c) for c in fg), tuple(int(c) for c in bg)  # type: ignore[return-value]


def draw_shape(label: int, size: tuple[int, int], rng: np.random.Generator) -> Image.Image:
    """One RGB image of ``SHAPE_LABELS[label]``, randomly placed, sized and coloured."""
    width, height = size
    fg, bg = _colours(rng)
    image = Image.new("RGB", size, bg)
    draw = ImageDraw.Draw(image)
    side = min(width, height)
    radius = float(rng.uniform(0.18, 0.38)) * side
    cx = float(rng.uniform(radius, width - radius))
    cy = float(rng.uniform(radius, height - radius))
    kind = SHAPE_LABELS[label]
    if kind == "circle":
        draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=fg)
    elif kind == "square":
        angle = float(rng.uniform(0, math.pi / 2))
        corners = [angle + k * math.pi / 2 + math.pi / 4 for k in range(4)]
        draw.polygon([(cx + radius * math.cos(a), cy + radius * math.sin(a)) for a in corners], fill=fg)
    elif kind == "triangle":
        angle = float(rng.uniform(0, 2 * math.pi))
        corners = [angle + k * 2 * math.pi / 3 for k in range(3)]
        draw.polygon([(cx + radius * math.cos(a), cy + radius * math.sin(a)) for a in corners], fill=fg)
    else:
        bar = radius * 0.35
        draw.rectangle((cx - radius, cy - bar, cx + radius, cy + bar), fill=fg)
        draw.rectangle((cx - bar, cy - radius, cx + bar, cy + radius), fill=fg)
    noise = rng.normal(0, 8, (height, width, 3))
    pixels = np.clip(np.asarray(image, dtype=np.float32) + noise, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels).filter(ImageFilter.GaussianBlur(radius=0.6))


def encode(image: Image.Image, fmt: str = "JPEG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def make_shapes(
    count: int, seed: int = 0, size: tuple[int, int] = (96, 96)
) -> tuple[list[bytes], np.ndarray]:
    """``count`` JPEG-encoded shape images and their integer labels (balanced classes)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % len(SHAPE_LABELS)
    rng.shuffle(labels)
    images = [encode(draw_shape(int(label), size, rng)) for label in labels]
    return images, labels


def write_shape_images(folder: Path, per_class: int = 2, seed: int = 1) -> list[tuple[Path, str]]:
    """Save a few test images of every class as JPEG and PNG files; returns (path, true label)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    written = []
    for label, name in enumerate(SHAPE_LABELS):
        for i in range(per_class):
            size = (int(rng.integers(80, 200)), int(rng.integers(80, 200)))
            fmt = "PNG" if i % 2 else "JPEG"
            path = folder / f"{name}_{i}.{fmt.lower().replace('jpeg', 'jpg')}"
            path.write_bytes(encode(draw_shape(label, size, rng), fmt))
            written.append((path, name))
    return written
