"""What the builder relies on: the exported names, the folders and the files to copy."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import tritonkit.custom_backends as custom_backends
from tritonkit.custom_backends import ONNX_CLASSIFIER_DIR, PREPROCESSOR_DIR, backend_files
from tritonkit.custom_backends.image_preprocessor import imaging

ALLOWED_IMPORTS = {"json", "os", "io", "warnings", "collections", "dataclasses", "typing", "__future__"}
ALLOWED_IMPORTS |= {"contextlib", "threading", "concurrent", "ctypes"}  # standard library
ALLOWED_IMPORTS |= {"numpy", "PIL", "onnxruntime", "triton_python_backend_utils", "imaging"}


def test_all_lists_every_public_name_once() -> None:  # its order is ruff's RUF022
    assert len(custom_backends.__all__) == len(set(custom_backends.__all__))
    public = {name for name in vars(custom_backends) if not name.startswith("_")}
    public -= {"annotations", "Path", "image_preprocessor", "onnx_classifier"}
    assert public == set(custom_backends.__all__)


def test_constants_are_the_imaging_modules_own() -> None:
    assert custom_backends.PREPROCESSOR_INPUT == imaging.PREPROCESSOR_INPUT == "IMAGE"
    assert custom_backends.PREPROCESSOR_OUTPUT == imaging.PREPROCESSOR_OUTPUT == "PIXELS"
    assert custom_backends.ImageSpec is imaging.ImageSpec
    assert set(custom_backends.PARAMETER_KEYS) == set(imaging.ImageSpec(height=1, width=1).to_parameters())


def test_backend_files_are_model_py_and_its_siblings() -> None:
    assert [path.name for path in backend_files(PREPROCESSOR_DIR)] == ["imaging.py", "model.py"]
    assert [path.name for path in backend_files(ONNX_CLASSIFIER_DIR)] == ["model.py"]
    assert all(path.is_file() for path in backend_files(PREPROCESSOR_DIR))


def test_backend_files_refuses_a_folder_without_model_py(tmp_path: Path) -> None:
    (tmp_path / "imaging.py").write_text("")
    with pytest.raises(FileNotFoundError, match=r"has no model\.py"):
        backend_files(tmp_path)


@pytest.mark.parametrize(
    "path",
    [*backend_files(PREPROCESSOR_DIR), *backend_files(ONNX_CLASSIFIER_DIR)],
    ids=lambda path: path.name,
)
def test_copied_files_import_only_what_a_stock_triton_has(path: Path) -> None:
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path.name}:{node.lineno} relative import"
            names = [node.module or ""]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            assert top in ALLOWED_IMPORTS, f"{path.name}:{node.lineno} imports {name}"


def test_no_model_py_or_fake_pb_utils_is_left_imported() -> None:
    """Nor by importing the package, nor by the model tests (their fixtures clean up)."""
    assert "triton_python_backend_utils" not in sys.modules
    assert "model" not in sys.modules
    assert "imaging" not in sys.modules
    assert not any(str(PREPROCESSOR_DIR) in entry or "pytest-" in entry for entry in sys.path)
    assert not any(name.endswith(".model") and name.startswith("tritonkit.") for name in sys.modules)
