"""Publishing new versions into a repository a server polls, while clients keep sending: nothing fails."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import tritonclient.http as httpclient
from PIL import Image

from testsupport import make_onnx_classifier, start_server
from tritonkit.repository import BuildOptions, build_repository

pytestmark = pytest.mark.integration


def _png(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (48, 48), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def test_publishing_under_load_fails_no_request_and_switches_version(tmp_path: Path) -> None:
    first = make_onnx_classifier(tmp_path / "v1.onnx", seed=1)
    second = make_onnx_classifier(tmp_path / "v2.onnx", seed=2)
    repo = tmp_path / "repo"
    build_repository(first, BuildOptions(name="tiny", repository=repo))
    server = start_server(repo, model_control_mode="poll", poll_interval_s=1)
    image = _png((30, 160, 90))
    failures: list[str] = []
    answers: list[np.ndarray] = []
    stop = threading.Event()

    def client_loop() -> None:
        client = httpclient.InferenceServerClient(server.http_url.removeprefix("http://"))
        try:
            while not stop.is_set():
                tensor = httpclient.InferInput("IMAGE", [1, 1], "BYTES")
                tensor.set_data_from_numpy(np.array([[image]], dtype=object))
                try:
                    answers.append(client.infer("tiny", [tensor]).as_numpy("SCORES")[0])
                except Exception as exc:
                    failures.append(str(exc))
        finally:
            client.close()

    threads = [threading.Thread(target=client_loop) for _ in range(4)]
    try:
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        before = len(answers)
        build_repository(second, BuildOptions(name="tiny", repository=repo))
        control = httpclient.InferenceServerClient(server.http_url.removeprefix("http://"))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (
            control.is_model_ready("tiny", "2") and not control.is_model_ready("tiny_classifier", "1")
        ):
            time.sleep(0.25)
        time.sleep(2.0)  # keep sending after the switch
        control.close()
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        server.stop()

    assert failures == [], failures[:5]
    assert before > 0 and len(answers) > before + 20
    distinct = {tuple(np.round(a, 5)) for a in answers}
    assert len(distinct) == 2  # the old model's answer, then the new one's: never anything else
    assert tuple(np.round(answers[-1], 5)) != tuple(np.round(answers[0], 5))
