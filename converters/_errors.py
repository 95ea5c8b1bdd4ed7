"""Errors raised by :mod:`tritonkit.converters`.

    ConversionError                 anything that stops a model becoming a checked ONNX model
    ├── SourceNotFoundError         the path names nothing
    ├── UnreadableModelError        the file or folder is not a model we can load (corrupt, wrong kind)
    ├── UnsupportedModelError       the model uses a layer or op the exporter cannot convert
    ├── SignatureError              the model's inputs/outputs do not fit what was asked of it
    └── ParityError                 the ONNX model does not compute what the source model computes

Every message names the problem and the fix; library exceptions are chained with ``from``.
"""

from __future__ import annotations


class ConversionError(Exception):
    """Root of every error raised by :mod:`tritonkit.converters`."""


class SourceNotFoundError(ConversionError):
    """The source path does not exist."""


class UnreadableModelError(ConversionError):
    """The source exists but cannot be loaded as a model of the kind its path says."""


class UnsupportedModelError(ConversionError):
    """The model holds a layer or op that cannot be exported to ONNX."""


class SignatureError(ConversionError):
    """The model's inputs or outputs do not fit the pipeline asked for."""


class ParityError(ConversionError):
    """The exported ONNX model's results differ from the source model's beyond tolerance."""
