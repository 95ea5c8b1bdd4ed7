"""Small real models, built once per session: Keras files, a SavedModel, and hand-made ONNX graphs."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

IMAGE = (32, 32, 3)
CLASSES = 5
ONNX_IMAGE = (3, 8, 8)


@pytest.fixture(scope="session")
def keras() -> ModuleType:
    """Keras on TensorFlow; the test is skipped where TensorFlow is not installed."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    pytest.importorskip("tensorflow")
    return pytest.importorskip("keras")


@pytest.fixture(scope="session")
def build_classifier(keras: ModuleType) -> Callable[..., Any]:
    """Build a tiny untrained image classifier: 32x32x3 image in, 5 softmax scores out."""

    def build(*, seed: int = 0, batch_size: int | None = None, rescaling: bool = True) -> Any:
        keras.utils.set_random_seed(seed)
        image = keras.Input(IMAGE, batch_size=batch_size, name="image")
        x = keras.layers.Rescaling(1 / 255)(image) if rescaling else image
        x = keras.layers.Conv2D(8, 3, activation="relu")(x)
        x = keras.layers.GlobalAveragePooling2D()(x)
        scores = keras.layers.Dense(CLASSES, activation="softmax", name="scores")(x)
        return keras.Model(image, scores)

    return build


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def keras_file(build_classifier: Callable[..., Any], models_dir: Path) -> Path:
    path = models_dir / "classifier.keras"
    build_classifier().save(path)
    return path


@pytest.fixture(scope="session")
def h5_file(build_classifier: Callable[..., Any], models_dir: Path) -> Path:
    path = models_dir / "classifier.h5"
    build_classifier().save(path)
    return path


@pytest.fixture(scope="session")
def savedmodel_dir(build_classifier: Callable[..., Any], models_dir: Path) -> Path:
    path = models_dir / "classifier_savedmodel"
    build_classifier().export(path, verbose=False)
    return path


@pytest.fixture(scope="session")
def onnx_file(models_dir: Path) -> Path:
    """The NCHW ONNX classifier with a dynamic batch dimension named ``N``."""
    return write_onnx_classifier(models_dir / "classifier.onnx", batch="N")


@pytest.fixture(scope="session")
def images() -> list[np.ndarray]:
    """Four random 32x32 RGB images with raw 0..255 pixels, as float32."""
    rng = np.random.default_rng(42)
    return [rng.integers(0, 256, IMAGE).astype(np.float32) for _ in range(4)]


def write_onnx_classifier(
    path: Path,
    *,
    batch: int | str,
    seed: int = 0,
    fixed_reshape: bool = False,
    initializers_as_inputs: bool = False,
) -> Path:
    """Write a tiny NCHW ONNX classifier: (batch, 3, 8, 8) -> Conv -> pool -> Gemm -> softmax (batch, 5).

    ``fixed_reshape`` flattens with a Reshape to a hard-coded ``[1, 4]``, so the graph only works
    at batch size 1 whatever its declared input shape says.
    """
    rng = np.random.default_rng(seed)
    weights: dict[str, np.ndarray] = {
        "conv_w": rng.normal(size=(4, 3, 3, 3)).astype(np.float32),
        "conv_b": rng.normal(size=(4,)).astype(np.float32),
        "fc_w": rng.normal(size=(4, CLASSES)).astype(np.float32),
        "fc_b": rng.normal(size=(CLASSES,)).astype(np.float32),
        "flat_shape": np.array([1, 4], dtype=np.int64),
    }
    flatten = (
        helper.make_node("Reshape", ["pooled", "flat_shape"], ["flat"])
        if fixed_reshape
        else helper.make_node("Flatten", ["pooled"], ["flat"])
    )
    nodes = [
        helper.make_node("Conv", ["input", "conv_w", "conv_b"], ["conv"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv"], ["relu"]),
        helper.make_node("GlobalAveragePool", ["relu"], ["pooled"]),
        flatten,
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=1),
    ]
    initializers = [numpy_helper.from_array(array, name) for name, array in weights.items()]
    inputs = [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, *ONNX_IMAGE])]
    if initializers_as_inputs:  # as exporters for IR version < 4 did
        inputs += [helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in initializers]
    graph = helper.make_graph(
        nodes,
        "classifier",
        inputs,
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [batch, CLASSES])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="session")
def make_onnx_classifier() -> Callable[..., Path]:
    """:func:`write_onnx_classifier`, for test modules (which cannot import conftest)."""
    return write_onnx_classifier
