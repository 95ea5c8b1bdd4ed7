"""classify(): images in, labels of the repository's label file out."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from tritonkit.client import Classification, InvalidInput, TritonClient

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
