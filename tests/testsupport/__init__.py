"""Helpers shared by the test suites (importable as ``testsupport``: pytest puts tests/ on sys.path)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tritonkit.server import EmbeddedServer, ServerOptions, free_port


@dataclass(frozen=True)
class ShapeModel:
    """The demo's trained shape classifier, saved as a .keras file with its labels."""

    keras_path: Path
    labels_path: Path
    accuracy: float
    labels: tuple[str, ...]


def start_server(repository: Path, **kwargs: object) -> EmbeddedServer:
    """A started embedded Triton on free loopback ports; the caller stops it."""
    options = ServerOptions(
        repository=repository,
        http_port=free_port(),
        grpc_port=free_port(),
        metrics_port=free_port(),
        **kwargs,  # type: ignore[arg-type]
    )
    server = EmbeddedServer(options)
    server.start(timeout_s=120)
    return server


def make_onnx_classifier(
    path: Path,
    *,
    size: int = 32,
    classes: int = 4,
    layout: str = "NHWC",
    batch: int | str = "batch",
    seed: int = 0,
    input_name: str = "image",
    output_name: str = "probs",
) -> Path:
    """A tiny real ONNX image classifier: mean colour per channel -> linear -> softmax."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    channel_axis = 3 if layout == "NHWC" else 1
    shape = [batch, size, size, 3] if layout == "NHWC" else [batch, 3, size, size]
    weights = rng.normal(0, 3, (3, classes)).astype(np.float32)
    bias = rng.normal(0, 0.1, (classes,)).astype(np.float32)
    spatial = [1, 2] if layout == "NHWC" else [2, 3]
    nodes = [
        helper.make_node("ReduceMean", [input_name, "axes"], ["mean"], keepdims=0),
        helper.make_node("MatMul", ["mean", "w"], ["logits0"]),
        helper.make_node("Add", ["logits0", "b"], ["logits"]),
        helper.make_node("Softmax", ["logits"], [output_name], axis=-1),
    ]
    del channel_axis
    graph = helper.make_graph(
        nodes,
        "tiny_classifier",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, [batch, classes])],
        initializer=[
            numpy_helper.from_array(np.array(spatial, dtype=np.int64), "axes"),
            numpy_helper.from_array(weights, "w"),
            numpy_helper.from_array(bias, "b"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path
