"""What bench sends: one request per payload, built once from the model's metadata and config.

An image model (one BYTES input, e.g. a tritonkit ensemble) gets real encoded images, one per
request; a tensor model gets random data of each input's shape and data type.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tritonkit.client import ModelConfig, ModelMetadata

from ._errors import WorkloadError
from ._photos import DEFAULT_PHOTO_SIZE, make_photos

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
SYNTHETIC_PHOTOS = 16
RANDOM_PAYLOADS = 8

# Triton wire datatypes bench can fill with random values.
_DTYPES: dict[str, Any] = {
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
}


@dataclass(frozen=True)
class InputTensor:
    """One input of one request: name, Triton datatype and the data (with its batch dimension)."""

    name: str
    datatype: str
    array: np.ndarray


@dataclass(frozen=True)
class Workload:
    """The requests of a benchmark, sent round-robin; ``images`` holds the encoded images of an
    image workload (the reference preprocesses the same bytes)."""

    kind: str  # "images" or "tensors"
    payloads: tuple[tuple[InputTensor, ...], ...]
    outputs: tuple[str, ...]
    description: str
    images: tuple[bytes, ...] = ()

    @property
    def request_bytes(self) -> float:
        """Mean size of one request's input data."""
        sizes = [sum(_nbytes(t.array) for t in payload) for payload in self.payloads]
        return float(np.mean(sizes)) if sizes else 0.0


def _nbytes(array: np.ndarray) -> int:
    if array.dtype == np.object_:
        return sum(len(item) for item in array.reshape(-1))
    return int(array.nbytes)


def expand_image_paths(values: Sequence[Path]) -> list[Path]:
    """Files as given, and the image files (by suffix, sorted) of any folder."""
    paths: list[Path] = []
    for value in values:
        value = Path(value)
        if value.is_dir():
            found = sorted(p for p in value.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            if not found:
                raise WorkloadError(f"{value} holds no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
            paths += found
        elif value.is_file():
            paths.append(value)
        else:
            raise WorkloadError(f"image file or folder not found: {value}")
    return paths


def is_image_model(metadata: ModelMetadata) -> bool:
    """One BYTES input: encoded images in (what tritonkit's ensembles and preprocessors take)."""
    return len(metadata.inputs) == 1 and metadata.inputs[0].datatype == "BYTES"


def _request_shape(dims: Sequence[int], batching: bool) -> list[int]:
    shape = [1 if d < 0 else int(d) for d in dims]
    return [1, *shape] if batching else shape


def build_workload(
    metadata: ModelMetadata,
    config: ModelConfig,
    images: Sequence[Path] = (),
    *,
    seed: int = 0,
) -> Workload:
    """The requests for ``metadata.name``: images for an image model, random tensors otherwise.

    An image model without ``images`` gets :data:`SYNTHETIC_PHOTOS` photo-like 640x480 JPEGs.
    """
    batching = config.max_batch_size > 0
    dims = {t.name: t.dims for t in config.inputs}
    outputs = tuple(t.name for t in metadata.outputs)
    if is_image_model(metadata):
        tensor = metadata.inputs[0]
        shape = _request_shape(dims.get(tensor.name, (1,)), batching)
        if int(np.prod(shape)) != 1:
            raise WorkloadError(
                f"{metadata.name}'s input {tensor.name!r} takes {shape} byte strings per request; "
                "bench sends one image per request and needs dims [1]"
            )
        if images:
            paths = expand_image_paths(images)
            encoded = [p.read_bytes() for p in paths]
            description = f"{len(encoded)} image files ({_size_note(encoded)})"
        else:
            encoded = make_photos(SYNTHETIC_PHOTOS, DEFAULT_PHOTO_SIZE, seed)
            w, h = DEFAULT_PHOTO_SIZE
            description = f"{len(encoded)} synthetic {w}x{h} photo-like JPEGs ({_size_note(encoded)})"
        payloads = tuple(
            (InputTensor(tensor.name, "BYTES", np.array([data], dtype=np.object_).reshape(shape)),)
            for data in encoded
        )
        return Workload("images", payloads, outputs, description, tuple(encoded))

    if images:
        raise WorkloadError(
            f"{metadata.name} takes tensors, not encoded images: drop --images to send random data"
        )
    rng = np.random.default_rng(seed)
    payloads_list = []
    for _ in range(RANDOM_PAYLOADS):
        tensors = []
        for tensor in metadata.inputs:
            dtype = _DTYPES.get(tensor.datatype)
            if dtype is None:
                raise WorkloadError(
                    f"{metadata.name}'s input {tensor.name!r} is {tensor.datatype}: bench can only "
                    "make random numbers, or images for a model with a single BYTES input"
                )
            shape = _request_shape(
                dims.get(tensor.name, tuple(tensor.shape[1 if batching else 0 :])), batching
            )
            tensors.append(InputTensor(tensor.name, tensor.datatype, _random(rng, np.dtype(dtype), shape)))
        payloads_list.append(tuple(tensors))
    described = ", ".join(f"{t.name} {t.datatype}{list(t.array.shape)}" for t in payloads_list[0])
    return Workload(
        "tensors", tuple(payloads_list), outputs, f"{RANDOM_PAYLOADS} random tensors: {described}"
    )


def _random(rng: np.random.Generator, dtype: np.dtype[Any], shape: list[int]) -> np.ndarray:
    if dtype.kind == "f":
        return rng.random(shape).astype(dtype)
    if dtype.kind == "b":
        return rng.integers(0, 2, shape).astype(np.bool_)
    high = min(int(np.iinfo(dtype).max), 255) + 1
    return rng.integers(0, high, shape).astype(dtype)


def _size_note(encoded: Sequence[bytes]) -> str:
    return f"mean {np.mean([len(d) for d in encoded]) / 1024:.0f} KiB"
