"""``config.pbtxt`` for the three models of a tritonkit pipeline, built from Triton's own schema.

Each config is assembled as a plain dict, parsed into ``model_config_pb2.ModelConfig`` with
``json_format.ParseDict`` (so a misspelt field is an error, not a silently ignored line) and
written with ``text_format``. No string templates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np
from google.protobuf import json_format, text_format
from tritonclient.grpc import model_config_pb2
from tritonclient.utils import np_to_triton_dtype

from tritonkit.converters import ModelSignature, TensorSpec

from ._errors import BuildOptionsError

ModelConfig: TypeAlias = model_config_pb2.ModelConfig

ENSEMBLE_INPUT = "IMAGE"
ENSEMBLE_OUTPUT = "SCORES"
LABELS_FILENAME = "labels.txt"
CONFIG_FILENAME = "config.pbtxt"
# The name of the tensor that flows from the preprocessor to the classifier inside the ensemble.
_PIXELS_TENSOR = "preprocessed_image"


@dataclass(frozen=True)
class Scheduling:
    """Batching and concurrency shared by the generated models."""

    max_batch_size: int
    max_queue_delay_us: int = 0
    preferred_batch_sizes: tuple[int, ...] = ()
    instances: int = 1
    kind: str = "KIND_CPU"

    def __post_init__(self) -> None:
        if self.max_batch_size < 1:
            raise BuildOptionsError(f"--max-batch-size must be at least 1, got {self.max_batch_size}")
        if self.max_queue_delay_us < 0:
            raise BuildOptionsError(f"--max-queue-delay-us must be >= 0, got {self.max_queue_delay_us}")
        if self.instances < 1:
            raise BuildOptionsError(f"--instances must be at least 1, got {self.instances}")
        bad = [b for b in self.preferred_batch_sizes if not 1 <= b <= self.max_batch_size]
        if bad:
            raise BuildOptionsError(
                f"--preferred-batch-sizes {bad} must lie between 1 and --max-batch-size "
                f"({self.max_batch_size})"
            )
        if self.kind not in ("KIND_CPU", "KIND_GPU"):
            raise BuildOptionsError(f"instance kind must be KIND_CPU or KIND_GPU, got {self.kind!r}")

    def fields(self, instances: int | None = None) -> dict[str, Any]:
        """``max_batch_size``, ``dynamic_batching`` and ``instance_group`` config fields."""
        batching: dict[str, Any] = {"maxQueueDelayMicroseconds": str(self.max_queue_delay_us)}
        if self.preferred_batch_sizes:
            batching["preferredBatchSize"] = list(self.preferred_batch_sizes)
        return {
            "maxBatchSize": self.max_batch_size,
            "dynamicBatching": batching,
            "instanceGroup": [{"count": instances or self.instances, "kind": self.kind}],
        }


def triton_dtype(dtype: str | np.dtype[Any]) -> str:
    """``"float32"`` -> ``"TYPE_FP32"``, via tritonclient's own mapping."""
    name = np_to_triton_dtype(np.dtype(dtype))
    if name is None:
        raise BuildOptionsError(f"Triton has no tensor type for numpy dtype {dtype!r}")
    return "TYPE_STRING" if name == "BYTES" else f"TYPE_{name}"


def _parameters(values: Mapping[str, str]) -> dict[str, Any]:
    return {key: {"stringValue": str(value)} for key, value in sorted(values.items())}


def _tensor(spec: TensorSpec, *, labels: bool = False, image_format: str | None = None) -> dict[str, Any]:
    dims = spec.sample_shape
    tensor: dict[str, Any] = {
        "name": spec.name,
        "dataType": triton_dtype(spec.dtype),
        "dims": [str(-1 if d is None else d) for d in dims],
    }
    if image_format:
        tensor["format"] = image_format
    if labels:
        tensor["labelFilename"] = LABELS_FILENAME
    return tensor


def _finish(config: dict[str, Any]) -> ModelConfig:
    config["versionPolicy"] = {"latest": {"numVersions": 1}}
    return json_format.ParseDict(config, ModelConfig())


def classifier_config(
    name: str,
    signature: ModelSignature,
    scheduling: Scheduling,
    *,
    target: str,
    image_layout: str | None,
    labels: bool,
    parameters: Mapping[str, str],
) -> ModelConfig:
    """The classifier: a Python-backend onnxruntime host (``embedded``) or ORT (``triton``).

    ``image_layout`` marks the single image input with ``FORMAT_NHWC``/``FORMAT_NCHW`` so that
    clients such as Triton's ``image_client.py`` can talk to the classifier directly.
    """
    inputs = [
        _tensor(spec, image_format=f"FORMAT_{image_layout}" if image_layout else None)
        for spec in signature.inputs
    ]
    single_scores = len(signature.outputs) == 1 and len(signature.outputs[0].sample_shape) == 1
    outputs = [_tensor(spec, labels=labels and single_scores) for spec in signature.outputs]
    config: dict[str, Any] = {"name": name, "input": inputs, "output": outputs, **scheduling.fields()}
    if target == "embedded":
        config["backend"] = "python"
    elif target == "triton":
        config["platform"] = "onnxruntime_onnx"
        config["defaultModelFilename"] = "model.onnx"
    else:
        raise BuildOptionsError(f"--target must be 'embedded' or 'triton', got {target!r}")
    config["parameters"] = _parameters(parameters)
    return _finish(config)


def preprocess_config(
    name: str,
    pixels: TensorSpec,
    scheduling: Scheduling,
    *,
    instances: int,
    parameters: Mapping[str, str],
    input_name: str,
    output_name: str,
) -> ModelConfig:
    """The Python-backend image preprocessor: encoded image bytes in, the classifier's tensor out."""
    config: dict[str, Any] = {
        "name": name,
        "backend": "python",
        "input": [{"name": input_name, "dataType": "TYPE_STRING", "dims": ["1"]}],
        "output": [
            {
                "name": output_name,
                "dataType": triton_dtype(pixels.dtype),
                "dims": [str(d) for d in pixels.sample_shape],
            }
        ],
        **scheduling.fields(instances),
        "parameters": _parameters(parameters),
    }
    return _finish(config)


def ensemble_config(
    name: str,
    *,
    preprocess: str,
    preprocess_io: tuple[str, str],
    classifier: str,
    classifier_input: str,
    classifier_output: TensorSpec,
    max_batch_size: int,
    labels: bool,
) -> ModelConfig:
    """The public entry point: ``IMAGE`` (encoded bytes) -> preprocessor -> classifier -> ``SCORES``."""
    scores = TensorSpec(ENSEMBLE_OUTPUT, classifier_output.dtype, classifier_output.shape)
    pre_in, pre_out = preprocess_io
    config: dict[str, Any] = {
        "name": name,
        "platform": "ensemble",
        "maxBatchSize": max_batch_size,
        "input": [{"name": ENSEMBLE_INPUT, "dataType": "TYPE_STRING", "dims": ["1"]}],
        "output": [_tensor(scores, labels=labels)],
        "ensembleScheduling": {
            "step": [
                {
                    "modelName": preprocess,
                    "modelVersion": "-1",
                    "inputMap": {pre_in: ENSEMBLE_INPUT},
                    "outputMap": {pre_out: _PIXELS_TENSOR},
                },
                {
                    "modelName": classifier,
                    "modelVersion": "-1",
                    "inputMap": {classifier_input: _PIXELS_TENSOR},
                    "outputMap": {classifier_output.name: ENSEMBLE_OUTPUT},
                },
            ]
        },
    }
    return _finish(config)


def render_config(config: ModelConfig) -> str:
    """The config as ``config.pbtxt`` text."""
    return text_format.MessageToString(config)


def parse_config(text: str) -> ModelConfig:
    """Parse ``config.pbtxt`` text; raises ``text_format.ParseError`` on anything Triton would refuse."""
    return text_format.Parse(text, ModelConfig())
