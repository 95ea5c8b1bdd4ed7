"""The model a user hands us, whatever its format, and how we recognise which format it is."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np

from ._errors import SignatureError, SourceNotFoundError, UnreadableModelError
from ._signature import ModelSignature, TensorSpec, _fmt

SourceKind = Literal["keras", "savedmodel", "onnx"]

KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")
_EXPECTED = "pass the path to a .keras/.h5 file, a SavedModel folder or an .onnx file"


class SourceModel(ABC):
    """A trained model loaded in-process, as the user gave it, before any conversion.

    Attributes (read-only):
        kind: ``"keras"``, ``"savedmodel"`` or ``"onnx"``.
        path: where the model was loaded from.
        signature: inputs and outputs read from the model; ``shape[0]`` is always ``None``.
        fixed_batch: the batch size the model was built for, or ``None`` if it batches freely.
        normalizes_input: ``True`` when the model scales raw 0..255 pixels itself (a Keras
            ``Rescaling``/``Normalization`` layer near its input), ``False`` when a Keras model
            has no such layer, ``None`` when the format does not tell.
    """

    kind: ClassVar[SourceKind]

    def __init__(
        self,
        path: Path,
        signature: ModelSignature,
        fixed_batch: int | None,
        normalizes_input: bool | None = None,
    ) -> None:
        self.path = path
        self.signature = signature
        self.fixed_batch = fixed_batch
        self.normalizes_input = normalizes_input

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.kind} {str(self.path)!r}>"

    def predict(self, batch: Mapping[str, np.ndarray] | np.ndarray) -> dict[str, np.ndarray]:
        """Run the source model itself on a batch and return its outputs by name.

        ``batch`` maps input names to arrays with a leading batch dimension; a bare array is
        accepted for single-input models. Inputs are cast to the signature's dtypes. The result
        holds one array per output, in ``signature.outputs`` order. A model with a fixed batch
        size is run in chunks of that size, so any batch size works.
        """
        arrays = self._named_batch(batch)
        size = next(iter(arrays.values())).shape[0]
        if self.fixed_batch is None or size == self.fixed_batch:
            return self._run(arrays)
        step = self.fixed_batch
        parts: list[dict[str, np.ndarray]] = []
        for start in range(0, size, step):
            chunk = {name: a[start : start + step] for name, a in arrays.items()}
            missing = step - next(iter(chunk.values())).shape[0]
            if missing:
                chunk = {
                    name: np.concatenate([a, np.repeat(a[-1:], missing, axis=0)]) for name, a in chunk.items()
                }
            parts.append({name: out[: step - missing] for name, out in self._run(chunk).items()})
        return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}

    @abstractmethod
    def _run(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the model on a batch it accepts as is."""

    @abstractmethod
    def _write_onnx(self, output: Path, opset: int) -> None:
        """Write this model as ONNX with a dynamic batch dimension (names tidied afterwards)."""

    def _named_batch(self, batch: Mapping[str, np.ndarray] | np.ndarray) -> dict[str, np.ndarray]:
        specs = self.signature.inputs
        if isinstance(batch, np.ndarray):
            if len(specs) != 1:
                names = ", ".join(s.name for s in specs)
                raise SignatureError(
                    f"the model has {len(specs)} inputs ({names}); pass a dict name -> array"
                )
            batch = {specs[0].name: batch}
        if set(batch) != {s.name for s in specs}:
            raise SignatureError(
                f"got inputs {sorted(batch)}, but the model's inputs are {[s.name for s in specs]}"
            )
        arrays = {s.name: np.asarray(batch[s.name], dtype=s.dtype) for s in specs}
        sizes = set()
        for spec in specs:
            array = arrays[spec.name]
            if not _fits(array.shape, spec.shape):
                raise SignatureError(
                    f"input {spec.name!r} has shape {array.shape}, but the model takes {_fmt(spec.shape)}"
                )
            sizes.add(array.shape[0])
        if len(sizes) != 1 or 0 in sizes:
            raise SignatureError(f"inputs must share one non-empty batch size, got sizes {sorted(sizes)}")
        return arrays


def load_source(path: str | os.PathLike[str]) -> SourceModel:
    """Load a trained model, recognising its format from the path.

    Accepts a Keras file (``.keras``, ``.h5``, ``.hdf5``), a TensorFlow SavedModel folder
    (one holding ``saved_model.pb``) or an ``.onnx`` file.

    Raises:
        SourceNotFoundError: nothing exists at ``path``.
        UnreadableModelError: the path is not a model of a kind we know, or is corrupt.
        UnsupportedModelError: the model needs something we cannot provide (e.g. a custom layer).
        SignatureError: the model's inputs have no batch dimension.
    """
    source = Path(path)
    if source.name == "saved_model.pb" and source.is_file():
        source = source.parent
    if not source.exists():
        raise SourceNotFoundError(f"no such file: {source} — {_EXPECTED}")
    if source.is_dir():
        if not (source / "saved_model.pb").is_file():
            raise UnreadableModelError(
                f"{source} is a folder without saved_model.pb, so not a TensorFlow SavedModel — {_EXPECTED}"
            )
        from ._savedmodel import load_savedmodel

        return load_savedmodel(source)
    suffix = source.suffix.lower()
    if suffix in KERAS_SUFFIXES:
        from ._keras import load_keras

        return load_keras(source)
    if suffix == ".onnx":
        from ._onnx import load_onnx

        return load_onnx(source)
    hint = " (export PyTorch models with torch.onnx.export first)" if suffix in (".pt", ".pth") else ""
    raise UnreadableModelError(
        f"{source}: unknown model file type {suffix or '(no suffix)'!r}{hint} — {_EXPECTED}"
    )


def batched_signature(
    inputs: Sequence[TensorSpec], outputs: Sequence[TensorSpec], where: Path
) -> tuple[ModelSignature, int | None]:
    """Make dimension 0 of every tensor the dynamic batch; also return the batch size the model fixes.

    Refuses inputs without a batch dimension (rank < 2) and outputs whose first dimension cannot
    be the batch, because Triton's batcher needs every tensor to start with it.
    """
    fixed = {t.shape[0] for t in inputs if len(t.shape) >= 2 and t.shape[0] is not None}
    for spec in inputs:
        if len(spec.shape) < 2:
            raise SignatureError(
                f"{where}: input {spec.name!r} has shape {_fmt(spec.shape)}, with no leading batch "
                "dimension; export the model with inputs shaped (batch, ...), e.g. (batch, 224, 224, 3)"
            )
    if len(fixed) > 1:
        raise SignatureError(f"{where}: the inputs disagree on the batch size ({sorted(fixed)})")
    fixed_batch = fixed.pop() if fixed else None
    for spec in outputs:
        if not spec.shape or spec.shape[0] not in (None, fixed_batch):
            raise SignatureError(
                f"{where}: output {spec.name!r} has shape {_fmt(spec.shape)}, whose first dimension "
                "is not the batch; every output must start with the batch dimension"
            )

    def unbatched(spec: TensorSpec) -> TensorSpec:
        return TensorSpec(spec.name, spec.dtype, (None, *spec.shape[1:]))

    signature = ModelSignature(tuple(map(unbatched, inputs)), tuple(map(unbatched, outputs)))
    return signature, fixed_batch


def _fits(shape: tuple[int, ...], spec: tuple[int | None, ...]) -> bool:
    return len(shape) == len(spec) and all(
        want is None or got == want for got, want in zip(shape, spec, strict=True)
    )
