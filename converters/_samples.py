"""Made-up inputs for checks that only need plausible values, not real images."""

from __future__ import annotations

import numpy as np

from ._errors import SignatureError
from ._signature import ModelSignature

# Stands in for a dimension the model leaves free (other than the batch): large enough for a
# few strided convolutions, small enough to run instantly.
_FREE_DIM_SIZE = 64


def random_batch(
    signature: ModelSignature, size: int, rng: np.random.Generator, *, high: float = 1.0
) -> dict[str, np.ndarray]:
    """A batch of ``size`` random samples for every input of ``signature``.

    Floats are uniform in ``[0, high)``, ``uint8`` spans 0..255, other integers are 0 or 1 (safe as
    indices) and booleans are random.
    """
    batch: dict[str, np.ndarray] = {}
    for spec in signature.inputs:
        shape = (size, *(_FREE_DIM_SIZE if d is None else d for d in spec.sample_shape))
        dtype = np.dtype(spec.dtype)
        if dtype.kind == "f":
            batch[spec.name] = (rng.random(shape) * high).astype(dtype)
        elif dtype == np.uint8:
            batch[spec.name] = rng.integers(0, 256, shape, dtype=np.uint8)
        elif dtype.kind in "iu":
            batch[spec.name] = rng.integers(0, 2, shape).astype(dtype)
        elif dtype.kind == "b":
            batch[spec.name] = rng.random(shape) < 0.5
        else:
            raise SignatureError(
                f"cannot make up values for input {spec.name!r} of type {spec.dtype}; pass real inputs"
            )
    return batch
