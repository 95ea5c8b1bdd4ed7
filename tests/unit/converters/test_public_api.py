"""The package's public surface, and what importing it costs."""

from __future__ import annotations

import subprocess
import sys
import types
from collections.abc import Callable
from pathlib import Path

import tritonkit.converters as converters

HEAVY_MODULES = ("tensorflow", "tf2onnx", "keras", "onnx", "onnxruntime")


def test_every_public_name_is_exported_and_every_export_exists() -> None:
    public = {
        name
        for name, value in vars(converters).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(converters.__all__)


def test_all_lists_no_name_twice() -> None:
    assert len(converters.__all__) == len(set(converters.__all__))


def _modules_loaded_after(code: str) -> list[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {HEAVY_MODULES!r} if m in sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    return done.stdout.split()


def test_importing_converters_imports_neither_tensorflow_nor_onnx() -> None:
    assert _modules_loaded_after("import tritonkit.converters") == []


def test_converting_an_onnx_model_does_not_import_tensorflow(
    make_onnx_classifier: Callable[..., Path], tmp_path: Path
) -> None:
    source = make_onnx_classifier(tmp_path / "fixed.onnx", batch=1)
    code = (
        "from tritonkit.converters import convert\n"
        f"assert convert({str(source)!r}, {str(tmp_path / 'out.onnx')!r}).parity.passed"
    )
    loaded = _modules_loaded_after(code)
    assert "tensorflow" not in loaded
    assert "keras" not in loaded
