"""The parity gate: does the ONNX model compute what the source model computes?"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._errors import ParityError, SignatureError, UnreadableModelError
from ._source import SourceModel

# Exporting reorders float32 arithmetic (fused kernels, other GEMM libraries), which moves
# softmax scores by about 1e-6..1e-5. Wrong weights, a transposed layout or a dropped layer
# move them by 1e-2 or more. 1e-3 sits well between the two.
DEFAULT_PARITY_ATOL = 1e-3


@dataclass(frozen=True)
class ParityReport:
    """How closely the ONNX model's outputs matched the source model's on the same inputs.

    ``max_abs_diff`` is over every element of every output (infinite where one side is NaN and
    the other not). ``top1_agreement`` is the share of samples whose top class agrees on the
    first output, ``None`` when that output is not ``(batch, classes)``; a sample counts as
    agreeing when the source scores both top classes within ``atol`` of each other (a tie).
    """

    samples: int
    max_abs_diff: float
    top1_agreement: float | None
    atol: float
    min_top1_agreement: float

    @property
    def passed(self) -> bool:
        """Whether both the difference and the top-1 agreement are within bounds."""
        return self.max_abs_diff <= self.atol and (
            self.top1_agreement is None or self.top1_agreement >= self.min_top1_agreement
        )

    def summary(self) -> str:
        """One line for a log or a terminal."""
        diff_ok = self.max_abs_diff <= self.atol
        parts = [f"max |diff| {self.max_abs_diff:.2e} {'<=' if diff_ok else '>'} atol {self.atol:.0e}"]
        if self.top1_agreement is not None:
            top1_ok = self.top1_agreement >= self.min_top1_agreement
            parts.append(
                f"top-1 agreement {self.top1_agreement:.0%} {'>=' if top1_ok else '<'} "
                f"min {self.min_top1_agreement:.0%}"
            )
        verdict = "passed" if self.passed else "FAILED"
        return f"parity {verdict} on {self.samples} samples: " + ", ".join(parts)


def check_parity(
    source: SourceModel,
    onnx_path: str | os.PathLike[str],
    inputs: Sequence[np.ndarray] | Sequence[Mapping[str, np.ndarray]],
    *,
    atol: float = DEFAULT_PARITY_ATOL,
    min_top1_agreement: float = 1.0,
) -> ParityReport:
    """Run the source model and the ONNX model (onnxruntime, CPU) on the same samples and compare.

    Each item of ``inputs`` is one sample without a batch dimension: an array for a single-input
    model, or a dict input name -> array. Inputs and outputs are matched by name when both models
    use the same names, else by position.

    Raises:
        ParityError: the ONNX model fails on the inputs, or its outputs cannot be compared.
    """
    from ._onnx import open_session, run_session

    if len(inputs) == 0:
        raise ValueError("check_parity needs at least one input sample")
    batch = _stack(source, inputs)
    expected = source.predict(batch)
    try:
        session = open_session(Path(onnx_path))
    except Exception as exc:
        raise UnreadableModelError(f"cannot open {onnx_path} with onnxruntime: {exc}") from exc
    onnx_inputs = [i.name for i in session.get_inputs()]
    feed = {onnx_name: batch[name] for name, onnx_name in _pair_names(list(batch), onnx_inputs, "inputs")}
    try:
        got = run_session(session, feed)
    except Exception as exc:
        raise ParityError(f"{onnx_path} fails on the parity inputs: {exc}") from exc

    max_diff = 0.0
    pairs = _pair_names(list(expected), list(got), "outputs")
    for name, onnx_name in pairs:
        want, have = expected[name], got[onnx_name]
        if want.shape != have.shape:
            raise ParityError(
                f"output {name!r} has shape {want.shape} from the source model "
                f"but {have.shape} from {onnx_path}"
            )
        max_diff = max(max_diff, _max_abs_diff(want, have))
    first, first_onnx = pairs[0]
    return ParityReport(
        samples=len(inputs),
        max_abs_diff=max_diff,
        top1_agreement=_top1_agreement(expected[first], got[first_onnx], atol),
        atol=atol,
        min_top1_agreement=min_top1_agreement,
    )


def require_parity(report: ParityReport) -> None:
    """Raise :class:`ParityError` unless ``report`` passed."""
    if not report.passed:
        raise ParityError(
            f"{report.summary()}. The ONNX model does not compute what the source model computes. "
            "Pass --parity-atol to accept a larger difference, or check custom layers and "
            "preprocessing inside the model, which the export may not have carried over."
        )


def _stack(
    source: SourceModel, samples: Sequence[np.ndarray] | Sequence[Mapping[str, np.ndarray]]
) -> dict[str, np.ndarray]:
    specs = source.signature.inputs
    named: list[Mapping[str, np.ndarray]] = []
    for sample in samples:
        if isinstance(sample, Mapping):
            named.append(sample)
        elif len(specs) == 1:
            named.append({specs[0].name: sample})
        else:
            raise SignatureError(
                f"the model has {len(specs)} inputs; pass each sample as a dict input name -> array"
            )
    try:
        return {s.name: np.stack([np.asarray(n[s.name], dtype=s.dtype) for n in named]) for s in specs}
    except KeyError as exc:
        raise SignatureError(f"a sample lacks input {exc.args[0]!r}") from exc
    except ValueError as exc:
        raise SignatureError(f"the samples do not share one shape per input: {exc}") from exc


def _pair_names(ours: list[str], theirs: list[str], what: str) -> list[tuple[str, str]]:
    if set(ours) == set(theirs):
        return [(name, name) for name in ours]
    if len(ours) != len(theirs):
        raise ParityError(
            f"the source model has {len(ours)} {what} ({ours}) but the ONNX model {len(theirs)} ({theirs})"
        )
    return list(zip(ours, theirs, strict=True))


def _max_abs_diff(want: np.ndarray, have: np.ndarray) -> float:
    if want.dtype.kind not in "fiub" or have.dtype.kind not in "fiub":
        return 0.0 if np.array_equal(want, have) else float("inf")
    a, b = want.astype(np.float64), have.astype(np.float64)
    diff = np.where(np.isnan(a) & np.isnan(b), 0.0, np.abs(a - b))
    return float(np.nan_to_num(diff, nan=np.inf).max(initial=0.0))


def _top1_agreement(want: np.ndarray, have: np.ndarray, atol: float) -> float | None:
    if want.ndim != 2 or want.shape[1] < 2:
        return None
    rows = np.arange(want.shape[0])
    ours, theirs = want.argmax(axis=1), have.argmax(axis=1)
    # Near-ties in the source may flip under float32 rounding without anything being wrong.
    tied = want[rows, theirs] >= want[rows, ours] - atol
    return float(np.mean((ours == theirs) | tied))
