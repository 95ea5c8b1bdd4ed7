"""Keras models (``.keras``, ``.h5``): load, describe, run, and export through tf2onnx."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ._errors import UnreadableModelError, UnsupportedModelError
from ._signature import TensorSpec
from ._source import SourceModel, batched_signature
from ._tensorflow import export_tf_function, import_keras, import_tensorflow

_UNKNOWN_CLASS = re.compile(r"Unknown layer: '([^']+)'|Could not locate class '([^']+)'")
# A model that scales raw pixels does so right after its input; a Normalization layer
# deeper in the network normalises features, not pixels.
_PIXEL_SCALING_LAYERS = frozenset({"Rescaling", "Normalization"})
_LAYERS_SEARCHED = 4


class KerasSource(SourceModel):
    """A Keras model loaded from a ``.keras`` or ``.h5`` file."""

    kind = "keras"

    def __init__(self, path: Path, model: Any) -> None:
        keras = import_keras()
        inputs = getattr(model, "inputs", None)
        if not inputs:
            raise UnsupportedModelError(
                f"{path} holds a subclassed Keras model without defined inputs; rebuild it as a Functional "
                "or Sequential model, or export an ONNX model yourself and pass the .onnx file"
            )
        names = list(getattr(model, "output_names", None) or [])
        if len(names) != len(model.outputs):
            names = [t.name for t in model.outputs]
        signature, fixed_batch = batched_signature(
            [TensorSpec(t.name, keras.backend.standardize_dtype(t.dtype), tuple(t.shape)) for t in inputs],
            [
                TensorSpec(name, keras.backend.standardize_dtype(t.dtype), tuple(t.shape))
                for name, t in zip(names, model.outputs, strict=True)
            ],
            path,
        )
        super().__init__(path, signature, fixed_batch, _scales_raw_pixels(model))
        self._model = model
        self._keras = keras

    def _call(self, inputs: list[Any]) -> dict[str, Any]:
        outputs = self._model(inputs[0] if len(inputs) == 1 else inputs, training=False)
        names = (t.name for t in self.signature.outputs)
        return dict(zip(names, self._keras.tree.flatten(outputs), strict=True))

    def _run(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs = self._call(list(batch.values()))
        return {name: np.asarray(self._keras.ops.convert_to_numpy(t)) for name, t in outputs.items()}

    def _write_onnx(self, output: Path, opset: int) -> None:
        tf = import_tensorflow()
        # Declaring the batch as None here is what makes the ONNX batch dynamic, even for a
        # model built with a fixed batch_size.
        specs = [
            tf.TensorSpec((None, *t.sample_shape), tf.as_dtype(t.dtype), name=t.name)
            for t in self.signature.inputs
        ]

        @tf.function(input_signature=specs, autograph=False)
        def serve(*args: Any) -> dict[str, Any]:
            return self._call(list(args))

        export_tf_function(serve, specs, output, opset, self.path)


def load_keras(path: Path) -> KerasSource:
    """Load a ``.keras``/``.h5`` file without compiling it."""
    if path.suffix.lower() == ".keras" and not zipfile.is_zipfile(path):
        raise UnreadableModelError(
            f"cannot read {path} as a Keras model: a .keras file is a zip archive and this one is not "
            "(corrupt, truncated, or not a .keras file)"
        )
    keras = import_keras()
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as exc:
        raise _load_error(path, exc) from exc
    return KerasSource(path, model)


def _load_error(path: Path, exc: Exception) -> Exception:
    message = str(exc)
    unknown = _UNKNOWN_CLASS.search(message)
    if unknown:
        layer = unknown.group(1) or unknown.group(2)
        return UnsupportedModelError(
            f"{path} uses the custom layer {layer!r}, which Keras does not know. Register it before "
            "loading (decorate the class with @keras.saving.register_keras_serializable() and import "
            "its module), or export an ONNX model yourself and pass the .onnx file."
        )
    if "safe_mode" in message:
        return UnsupportedModelError(
            f"{path} holds a Lambda layer, whose Python code Keras refuses to load in safe mode. Replace "
            "it with a registered custom layer, or export an ONNX model yourself and pass the .onnx file."
        )
    reason = message.strip().splitlines()[0] if message.strip() else type(exc).__name__
    return UnreadableModelError(f"cannot read {path} as a Keras model: {reason}")


def _scales_raw_pixels(model: Any) -> bool:
    layers = [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]
    for layer in layers[:_LAYERS_SEARCHED]:
        if type(layer).__name__ in _PIXEL_SCALING_LAYERS:
            return True
        # Preprocessing is often wrapped in a nested Sequential placed first.
        if hasattr(layer, "layers") and _scales_raw_pixels(layer):
            return True
    return False
