"""Python-backend model sources that the repository builder copies into a Triton repository.

Two backends, each a folder whose files are copied into a model version folder as they are:

- :data:`PREPROCESSOR_DIR` — ``model.py`` + ``imaging.py``: encoded image bytes (input
  :data:`PREPROCESSOR_INPUT`, TYPE_STRING, dims [1]) to a pixel tensor (output
  :data:`PREPROCESSOR_OUTPUT`), configured by :meth:`ImageSpec.to_parameters`.
- :data:`ONNX_CLASSIFIER_DIR` — ``model.py`` hosting onnxruntime on :data:`ONNX_MODEL_FILENAME`
  next to it, for a Triton without the onnxruntime backend.

The copied files import nothing from tritonkit (stock Triton containers do not have it); the
pure image API of the preprocessor is re-exported here for the builder, the client and tests.
"""

from __future__ import annotations

from pathlib import Path

from tritonkit.custom_backends.image_preprocessor.imaging import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_PIXELS,
    LAYOUTS,
    PARAMETER_KEYS,
    PREPROCESSOR_INPUT,
    PREPROCESSOR_OUTPUT,
    SCALINGS,
    VGG_MEAN_BGR,
    ImageDecodeError,
    ImageSpec,
    image_bytes,
    preprocess_batch,
    preprocess_image,
)

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_PIXELS",
    "LAYOUTS",
    "ONNX_CLASSIFIER_DIR",
    "ONNX_CLASSIFIER_PARAMETERS",
    "ONNX_MODEL_FILENAME",
    "PARAMETER_KEYS",
    "PREPROCESSOR_DIR",
    "PREPROCESSOR_INPUT",
    "PREPROCESSOR_OUTPUT",
    "SCALINGS",
    "VGG_MEAN_BGR",
    "ImageDecodeError",
    "ImageSpec",
    "backend_files",
    "image_bytes",
    "preprocess_batch",
    "preprocess_image",
]

PREPROCESSOR_DIR: Path = Path(__file__).parent / "image_preprocessor"
"""Folder whose :func:`backend_files` make a preprocessor model version."""

ONNX_CLASSIFIER_DIR: Path = Path(__file__).parent / "onnx_classifier"
"""Folder whose :func:`backend_files` make an ONNX classifier model version (add the .onnx)."""

ONNX_MODEL_FILENAME = "model.onnx"
"""File name the ONNX classifier loads from its version folder."""

ONNX_CLASSIFIER_PARAMETERS: dict[str, str] = {
    "intra_op_threads": "1",
    "inter_op_threads": "1",
    "allow_spinning": "0",
    "parallel_runs": "1",
}
"""The ONNX classifier's config ``parameters`` (string values) and their defaults."""


def backend_files(directory: Path) -> list[Path]:
    """The files to copy from a backend folder into a model version folder, sorted by name.

    That is ``model.py`` and its sibling modules: every ``*.py`` file except ``__init__.py``
    (``__pycache__`` and other non-Python files are left out).
    """
    directory = Path(directory)
    files = sorted(path for path in directory.glob("*.py") if path.is_file() and path.name != "__init__.py")
    if not any(path.name == "model.py" for path in files):
        raise FileNotFoundError(f"{directory} has no model.py: not a Python-backend source folder")
    return files
