"""The ONNX classifier ``model.py`` on a real tiny ONNX model, with a fake pb_utils."""

from __future__ import annotations

import io
import types
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from tritonkit.custom_backends import (
    ONNX_CLASSIFIER_DIR,
    ONNX_CLASSIFIER_PARAMETERS,
    ONNX_MODEL_FILENAME,
    PREPROCESSOR_DIR,
    PREPROCESSOR_INPUT,
    PREPROCESSOR_OUTPUT,
    ImageSpec,
)

INPUT, PROBS, LOGITS = "images", "probs", "logits"


def tiny_classifier() -> onnx.ModelProto:
    """[N, H, W, 3] float -> mean over H, W -> MatMul + bias -> logits [N, 5] and Softmax probs."""
    rng = np.random.default_rng(7)
    weights = numpy_helper.from_array(rng.normal(size=(3, 5)).astype(np.float32), "weights")
    bias = numpy_helper.from_array(rng.normal(size=(5,)).astype(np.float32), "bias")
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", [INPUT], ["pooled"], axes=[1, 2], keepdims=0),
            helper.make_node("MatMul", ["pooled", "weights"], ["scores"]),
            helper.make_node("Add", ["scores", "bias"], [LOGITS]),
            helper.make_node("Softmax", [LOGITS], [PROBS], axis=-1),
        ],
        "tiny_classifier",
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["N", "H", "W", 3])],
        [
            helper.make_tensor_value_info(PROBS, TensorProto.FLOAT, ["N", 5]),
            helper.make_tensor_value_info(LOGITS, TensorProto.FLOAT, ["N", 5]),
        ],
        initializer=[weights, bias],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def classifier_config(**overrides: object) -> dict:
    config = {
        "name": "flowers_classifier",
        "backend": "python",
        "max_batch_size": 8,
        "input": [{"name": INPUT, "data_type": "TYPE_FP32", "dims": [4, 4, 3]}],
        "output": [
            {"name": PROBS, "data_type": "TYPE_FP32", "dims": [5]},
            {"name": LOGITS, "data_type": "TYPE_FP64", "dims": [5]},
        ],
        "parameters": {key: {"string_value": value} for key, value in ONNX_CLASSIFIER_PARAMETERS.items()},
        "dynamic_batching": {},
    }
    config.update(overrides)
    return config


@pytest.fixture
def version_dir(install_backend: Callable[[Path, str], Path]) -> Path:
    version_dir = install_backend(ONNX_CLASSIFIER_DIR, "flowers_classifier")
    onnx.save(tiny_classifier(), version_dir / ONNX_MODEL_FILENAME)
    return version_dir


@pytest.fixture
def reference(version_dir: Path) -> Callable[[np.ndarray], list[np.ndarray]]:
    """onnxruntime run directly on the same file: what the model must answer."""
    session = ort.InferenceSession(str(version_dir / ONNX_MODEL_FILENAME), providers=["CPUExecutionProvider"])
    return lambda batch: session.run([PROBS, LOGITS], {INPUT: batch})


@pytest.fixture
def model_module(version_dir: Path, load_model: Callable[[Path], types.ModuleType]) -> types.ModuleType:
    return load_model(version_dir)


@pytest.fixture
def classifier(version_dir: Path, model_module: types.ModuleType, make_args: Callable[..., dict]):
    model = model_module.TritonPythonModel()
    model.initialize(make_args(version_dir, classifier_config()))
    yield model
    model.finalize()


def batch(size: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, size=(size, 4, 4, 3)).astype(np.float32)


class CountingSession:
    """Wraps the model's session to count onnxruntime runs."""

    def __init__(self, session: ort.InferenceSession) -> None:
        self.session = session
        self.batch_sizes: list[int] = []

    def run(self, names, feeds):  # type: ignore[no-untyped-def]
        self.batch_sizes.append(len(feeds[INPUT]))
        return self.session.run(names, feeds)


def test_the_builder_copies_model_py_alone(install_backend: Callable[[Path, str], Path]) -> None:
    version_dir = install_backend(ONNX_CLASSIFIER_DIR, "other")
    assert [path.name for path in version_dir.iterdir()] == ["model.py"]


def test_constants_agree_with_the_package(model_module: types.ModuleType) -> None:
    assert model_module.ONNX_MODEL_FILENAME == ONNX_MODEL_FILENAME
    assert model_module.DEFAULT_PARAMETERS == ONNX_CLASSIFIER_PARAMETERS


def test_dynamic_batch_runs_once_and_is_split_back_in_order(
    fake_pb_utils: types.ModuleType, classifier, reference
) -> None:
    counting = CountingSession(classifier._session)
    classifier._session = counting
    inputs = [batch(2, 1), batch(1, 2), batch(3, 3)]

    responses = classifier.execute([fake_pb_utils.InferenceRequest(images=array) for array in inputs])

    assert counting.batch_sizes == [6]
    for response, array in zip(responses, inputs, strict=True):
        probs, logits = reference(array)
        np.testing.assert_array_equal(response.output(PROBS), probs)
        assert response.output(PROBS).dtype == np.float32
        assert response.output(LOGITS).dtype == np.float64  # cast to the config's TYPE_FP64
        np.testing.assert_array_equal(response.output(LOGITS), logits.astype(np.float64))


def test_a_request_with_the_wrong_shape_fails_alone(
    fake_pb_utils: types.ModuleType, classifier, reference
) -> None:
    good = batch(2, 4)
    responses = classifier.execute(
        [
            fake_pb_utils.InferenceRequest(images=good),
            fake_pb_utils.InferenceRequest(images=np.zeros((1, 5, 4, 3), dtype=np.float32)),
            fake_pb_utils.InferenceRequest(other=good),
            fake_pb_utils.InferenceRequest(images=good[:1]),
        ]
    )

    assert not responses[0].has_error()
    np.testing.assert_allclose(responses[0].output(PROBS), reference(good)[0], rtol=1e-5, atol=1e-7)
    assert responses[1].error().message() == (
        "input 'images' has shape [1, 5, 4, 3]; flowers_classifier expects [-1, 4, 4, 3]"
    )
    assert responses[1].error().code() == fake_pb_utils.TritonError.INVALID_ARG
    assert responses[2].error().message() == "missing input 'images'"
    np.testing.assert_allclose(responses[3].output(PROBS), reference(good[:1])[0], rtol=1e-5, atol=1e-7)


def test_an_onnxruntime_failure_fails_the_requests_of_that_run(
    fake_pb_utils: types.ModuleType, classifier
) -> None:
    class BrokenSession:
        def run(self, names, feeds):  # type: ignore[no-untyped-def]
            raise RuntimeError("out of memory")

    classifier._session = BrokenSession()
    responses = classifier.execute([fake_pb_utils.InferenceRequest(images=batch(1, n)) for n in range(2)])
    for response in responses:
        assert response.error().message() == "onnxruntime failed: out of memory"
        assert response.error().code() == fake_pb_utils.TritonError.INTERNAL


def test_variable_dims_group_requests_by_shape(
    fake_pb_utils: types.ModuleType, version_dir: Path, model_module: types.ModuleType, make_args, reference
) -> None:
    model = model_module.TritonPythonModel()
    config = classifier_config(input=[{"name": INPUT, "data_type": "TYPE_FP32", "dims": [-1, -1, 3]}])
    model.initialize(make_args(version_dir, config))
    counting = CountingSession(model._session)
    model._session = counting
    small = np.ones((1, 2, 2, 3), dtype=np.float32)

    responses = model.execute(
        [fake_pb_utils.InferenceRequest(images=array) for array in (batch(1, 5), small, batch(2, 6))]
    )

    assert sorted(counting.batch_sizes) == [1, 3]
    np.testing.assert_allclose(responses[1].output(PROBS), reference(small)[0], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(responses[2].output(PROBS), reference(batch(2, 6))[0], rtol=1e-5, atol=1e-7)


def test_without_batching_each_request_runs_alone(
    fake_pb_utils: types.ModuleType, version_dir: Path, model_module: types.ModuleType, make_args, reference
) -> None:
    model = model_module.TritonPythonModel()
    config = classifier_config(
        max_batch_size=0,
        input=[{"name": INPUT, "data_type": "TYPE_FP32", "dims": [-1, 4, 4, 3]}],
        output=[{"name": PROBS, "data_type": "TYPE_FP32", "dims": [-1, 5]}],
    )
    model.initialize(make_args(version_dir, config))
    first, second = model.execute([fake_pb_utils.InferenceRequest(images=batch(n, n)) for n in (1, 2)])
    np.testing.assert_allclose(first.output(PROBS), reference(batch(1, 1))[0], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(second.output(PROBS), reference(batch(2, 2))[0], rtol=1e-5, atol=1e-7)


def test_session_options_come_from_the_parameters(
    version_dir: Path, model_module: types.ModuleType, make_args
) -> None:
    model = model_module.TritonPythonModel()
    parameters = {"intra_op_threads": "3", "inter_op_threads": "2", "allow_spinning": "1"}
    config = classifier_config(parameters={key: {"string_value": value} for key, value in parameters.items()})
    model.initialize(make_args(version_dir, config))

    options = model._session.get_session_options()
    assert options.intra_op_num_threads == 3
    assert options.inter_op_num_threads == 2
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "1"
    assert options.get_session_config_entry("session.inter_op.allow_spinning") == "1"
    assert options.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert model._session.get_providers() == ["CPUExecutionProvider"]


def test_defaults_are_one_thread_without_spinning(classifier) -> None:
    options = classifier._session.get_session_options()
    assert (options.intra_op_num_threads, options.inter_op_num_threads) == (1, 1)
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_gpu_instance_falls_back_to_cpu_without_cuda(
    version_dir: Path, model_module: types.ModuleType, make_args
) -> None:
    model = model_module.TritonPythonModel()
    model.initialize(make_args(version_dir, classifier_config(), kind="GPU"))
    assert model._session.get_providers()[-1] == "CPUExecutionProvider"


@pytest.mark.parametrize(
    ("overrides", "error", "message"),
    [
        (
            {"parameters": {"intra_op_threads": {"string_value": "many"}}},
            ValueError,
            "'intra_op_threads' must be an integer",
        ),
        (
            {"parameters": {"allow_spinning": {"string_value": "yes"}}},
            ValueError,
            "'allow_spinning' must be '0' or '1'",
        ),
        (
            {"input": [{"name": "pixels", "data_type": "TYPE_FP32", "dims": [4, 4, 3]}]},
            ValueError,
            r"config input 'pixels' is not an input of model.onnx \(it has \['images'\]\)",
        ),
        (
            {"output": [{"name": "scores", "data_type": "TYPE_FP32", "dims": [5]}]},
            ValueError,
            "config output 'scores' is not an output of model.onnx",
        ),
        ({"output": []}, ValueError, "must list the model's inputs and outputs"),
    ],
    ids=["threads", "spinning", "input name", "output name", "no outputs"],
)
def test_initialize_refuses_a_config_that_does_not_fit(
    version_dir: Path, model_module: types.ModuleType, make_args, overrides: dict, error: type, message: str
) -> None:
    with pytest.raises(error, match=message):
        model_module.TritonPythonModel().initialize(make_args(version_dir, classifier_config(**overrides)))


def test_initialize_names_a_missing_onnx_file(
    version_dir: Path, model_module: types.ModuleType, make_args
) -> None:
    (version_dir / ONNX_MODEL_FILENAME).unlink()
    with pytest.raises(FileNotFoundError, match=r"no model\.onnx at"):
        model_module.TritonPythonModel().initialize(make_args(version_dir, classifier_config()))


def test_finalize_drops_the_session(classifier) -> None:
    classifier.finalize()
    assert classifier._session is None


def test_preprocessor_feeds_the_classifier_end_to_end(
    fake_pb_utils: types.ModuleType,
    install_backend: Callable[[Path, str], Path],
    load_model: Callable[[Path], types.ModuleType],
    make_args: Callable[..., dict],
    version_dir: Path,
    reference,
) -> None:
    spec = ImageSpec(height=4, width=4)
    pre_dir = install_backend(PREPROCESSOR_DIR, "flowers_preprocess")
    preprocessor = load_model(pre_dir).TritonPythonModel()
    preprocessor.initialize(
        make_args(
            pre_dir,
            {
                "name": "flowers_preprocess",
                "max_batch_size": 8,
                "input": [{"name": PREPROCESSOR_INPUT, "data_type": "TYPE_STRING", "dims": [1]}],
                "output": [{"name": PREPROCESSOR_OUTPUT, "data_type": "TYPE_FP32", "dims": list(spec.shape)}],
                "parameters": {key: {"string_value": value} for key, value in spec.to_parameters().items()},
            },
        )
    )
    classifier = load_model(version_dir).TritonPythonModel()
    classifier.initialize(make_args(version_dir, classifier_config()))
    jpegs = np.empty((3, 1), dtype=np.object_)
    for row, colour in enumerate([(255, 0, 0), (0, 255, 0), (0, 0, 255)]):
        buffer = io.BytesIO()
        Image.new("RGB", (30, 20), colour).save(buffer, format="JPEG")
        jpegs[row, 0] = buffer.getvalue()

    (pixels,) = preprocessor.execute([fake_pb_utils.InferenceRequest(IMAGE=jpegs)])
    (scores,) = classifier.execute(
        [fake_pb_utils.InferenceRequest(images=pixels.output(PREPROCESSOR_OUTPUT))]
    )

    probs = scores.output(PROBS)
    np.testing.assert_allclose(probs, reference(pixels.output(PREPROCESSOR_OUTPUT))[0], rtol=1e-5, atol=1e-7)
    assert not np.allclose(probs[0], probs[1])  # different colours, different answers
