"""The in-process reference runs the served preprocessing and ONNX model, never repository code."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from testsupport import make_onnx_classifier
from tritonkit.bench import ReferenceUnavailable, Workload, make_photos, measure_reference, reference_plan
from tritonkit.bench._reference import image_pipeline_plan, remeasure_reference
from tritonkit.bench._run import ServedModel
from tritonkit.client import EnsembleStep, ModelConfig, ModelMetadata
from tritonkit.custom_backends import PREPROCESSOR_DIR, ImageSpec, preprocess_batch

SPEC = ImageSpec(height=32, width=32, scaling="inception")


def fake_pipeline(repo: Path, versions: tuple[int, ...] = (1,)) -> None:
    for version in versions:
        pre = repo / "t_preprocess" / str(version)
        pre.mkdir(parents=True)
        shutil.copy(PREPROCESSOR_DIR / "imaging.py", pre / "imaging.py")
        cls = repo / "t_classifier" / str(version)
        cls.mkdir(parents=True)
        make_onnx_classifier(cls / "model.onnx", size=32, seed=version)


def config(name: str, **fields: object) -> ModelConfig:
    values: dict[str, object] = {
        "name": name,
        "platform": "",
        "backend": "python",
        "max_batch_size": 8,
        "inputs": (),
        "outputs": (),
        "dynamic_batching": True,
        "preferred_batch_sizes": (),
        "max_queue_delay_us": 0,
        "instance_groups": (),
        "ensemble_steps": (),
        "raw": {},
    }
    values.update(fields)
    return ModelConfig(**values)  # type: ignore[arg-type]


def served(ready: dict[str, list[int]]) -> ServedModel:
    steps = (
        EnsembleStep("t_preprocess", -1, {"IMAGE": "IMAGE"}, {"PIXELS": "pixels"}),
        EnsembleStep("t_classifier", -1, {"image": "pixels"}, {"probs": "SCORES"}),
    )
    parameters = {key: {"string_value": value} for key, value in SPEC.to_parameters().items()}
    return ServedModel(
        metadata=ModelMetadata("t", ("1",), "ensemble", (), ()),
        config=config("t", platform="ensemble", backend="", ensemble_steps=steps),
        steps={
            "t_preprocess": config("t_preprocess", raw={"parameters": parameters}),
            "t_classifier": config("t_classifier"),
        },
        ready_versions=ready,
    )


def test_the_plan_reads_the_served_versions_preprocessing_spec_and_classifier_input(tmp_path: Path) -> None:
    fake_pipeline(tmp_path, versions=(1, 2))
    plan = reference_plan(served({"t_preprocess": [1], "t_classifier": [1]}), tmp_path)
    assert plan.onnx_path == tmp_path / "t_classifier" / "1" / "model.onnx"  # the ready one, not the newest
    assert plan.pixels_input == "image"
    assert str(tmp_path / "t_preprocess" / "1" / "imaging.py") in plan.preprocessing
    assert plan.preprocess is not None
    images = make_photos(3, size=(80, 60))
    np.testing.assert_array_equal(plan.preprocess(images), preprocess_batch(images, SPEC)[0])

    newest = reference_plan(served({}), tmp_path)  # nothing known about readiness: the newest
    assert newest.onnx_path == tmp_path / "t_classifier" / "2" / "model.onnx"


def test_a_missing_repository_or_model_file_is_explained(tmp_path: Path) -> None:
    with pytest.raises(ReferenceUnavailable, match="does not exist"):
        reference_plan(served({}), tmp_path / "nowhere")
    fake_pipeline(tmp_path)
    (tmp_path / "t_classifier" / "1" / "model.onnx").unlink()
    with pytest.raises(ReferenceUnavailable, match=r"no model\.onnx"):
        reference_plan(served({}), tmp_path)


def test_a_versions_imaging_py_is_never_executed_and_refused_when_it_differs(tmp_path: Path) -> None:
    fake_pipeline(tmp_path)
    imaging_py = tmp_path / "t_preprocess" / "1" / "imaging.py"
    marker = tmp_path / "executed"
    imaging_py.write_text(imaging_py.read_text() + f"\nopen({str(marker)!r}, 'w').close()\n")
    with pytest.raises(ReferenceUnavailable, match=r"differs from this tritonkit's imaging\.py"):
        reference_plan(served({}), tmp_path)
    assert not marker.exists()


def test_the_reference_tries_every_layout_and_measures_the_best_twice(tmp_path: Path) -> None:
    fake_pipeline(tmp_path)
    plan = image_pipeline_plan(
        tmp_path / "t_preprocess" / "1", SPEC.to_parameters(), tmp_path / "t_classifier" / "1", "image"
    )
    workload = Workload("images", (), (), "photos", tuple(make_photos(4, size=(64, 48))))
    said: list[str] = []

    result = measure_reference(
        plan, workload, cores=2, trial_s=0.05, measure_s=0.1, latency_s=0.1, progress=said.append
    )

    layouts = {(t.layout.streams, t.layout.intra_op_threads) for t in result.trials}
    assert layouts == {(1, 1), (1, 2), (2, 1)}  # every layout that fits 2 cores
    assert {t.layout.batch_size for t in result.trials} == {1, 2, 4, 8}
    assert result.best == max(result.trials, key=lambda t: t.throughput).layout
    assert result.throughput > 0 and result.latency_ms > 0 and result.latency_threads in (1, 2)
    assert any("latency" in text for text in said)

    again = remeasure_reference(result, plan, workload, measure_s=0.1, latency_s=0.1)
    assert len(again.throughput_runs) == len(again.latency_runs) == 2
    assert again.throughput == pytest.approx(sum(again.throughput_runs) / 2)
