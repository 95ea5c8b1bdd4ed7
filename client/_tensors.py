"""From what a caller passes to what a model takes, and back: names, dtypes, batch and splits.

Pure functions, no I/O: the sync and the async clients share every rule here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._errors import InvalidInput
from ._status import ModelConfig, ModelMetadata, TensorMetadata

# Triton wire datatypes and their numpy dtypes (BF16 travels as float32 in tritonclient).
_NUMPY_DTYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BF16": np.dtype(np.float32),
}


@dataclass(frozen=True)
class TensorData:
    """One input ready to send: its name, wire datatype and an array of the right dtype."""

    name: str
    datatype: str
    array: np.ndarray

    @property
    def nbytes(self) -> int:
        return int(self.array.nbytes)

    @property
    def wire_nbytes(self) -> int:
        """Bytes of tensor data this input puts in a request: BYTES elements are sent with a
        4-byte length each, other tensors as their raw buffer."""
        if self.datatype == "BYTES":
            return sum(4 + len(item) for item in self.array.reshape(-1))
        return self.nbytes


@dataclass(frozen=True)
class OutputRequest:
    """One output to fetch; ``class_count > 0`` asks for Triton's top-k classification strings."""

    name: str
    class_count: int = 0


@dataclass(frozen=True)
class InferPlan:
    """The requests one ``infer`` call becomes, in order, and how to put their answers together."""

    chunks: tuple[tuple[TensorData, ...], ...]
    outputs: tuple[OutputRequest, ...]
    added_batch_dim: bool


def numpy_dtype(datatype: str) -> np.dtype[Any] | None:
    """The numpy dtype for a Triton datatype; ``None`` for BYTES."""
    return _NUMPY_DTYPES.get(datatype)


def plan_inference(
    metadata: ModelMetadata,
    config: ModelConfig,
    inputs: Any,
    outputs: Sequence[str] | None = None,
    class_counts: Mapping[str, int] | None = None,
) -> InferPlan:
    """Check and convert the caller's inputs, and split them into batches the model accepts."""
    model = metadata.name
    named = _by_name(metadata, config, inputs)
    batching = config.max_batch_size > 0
    tensors: list[TensorData] = []
    added = set()
    for spec in metadata.inputs:
        if spec.name not in named:
            continue
        array = _convert(named[spec.name], spec, model)
        array, added_dim = _shape(array, spec, batching, model)
        added.add(added_dim)
        tensors.append(TensorData(spec.name, spec.datatype, array))
    if len(added) > 1:
        raise InvalidInput(
            f"model {model!r}: give every input a batch dimension, or none of them", model=model
        )
    added_batch_dim = added == {True}
    chunks: list[tuple[TensorData, ...]] = [tuple(tensors)]
    if batching and tensors:
        sizes = {t.array.shape[0] for t in tensors}
        if len(sizes) > 1:
            detail = ", ".join(f"{t.name}: {t.array.shape[0]}" for t in tensors)
            raise InvalidInput(f"model {model!r}: inputs have different batch sizes ({detail})", model=model)
        batch = sizes.pop()
        if batch == 0:
            raise InvalidInput(f"model {model!r}: the batch is empty", model=model)
        step = config.max_batch_size
        if batch > step:
            chunks = [
                tuple(TensorData(t.name, t.datatype, t.array[start : start + step]) for t in tensors)
                for start in range(0, batch, step)
            ]
    return InferPlan(
        chunks=tuple(chunks),
        outputs=_outputs(metadata, outputs, class_counts),
        added_batch_dim=added_batch_dim,
    )


def check_request_size(
    plan: InferPlan, model: str, max_request_bytes: int | None, *, shared_memory: bool = False
) -> None:
    """Refuse, before anything is sent, a plan with a request carrying more tensor data than
    ``max_request_bytes`` (``None``: no limit). Every request of a split batch is checked.

    With ``shared_memory`` the numeric tensors travel through shared-memory regions, so only
    BYTES tensors count.
    """
    if max_request_bytes is None:
        return
    start = 0
    for number, chunk in enumerate(plan.chunks, 1):
        sent = [t for t in chunk if not (shared_memory and t.datatype != "BYTES")]
        total = sum(t.wire_nbytes for t in sent)
        rows = chunk[0].array.shape[0] if chunk and chunk[0].array.ndim else 1
        if total > max_request_bytes:
            where = ""
            if len(plan.chunks) > 1:
                where = f" (request {number} of {len(plan.chunks)}: rows {start} to {start + rows - 1})"
            parts = ", ".join(f"{t.name} {_size_text(t.wire_nbytes)}" for t in sent)
            raise InvalidInput(
                f"the request to model {model!r}{where} would send {_size_text(total)} of tensor "
                f"data ({parts}), more than the client's limit of {_size_text(max_request_bytes)}: "
                "pass a larger max_request_bytes= (or None for no limit) to TritonClient or "
                "AsyncTritonClient, or send fewer rows per call",
                model=model,
            )
        start += rows


def _size_text(nbytes: int) -> str:
    if nbytes < 1024 * 1024:
        return f"{nbytes:,} bytes"
    return f"{nbytes:,} bytes ({nbytes / (1024 * 1024):.1f} MiB)"


def _by_name(metadata: ModelMetadata, config: ModelConfig, inputs: Any) -> dict[str, Any]:
    model = metadata.name
    expected = [t.name for t in metadata.inputs]
    if isinstance(inputs, Mapping):
        named = dict(inputs)
        unknown = sorted(set(named) - set(expected))
        if unknown:
            raise InvalidInput(
                f"model {model!r} has no input {', '.join(map(repr, unknown))} "
                f"(its inputs: {', '.join(expected)})",
                model=model,
            )
    elif len(expected) == 1:
        named = {expected[0]: inputs}
    else:
        raise InvalidInput(
            f"model {model!r} has {len(expected)} inputs ({', '.join(expected)}): "
            "pass a dict of them by name",
            model=model,
        )
    optional = {t.name for t in config.inputs if t.optional}
    missing = [name for name in expected if name not in named and name not in optional]
    if missing:
        raise InvalidInput(f"model {model!r} needs input {', '.join(map(repr, missing))}", model=model)
    return named


def _convert(value: Any, spec: TensorMetadata, model: str) -> np.ndarray:
    where = f"input {spec.name!r} of model {model!r}"
    if spec.datatype == "BYTES":
        return _to_bytes_array(value, where)
    target = _NUMPY_DTYPES.get(spec.datatype)
    if target is None:
        raise InvalidInput(
            f"{where} has datatype {spec.datatype}, which this client cannot send", model=model
        )
    array = np.asarray(value)
    if array.dtype.kind in "OSUV":
        raise InvalidInput(f"{where} takes {spec.datatype} numbers, got {_describe(array)}", model=model)
    if array.dtype == target:
        return array
    if np.can_cast(array.dtype, target, casting="safe"):
        return array.astype(target)
    with np.errstate(all="ignore"):
        cast = array.astype(target)
        lossless = np.array_equal(cast.astype(array.dtype), array, equal_nan=array.dtype.kind in "fc")
    if not lossless:
        raise InvalidInput(
            f"{where} takes {spec.datatype}; converting its {array.dtype} values would change them: "
            f"convert explicitly, e.g. x.astype(np.{target.name})",
            model=model,
        )
    return cast


def _to_bytes_array(value: Any, where: str) -> np.ndarray:
    if isinstance(value, str | bytes | bytearray | memoryview):
        value = [value]
    array = np.asarray(value, dtype=object) if not isinstance(value, np.ndarray) else value
    if array.dtype.kind not in "OSU":
        raise InvalidInput(f"{where} takes BYTES (str or bytes), got {_describe(array)}")
    out = np.empty(array.shape, dtype=object)
    flat_in = array.reshape(-1)
    flat_out = out.reshape(-1)
    for i, item in enumerate(flat_in):
        if isinstance(item, str):
            flat_out[i] = item.encode("utf-8")
        elif isinstance(item, bytes | bytearray | memoryview | np.bytes_):
            flat_out[i] = bytes(item)
        else:
            raise InvalidInput(
                f"{where} takes BYTES (str or bytes), got an element of type {type(item).__name__}"
            )
    return out


def _describe(array: np.ndarray) -> str:
    return f"an array of {array.dtype} with shape {list(array.shape)}"


def _shape(array: np.ndarray, spec: TensorMetadata, batching: bool, model: str) -> tuple[np.ndarray, bool]:
    where = f"input {spec.name!r} of model {model!r}"
    dims = spec.shape[1:] if batching else spec.shape
    if array.ndim == 0 and all(d in (1, -1) for d in dims):
        array = array.reshape((1,) * len(dims))
    added = False
    if batching and array.ndim == len(dims):
        array = array[np.newaxis, ...]
        added = True
    rank = len(dims) + (1 if batching else 0)
    shown = [
        "batch" if batching and i == 0 else ("?" if d == -1 else str(d)) for i, d in enumerate(spec.shape)
    ]
    if array.ndim != rank:
        raise InvalidInput(f"{where} has shape [{', '.join(shown)}], got {list(array.shape)}", model=model)
    actual = array.shape[1:] if batching else array.shape
    if any(d != -1 and d != a for d, a in zip(dims, actual, strict=True)):
        raise InvalidInput(f"{where} has shape [{', '.join(shown)}], got {list(array.shape)}", model=model)
    return array, added


def _outputs(
    metadata: ModelMetadata, names: Sequence[str] | None, class_counts: Mapping[str, int] | None
) -> tuple[OutputRequest, ...]:
    counts = dict(class_counts or {})
    wanted = list(names) if names is not None else [t.name for t in metadata.outputs]
    wanted += [name for name in counts if name not in wanted]
    for name in wanted:
        metadata.output(name)
    return tuple(OutputRequest(name, counts.get(name, 0)) for name in wanted)


def merge_results(parts: Sequence[Mapping[str, np.ndarray]], added_batch_dim: bool) -> dict[str, np.ndarray]:
    """Join the answers of a split request in order; drop the batch dimension we added."""
    if len(parts) == 1:
        merged = dict(parts[0])
    else:
        merged = {name: np.concatenate([part[name] for part in parts], axis=0) for name in parts[0]}
    if added_batch_dim:
        merged = {name: array[0] for name, array in merged.items()}
    return merged
