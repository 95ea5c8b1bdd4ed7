"""Keras model -> build-repo -> embedded Triton: scores, labels, layout and bad input, both protocols.

These tests talk to the server with plain ``tritonclient`` so that they check the repository
itself, independently of tritonkit's own client SDK.
"""

from __future__ import annotations

import concurrent.futures
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from google.protobuf import json_format
from tritonclient.utils import InferenceServerException

from testsupport import ShapeModel
from tritonkit.custom_backends import ImageSpec, preprocess_image
from tritonkit.repository import BuildResult
from tritonkit.server import EmbeddedServer

pytestmark = pytest.mark.integration

PROTOCOLS = ("http", "grpc")


def _client(server: EmbeddedServer, protocol: str) -> Any:
    if protocol == "http":
        return httpclient.InferenceServerClient(server.http_url.removeprefix("http://"), concurrency=8)
    return grpcclient.InferenceServerClient(server.grpc_url.removeprefix("grpc://"))


def _module(protocol: str) -> Any:
    return httpclient if protocol == "http" else grpcclient


def _image_request(protocol: str, images: list[bytes], class_count: int = 0) -> tuple[list[Any], list[Any]]:
    module = _module(protocol)
    tensor = module.InferInput("IMAGE", [len(images), 1], "BYTES")
    tensor.set_data_from_numpy(np.array(images, dtype=object).reshape(-1, 1))
    if protocol == "http":
        output = module.InferRequestedOutput("SCORES", binary_data=True, class_count=class_count)
    else:
        output = module.InferRequestedOutput("SCORES", class_count=class_count)
    return [tensor], [output]


def _keras_scores(shape_model: ShapeModel, pixels: np.ndarray) -> np.ndarray:
    import keras

    model = keras.models.load_model(shape_model.keras_path, compile=False)
    return np.asarray(model.predict(pixels, verbose=0))


def test_the_trained_demo_model_really_learned(shape_model: ShapeModel) -> None:
    assert shape_model.accuracy > 0.8  # 4 classes: chance is 0.25


def test_build_publishes_three_models_at_version_1(built_repo: BuildResult) -> None:
    assert built_repo.version == 1
    assert built_repo.models == ("shapes_classifier", "shapes_preprocess", "shapes")
    assert built_repo.scaling == "none"  # the Keras model has a Rescaling layer
    assert built_repo.parity is not None and built_repo.parity.passed
    for model in built_repo.models:
        assert (built_repo.repository / model / "config.pbtxt").is_file()
        assert (built_repo.repository / model / "1" / "tritonkit.json").is_file()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_ensemble_scores_match_keras_on_the_same_preprocessed_input(
    server: EmbeddedServer,
    shape_model: ShapeModel,
    shape_images: list[tuple[Path, str]],
    protocol: str,
) -> None:
    encoded = [path.read_bytes() for path, _ in shape_images[:8]]
    spec = ImageSpec(height=64, width=64, channels=3, layout="NHWC", scaling="none")
    expected = _keras_scores(shape_model, np.stack([preprocess_image(data, spec) for data in encoded]))

    client = _client(server, protocol)
    inputs, outputs = _image_request(protocol, encoded)
    result = client.infer("shapes", inputs, outputs=outputs)
    scores = result.as_numpy("SCORES")

    assert scores.shape == (len(encoded), len(shape_model.labels))
    np.testing.assert_allclose(scores, expected, atol=1e-4)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_class_count_returns_labels_from_the_label_file(
    server: EmbeddedServer, shape_model: ShapeModel, shape_images: list[tuple[Path, str]], protocol: str
) -> None:
    client = _client(server, protocol)
    correct = 0
    for path, truth in shape_images:
        inputs, outputs = _image_request(protocol, [path.read_bytes()], class_count=2)
        entries = client.infer("shapes", inputs, outputs=outputs).as_numpy("SCORES")
        assert entries.shape == (1, 2)
        score, index, label = entries[0, 0].decode().split(":")
        assert label == shape_model.labels[int(index)]
        assert 0.0 <= float(score) <= 1.0
        correct += label == truth
    assert correct >= len(shape_images) - 2


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_classifier_alone_answers_an_nhwc_tensor_request(
    server: EmbeddedServer, shape_images: list[tuple[Path, str]], protocol: str
) -> None:
    client = _client(server, protocol)
    config = client.get_model_config("shapes_classifier")
    config = config["config"] if protocol == "grpc" and isinstance(config, dict) else config
    text = str(config)
    assert "FORMAT_NHWC" in text
    metadata = client.get_model_metadata("shapes_classifier")
    input_name = metadata["inputs"][0]["name"] if protocol == "http" else metadata.inputs[0].name

    spec = ImageSpec(height=64, width=64, channels=3, layout="NHWC", scaling="none")
    pixels = np.stack([preprocess_image(p.read_bytes(), spec) for p, _ in shape_images[:3]])
    module = _module(protocol)
    tensor = module.InferInput(input_name, list(pixels.shape), "FP32")
    tensor.set_data_from_numpy(pixels)
    ensemble_inputs, ensemble_outputs = _image_request(
        protocol, [p.read_bytes() for p, _ in shape_images[:3]]
    )
    direct = client.infer("shapes_classifier", [tensor]).as_numpy(_output_name(client, protocol))
    via_ensemble = client.infer("shapes", ensemble_inputs, outputs=ensemble_outputs).as_numpy("SCORES")
    np.testing.assert_allclose(direct, via_ensemble, atol=1e-6)


def _output_name(client: Any, protocol: str) -> str:
    metadata = client.get_model_metadata("shapes_classifier")
    return str(metadata["outputs"][0]["name"] if protocol == "http" else metadata.outputs[0].name)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_corrupt_image_in_a_concurrent_burst_fails_alone(
    server: EmbeddedServer, shape_images: list[tuple[Path, str]], protocol: str
) -> None:
    good = [path.read_bytes() for path, _ in shape_images[:7]]
    corrupt = good[0][: len(good[0]) // 3]  # a truncated JPEG
    burst = [*good[:3], corrupt, *good[3:]]

    def send(data: bytes) -> np.ndarray | Exception:
        client = _client(server, protocol)  # tritonclient's sync HTTP client is not thread-safe
        inputs, outputs = _image_request(protocol, [data])
        try:
            return client.infer("shapes", inputs, outputs=outputs).as_numpy("SCORES")
        except InferenceServerException as exc:
            return exc

    with concurrent.futures.ThreadPoolExecutor(len(burst)) as pool:
        results = list(pool.map(send, burst))

    failures = [i for i, r in enumerate(results) if isinstance(r, Exception)]
    assert failures == [3]
    assert "truncated" in str(results[3]).lower() or "corrupt" in str(results[3]).lower()
    assert all(isinstance(r, np.ndarray) and r.shape == (1, 4) for i, r in enumerate(results) if i != 3)
    client = _client(server, protocol)
    assert client.is_server_ready() and client.is_model_ready("shapes")
    # the burst really met in dynamic batches of the preprocessor (20 ms queue delay)
    stats = client.get_inference_statistics("shapes_preprocess")
    stats = (
        stats if protocol == "http" else json_format.MessageToDict(stats, preserving_proto_field_name=True)
    )
    batch_sizes = [int(b["batch_size"]) for b in stats["model_stats"][0]["batch_stats"]]
    assert max(batch_sizes) > 1
