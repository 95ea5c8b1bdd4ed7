"""config.pbtxt generation: built from Triton's schema and round-tripped through its parser."""

from __future__ import annotations

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from tritonkit.converters import ModelSignature, TensorSpec
from tritonkit.repository import (
    BuildOptionsError,
    ModelConfig,
    Scheduling,
    classifier_config,
    ensemble_config,
    parse_config,
    preprocess_config,
    render_config,
    triton_dtype,
)

SIGNATURE = ModelSignature(
    inputs=(TensorSpec("input_1", "float32", (None, 224, 224, 3)),),
    outputs=(TensorSpec("probs", "float32", (None, 5)),),
)
SCHEDULING = Scheduling(max_batch_size=8, max_queue_delay_us=200, preferred_batch_sizes=(4, 8), instances=2)


def _round_trip(config: ModelConfig) -> ModelConfig:
    text = render_config(config)
    parsed = parse_config(text)
    assert parsed == config
    assert render_config(parsed) == text
    return parsed


def test_embedded_classifier_is_a_python_model_with_image_format_labels_and_runtime_parameters() -> None:
    config = _round_trip(
        classifier_config(
            "flowers_classifier",
            SIGNATURE,
            SCHEDULING,
            target="embedded",
            image_layout="NHWC",
            labels=True,
            parameters={"intra_op_threads": "2", "allow_spinning": "0"},
        )
    )
    assert config.backend == "python" and not config.platform
    assert config.max_batch_size == 8
    (tensor,) = config.input
    assert tensor.name == "input_1" and list(tensor.dims) == [224, 224, 3]
    assert tensor.data_type == model_config_pb2.TYPE_FP32
    assert tensor.format == model_config_pb2.ModelInput.FORMAT_NHWC
    (output,) = config.output
    assert list(output.dims) == [5] and output.label_filename == "labels.txt"
    assert config.version_policy.latest.num_versions == 1
    assert config.dynamic_batching.max_queue_delay_microseconds == 200
    assert list(config.dynamic_batching.preferred_batch_size) == [4, 8]
    assert config.instance_group[0].count == 2
    assert config.parameters["intra_op_threads"].string_value == "2"


def test_triton_target_uses_the_onnxruntime_platform() -> None:
    config = _round_trip(
        classifier_config(
            "m", SIGNATURE, SCHEDULING, target="triton", image_layout="NCHW", labels=False, parameters={}
        )
    )
    assert config.platform == "onnxruntime_onnx" and not config.backend
    assert config.default_model_filename == "model.onnx"
    assert "FORMAT_NCHW" in render_config(config)
    assert not config.output[0].label_filename


def test_unknown_target_is_refused() -> None:
    with pytest.raises(BuildOptionsError, match="--target"):
        classifier_config(
            "m", SIGNATURE, SCHEDULING, target="tf", image_layout=None, labels=False, parameters={}
        )


def test_preprocessor_takes_one_string_per_image_and_emits_the_classifier_tensor() -> None:
    config = _round_trip(
        preprocess_config(
            "m_preprocess",
            SIGNATURE.inputs[0],
            SCHEDULING,
            instances=1,
            parameters={"height": "224", "width": "224"},
            input_name="IMAGE",
            output_name="PIXELS",
        )
    )
    (image,) = config.input
    assert image.name == "IMAGE" and list(image.dims) == [1]
    assert "TYPE_STRING" in render_config(config)
    assert list(config.output[0].dims) == [224, 224, 3]
    assert config.instance_group[0].count == 1
    assert config.parameters["height"].string_value == "224"


def test_ensemble_wires_preprocessor_output_into_classifier_input_and_exposes_scores() -> None:
    config = _round_trip(
        ensemble_config(
            "m",
            preprocess="m_preprocess",
            preprocess_io=("IMAGE", "PIXELS"),
            classifier="m_classifier",
            classifier_input="input_1",
            classifier_output=SIGNATURE.outputs[0],
            max_batch_size=8,
            labels=True,
        )
    )
    assert config.platform == "ensemble"
    first, second = config.ensemble_scheduling.step
    assert first.model_name == "m_preprocess" and first.model_version == -1
    assert dict(first.input_map) == {"IMAGE": "IMAGE"}
    assert dict(second.input_map) == {"input_1": first.output_map["PIXELS"]}
    assert dict(second.output_map) == {"probs": "SCORES"}
    (scores,) = config.output
    assert scores.name == "SCORES" and list(scores.dims) == [5] and scores.label_filename == "labels.txt"


def test_the_schema_rejects_a_misspelt_field() -> None:
    with pytest.raises(text_format.ParseError):
        parse_config('name: "m"\nmax_batch_sise: 4\n')


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [
        ("float32", "TYPE_FP32"),
        ("float16", "TYPE_FP16"),
        ("uint8", "TYPE_UINT8"),
        ("int64", "TYPE_INT64"),
        ("bool", "TYPE_BOOL"),
        ("object", "TYPE_STRING"),
    ],
)
def test_numpy_dtypes_map_to_triton_types(dtype: str, expected: str) -> None:
    assert triton_dtype(dtype) == expected


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_batch_size": 0}, "--max-batch-size"),
        ({"max_batch_size": 4, "instances": 0}, "--instances"),
        ({"max_batch_size": 4, "max_queue_delay_us": -1}, "--max-queue-delay-us"),
        ({"max_batch_size": 4, "preferred_batch_sizes": (8,)}, "--preferred-batch-sizes"),
    ],
)
def test_bad_scheduling_is_refused_with_the_option_named(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(BuildOptionsError, match=message):
        Scheduling(**kwargs)  # type: ignore[arg-type]
