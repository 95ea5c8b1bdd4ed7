"""ONNX models: load and describe them, run them with onnxruntime, and tidy the ONNX we write."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from ._errors import SignatureError, UnreadableModelError, UnsupportedModelError
from ._samples import random_batch
from ._signature import ModelSignature, TensorSpec
from ._source import SourceModel, batched_signature

BATCH_DIM = "batch"
_STANDARD_DOMAINS = ("", "ai.onnx", "ai.onnx.ml")
# Two runs of one graph at different batch sizes may take different kernels, so results can
# differ by float32 rounding; a broken batch dimension differs by far more.
_SAME_RESULT_ATOL = 1e-4


class OnnxSource(SourceModel):
    """An ONNX model file, run with onnxruntime on the CPU."""

    kind = "onnx"

    def __init__(self, path: Path, model: onnx.ModelProto) -> None:
        signature, fixed_batch = batched_signature(*graph_tensors(model, path), path)
        super().__init__(path, signature, fixed_batch)
        self._session: Any = None

    def _run(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self._session is None:
            self._session = open_session(self.path)
        return run_session(self._session, batch)

    def _write_onnx(self, output: Path, opset: int) -> None:
        # Loading and saving (rather than copying) also folds external weight files into one file.
        onnx.save(onnx.load(str(self.path)), str(output))
        if self.fixed_batch is not None:
            relax_fixed_batch(self, output)


def load_onnx(path: Path) -> OnnxSource:
    """Load and validate an ``.onnx`` file."""
    try:
        model = onnx.load(str(path), load_external_data=False)
        onnx.checker.check_model(str(path))
    except Exception as exc:  # protobuf, the checker and file access each raise their own kinds
        raise UnreadableModelError(f"cannot read {path} as an ONNX model: {_first_line(exc)}") from exc
    return OnnxSource(path, model)


def graph_tensors(model: onnx.ModelProto, where: Path) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """The graph's inputs (initializers excluded) and outputs, with their full shapes."""
    initializers = {t.name for t in model.graph.initializer}
    inputs = [_tensor_spec(v, where) for v in model.graph.input if v.name not in initializers]
    return inputs, [_tensor_spec(v, where) for v in model.graph.output]


def read_signature(path: Path) -> ModelSignature:
    """The signature of an ONNX file whose batch dimension is dynamic."""
    model = onnx.load(str(path), load_external_data=False)
    signature, _ = batched_signature(*graph_tensors(model, path), path)
    return signature


def make_batch_dynamic(model: onnx.ModelProto) -> None:
    """Make dimension 0 of every graph input and output the symbolic dimension ``"batch"``."""
    initializers = {t.name for t in model.graph.initializer}
    relaxed = False
    for value in [*model.graph.input, *model.graph.output]:
        if value.name in initializers:
            continue
        dims = value.type.tensor_type.shape.dim
        if not dims:
            continue  # no batch dimension to name; read_signature refuses such a tensor
        dim = dims[0]
        relaxed |= dim.HasField("dim_value")
        dim.dim_param = BATCH_DIM
    if relaxed:
        # Intermediate shapes recorded for the old fixed batch would contradict the new one;
        # they are optional hints, and onnxruntime infers them again.
        del model.graph.value_info[:]


def relax_fixed_batch(source: SourceModel, path: Path) -> None:
    """Make the batch of ``path``, exported from a fixed-batch ``source``, dynamic, and check it.

    Both models run on twice the fixed batch size (the source in chunks of its own size) and
    must agree; otherwise the batch size is baked into the graph (e.g. a Reshape to ``[1, N]``)
    and the model is refused with a :class:`SignatureError` saying how to re-export it.
    """
    model = onnx.load(str(path))
    make_batch_dynamic(model)
    onnx.save(model, str(path))
    batch = random_batch(source.signature, 2 * (source.fixed_batch or 1), np.random.default_rng(0))
    expected = source.predict(batch)
    try:
        # A failure here is expected for some models and becomes our own error, so keep
        # onnxruntime from also printing it.
        got = run_session(open_session(path, log_errors=False), batch)
    except Exception as exc:
        raise _fixed_batch_error(source, f"fails: {_first_line(exc)}") from exc
    for name, want in expected.items():
        have = got[name]
        if have.shape != want.shape:
            raise _fixed_batch_error(
                source, f"returns {name!r} with shape {have.shape} instead of {want.shape}"
            )
        if not np.allclose(have, want, atol=_SAME_RESULT_ATOL, rtol=0, equal_nan=True):
            raise _fixed_batch_error(source, f"computes different results for {name!r}")


def refuse_unknown_ops(path: Path, source: Path) -> None:
    """Raise :class:`UnsupportedModelError` naming the ops of ``path`` that ONNX does not define.

    tf2onnx keeps a TensorFlow op it cannot map as a node of that name, and only logs it.
    """
    model = onnx.load(str(path), load_external_data=False)
    unknown = Counter(_unknown_ops(model.graph))
    if unknown:
        ops = ", ".join(f"{op} (x{count})" for op, count in sorted(unknown.items()))
        opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), "?")
        raise UnsupportedModelError(
            f"{source} uses ops that have no ONNX equivalent at opset {opset}: {ops}. Try a newer "
            "--opset, or replace the layer that uses them with standard layers."
        )


def finish_export(path: Path, output_order: Sequence[str], source: Path) -> ModelSignature:
    """Tidy and validate an ONNX file we wrote, and return its signature.

    Names the batch dimension ``"batch"`` everywhere, puts the outputs in ``output_order`` when the
    names match, and runs the ONNX checker.
    """
    model = onnx.load(str(path))
    make_batch_dynamic(model)
    outputs = {v.name: v for v in model.graph.output}
    if set(outputs) == set(output_order):
        ordered = [outputs[name] for name in output_order]
        del model.graph.output[:]
        model.graph.output.extend(ordered)
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise UnsupportedModelError(f"the ONNX model exported from {source} is invalid: {exc}") from exc
    onnx.save(model, str(path))
    return read_signature(path)


def open_session(path: Path, *, log_errors: bool = True) -> Any:
    """An onnxruntime CPU session on ``path``, logging errors only (or nothing)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3 if log_errors else 4
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_session(session: Any, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run ``session`` on ``batch`` and return every output by name, in graph order."""
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, batch), strict=True))


def _tensor_spec(value: onnx.ValueInfoProto, where: Path) -> TensorSpec:
    if not value.type.HasField("tensor_type"):
        raise SignatureError(
            f"{where}: {value.name!r} is not a tensor; only tensor inputs and outputs are served"
        )
    tensor = value.type.tensor_type
    try:
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name
    except KeyError as exc:
        raise SignatureError(f"{where}: tensor {value.name!r} has no known element type") from exc
    if not tensor.HasField("shape"):
        raise SignatureError(f"{where}: tensor {value.name!r} has no known rank; export it with shapes")
    shape = tuple(d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim)
    return TensorSpec(value.name, dtype, shape)


def _unknown_ops(graph: onnx.GraphProto) -> Iterator[str]:
    for node in graph.node:
        domain = "" if node.domain == "ai.onnx" else node.domain
        if domain in _STANDARD_DOMAINS and not onnx.defs.has(node.op_type, domain):
            yield node.op_type
        for attribute in node.attribute:
            if attribute.HasField("g"):
                yield from _unknown_ops(attribute.g)
            for subgraph in attribute.graphs:
                yield from _unknown_ops(subgraph)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _fixed_batch_error(source: SourceModel, problem: str) -> SignatureError:
    if source.kind == "onnx":
        how = (
            'torch.onnx.export(..., dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}}), '
            "or tf2onnx with a None batch dimension in the input signature"
        )
    else:
        how = "a None batch dimension in the serving signature's tf.TensorSpec, e.g. (None, 224, 224, 3)"
    return SignatureError(
        f"{source.path} fixes its batch size to {source.fixed_batch}, and making the batch dynamic breaks "
        f"it: with a batch of {2 * (source.fixed_batch or 1)} it {problem}. Re-export it with a dynamic "
        f"batch dimension: {how}."
    )
