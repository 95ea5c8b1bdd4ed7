"""TensorFlow, Keras and tf2onnx, imported only when a TensorFlow source is loaded or exported.

Importing TensorFlow takes seconds and hundreds of megabytes, so nothing at module level here
touches it: callers that never see a TensorFlow model never pay for it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ._errors import ConversionError, UnsupportedModelError

_INSTALL_HINT = "install the converter extra: pip install 'tritonkit[convert]'"


def import_tensorflow() -> Any:
    """Return the ``tensorflow`` module, quiet, or a :class:`ConversionError` if it is missing."""
    # TensorFlow's C++ core prints a screenful of INFO lines on import unless told otherwise
    # before the first import; a user who set the variable keeps their choice.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import tensorflow as tf
    except ImportError as exc:
        raise ConversionError(
            f"TensorFlow is needed for this model but not installed; {_INSTALL_HINT}"
        ) from exc
    return tf


def import_keras() -> Any:
    """Return the ``keras`` module running on the TensorFlow backend."""
    # tf2onnx traces TensorFlow graphs, so Keras must run on TensorFlow even if the user's
    # environment prefers another backend for their own work.
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import_tensorflow()
    import keras

    if keras.backend.backend() != "tensorflow":
        raise ConversionError(
            f"Keras is running on the {keras.backend.backend()!r} backend; converting needs the TensorFlow "
            "backend. Set KERAS_BACKEND=tensorflow before Keras is first imported."
        )
    return keras


def export_tf_function(
    function: Any, input_signature: Sequence[Any], output: Path, opset: int, source: Path
) -> None:
    """Convert a ``tf.function`` of the model at ``source`` with tf2onnx; write the ONNX to ``output``.

    ONNX input names are the ``tf.TensorSpec`` names; output names are the keys of the dict the
    function returns (tf2onnx orders them by key). Ops tf2onnx cannot map are refused by name.
    """
    from ._onnx import refuse_unknown_ops

    import_tensorflow()
    try:
        import tf2onnx.convert
    except ImportError as exc:
        raise ConversionError(
            f"tf2onnx is needed to convert TensorFlow models but not installed; {_INSTALL_HINT}"
        ) from exc

    with _tf2onnx_errors() as errors:
        try:
            tf2onnx.convert.from_function(
                function, input_signature=list(input_signature), opset=opset, output_path=str(output)
            )
        except Exception as exc:
            logged = "".join(f"\n  {line}" for line in errors)
            raise UnsupportedModelError(
                f"tf2onnx could not convert {source} at opset {opset}: {exc}{logged}\n"
                "Try a newer --opset, or replace the layer that fails with standard Keras layers."
            ) from exc
    refuse_unknown_ops(output, source)


@contextmanager
def _tf2onnx_errors() -> Iterator[list[str]]:
    """Collect tf2onnx's warnings and errors instead of letting them reach the console.

    Real failures surface as exceptions (with the collected lines attached), and unsupported ops
    are found by inspecting the written graph, so the log itself is only noise to a user.
    """
    logger = logging.getLogger("tf2onnx")
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.ERROR:
                lines.append(record.getMessage())

    handler = Collect(logging.WARNING)
    propagate, level = logger.propagate, logger.level
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.WARNING)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate
        logger.setLevel(level)
