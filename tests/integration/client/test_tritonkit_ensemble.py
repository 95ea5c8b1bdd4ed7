"""The SDK on a real tritonkit ensemble (trained Keras model -> build-repo -> embedded Triton).

Uses the session fixtures of ``tests/integration/conftest.py``; training needs TensorFlow.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from testsupport import ShapeModel
from tritonkit.client import TritonClient
from tritonkit.repository import BuildResult
from tritonkit.server import EmbeddedServer

pytestmark = [pytest.mark.integration, pytest.mark.tensorflow, pytest.mark.slow]


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_classify_works_on_a_tritonkit_ensemble_out_of_the_box(
    server: EmbeddedServer,
    built_repo: BuildResult,
    shape_model: ShapeModel,
    shape_images: list[tuple[Path, str]],
    protocol: str,
) -> None:
    url = server.http_url if protocol == "http" else server.grpc_url
    paths = [path for path, _ in shape_images]
    with TritonClient(url, metrics_url=server.metrics_url) as client:
        client.wait_until_ready(built_repo.name, timeout_s=30)
        before = client.metrics()
        results = client.classify(built_repo.name, paths, top_k=len(shape_model.labels))
        rates = client.metrics() - before
    assert len(results) == len(paths)
    for classes in results:
        assert sorted(c.label for c in classes) == sorted(shape_model.labels)
        assert all(shape_model.labels[c.index] == c.label for c in classes)
    correct = sum(
        classes[0].label == truth for classes, (_, truth) in zip(results, shape_images, strict=True)
    )
    assert correct / len(paths) > 0.7
    pipeline = rates.model(built_repo.name)
    assert pipeline.kind == "pipeline"
    assert {step.model for step in pipeline.steps} == {
        f"{built_repo.name}_preprocess",
        f"{built_repo.name}_classifier",
    }
