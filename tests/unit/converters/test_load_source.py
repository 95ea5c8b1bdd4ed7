"""load_source: recognising the format, reading the signature from the model, and refusing clearly."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from tritonkit.converters import (
    ImageInput,
    SignatureError,
    SourceNotFoundError,
    TensorSpec,
    UnreadableModelError,
    UnsupportedModelError,
    load_source,
)

# --- refusing what is not a model -------------------------------------------------------------


def test_missing_path_is_not_found_and_names_the_path_and_the_accepted_kinds(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.keras"
    with pytest.raises(SourceNotFoundError, match="no such file") as caught:
        load_source(missing)
    assert str(missing) in str(caught.value)
    assert "SavedModel folder" in str(caught.value)


def test_unknown_suffix_is_unreadable_and_lists_the_accepted_kinds(tmp_path: Path) -> None:
    weights = tmp_path / "model.pt"
    weights.write_bytes(b"\x80\x02")
    with pytest.raises(UnreadableModelError, match=r"unknown model file type '\.pt'.*torch\.onnx\.export"):
        load_source(weights)


def test_folder_without_saved_model_pb_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(UnreadableModelError, match=r"without saved_model\.pb"):
        load_source(tmp_path)


@pytest.mark.parametrize("name", ["random.onnx", "random.keras"])
def test_random_bytes_are_unreadable_naming_the_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(os.urandom(512))
    with pytest.raises(UnreadableModelError, match="cannot read") as caught:
        load_source(path)
    assert str(path) in str(caught.value)


def test_truncated_onnx_is_unreadable(onnx_file: Path, tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(onnx_file.read_bytes()[:200])
    with pytest.raises(UnreadableModelError, match="as an ONNX model"):
        load_source(truncated)


@pytest.mark.tensorflow
def test_truncated_h5_is_unreadable_with_the_loaders_reason(h5_file: Path, tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(h5_file.read_bytes()[:3000])
    with pytest.raises(UnreadableModelError, match=r"as a Keras model: .*truncated"):
        load_source(truncated)


@pytest.mark.tensorflow
def test_corrupt_saved_model_pb_is_unreadable(tmp_path: Path, keras: ModuleType) -> None:
    (tmp_path / "saved_model.pb").write_bytes(os.urandom(256))
    with pytest.raises(UnreadableModelError, match="as a TensorFlow SavedModel"):
        load_source(tmp_path)


@pytest.mark.tensorflow
@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_unknown_custom_layer_is_unsupported_naming_the_layer(
    keras: ModuleType, tmp_path: Path, suffix: str
) -> None:
    @keras.saving.register_keras_serializable(package="tritonkit_tests")
    class Doubler(keras.layers.Layer):  # type: ignore[name-defined]
        def call(self, x: Any) -> Any:
            return x * 2

    features = keras.Input((4,))
    path = tmp_path / f"custom{suffix}"
    keras.Model(features, Doubler()(features)).save(path)
    keras.saving.get_custom_objects().pop(keras.saving.get_registered_name(Doubler))

    with pytest.raises(UnsupportedModelError, match="Doubler") as caught:
        load_source(path)
    assert "register_keras_serializable" in str(caught.value)
    assert ".onnx" in str(caught.value)


@pytest.mark.tensorflow
def test_savedmodel_without_serving_default_is_refused(keras: ModuleType, tmp_path: Path) -> None:
    import tensorflow as tf

    tf.saved_model.save(tf.Module(), str(tmp_path / "plain"))
    with pytest.raises(SignatureError, match="serving_default"):
        load_source(tmp_path / "plain")


def test_onnx_input_without_batch_dimension_is_refused(tmp_path: Path) -> None:
    from onnx import TensorProto, helper, save

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "vector",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [10])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [10])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    save(model, str(tmp_path / "vector.onnx"))
    with pytest.raises(SignatureError, match="no leading batch dimension"):
        load_source(tmp_path / "vector.onnx")


# --- reading the signature from the model -----------------------------------------------------


@pytest.mark.tensorflow
@pytest.mark.parametrize("fixture", ["keras_file", "h5_file"])
def test_keras_file_signature_has_names_dtypes_and_an_nhwc_image(
    request: pytest.FixtureRequest, fixture: str
) -> None:
    source = load_source(request.getfixturevalue(fixture))

    assert source.kind == "keras"
    assert source.signature.inputs == (TensorSpec("image", "float32", (None, 32, 32, 3)),)
    assert source.signature.outputs == (TensorSpec("scores", "float32", (None, 5)),)
    assert source.signature.image_input() == ImageInput("image", "float32", "NHWC", 32, 32, 3)
    assert source.signature.classifier_output().num_classes == 5
    assert source.fixed_batch is None


@pytest.mark.tensorflow
def test_keras_model_with_a_rescaling_layer_normalizes_its_input(keras_file: Path) -> None:
    assert load_source(keras_file).normalizes_input is True


@pytest.mark.tensorflow
def test_keras_model_without_a_scaling_layer_does_not_normalize_its_input(
    build_classifier: Callable[..., Any], tmp_path: Path
) -> None:
    build_classifier(rescaling=False).save(tmp_path / "raw.keras")
    assert load_source(tmp_path / "raw.keras").normalizes_input is False


@pytest.mark.tensorflow
def test_keras_model_built_with_a_fixed_batch_reports_it_but_has_a_dynamic_signature(
    build_classifier: Callable[..., Any], tmp_path: Path
) -> None:
    build_classifier(batch_size=1).save(tmp_path / "fixed.keras")
    source = load_source(tmp_path / "fixed.keras")
    assert source.fixed_batch == 1
    assert source.signature.inputs[0].shape == (None, 32, 32, 3)


@pytest.mark.tensorflow
def test_savedmodel_signature_is_read_from_serving_default(savedmodel_dir: Path) -> None:
    source = load_source(savedmodel_dir)

    assert source.kind == "savedmodel"
    assert source.signature.inputs == (TensorSpec("image", "float32", (None, 32, 32, 3)),)
    assert [(t.dtype, t.shape) for t in source.signature.outputs] == [("float32", (None, 5))]
    assert source.normalizes_input is None


@pytest.mark.tensorflow
def test_saved_model_pb_path_loads_its_folder(savedmodel_dir: Path) -> None:
    assert load_source(savedmodel_dir / "saved_model.pb").path == savedmodel_dir


@pytest.mark.parametrize("initializers_as_inputs", [False, True])
def test_onnx_signature_excludes_initializers_and_maps_element_types(
    make_onnx_classifier: Callable[..., Path], tmp_path: Path, initializers_as_inputs: bool
) -> None:
    path = make_onnx_classifier(tmp_path / "m.onnx", batch="N", initializers_as_inputs=initializers_as_inputs)
    source = load_source(path)

    assert source.kind == "onnx"
    assert source.signature.inputs == (TensorSpec("input", "float32", (None, 3, 8, 8)),)
    assert source.signature.outputs == (TensorSpec("probs", "float32", (None, 5)),)
    assert source.signature.image_input().layout == "NCHW"
    assert source.fixed_batch is None
    assert source.normalizes_input is None


def test_onnx_model_with_a_fixed_batch_reports_it_but_has_a_dynamic_signature(
    make_onnx_classifier: Callable[..., Path], tmp_path: Path
) -> None:
    source = load_source(make_onnx_classifier(tmp_path / "b1.onnx", batch=1))
    assert source.fixed_batch == 1
    assert source.signature.inputs[0].shape == (None, 3, 8, 8)


def test_predict_runs_a_fixed_batch_model_on_any_batch_size(
    make_onnx_classifier: Callable[..., Path], tmp_path: Path
) -> None:
    source = load_source(make_onnx_classifier(tmp_path / "b1.onnx", batch=1))
    batch = np.random.default_rng(0).random((3, 3, 8, 8), dtype=np.float32)

    together = source.predict(batch)["probs"]
    one_by_one = np.concatenate([source.predict(batch[i : i + 1])["probs"] for i in range(3)])
    assert together.shape == (3, 5)
    np.testing.assert_allclose(together, one_by_one, atol=1e-6)


# --- signatures the image pipeline cannot serve -----------------------------------------------


@pytest.mark.tensorflow
def test_multi_input_model_has_no_image_input_and_suggests_no_ensemble(
    keras: ModuleType, tmp_path: Path
) -> None:
    image = keras.Input((16, 16, 3), name="image")
    extra = keras.Input((2,), name="extra")
    pooled = keras.layers.GlobalAveragePooling2D()(image)
    scores = keras.layers.Dense(3, activation="softmax")(keras.layers.Concatenate()([pooled, extra]))
    keras.Model([image, extra], scores).save(tmp_path / "two_inputs.keras")

    signature = load_source(tmp_path / "two_inputs.keras").signature
    assert [t.name for t in signature.inputs] == ["image", "extra"]
    with pytest.raises(SignatureError, match="--no-ensemble"):
        signature.image_input()


@pytest.mark.tensorflow
def test_non_image_input_has_no_image_input_and_suggests_no_ensemble(
    keras: ModuleType, tmp_path: Path
) -> None:
    features = keras.Input((10,), name="features")
    keras.Model(features, keras.layers.Dense(3, activation="softmax")(features)).save(
        tmp_path / "tabular.keras"
    )

    signature = load_source(tmp_path / "tabular.keras").signature
    assert signature.inputs == (TensorSpec("features", "float32", (None, 10)),)
    with pytest.raises(SignatureError, match="--no-ensemble"):
        signature.image_input()
