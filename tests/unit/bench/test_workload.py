"""Requests built from a model's metadata and config: images for image models, random tensors otherwise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tritonkit.bench import WorkloadError, build_workload, make_photos
from tritonkit.client import ModelConfig, ModelMetadata, TensorConfig, TensorMetadata


def model(
    inputs: list[tuple[str, str, tuple[int, ...]]], max_batch_size: int = 8
) -> tuple[ModelMetadata, ModelConfig]:
    batch = (-1,) if max_batch_size else ()
    metadata = ModelMetadata(
        name="m",
        versions=("1",),
        platform="python",
        inputs=tuple(TensorMetadata(n, t, batch + dims) for n, t, dims in inputs),
        outputs=(TensorMetadata("SCORES", "FP32", (*batch, 4)),),
    )
    config = ModelConfig(
        name="m",
        platform="",
        backend="python",
        max_batch_size=max_batch_size,
        inputs=tuple(TensorConfig(n, t, dims) for n, t, dims in inputs),
        outputs=(TensorConfig("SCORES", "FP32", (4,)),),
        dynamic_batching=True,
        preferred_batch_sizes=(),
        max_queue_delay_us=0,
        instance_groups=(),
        ensemble_steps=(),
        raw={},
    )
    return metadata, config


def test_an_image_model_gets_one_image_per_request_from_the_files_given(tmp_path: Path) -> None:
    for index, data in enumerate(make_photos(3, size=(64, 48))):
        (tmp_path / f"{index}.jpg").write_bytes(data)
    (tmp_path / "notes.txt").write_text("not an image")

    workload = build_workload(*model([("IMAGE", "BYTES", (1,))]), [tmp_path])

    assert workload.kind == "images" and len(workload.payloads) == len(workload.images) == 3
    (tensor,) = workload.payloads[0]
    assert (tensor.name, tensor.datatype, tensor.array.shape) == ("IMAGE", "BYTES", (1, 1))
    assert tensor.array[0, 0] == (tmp_path / "0.jpg").read_bytes()
    assert workload.outputs == ("SCORES",)
    assert "3 image files" in workload.description


def test_an_image_model_without_files_gets_synthetic_photos() -> None:
    workload = build_workload(*model([("IMAGE", "BYTES", (1,))], max_batch_size=0))
    assert workload.kind == "images" and len(workload.images) == 16
    assert workload.payloads[0][0].array.shape == (1,)
    assert workload.images[0][:2] == b"\xff\xd8"  # JPEG
    assert "640x480" in workload.description


def test_a_tensor_model_gets_random_data_of_each_inputs_shape_and_type() -> None:
    workload = build_workload(*model([("A", "FP32", (3, -1)), ("B", "INT64", (2,)), ("C", "BOOL", (1,))]))
    assert workload.kind == "tensors" and len(workload.payloads) == 8
    a, b, c = workload.payloads[0]
    assert (a.array.shape, a.array.dtype) == ((1, 3, 1), np.float32)
    assert (b.array.shape, b.array.dtype) == ((1, 2), np.int64)
    assert (c.array.shape, c.array.dtype) == ((1, 1), np.bool_)
    assert not np.array_equal(workload.payloads[0][0].array, workload.payloads[1][0].array)


@pytest.mark.parametrize(
    ("inputs", "images", "message"),
    [
        ([("A", "FP32", (3,))], True, "takes tensors, not encoded images"),
        ([("A", "BYTES", (1,)), ("B", "FP32", (2,))], False, "is BYTES"),
        ([("IMAGE", "BYTES", (2,))], False, "needs dims \\[1\\]"),
    ],
)
def test_workloads_bench_cannot_make_are_refused_with_the_reason(
    tmp_path: Path, inputs: list, images: bool, message: str
) -> None:
    (tmp_path / "a.jpg").write_bytes(make_photos(1, size=(32, 32))[0])
    with pytest.raises(WorkloadError, match=message):
        build_workload(*model(inputs), [tmp_path] if images else [])


def test_missing_image_paths_are_named(tmp_path: Path) -> None:
    with pytest.raises(WorkloadError, match=r"not found: .*nowhere"):
        build_workload(*model([("IMAGE", "BYTES", (1,))]), [tmp_path / "nowhere"])
    with pytest.raises(WorkloadError, match="holds no image files"):
        build_workload(*model([("IMAGE", "BYTES", (1,))]), [tmp_path])


def test_photos_are_deterministic_and_varied() -> None:
    first, second = make_photos(2, size=(160, 120), seed=3), make_photos(2, size=(160, 120), seed=3)
    assert first == second and first[0] != first[1]
