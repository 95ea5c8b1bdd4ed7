"""Turn a trained classifier into a checked ONNX model with a dynamic batch dimension.

    source = load_source("model.keras")            # .keras/.h5, SavedModel folder, or .onnx
    signature = export_onnx(source, Path("model.onnx"))
    report = check_parity(source, Path("model.onnx"), samples)
    require_parity(report)

or all three at once with :func:`convert`. Signatures are read from the model, never typed in.
Every failure is a :class:`ConversionError` whose message names the problem and the fix.

TensorFlow and tf2onnx are imported only when a TensorFlow model is loaded; onnx and
onnxruntime only when an ONNX model is read, written or run.
"""

from ._convert import PARITY_SAMPLES, ConversionResult, convert
from ._errors import (
    ConversionError,
    ParityError,
    SignatureError,
    SourceNotFoundError,
    UnreadableModelError,
    UnsupportedModelError,
)
from ._export import DEFAULT_OPSET, export_onnx
from ._parity import DEFAULT_PARITY_ATOL, ParityReport, check_parity, require_parity
from ._signature import ClassifierOutput, ImageInput, ModelSignature, TensorSpec
from ._source import SourceKind, SourceModel, load_source

__all__ = [
    "DEFAULT_OPSET",
    "DEFAULT_PARITY_ATOL",
    "PARITY_SAMPLES",
    "ClassifierOutput",
    "ConversionError",
    "ConversionResult",
    "ImageInput",
    "ModelSignature",
    "ParityError",
    "ParityReport",
    "SignatureError",
    "SourceKind",
    "SourceModel",
    "SourceNotFoundError",
    "TensorSpec",
    "UnreadableModelError",
    "UnsupportedModelError",
    "check_parity",
    "convert",
    "export_onnx",
    "load_source",
    "require_parity",
]
