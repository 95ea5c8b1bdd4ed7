"""The parity gate, and convert(), which chains load, export and parity."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from tritonkit.converters import (
    DEFAULT_PARITY_ATOL,
    ParityError,
    ParityReport,
    check_parity,
    convert,
    export_onnx,
    load_source,
    require_parity,
)


@pytest.mark.tensorflow
@pytest.mark.parametrize("fixture", ["keras_file", "h5_file", "savedmodel_dir"])
def test_exported_tensorflow_model_passes_parity_on_real_images(
    request: pytest.FixtureRequest, fixture: str, images: list[np.ndarray], tmp_path: Path
) -> None:
    source = load_source(request.getfixturevalue(fixture))
    export_onnx(source, tmp_path / "model.onnx")

    report = check_parity(source, tmp_path / "model.onnx", images)
    require_parity(report)
    assert report.passed
    assert report.samples == 4
    assert report.max_abs_diff < 1e-5
    assert report.top1_agreement == 1.0


def test_exported_onnx_model_passes_parity(make_onnx_classifier: Callable[..., Path], tmp_path: Path) -> None:
    source = load_source(make_onnx_classifier(tmp_path / "b1.onnx", batch=1))
    export_onnx(source, tmp_path / "model.onnx")
    samples = list(np.random.default_rng(0).random((3, 3, 8, 8), dtype=np.float32))

    report = check_parity(source, tmp_path / "model.onnx", samples)
    assert report.passed
    assert report.top1_agreement == 1.0


@pytest.mark.tensorflow
def test_parity_fails_against_a_model_with_different_weights(
    build_classifier: Callable[..., Any], keras_file: Path, images: list[np.ndarray], tmp_path: Path
) -> None:
    build_classifier(seed=1).save(tmp_path / "other.keras")
    export_onnx(load_source(tmp_path / "other.keras"), tmp_path / "other.onnx")

    report = check_parity(load_source(keras_file), tmp_path / "other.onnx", images)
    assert not report.passed
    assert report.max_abs_diff > DEFAULT_PARITY_ATOL
    with pytest.raises(ParityError, match=r"parity FAILED on 4 samples: max \|diff\| .*--parity-atol"):
        require_parity(report)


def test_parity_fails_between_onnx_models_with_different_weights(
    make_onnx_classifier: Callable[..., Path], tmp_path: Path
) -> None:
    source = load_source(make_onnx_classifier(tmp_path / "a.onnx", batch="N", seed=0))
    other = make_onnx_classifier(tmp_path / "b.onnx", batch="N", seed=1)
    samples = list(np.random.default_rng(0).random((4, 3, 8, 8), dtype=np.float32))

    report = check_parity(source, other, samples)
    assert not report.passed
    with pytest.raises(ParityError, match="--parity-atol"):
        require_parity(report)


@pytest.mark.tensorflow
def test_multi_input_model_parity_takes_samples_as_dicts(keras: ModuleType, tmp_path: Path) -> None:
    image = keras.Input((8, 8, 3), name="image")
    extra = keras.Input((2,), name="extra")
    pooled = keras.layers.GlobalAveragePooling2D()(image)
    scores = keras.layers.Dense(3, activation="softmax")(keras.layers.Concatenate()([pooled, extra]))
    keras.Model([image, extra], scores).save(tmp_path / "two.keras")
    source = load_source(tmp_path / "two.keras")
    export_onnx(source, tmp_path / "two.onnx")
    rng = np.random.default_rng(0)
    samples = [{"image": rng.random((8, 8, 3)), "extra": rng.random(2)} for _ in range(3)]

    assert check_parity(source, tmp_path / "two.onnx", samples).passed


@pytest.mark.tensorflow
def test_convert_loads_exports_and_checks_parity_on_random_inputs(keras_file: Path, tmp_path: Path) -> None:
    result = convert(keras_file, tmp_path / "model.onnx")

    assert result.onnx_path.is_file()
    assert result.source.kind == "keras"
    assert result.signature.image_input().height == 32
    assert result.parity.passed
    assert result.parity.samples == 4


def test_convert_accepts_given_inputs(onnx_file: Path, tmp_path: Path) -> None:
    samples = list(np.random.default_rng(0).random((2, 3, 8, 8), dtype=np.float32))
    result = convert(onnx_file, tmp_path / "model.onnx", inputs=samples)
    assert result.parity.samples == 2


def test_report_without_class_scores_is_judged_on_the_difference_alone() -> None:
    report = ParityReport(
        samples=2, max_abs_diff=1e-4, top1_agreement=None, atol=1e-3, min_top1_agreement=1.0
    )
    assert report.passed
    assert report.summary() == "parity passed on 2 samples: max |diff| 1.00e-04 <= atol 1e-03"


def test_report_fails_on_top1_disagreement_even_within_atol() -> None:
    report = ParityReport(
        samples=4, max_abs_diff=1e-4, top1_agreement=0.75, atol=1e-3, min_top1_agreement=1.0
    )
    assert not report.passed
    assert "top-1 agreement 75% < min 100%" in report.summary()


@pytest.mark.tensorflow
@pytest.mark.slow
def test_parity_atol_below_the_real_conversion_error_fails_the_build_and_publishes_nothing(
    keras_file: Path, tmp_path: Path
) -> None:
    from tritonkit.repository import BuildOptions, build_repository, existing_versions

    repo = tmp_path / "repo"
    passed = build_repository(keras_file, BuildOptions(name="k", repository=repo))
    assert passed.parity is not None and passed.parity.passed
    conversion_error = passed.parity.max_abs_diff
    # tf2onnx + onnxruntime reorder float32 arithmetic: a real, tiny, non-zero difference
    assert 0 < conversion_error < 1e-5

    with pytest.raises(ParityError, match="parity FAILED"):
        build_repository(
            keras_file, BuildOptions(name="k", repository=repo, parity_atol=conversion_error / 2)
        )
    assert existing_versions(repo / "k_classifier") == [1]
    just_enough = BuildOptions(name="k", repository=repo, parity_atol=conversion_error * 2)
    assert build_repository(keras_file, just_enough).version == 2
