"""Triton Python-backend model: encoded images in, the classifier's pixel tensor out.

Copied with ``imaging.py`` into a model version folder; the stub imports both as top-level
modules, so nothing here may import tritonkit. Everything comes from the model config:

- ``parameters``: the :class:`imaging.ImageSpec` (keys ``imaging.PARAMETER_KEYS``) and
  ``threads`` (default "1"): how many images of a dynamic batch are preprocessed at once;
- input ``IMAGE`` (TYPE_STRING, dims [1]) with ``max_batch_size > 0``, so a request carries
  ``[b, 1]`` encoded images;
- output ``PIXELS``, dims ``ImageSpec.shape`` and the data type of ``ImageSpec.dtype``.

All the images of a dynamic batch are preprocessed together, into one array whose rows are
handed back per request. A request with any undecodable image fails alone (INVALID_ARG,
"image <i>: <why>"); the other requests of the dynamic batch are answered normally.
"""

import ctypes
import json

import numpy as np
import triton_python_backend_utils as pb_utils
from imaging import PREPROCESSOR_INPUT, PREPROCESSOR_OUTPUT, ImageSpec, preprocess_batch

# glibc's mallopt parameters (malloc.h) and the values the preprocessor runs with.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_HEAP_BLOCKS_BELOW = 16 << 20
_FREE_HEAP_KEPT = 32 << 20


def keep_freed_memory():
    """Make freed image buffers stay in this process for the next request.

    Measured in the stub: with glibc's adaptive thresholds, the decoded image, the resize
    buffers and the output of every request were handed back to the kernel and faulted in again
    by the next one (~580 minor page faults per 640x480 JPEG, a quarter of its preprocessing CPU).
    Fixed thresholds stop that: blocks under 16 MiB come from the heap and up to 32 MiB of free
    heap is kept; larger images are still mapped and unmapped on their own. Returns False where
    the C library has no ``mallopt`` (not glibc): nothing changes there.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return bool(mallopt(_M_MMAP_THRESHOLD, _HEAP_BLOCKS_BELOW)) and bool(
        mallopt(_M_TRIM_THRESHOLD, _FREE_HEAP_KEPT)
    )


def _error_response(message):
    code = getattr(pb_utils.TritonError, "INVALID_ARG", None)
    error = pb_utils.TritonError(message) if code is None else pb_utils.TritonError(message, code)
    return pb_utils.InferenceResponse(output_tensors=[], error=error)


class TritonPythonModel:
    """Decodes, resizes and scales every image of every request with :mod:`imaging`."""

    def initialize(self, args):
        config = json.loads(args["model_config"])
        name = config.get("name", "preprocessor")
        params = {key: value.get("string_value", "") for key, value in config.get("parameters", {}).items()}
        try:
            self._spec = ImageSpec.from_parameters(params)
        except ValueError as exc:
            raise ValueError(f"{name}: bad image parameters in config.pbtxt: {exc}") from None
        try:
            self._threads = int(params.get("threads", "1"))
        except ValueError:
            raise ValueError(
                f"{name}: parameter 'threads' must be an integer, got {params['threads']!r}"
            ) from None
        if self._threads < 1:
            raise ValueError(f"{name}: parameter 'threads' must be at least 1, got {self._threads}")
        keep_freed_memory()

        if int(config.get("max_batch_size", 0)) < 1:
            raise ValueError(f"{name}: the preprocessor needs max_batch_size > 0")
        input_config = pb_utils.get_input_config_by_name(config, PREPROCESSOR_INPUT)
        if input_config is None or input_config.get("data_type") != "TYPE_STRING":
            raise ValueError(f"{name}: config needs a TYPE_STRING input {PREPROCESSOR_INPUT!r}")
        if [int(dim) for dim in input_config.get("dims", [])] != [1]:
            raise ValueError(f"{name}: input {PREPROCESSOR_INPUT!r} must have dims [1]")

        output_config = pb_utils.get_output_config_by_name(config, PREPROCESSOR_OUTPUT)
        if output_config is None:
            raise ValueError(f"{name}: config has no output {PREPROCESSOR_OUTPUT!r}")
        output_dtype = np.dtype(pb_utils.triton_string_to_numpy(output_config["data_type"]))
        if output_dtype != np.dtype(self._spec.dtype):
            raise ValueError(
                f"{name}: output {PREPROCESSOR_OUTPUT!r} is {output_config['data_type']} "
                f"but the image parameters say dtype {self._spec.dtype}"
            )
        dims = [int(dim) for dim in output_config.get("dims", [])]
        if dims != list(self._spec.shape):
            raise ValueError(
                f"{name}: output {PREPROCESSOR_OUTPUT!r} has dims {dims} "
                f"but the image parameters give shape {list(self._spec.shape)}"
            )

    def execute(self, requests):
        responses = [None] * len(requests)
        images = []
        spans = []  # (request index, first row, end row) in the batch's array
        for index, request in enumerate(requests):
            try:
                tensor = pb_utils.get_input_tensor_by_name(request, PREPROCESSOR_INPUT)
                if tensor is None:
                    responses[index] = _error_response(f"missing input {PREPROCESSOR_INPUT!r}")
                    continue
                items = tensor.as_numpy().reshape(-1)
            except Exception as exc:  # a bug must fail this request, not the whole batch
                responses[index] = _error_response(f"preprocessing failed: {type(exc).__name__}: {exc}")
                continue
            spans.append((index, len(images), len(images) + len(items)))
            images.extend(items)
        try:
            pixels, errors = preprocess_batch(images, self._spec, self._threads)
        except Exception as exc:
            for index, _, _ in spans:
                responses[index] = _error_response(f"preprocessing failed: {type(exc).__name__}: {exc}")
            return responses
        for index, start, stop in spans:
            problems = [
                f"image {row - start}: {errors[row]}" for row in range(start, stop) if errors[row] is not None
            ]
            if problems:
                responses[index] = _error_response("; ".join(problems))
            else:  # a slice of whole rows is contiguous: the stub copies it once, into shared memory
                responses[index] = pb_utils.InferenceResponse(
                    output_tensors=[pb_utils.Tensor(PREPROCESSOR_OUTPUT, pixels[start:stop])]
                )
        return responses

    def finalize(self):
        pass
