"""export_onnx: a checked ONNX model with a dynamic batch named "batch", or a clear refusal."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import onnx
import onnxruntime
import pytest

from tritonkit.converters import (
    DEFAULT_OPSET,
    ModelSignature,
    SignatureError,
    SourceModel,
    TensorSpec,
    UnsupportedModelError,
    export_onnx,
    load_source,
)


def _dims(value: onnx.ValueInfoProto) -> list[int | str]:
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


def _run(path: Path, batch: np.ndarray) -> np.ndarray:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: batch})[0]


@pytest.fixture(scope="module")
def exported_keras(keras_file: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ModelSignature]:
    output = tmp_path_factory.mktemp("export") / "model.onnx"
    return output, export_onnx(load_source(keras_file), output)


@pytest.mark.tensorflow
def test_keras_export_names_tensors_like_the_model_and_the_batch_dimension_batch(
    exported_keras: tuple[Path, ModelSignature],
) -> None:
    path, signature = exported_keras
    model = onnx.load(str(path))
    onnx.checker.check_model(model)

    assert [(v.name, _dims(v)) for v in model.graph.input] == [("image", ["batch", 32, 32, 3])]
    assert [(v.name, _dims(v)) for v in model.graph.output] == [("scores", ["batch", 5])]
    assert signature.inputs == (TensorSpec("image", "float32", (None, 32, 32, 3)),)
    assert signature.outputs == (TensorSpec("scores", "float32", (None, 5)),)


@pytest.mark.tensorflow
def test_keras_export_uses_the_default_opset(exported_keras: tuple[Path, ModelSignature]) -> None:
    opsets = {o.domain: o.version for o in onnx.load(str(exported_keras[0])).opset_import}
    assert opsets[""] == DEFAULT_OPSET


@pytest.mark.tensorflow
def test_opset_can_be_overridden(keras_file: Path, tmp_path: Path) -> None:
    export_onnx(load_source(keras_file), tmp_path / "m.onnx", opset=13)
    opsets = {o.domain: o.version for o in onnx.load(str(tmp_path / "m.onnx")).opset_import}
    assert opsets[""] == 13


@pytest.mark.tensorflow
def test_keras_model_built_with_batch_size_1_exports_a_dynamic_batch_that_runs_at_3(
    build_classifier: Callable[..., Any], tmp_path: Path
) -> None:
    build_classifier(batch_size=1).save(tmp_path / "fixed.keras")
    source = load_source(tmp_path / "fixed.keras")
    export_onnx(source, tmp_path / "fixed.onnx")

    batch = np.random.default_rng(0).uniform(0, 255, (3, 32, 32, 3)).astype(np.float32)
    scores = _run(tmp_path / "fixed.onnx", batch)
    assert scores.shape == (3, 5)
    np.testing.assert_allclose(scores, source.predict(batch)["scores"], atol=1e-5)


@pytest.mark.tensorflow
def test_savedmodel_export_keeps_the_signature_names(savedmodel_dir: Path, tmp_path: Path) -> None:
    source = load_source(savedmodel_dir)
    signature = export_onnx(source, tmp_path / "sm.onnx")
    assert signature == source.signature
    assert _dims(onnx.load(str(tmp_path / "sm.onnx")).graph.input[0])[0] == "batch"


def _save_fixed_batch_savedmodel(path: Path, *, flatten_to: list[int]) -> Path:
    """A SavedModel whose serving signature takes exactly one 4x4x3 image, flattened to ``flatten_to``."""
    import tensorflow as tf

    class Fixed(tf.Module):
        def __init__(self) -> None:
            self.weights = tf.Variable(np.random.default_rng(0).normal(size=(48, 5)).astype(np.float32))

        @tf.function(input_signature=[tf.TensorSpec((1, 4, 4, 3), tf.float32, name="image")])
        def serve(self, image: Any) -> Any:
            return {"scores": tf.nn.softmax(tf.matmul(tf.reshape(image, flatten_to), self.weights))}

    module = Fixed()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    return path


@pytest.mark.tensorflow
def test_savedmodel_with_batch_fixed_to_1_exports_a_dynamic_batch_that_runs_at_3(
    keras: ModuleType, tmp_path: Path
) -> None:
    source = load_source(_save_fixed_batch_savedmodel(tmp_path / "fixed", flatten_to=[-1, 48]))
    assert source.fixed_batch == 1
    export_onnx(source, tmp_path / "fixed.onnx")

    batch = np.random.default_rng(0).random((3, 4, 4, 3), dtype=np.float32)
    scores = _run(tmp_path / "fixed.onnx", batch)
    assert scores.shape == (3, 5)
    np.testing.assert_allclose(scores, source.predict(batch)["scores"], atol=1e-5)


@pytest.mark.tensorflow
def test_savedmodel_whose_fixed_batch_cannot_be_relaxed_is_refused(keras: ModuleType, tmp_path: Path) -> None:
    source = load_source(_save_fixed_batch_savedmodel(tmp_path / "fixed", flatten_to=[1, 48]))

    with pytest.raises(SignatureError, match=r"fixes its batch size to 1.*None batch dimension"):
        export_onnx(source, tmp_path / "fixed.onnx")
    assert not (tmp_path / "fixed.onnx").exists()


@pytest.mark.tensorflow
def test_multi_input_keras_model_exports_every_input_by_name(keras: ModuleType, tmp_path: Path) -> None:
    image = keras.Input((8, 8, 3), name="image")
    extra = keras.Input((2,), name="extra")
    pooled = keras.layers.GlobalAveragePooling2D()(image)
    scores = keras.layers.Dense(3, activation="softmax", name="scores")(
        keras.layers.Concatenate()([pooled, extra])
    )
    keras.Model([image, extra], scores).save(tmp_path / "two.keras")

    signature = export_onnx(load_source(tmp_path / "two.keras"), tmp_path / "two.onnx")
    assert [t.name for t in signature.inputs] == ["image", "extra"]
    assert signature.outputs == (TensorSpec("scores", "float32", (None, 3)),)


@pytest.mark.tensorflow
def test_tensorflow_op_without_onnx_equivalent_is_unsupported_naming_the_op(
    keras: ModuleType, tmp_path: Path
) -> None:
    import tensorflow as tf

    class Digamma(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec((None, 4), tf.float32, name="x")])
        def serve(self, x: Any) -> Any:
            return {"y": tf.math.digamma(x)}

    module = Digamma()
    tf.saved_model.save(module, str(tmp_path / "digamma"), signatures={"serving_default": module.serve})

    with pytest.raises(UnsupportedModelError, match=r"Digamma.*--opset"):
        export_onnx(load_source(tmp_path / "digamma"), tmp_path / "digamma.onnx")
    assert not (tmp_path / "digamma.onnx").exists()


def test_onnx_source_with_dynamic_batch_gets_its_batch_dimension_named_batch(
    onnx_file: Path, tmp_path: Path
) -> None:
    signature = export_onnx(load_source(onnx_file), tmp_path / "out.onnx")
    model = onnx.load(str(tmp_path / "out.onnx"))
    assert _dims(model.graph.input[0]) == ["batch", 3, 8, 8]
    assert _dims(model.graph.output[0]) == ["batch", 5]
    assert signature == load_source(onnx_file).signature


def test_onnx_source_with_batch_fixed_to_1_is_made_dynamic_with_the_same_results(
    make_onnx_classifier: Callable[..., Path], tmp_path: Path
) -> None:
    source: SourceModel = load_source(make_onnx_classifier(tmp_path / "b1.onnx", batch=1))
    signature = export_onnx(source, tmp_path / "dynamic.onnx")

    assert signature.inputs[0].shape == (None, 3, 8, 8)
    batch = np.random.default_rng(1).random((3, 3, 8, 8), dtype=np.float32)
    np.testing.assert_allclose(
        _run(tmp_path / "dynamic.onnx", batch), source.predict(batch)["probs"], atol=1e-6
    )


def test_onnx_source_whose_fixed_batch_cannot_be_relaxed_is_refused_mentioning_dynamic_axes(
    make_onnx_classifier: Callable[..., Path], tmp_path: Path
) -> None:
    source = load_source(make_onnx_classifier(tmp_path / "reshape.onnx", batch=1, fixed_reshape=True))

    with pytest.raises(SignatureError, match="fixes its batch size to 1") as caught:
        export_onnx(source, tmp_path / "out" / "model.onnx")
    assert "dynamic_axes" in str(caught.value)
    assert list((tmp_path / "out").iterdir()) == []
