"""Errors raised by :mod:`tritonkit.bench`.

    BenchError                  anything bench or tune reports; one sentence that says what to do
    ├── WorkloadError           the model's inputs cannot be made (no images, an input type bench cannot fake)
    ├── ReferenceUnavailable    no in-process reference (no model.onnx, no tritonkit preprocessor)
    └── TuneError               tune could not finish: a candidate failed to load, nothing met the budget

Errors of the client SDK (``TritonClientError``) and of the server launcher (``ServerError``)
pass through unchanged: they already say what went wrong with the server.
"""

from __future__ import annotations


class BenchError(Exception):
    """Root of every error raised by :mod:`tritonkit.bench`."""


class WorkloadError(BenchError):
    """The requests for the model cannot be built."""


class ReferenceUnavailable(BenchError):
    """The in-process reference cannot be run for this model."""


class TuneError(BenchError):
    """Tuning could not finish."""
