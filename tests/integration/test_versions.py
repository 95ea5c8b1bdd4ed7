"""A second build adds version 2 next to version 1, and a polling server switches to it."""

from __future__ import annotations

import hashlib
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import tritonclient.http as httpclient

from testsupport import ShapeModel, start_server
from tritonkit.repository import BuildOptions, BuildResult, build_repository, existing_versions

pytestmark = pytest.mark.integration


def _tree_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + path.read_bytes())
    return digest.hexdigest()


def test_second_build_adds_version_2_and_the_polling_server_serves_it(
    tmp_path: Path, built_repo: BuildResult, shape_model: ShapeModel, shape_images: list[tuple[Path, str]]
) -> None:
    repo = tmp_path / "model_repository"
    shutil.copytree(built_repo.repository, repo)
    version_1 = {m: _tree_digest(repo / m / "1") for m in built_repo.models}
    server = start_server(repo, model_control_mode="poll", poll_interval_s=1)
    try:
        client = httpclient.InferenceServerClient(server.http_url.removeprefix("http://"))
        assert client.is_model_ready("shapes", "1")

        result = build_repository(
            shape_model.keras_path,
            BuildOptions(name="shapes", repository=repo, labels=shape_model.labels_path, max_batch_size=8),
        )
        assert result.version == 2
        assert {m: _tree_digest(repo / m / "1") for m in built_repo.models} == version_1
        assert all(existing_versions(repo / m) == [1, 2] for m in result.models)

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if all(client.is_model_ready(m, "2") for m in result.models):
                break
            time.sleep(0.5)
        assert all(client.is_model_ready(m, "2") for m in result.models)

        tensor = httpclient.InferInput("IMAGE", [1, 1], "BYTES")
        tensor.set_data_from_numpy(np.array([[shape_images[0][0].read_bytes()]], dtype=object))
        response = client.infer("shapes", [tensor], model_version="2")
        assert response.get_response()["model_version"] == "2"
        assert response.as_numpy("SCORES").shape == (1, len(shape_model.labels))
        # version_policy latest 1: the old version is no longer served
        assert not client.is_model_ready("shapes_classifier", "1")
    finally:
        server.stop()
