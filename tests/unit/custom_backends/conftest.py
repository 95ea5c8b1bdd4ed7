"""Fixtures to run the Python-backend ``model.py`` files without a Triton server.

``fake_pb_utils`` installs a small stand-in for the ``triton_python_backend_utils`` module that
the backend stub provides (a unit-level test double: the real server is exercised by the
integration tests). ``install_backend`` copies a backend's files into a version folder the way
the repository builder does, and ``load_model`` imports its ``model.py`` from there the way the
stub does, leaving ``sys.path`` and ``sys.modules`` as they were after the test.
"""

from __future__ import annotations

import importlib
import json
import shutil
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from tritonkit.custom_backends import backend_files

_TRITON_TO_NUMPY = {
    "TYPE_BOOL": np.bool_,
    "TYPE_UINT8": np.uint8,
    "TYPE_UINT16": np.uint16,
    "TYPE_UINT32": np.uint32,
    "TYPE_UINT64": np.uint64,
    "TYPE_INT8": np.int8,
    "TYPE_INT16": np.int16,
    "TYPE_INT32": np.int32,
    "TYPE_INT64": np.int64,
    "TYPE_FP16": np.float16,
    "TYPE_FP32": np.float32,
    "TYPE_FP64": np.float64,
    "TYPE_STRING": np.object_,
}


class FakeTritonError:
    """Stand-in for ``pb_utils.TritonError``: a message and a code."""

    UNKNOWN = 0
    INTERNAL = 1
    NOT_FOUND = 2
    INVALID_ARG = 3
    UNAVAILABLE = 4
    UNSUPPORTED = 5
    ALREADY_EXISTS = 6
    CANCELLED = 7

    def __init__(self, message: str, code: int = INTERNAL) -> None:
        self._message = message
        self._code = code

    def message(self) -> str:
        return self._message

    def code(self) -> int:
        return self._code


class FakeTensor:
    """Stand-in for ``pb_utils.Tensor``; refuses what the real one cannot carry."""

    def __init__(self, name: str, array: np.ndarray) -> None:
        if not isinstance(array, np.ndarray):
            raise TypeError(f"Tensor {name!r} needs a numpy array, got {type(array).__name__}")
        if not array.flags.c_contiguous:
            raise ValueError(f"Tensor {name!r} needs a C-contiguous array")
        self._name = name
        self._array = array

    def name(self) -> str:
        return self._name

    def as_numpy(self) -> np.ndarray:
        return self._array


class FakeInferenceRequest:
    """Stand-in for ``pb_utils.InferenceRequest`` as ``execute`` receives it."""

    def __init__(self, **inputs: np.ndarray) -> None:
        self._inputs = [FakeTensor(name, array) for name, array in inputs.items()]

    def inputs(self) -> list[FakeTensor]:
        return self._inputs


class FakeInferenceResponse:
    """Stand-in for ``pb_utils.InferenceResponse``."""

    def __init__(self, output_tensors: list[FakeTensor], error: FakeTritonError | None = None) -> None:
        self._output_tensors = list(output_tensors)
        self._error = error

    def output_tensors(self) -> list[FakeTensor]:
        return self._output_tensors

    def has_error(self) -> bool:
        return self._error is not None

    def error(self) -> FakeTritonError | None:
        return self._error

    def output(self, name: str) -> np.ndarray:
        """Test convenience: the named output's array (fails on an error response)."""
        assert self._error is None, self._error.message()
        (tensor,) = [tensor for tensor in self._output_tensors if tensor.name() == name]
        return tensor.as_numpy()


def _by_name(items: list[dict] | None, name: str) -> dict | None:
    return next((item for item in items or [] if item["name"] == name), None)


def _make_fake_pb_utils() -> types.ModuleType:
    module = types.ModuleType("triton_python_backend_utils")
    module.TritonError = FakeTritonError  # type: ignore[attr-defined]
    module.Tensor = FakeTensor  # type: ignore[attr-defined]
    module.InferenceRequest = FakeInferenceRequest  # type: ignore[attr-defined]
    module.InferenceResponse = FakeInferenceResponse  # type: ignore[attr-defined]
    module.get_input_tensor_by_name = lambda request, name: next(  # type: ignore[attr-defined]
        (tensor for tensor in request.inputs() if tensor.name() == name), None
    )
    module.get_output_tensor_by_name = lambda response, name: next(  # type: ignore[attr-defined]
        (tensor for tensor in response.output_tensors() if tensor.name() == name), None
    )
    module.get_input_config_by_name = lambda config, name: _by_name(config.get("input"), name)  # type: ignore[attr-defined]
    module.get_output_config_by_name = lambda config, name: _by_name(config.get("output"), name)  # type: ignore[attr-defined]
    module.triton_string_to_numpy = _TRITON_TO_NUMPY.__getitem__  # type: ignore[attr-defined]
    return module


@pytest.fixture
def fake_pb_utils(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """A fake ``triton_python_backend_utils`` in ``sys.modules`` for this test only."""
    module = _make_fake_pb_utils()
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", module)
    return module


@pytest.fixture
def install_backend(tmp_path: Path) -> Callable[[Path, str], Path]:
    """Copy a backend's files into ``<tmp>/<model>/1/`` as the builder does; returns the version dir."""

    def install(source: Path, model_name: str) -> Path:
        version_dir = tmp_path / model_name / "1"
        version_dir.mkdir(parents=True)
        for path in backend_files(source):
            shutil.copy(path, version_dir / path.name)
        return version_dir

    return install


@pytest.fixture
def load_model(
    monkeypatch: pytest.MonkeyPatch, fake_pb_utils: types.ModuleType
) -> Iterator[Callable[[Path], types.ModuleType]]:
    """Import ``model`` from a version folder as the stub does (folder on ``sys.path``)."""
    imported: set[str] = set()

    def load(version_dir: Path) -> types.ModuleType:
        monkeypatch.syspath_prepend(str(version_dir))
        for path in version_dir.glob("*.py"):
            if path.stem in sys.modules and path.stem not in imported:
                monkeypatch.delitem(sys.modules, path.stem)
            sys.modules.pop(path.stem, None)  # a model loaded earlier in this test
            imported.add(path.stem)
        module = importlib.import_module("model")
        assert Path(module.__file__ or "").parent == version_dir
        return module

    yield load
    for name in imported:
        sys.modules.pop(name, None)


def model_args(version_dir: Path, config: dict, kind: str = "CPU") -> dict[str, str]:
    """The ``args`` the stub passes to ``initialize``."""
    return {
        "model_config": json.dumps(config),
        "model_instance_kind": kind,
        "model_instance_name": f"{config['name']}_0",
        "model_instance_device_id": "0",
        "model_repository": str(version_dir.parent),
        "model_version": version_dir.name,
        "model_name": config["name"],
    }


@pytest.fixture
def make_args() -> Callable[..., dict[str, str]]:
    """``model_args`` as a fixture (helpers in conftest cannot be imported in importlib mode)."""
    return model_args
