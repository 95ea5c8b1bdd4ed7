"""TensorFlow SavedModel folders: load the ``serving_default`` signature, run it, export it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from ._errors import SignatureError, UnreadableModelError, UnsupportedModelError
from ._signature import TensorSpec
from ._source import SourceModel, batched_signature
from ._tensorflow import export_tf_function, import_tensorflow

SERVING_SIGNATURE = "serving_default"
_UNREGISTERED_OP = re.compile(r"Op type not registered '([^']+)'")


class SavedModelSource(SourceModel):
    """A TensorFlow SavedModel, seen through its ``serving_default`` signature.

    Input and output names are the signature's keys, in sorted order.
    """

    kind = "savedmodel"

    def __init__(self, path: Path, loaded: Any, function: Any) -> None:
        _, input_specs = function.structured_input_signature
        output_specs = function.structured_outputs
        signature, fixed_batch = batched_signature(
            [_tensor_spec(path, name, input_specs[name]) for name in sorted(input_specs)],
            [_tensor_spec(path, name, output_specs[name]) for name in sorted(output_specs)],
            path,
        )
        super().__init__(path, signature, fixed_batch)
        self._loaded = loaded  # the signature's variables live as long as the loaded object
        self._function = function

    def _run(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        tf = import_tensorflow()
        outputs = self._function(**{name: tf.constant(a) for name, a in batch.items()})
        return {t.name: np.asarray(outputs[t.name].numpy()) for t in self.signature.outputs}

    def _write_onnx(self, output: Path, opset: int) -> None:
        tf = import_tensorflow()
        names = [t.name for t in self.signature.inputs]
        # A loaded signature only accepts the shapes it was saved with, so a fixed batch is
        # traced as is and made dynamic in the ONNX afterwards (then checked).
        specs = [
            tf.TensorSpec((self.fixed_batch, *t.sample_shape), tf.as_dtype(t.dtype), name=t.name)
            for t in self.signature.inputs
        ]
        function = self._function

        @tf.function(input_signature=specs, autograph=False)
        def serve(*args: Any) -> Any:
            return function(**dict(zip(names, args, strict=True)))

        export_tf_function(serve, specs, output, opset, self.path)
        if self.fixed_batch is not None:
            from ._onnx import relax_fixed_batch

            relax_fixed_batch(self, output)


def load_savedmodel(path: Path) -> SavedModelSource:
    """Load a SavedModel folder and pick its ``serving_default`` signature."""
    tf = import_tensorflow()
    try:
        loaded = tf.saved_model.load(str(path))
    except Exception as exc:
        message = str(exc).strip()
        op = _UNREGISTERED_OP.search(message)
        if op:
            raise UnsupportedModelError(
                f"{path} uses the TensorFlow op {op.group(1)!r}, which this TensorFlow does not know; "
                "import the library that registers it, or export an ONNX model yourself"
            ) from exc
        reason = message.splitlines()[0] if message else type(exc).__name__
        raise UnreadableModelError(f"cannot read {path} as a TensorFlow SavedModel: {reason}") from exc
    signatures = dict(loaded.signatures)
    if SERVING_SIGNATURE not in signatures:
        found = ", ".join(sorted(signatures)) or "none"
        raise SignatureError(
            f"{path} has no {SERVING_SIGNATURE!r} signature (signatures: {found}); save it with "
            f"tf.saved_model.save(model, path, signatures={{{SERVING_SIGNATURE!r}: serving_fn}}) "
            "or Keras model.export(path)"
        )
    return SavedModelSource(path, loaded, signatures[SERVING_SIGNATURE])


def _tensor_spec(path: Path, name: str, spec: Any) -> TensorSpec:
    if spec.shape.rank is None:
        raise SignatureError(
            f"{path}: tensor {name!r} of the {SERVING_SIGNATURE!r} signature has no known rank"
        )
    return TensorSpec(name, np.dtype(spec.dtype.as_numpy_dtype).name, tuple(spec.shape.as_list()))
