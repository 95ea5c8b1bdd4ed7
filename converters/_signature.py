"""A model's signature: what goes in and out, read from the model itself, never typed by a user."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ._errors import SignatureError

Layout = Literal["NHWC", "NCHW"]


@dataclass(frozen=True)
class TensorSpec:
    """One named tensor of a model.

    ``shape`` is the full shape, batch dimension included when the model batches;
    ``None`` marks a dynamic dimension. ``dtype`` is a numpy dtype name (``"float32"``).
    """

    name: str
    dtype: str
    shape: tuple[int | None, ...]

    @property
    def sample_shape(self) -> tuple[int | None, ...]:
        """The shape of one sample: ``shape`` without its leading batch dimension."""
        return self.shape[1:]


@dataclass(frozen=True)
class ImageInput:
    """How an image classifier wants its single image input."""

    name: str
    dtype: str
    layout: Layout
    height: int
    width: int
    channels: int


@dataclass(frozen=True)
class ClassifierOutput:
    """The single score output of an image classifier: one score per class."""

    name: str
    dtype: str
    num_classes: int


@dataclass(frozen=True)
class ModelSignature:
    """Inputs and outputs of a model whose first dimension is a (dynamic) batch dimension.

    Every tensor's ``shape[0]`` is ``None``: converters make the batch dimension dynamic or
    refuse the model, so the repository builder can always batch.
    """

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    def image_input(self) -> ImageInput:
        """The model's image input, or a :class:`SignatureError` saying why it has none."""
        if len(self.inputs) != 1:
            names = ", ".join(t.name for t in self.inputs)
            raise SignatureError(
                f"the model has {len(self.inputs)} inputs ({names}); the image pipeline needs exactly "
                "one image input. Serve it without the preprocessor with --no-ensemble."
            )
        spec = self.inputs[0]
        dims = spec.sample_shape
        if len(dims) != 3 or any(d is None for d in dims):
            raise SignatureError(
                f"input {spec.name!r} has shape {_fmt(spec.shape)}, not an image of fixed size "
                "(batch, height, width, channels) or (batch, channels, height, width). "
                "Serve it without the preprocessor with --no-ensemble."
            )
        a, b, c = (int(d) for d in dims if d is not None)
        if c in (1, 3):
            return ImageInput(spec.name, spec.dtype, "NHWC", a, b, c)
        if a in (1, 3):
            return ImageInput(spec.name, spec.dtype, "NCHW", b, c, a)
        raise SignatureError(
            f"input {spec.name!r} has shape {_fmt(spec.shape)}: neither its last nor its first "
            "sample dimension is 1 or 3 colour channels. Serve it without the preprocessor with "
            "--no-ensemble."
        )

    def classifier_output(self) -> ClassifierOutput:
        """The model's score output, or a :class:`SignatureError` saying why it has none."""
        if len(self.outputs) != 1:
            names = ", ".join(t.name for t in self.outputs)
            raise SignatureError(
                f"the model has {len(self.outputs)} outputs ({names}); an image classifier has one "
                "output of class scores. Serve it with --no-ensemble."
            )
        spec = self.outputs[0]
        dims = spec.sample_shape
        if len(dims) != 1 or dims[0] is None or dims[0] < 2:
            raise SignatureError(
                f"output {spec.name!r} has shape {_fmt(spec.shape)}; an image classifier's output is "
                "(batch, classes) with at least 2 classes. Serve it with --no-ensemble."
            )
        return ClassifierOutput(spec.name, spec.dtype, int(dims[0]))


def _fmt(shape: tuple[int | None, ...]) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ")"
