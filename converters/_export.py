"""Writing a source model as an ONNX model Triton can batch."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ._signature import ModelSignature
from ._source import SourceModel

# Opset 17 runs on every onnxruntime (1.12+) and Triton ONNX backend (22.08+) still in use, and
# covers the ops of common image classifiers (LayerNormalization arrived in 17).
DEFAULT_OPSET = 17


def export_onnx(
    source: SourceModel, output: str | os.PathLike[str], *, opset: int | None = None
) -> ModelSignature:
    """Write ``source`` as an ONNX model at ``output`` and return the signature read back from it.

    The written model's first dimension is the symbolic ``"batch"`` on every input and output,
    whatever batch size the source fixed. Input names are the source's input names; output names
    are the source's output names, in the same order. ``opset`` (default :data:`DEFAULT_OPSET`)
    applies to TensorFlow sources; an ONNX source keeps its own opset.

    The file appears at ``output`` only once it is complete and checked.

    Raises:
        UnsupportedModelError: the model uses ops with no ONNX equivalent at this opset.
        SignatureError: the batch size the source fixes is baked into its graph and cannot be made
            dynamic.
    """
    from ._onnx import finish_export

    target = Path(output)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".export-") as staging:
        staged = Path(staging) / target.name
        source._write_onnx(staged, DEFAULT_OPSET if opset is None else opset)
        signature = finish_export(staged, [t.name for t in source.signature.outputs], source.path)
        os.replace(staged, target)
    return signature
