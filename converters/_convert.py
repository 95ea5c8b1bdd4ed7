"""One call from a model file to a checked ONNX model: load, export, parity gate."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._export import export_onnx
from ._parity import DEFAULT_PARITY_ATOL, ParityReport, check_parity, require_parity
from ._samples import random_batch
from ._signature import ModelSignature
from ._source import SourceModel, load_source

PARITY_SAMPLES = 4
# A model that scales pixels itself expects them raw, in 0..255.
_RAW_PIXEL_MAX = 255.0


@dataclass(frozen=True)
class ConversionResult:
    """What :func:`convert` produced: the loaded source, the ONNX file, its signature and parity."""

    source: SourceModel
    onnx_path: Path
    signature: ModelSignature
    parity: ParityReport


def convert(
    source_path: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    opset: int | None = None,
    inputs: Sequence[np.ndarray] | Sequence[Mapping[str, np.ndarray]] | None = None,
    atol: float = DEFAULT_PARITY_ATOL,
    min_top1_agreement: float = 1.0,
    rng_seed: int = 0,
) -> ConversionResult:
    """Load the model at ``source_path``, write it as ONNX at ``output`` and check parity.

    ``inputs`` are samples without a batch dimension, as for :func:`check_parity`. Without them,
    :data:`PARITY_SAMPLES` random samples are drawn from ``rng_seed``: float pixels in [0, 255)
    for a model that scales raw pixels itself, else in [0, 1).

    Raises:
        ConversionError: any of its subclasses, from loading, exporting, or a failed parity check
            (:class:`ParityError`; the ONNX file is then left at ``output`` for inspection).
    """
    source = load_source(source_path)
    onnx_path = Path(output)
    signature = export_onnx(source, onnx_path, opset=opset)
    if inputs is None:
        high = _RAW_PIXEL_MAX if source.normalizes_input else 1.0
        batch = random_batch(source.signature, PARITY_SAMPLES, np.random.default_rng(rng_seed), high=high)
        inputs = [{name: array[i] for name, array in batch.items()} for i in range(PARITY_SAMPLES)]
    report = check_parity(source, onnx_path, inputs, atol=atol, min_top1_agreement=min_top1_agreement)
    require_parity(report)
    return ConversionResult(source, onnx_path, signature, report)
