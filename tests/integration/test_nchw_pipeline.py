"""A channels-first (NCHW) classifier end to end: the configs say NCHW, and the served ensemble
computes what onnxruntime computes on the same image preprocessed channels-first."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from PIL import Image

from testsupport import make_onnx_classifier, start_server
from tritonkit.custom_backends import ImageSpec, preprocess_image
from tritonkit.repository import BuildOptions, build_repository, parse_config

pytestmark = pytest.mark.integration


def _striped_png() -> bytes:
    """Red, green and blue stripes of unequal width: any mix-up of the channel axis changes the
    per-channel means the tiny classifier scores."""
    pixels = np.zeros((40, 60, 3), dtype=np.uint8)
    pixels[:, :10, 0] = 250
    pixels[:, 10:35, 1] = 200
    pixels[:, 35:, 2] = 120
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def test_an_nchw_model_builds_nchw_configs_and_the_served_ensemble_matches_onnxruntime(
    tmp_path: Path,
) -> None:
    model = make_onnx_classifier(tmp_path / "nchw.onnx", layout="NCHW", size=24, seed=3)
    labels = tmp_path / "labels.txt"
    labels.write_text("w\nx\ny\nz\n")
    repo = tmp_path / "repo"
    result = build_repository(model, BuildOptions(name="chw", repository=repo, labels=labels))

    classifier = parse_config((repo / "chw_classifier" / "config.pbtxt").read_text())
    (pixels,) = classifier.input
    assert pixels.format == pixels.FORMAT_NCHW and list(pixels.dims) == [3, 24, 24]
    preprocess = parse_config((repo / "chw_preprocess" / "config.pbtxt").read_text())
    parameters = {key: value.string_value for key, value in preprocess.parameters.items()}
    assert parameters["layout"] == "NCHW"
    assert list(preprocess.output[0].dims) == [3, 24, 24]
    assert result.parity is not None and result.parity.passed

    image = _striped_png()
    tensor = preprocess_image(image, ImageSpec.from_parameters(parameters))
    assert tensor.shape == (3, 24, 24)
    session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    (expected,) = session.run(None, {"image": tensor[None]})

    server = start_server(repo)
    try:
        http = httpclient.InferenceServerClient(server.http_url.removeprefix("http://"))
        request = httpclient.InferInput("IMAGE", [1, 1], "BYTES")
        request.set_data_from_numpy(np.array([[image]], dtype=object))
        scores = http.infer("chw", [request]).as_numpy("SCORES")
        np.testing.assert_allclose(scores, expected, atol=1e-5)

        # The classifier alone takes an NCHW tensor, as Triton's image_client.py would send it.
        raw = grpcclient.InferInput("image", [1, 3, 24, 24], "FP32")
        raw.set_data_from_numpy(tensor[None])
        grpc = grpcclient.InferenceServerClient(server.grpc_url.removeprefix("grpc://"))
        top = grpc.infer(
            "chw_classifier", [raw], outputs=[grpcclient.InferRequestedOutput("probs", class_count=1)]
        ).as_numpy("probs")
        best = int(np.argmax(expected[0]))
        assert top[0][0].decode().split(":")[1:] == [str(best), "wxyz"[best]]
        http.close()
        grpc.close()
    finally:
        server.stop()
