"""A really trained classifier, built into a repository and served by the real embedded Triton.

Session-scoped: training, conversion and server start happen once for the whole suite.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from testsupport import ShapeModel, start_server
from tritonkit.repository import BuildOptions, BuildResult, build_repository
from tritonkit.server import EmbeddedServer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def shape_model(tmp_path_factory: pytest.TempPathFactory) -> ShapeModel:
    """The demo's shape classifier, trained briefly (TensorFlow)."""
    from tritonkit.demo import SHAPE_LABELS
    from tritonkit.demo._train import train_shape_classifier

    trained = train_shape_classifier(tmp_path_factory.mktemp("shape_model"))
    return ShapeModel(trained.path, trained.labels_path, trained.accuracy, SHAPE_LABELS)


@pytest.fixture(scope="session")
def shape_images(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Path, str]]:
    """JPEG and PNG files of every shape class with their true labels."""
    from tritonkit.demo import write_shape_images

    return write_shape_images(tmp_path_factory.mktemp("images"), per_class=3)


@pytest.fixture(scope="session")
def built_repo(tmp_path_factory: pytest.TempPathFactory, shape_model: ShapeModel) -> BuildResult:
    # A queue delay lets concurrent requests meet in one dynamic batch (tested below).
    options = BuildOptions(
        name="shapes",
        repository=tmp_path_factory.mktemp("repo") / "model_repository",
        labels=shape_model.labels_path,
        max_batch_size=8,
        max_queue_delay_us=20_000,
    )
    return build_repository(shape_model.keras_path, options)


@pytest.fixture(scope="session")
def server(built_repo: BuildResult) -> Iterator[EmbeddedServer]:
    """The embedded Triton serving the built repository (model control mode NONE)."""
    running = start_server(built_repo.repository)
    yield running
    running.stop()
