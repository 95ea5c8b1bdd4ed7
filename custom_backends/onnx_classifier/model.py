"""Triton Python-backend model: onnxruntime on the ``model.onnx`` of its version folder.

For a Triton without the onnxruntime backend (the one pip's ``nvidia-pytriton`` ships). Copied
alone into a version folder next to ``model.onnx``; it must not import tritonkit. Everything
comes from the model config:

- ``input`` / ``output``: names (those of the ONNX graph), data types and dims; the outputs are
  cast to the configured data types;
- ``max_batch_size``: when > 0, the requests of a dynamic batch are concatenated into one
  onnxruntime run and the results split back per request, in order;
- ``parameters`` (string values): ``intra_op_threads`` (default "1"), ``inter_op_threads``
  (default "1"), ``allow_spinning`` ("0" or "1", default "0"), ``parallel_runs`` (default "1").

With ``parallel_runs`` P > 1, a dynamic batch of several requests is split into P parts run at
the same time, from P threads, on a second session of ``intra_op_threads // P`` threads (at least
one): on a CPU, P single-threaded runs use the cores better than one run split P ways, while a
request alone still gets every intra-op thread of the first session, for the lowest latency.

A request whose tensors have the wrong shape fails alone with INVALID_ARG; the instance kind GPU
uses onnxruntime's CUDA provider when that is installed, else the CPU one.
"""

import json
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils

ONNX_MODEL_FILENAME = "model.onnx"
DEFAULT_PARAMETERS = {
    "intra_op_threads": "1",
    "inter_op_threads": "1",
    "allow_spinning": "0",
    "parallel_runs": "1",
}

# onnxruntime's tensor type names for the numpy dtypes Triton inputs arrive in.
_ORT_TYPES = {
    "tensor(bool)": np.bool_,
    "tensor(uint8)": np.uint8,
    "tensor(uint16)": np.uint16,
    "tensor(uint32)": np.uint32,
    "tensor(uint64)": np.uint64,
    "tensor(int8)": np.int8,
    "tensor(int16)": np.int16,
    "tensor(int32)": np.int32,
    "tensor(int64)": np.int64,
    "tensor(float16)": np.float16,
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
}


class _RequestError(Exception):
    """This request cannot be run; the message is sent back to its client."""


def _error_response(message, code_name="INVALID_ARG"):
    code = getattr(pb_utils.TritonError, code_name, None)
    error = pb_utils.TritonError(message) if code is None else pb_utils.TritonError(message, code)
    return pb_utils.InferenceResponse(output_tensors=[], error=error)


def _int_parameter(params, key, minimum):
    text = params.get(key, DEFAULT_PARAMETERS[key])
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"parameter {key!r} must be an integer, got {text!r}") from None
    if value < minimum:
        raise ValueError(f"parameter {key!r} must be at least {minimum}, got {value}")
    return value


def _session_options(params, intra_op_threads=None):
    options = ort.SessionOptions()
    if intra_op_threads is None:
        intra_op_threads = _int_parameter(params, "intra_op_threads", 0)
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = _int_parameter(params, "inter_op_threads", 0)
    spinning = params.get("allow_spinning", DEFAULT_PARAMETERS["allow_spinning"])
    if spinning not in ("0", "1"):
        raise ValueError(f"parameter 'allow_spinning' must be '0' or '1', got {spinning!r}")
    options.add_session_config_entry("session.intra_op.allow_spinning", spinning)
    options.add_session_config_entry("session.inter_op.allow_spinning", spinning)
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # No preplanned block per input shape: tensors come from the arena as they live and die,
    # which keeps concurrent runs' peak ~40 MB lower at the same speed.
    options.enable_mem_pattern = False
    return options


_SHARED_ARENA = []  # registered once per process; both sessions of an instance allocate from it


def _use_shared_arena(options):
    """One CPU memory arena for every session of this stub process, grown by what is asked for
    (not the next power of two): two sessions then hold one peak, not two."""
    if not _SHARED_ARENA:
        memory = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
        ort.create_and_register_allocator(memory, ort.OrtArenaCfg({"arena_extend_strategy": 1}))
        _SHARED_ARENA.append(memory)
    options.add_session_config_entry("session.use_env_allocators", "1")


def _providers(args):
    if args.get("model_instance_kind") == "GPU" and "CUDAExecutionProvider" in ort.get_available_providers():
        device_id = int(args.get("model_instance_device_id", "0"))
        return [("CUDAExecutionProvider", {"device_id": device_id}), "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


class _Tensor:
    """One configured input or output: name, numpy dtype and dims (-1 for any size)."""

    def __init__(self, tensor_config):
        self.name = tensor_config["name"]
        self.data_type = tensor_config["data_type"]
        self.dtype = np.dtype(pb_utils.triton_string_to_numpy(self.data_type))
        self.dims = tuple(int(dim) for dim in tensor_config.get("dims", []))

    def accepts(self, shape):
        return len(shape) == len(self.dims) and all(
            want in (-1, got) for want, got in zip(self.dims, shape, strict=True)
        )


class TritonPythonModel:
    """Runs the dynamic batch through one onnxruntime session, one run per input shape."""

    def initialize(self, args):
        config = json.loads(args["model_config"])
        self._name = config.get("name", "classifier")
        params = {key: value.get("string_value", "") for key, value in config.get("parameters", {}).items()}
        self._batching = int(config.get("max_batch_size", 0)) > 0
        self._inputs = [_Tensor(tensor) for tensor in config.get("input", [])]
        self._outputs = [_Tensor(tensor) for tensor in config.get("output", [])]
        if not self._inputs or not self._outputs:
            raise ValueError(f"{self._name}: config.pbtxt must list the model's inputs and outputs")

        path = os.path.join(args["model_repository"], args["model_version"], ONNX_MODEL_FILENAME)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{self._name}: no {ONNX_MODEL_FILENAME} at {path}")
        try:
            options = _session_options(params)
            parallel = _int_parameter(params, "parallel_runs", 1)
        except ValueError as exc:
            raise ValueError(f"{self._name}: {exc}") from None
        providers = _providers(args)
        if providers == ["CPUExecutionProvider"]:
            _use_shared_arena(options)
        self._session = ort.InferenceSession(path, sess_options=options, providers=providers)
        self._parallel = parallel if self._batching else 1
        self._batch_session = self._session
        self._pool = None
        if self._parallel > 1:
            threads = max(1, options.intra_op_num_threads // self._parallel)
            if threads != options.intra_op_num_threads:
                batch_options = _session_options(params, threads)
                if providers == ["CPUExecutionProvider"]:
                    _use_shared_arena(batch_options)
                self._batch_session = ort.InferenceSession(
                    path, sess_options=batch_options, providers=providers
                )
            self._pool = ThreadPoolExecutor(self._parallel - 1, thread_name_prefix="onnx-run")

        graph_inputs = {node.name: node for node in self._session.get_inputs()}
        graph_outputs = {node.name for node in self._session.get_outputs()}
        self._feed_dtypes = {}
        for tensor in self._inputs:
            if tensor.name not in graph_inputs:
                raise ValueError(
                    f"{self._name}: config input {tensor.name!r} is not an input of {ONNX_MODEL_FILENAME} "
                    f"(it has {sorted(graph_inputs)})"
                )
            self._feed_dtypes[tensor.name] = np.dtype(
                _ORT_TYPES.get(graph_inputs[tensor.name].type, tensor.dtype)
            )
        for tensor in self._outputs:
            if tensor.name not in graph_outputs:
                raise ValueError(
                    f"{self._name}: config output {tensor.name!r} is not an output of {ONNX_MODEL_FILENAME} "
                    f"(it has {sorted(graph_outputs)})"
                )
        self._output_names = [tensor.name for tensor in self._outputs]

    def execute(self, requests):
        responses = [None] * len(requests)
        groups = {}  # non-batch shapes -> [(request index, arrays, batch size)]
        for index, request in enumerate(requests):
            try:
                arrays, batch_size = self._read(request)
            except _RequestError as exc:
                responses[index] = _error_response(str(exc))
                continue
            key = tuple(arrays[tensor.name].shape[1:] for tensor in self._inputs) if self._batching else index
            groups.setdefault(key, []).append((index, arrays, batch_size))

        for members in groups.values():
            parts = min(self._parallel, len(members))
            if parts == 1:
                self._run(members, responses, self._session)
                continue
            # consecutive requests per part, so the answers keep their order within each run
            bounds = [len(members) * k // parts for k in range(parts + 1)]
            chunks = [members[bounds[k] : bounds[k + 1]] for k in range(parts)]
            pending = [
                self._pool.submit(self._run, chunk, responses, self._batch_session) for chunk in chunks[1:]
            ]
            self._run(chunks[0], responses, self._batch_session)
            for future in pending:
                future.result()
        return responses

    def _read(self, request):
        """The request's input arrays, checked against the config, and its batch size."""
        arrays = {}
        batch_size = None
        for tensor in self._inputs:
            found = pb_utils.get_input_tensor_by_name(request, tensor.name)
            if found is None:
                raise _RequestError(f"missing input {tensor.name!r}")
            array = found.as_numpy()
            shape = array.shape[1:] if self._batching else array.shape
            if (self._batching and array.ndim == 0) or not tensor.accepts(shape):
                expected = ["-1", *map(str, tensor.dims)] if self._batching else list(map(str, tensor.dims))
                raise _RequestError(
                    f"input {tensor.name!r} has shape {list(array.shape)}; "
                    f"{self._name} expects [{', '.join(expected)}]"
                )
            if self._batching:
                if batch_size is not None and array.shape[0] != batch_size:
                    raise _RequestError(
                        f"input {tensor.name!r} has batch size {array.shape[0]}; "
                        f"the other inputs have {batch_size}"
                    )
                batch_size = array.shape[0]
            arrays[tensor.name] = array
        return arrays, batch_size

    def _run(self, members, responses, session):
        """One onnxruntime run for requests of equal shapes; answers each in place."""
        if len(members) == 1:
            feeds = members[0][1]
        else:
            feeds = {
                tensor.name: np.concatenate([arrays[tensor.name] for _, arrays, _ in members])
                for tensor in self._inputs
            }
        feeds = {
            name: np.ascontiguousarray(array, dtype=self._feed_dtypes[name]) for name, array in feeds.items()
        }
        try:
            results = session.run(self._output_names, feeds)
        except Exception as exc:
            for index, _, _ in members:
                responses[index] = _error_response(f"onnxruntime failed: {exc}", "INTERNAL")
            return

        results = [
            np.asarray(result, dtype=tensor.dtype)
            for result, tensor in zip(results, self._outputs, strict=True)
        ]
        total = sum(batch_size for _, _, batch_size in members) if self._batching else None
        if total is not None and any(result.ndim == 0 or result.shape[0] != total for result in results):
            for index, _, _ in members:
                responses[index] = _error_response(
                    f"{ONNX_MODEL_FILENAME} returned {[list(result.shape) for result in results]} "
                    f"for a batch of {total}: its outputs must keep the batch dimension",
                    "INTERNAL",
                )
            return
        start = 0
        for index, _, batch_size in members:
            if self._batching:
                stop = start + batch_size
                parts = [result[start:stop] for result in results]
                start = stop
            else:
                parts = results
            responses[index] = pb_utils.InferenceResponse(
                output_tensors=[
                    pb_utils.Tensor(tensor.name, np.ascontiguousarray(part))
                    for tensor, part in zip(self._outputs, parts, strict=True)
                ]
            )

    def finalize(self):
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self._session = self._batch_session = None
