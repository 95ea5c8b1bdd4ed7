"""classify(): images in, labels of the repository's label file out."""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from PIL import Image

from tritonkit.client import Classification, InvalidInput, TritonClient

if TYPE_CHECKING:
    from conftest import TCPProxy

pytestmark = pytest.mark.integration

LABELS = ["red", "green", "blue"]


def _png(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def test_classify_returns_the_labels_of_the_label_file(client: TritonClient, tmp_path: Path) -> None:
    labels = (Path(__file__).parent / "models" / "tiny_classifier" / "labels.txt").read_text().split()
    assert labels == LABELS
    path = tmp_path / "blue.jpg"
    Image.new("RGB", (20, 12), (0, 0, 250)).save(path, format="JPEG")
    images = [_png((240, 10, 10)), Image.new("RGB", (8, 8), (5, 230, 5)), path, str(path)]
    results = client.classify("tiny_classifier", images, top_k=3)
    assert [r[0].label for r in results] == ["red", "green", "blue", "blue"]
    for classes in results:
        assert sorted(c.label for c in classes) == sorted(LABELS)
        assert [c.score for c in classes] == sorted((c.score for c in classes), reverse=True)
        assert all(LABELS[c.index] == c.label for c in classes)
    assert isinstance(results[0][0], Classification)


def test_classify_takes_one_image_and_limits_to_top_k(client: TritonClient) -> None:
    (only,) = client.classify("tiny_classifier", _png((250, 0, 0)), top_k=1)
    assert len(only) == 1 and only[0].label == "red" and only[0].index == 0
    assert 0.9 < only[0].score <= 1.0


def test_classify_splits_more_images_than_the_batch_limit(client: TritonClient) -> None:
    colours = [(250, 0, 0), (0, 250, 0), (0, 0, 250)] * 7
    results = client.classify("tiny_classifier", [_png(c) for c in colours], top_k=2)
    assert [r[0].label for r in results] == LABELS * 7


def test_classify_refuses_a_model_that_does_not_take_images(client: TritonClient) -> None:
    with pytest.raises(InvalidInput, match="does not take encoded images"):
        client.classify("scores", _png((1, 2, 3)))


def test_classify_refuses_an_unreadable_file(client: TritonClient, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="cannot read image"):
        client.classify("tiny_classifier", tmp_path / "missing.png")


def _noise_png(size: int) -> bytes:
    pixels = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def test_classify_refuses_an_oversized_image_before_sending_any_of_the_batch(
    wire_proxy: tuple[str, TCPProxy],
) -> None:
    url, proxy = wire_proxy
    small, big = _png((250, 0, 0)), _noise_png(48)
    assert 8 * (len(small) + 4) < 2000 < len(big)
    # one request at a time: a check made request by request would have sent the first
    with TritonClient(url, max_request_bytes=2000, concurrency=1) as client:
        assert client.classify("tiny_classifier", small, top_k=1)[0][0].label == "red"
        assert small in proxy.sent
        proxy.clear()
        # nine images for a max_batch_size of 8: the first request would fit, the second not
        with pytest.raises(InvalidInput) as caught:
            client.classify("tiny_classifier", [small] * 8 + [big])
    message = str(caught.value)
    assert f"(request 2 of 2: rows 8 to 8) would send {len(big) + 4:,} bytes" in message
    assert "limit of 2,000 bytes" in message and "max_request_bytes=" in message
    assert small not in proxy.sent and big not in proxy.sent
