"""Images in, Triton classification strings out, and typed results from them."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeAlias

import numpy as np

from ._errors import InvalidInput
from ._status import ModelConfig, ModelMetadata

if TYPE_CHECKING:
    from PIL.Image import Image

ImageSource: TypeAlias = "str | os.PathLike[str] | bytes | Image"


class Classification(NamedTuple):
    """One class of one image: its label (the index as text if the model has no labels)."""

    label: str
    index: int  # type: ignore[assignment]  # shadows tuple.index: the issue's (label, index, score)
    score: float


def _is_single(images: Any) -> bool:
    if isinstance(images, str | bytes | bytearray | os.PathLike):
        return True
    try:
        from PIL.Image import Image
    except ImportError:  # pragma: no cover - pillow is a core dependency
        return False
    return isinstance(images, Image)


def encode_images(images: ImageSource | Sequence[ImageSource]) -> np.ndarray:
    """Encoded image bytes as a ``[n, 1]`` BYTES batch: files are sent as they are, PIL images as PNG."""
    items = [images] if _is_single(images) else list(images)  # type: ignore[arg-type]
    if not items:
        raise InvalidInput("no images to classify")
    batch = np.empty((len(items), 1), dtype=object)
    for i, item in enumerate(items):
        batch[i, 0] = _encode(item)
    return batch


def _encode(item: Any) -> bytes:
    if isinstance(item, bytes | bytearray):
        return bytes(item)
    if isinstance(item, str | os.PathLike):
        path = Path(item)
        try:
            return path.read_bytes()
        except OSError as exc:
            raise InvalidInput(f"cannot read image {path}: {exc.strerror or exc}") from exc
    from PIL.Image import Image

    if isinstance(item, Image):
        buffer = io.BytesIO()
        image = item if item.mode in ("RGB", "RGBA", "L") else item.convert("RGB")
        image.save(buffer, format="PNG")
        return buffer.getvalue()
    raise InvalidInput(f"an image must be a path, bytes or a PIL image, got {type(item).__name__}")


def image_input(metadata: ModelMetadata) -> str:
    """The model's one BYTES input, which takes encoded images."""
    candidates = [t.name for t in metadata.inputs if t.datatype == "BYTES"]
    if len(metadata.inputs) != 1 or len(candidates) != 1:
        raise InvalidInput(
            f"model {metadata.name!r} does not take encoded images: classify needs one BYTES input "
            f"(it has {', '.join(f'{t.name} {t.datatype}' for t in metadata.inputs) or 'none'})",
            model=metadata.name,
        )
    return candidates[0]


def scores_output(metadata: ModelMetadata, config: ModelConfig, output: str | None) -> str:
    """The output to classify: the one named, the only one, or the one with a label file."""
    if output is not None:
        metadata.output(output)
        return output
    if len(metadata.outputs) == 1:
        return metadata.outputs[0].name
    labelled = [t.name for t in config.outputs if t.label_filename]
    if len(labelled) == 1:
        return labelled[0]
    raise InvalidInput(
        f"model {metadata.name!r} has several outputs ({', '.join(t.name for t in metadata.outputs)}): "
        "say which one holds the scores with output=...",
        model=metadata.name,
    )


def parse_classifications(array: np.ndarray) -> list[list[Classification]]:
    """Parse ``score:index[:label]`` strings, one row per image, best first."""
    rows = array.reshape(array.shape[0], -1) if array.ndim > 1 else array.reshape(1, -1)
    return [[_parse(item) for item in row] for row in rows]


def _parse(item: Any) -> Classification:
    text = item.decode("utf-8") if isinstance(item, bytes | np.bytes_) else str(item)
    score, index, *label = text.split(":", 2)
    return Classification(label=label[0] if label else index, index=int(index), score=float(score))
