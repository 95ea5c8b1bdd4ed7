"""Images become encoded bytes; Triton's classification strings become typed results."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tritonkit.client import Classification, InvalidInput
from tritonkit.client._classify import encode_images, image_input, parse_classifications, scores_output
from tritonkit.client._status import parse_model_config, parse_model_metadata


def test_classification_strings_are_parsed_best_first_per_image() -> None:
    raw = np.array([[b"0.9:2:tulip", b"0.1:0:rose"], [b"0.7:0:rose", b"0.2:1:a:b"]], dtype=object)
    assert parse_classifications(raw) == [
        [Classification("tulip", 2, 0.9), Classification("rose", 0, 0.1)],
        [Classification("rose", 0, 0.7), Classification("a:b", 1, 0.2)],
    ]


def test_without_labels_the_index_is_the_label() -> None:
    assert parse_classifications(np.array([b"0.5:3"], dtype=object)) == [[Classification("3", 3, 0.5)]]


def test_paths_bytes_and_pil_images_are_encoded(tmp_path: Path) -> None:
    path = tmp_path / "x.jpg"
    Image.new("RGB", (4, 4), (1, 2, 3)).save(path)
    batch = encode_images([path, str(path), b"raw-bytes", Image.new("P", (2, 2))])
    assert batch.shape == (4, 1)
    assert batch[0, 0] == path.read_bytes() == batch[1, 0]
    assert batch[2, 0] == b"raw-bytes"
    assert Image.open(io.BytesIO(batch[3, 0])).format == "PNG"
    assert encode_images(b"one").shape == (1, 1)


def test_bad_images_are_refused() -> None:
    with pytest.raises(InvalidInput, match="no images"):
        encode_images([])
    with pytest.raises(InvalidInput, match="path, bytes or a PIL image"):
        encode_images([42])  # type: ignore[list-item]


def test_the_image_input_and_score_output_are_found_from_the_model() -> None:
    metadata = parse_model_metadata(
        {
            "name": "m",
            "inputs": [{"name": "IMAGE", "datatype": "BYTES", "shape": [-1, 1]}],
            "outputs": [
                {"name": "SCORES", "datatype": "FP32", "shape": [-1, 3]},
                {"name": "EMB", "datatype": "FP32", "shape": [-1, 8]},
            ],
        }
    )
    config = parse_model_config(
        {"name": "m", "output": [{"name": "SCORES", "label_filename": "labels.txt"}, {"name": "EMB"}]}
    )
    assert image_input(metadata) == "IMAGE"
    assert scores_output(metadata, config, None) == "SCORES"
    assert scores_output(metadata, config, "EMB") == "EMB"
    unlabelled = parse_model_config({"name": "m"})
    with pytest.raises(InvalidInput, match="say which one holds the scores"):
        scores_output(metadata, unlabelled, None)
