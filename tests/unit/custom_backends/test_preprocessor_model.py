"""The preprocessor ``model.py``, driven through initialize/execute/finalize with a fake pb_utils."""

from __future__ import annotations

import io
import types
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tritonkit.custom_backends import (
    PREPROCESSOR_DIR,
    PREPROCESSOR_INPUT,
    PREPROCESSOR_OUTPUT,
    ImageSpec,
    preprocess_image,
)

SPEC = ImageSpec(height=6, width=4)


def jpeg(colour: tuple[int, int, int], size: tuple[int, int] = (32, 20)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def images(*items: bytes) -> np.ndarray:
    """A request's IMAGE tensor: [b, 1] of bytes objects, as the stub hands it over."""
    array = np.empty((len(items), 1), dtype=np.object_)
    for row, item in enumerate(items):
        array[row, 0] = item
    return array


def preprocessor_config(spec: ImageSpec = SPEC, data_type: str = "TYPE_FP32", **overrides: object) -> dict:
    config = {
        "name": "flowers_preprocess",
        "backend": "python",
        "max_batch_size": 16,
        "input": [{"name": PREPROCESSOR_INPUT, "data_type": "TYPE_STRING", "dims": [1]}],
        "output": [{"name": PREPROCESSOR_OUTPUT, "data_type": data_type, "dims": list(spec.shape)}],
        "parameters": {key: {"string_value": value} for key, value in spec.to_parameters().items()},
        "dynamic_batching": {},
    }
    config.update(overrides)
    return config


@pytest.fixture
def version_dir(install_backend: Callable[[Path, str], Path]) -> Path:
    return install_backend(PREPROCESSOR_DIR, "flowers_preprocess")


@pytest.fixture
def preprocessor(
    version_dir: Path, load_model: Callable[[Path], types.ModuleType], make_args: Callable[..., dict]
) -> object:
    model = load_model(version_dir).TritonPythonModel()
    model.initialize(make_args(version_dir, preprocessor_config()))
    yield model
    model.finalize()


def test_the_builder_copies_model_and_imaging(version_dir: Path) -> None:
    assert sorted(path.name for path in version_dir.iterdir()) == ["imaging.py", "model.py"]


def test_each_request_of_a_dynamic_batch_gets_its_own_images(
    fake_pb_utils: types.ModuleType, preprocessor
) -> None:
    red, green, blue = jpeg((255, 0, 0)), jpeg((0, 255, 0)), jpeg((0, 0, 255))
    requests = [
        fake_pb_utils.InferenceRequest(IMAGE=images(red, green)),
        fake_pb_utils.InferenceRequest(IMAGE=images(blue)),
        fake_pb_utils.InferenceRequest(IMAGE=images(green, blue, red)),
    ]

    responses = preprocessor.execute(requests)

    assert len(responses) == 3
    for response, sent in zip(responses, [(red, green), (blue,), (green, blue, red)], strict=True):
        pixels = response.output(PREPROCESSOR_OUTPUT)
        assert pixels.shape == (len(sent), *SPEC.shape)
        assert pixels.dtype == np.float32
        np.testing.assert_array_equal(pixels, np.stack([preprocess_image(item, SPEC) for item in sent]))


def test_a_bad_image_fails_only_its_own_request(fake_pb_utils: types.ModuleType, preprocessor) -> None:
    good = jpeg((10, 20, 30))
    requests = [
        fake_pb_utils.InferenceRequest(IMAGE=images(good)),
        fake_pb_utils.InferenceRequest(IMAGE=images(good, b"not an image", b"")),
        fake_pb_utils.InferenceRequest(IMAGE=images(good, good)),
    ]

    first, bad, last = preprocessor.execute(requests)

    assert first.output(PREPROCESSOR_OUTPUT).shape == (1, *SPEC.shape)
    assert last.output(PREPROCESSOR_OUTPUT).shape == (2, *SPEC.shape)
    assert bad.has_error()
    assert bad.output_tensors() == []
    assert bad.error().code() == fake_pb_utils.TritonError.INVALID_ARG
    assert bad.error().message() == (
        "image 1: not an image Pillow can read (starts with b'not an image'); image 2: empty image: 0 bytes"
    )


def test_a_request_without_the_image_input_fails_alone(fake_pb_utils: types.ModuleType, preprocessor) -> None:
    missing, fine = preprocessor.execute(
        [
            fake_pb_utils.InferenceRequest(OTHER=images(b"x")),
            fake_pb_utils.InferenceRequest(IMAGE=images(jpeg((1, 2, 3)))),
        ]
    )
    assert missing.error().message() == "missing input 'IMAGE'"
    assert not fine.has_error()


def test_integer_output_for_unscaled_uint8_specs(
    fake_pb_utils: types.ModuleType, version_dir: Path, load_model, make_args
) -> None:
    spec = ImageSpec(height=3, width=3, layout="NCHW", scaling="none", dtype="uint8")
    model = load_model(version_dir).TritonPythonModel()
    model.initialize(make_args(version_dir, preprocessor_config(spec, "TYPE_UINT8")))

    (response,) = model.execute([fake_pb_utils.InferenceRequest(IMAGE=images(jpeg((255, 255, 255))))])

    pixels = response.output(PREPROCESSOR_OUTPUT)
    assert pixels.dtype == np.uint8
    assert pixels.shape == (1, 3, 3, 3)
    assert (pixels >= 250).all()


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            preprocessor_config(data_type="TYPE_FP16"),
            "output 'PIXELS' is TYPE_FP16 but the image parameters say dtype float32",
        ),
        (
            preprocessor_config(output=[{"name": "PIXELS", "data_type": "TYPE_FP32", "dims": [4, 6, 3]}]),
            r"output 'PIXELS' has dims \[4, 6, 3\] but the image parameters give shape \[6, 4, 3\]",
        ),
        (preprocessor_config(output=[]), "config has no output 'PIXELS'"),
        (preprocessor_config(max_batch_size=0), "needs max_batch_size > 0"),
        (
            preprocessor_config(input=[{"name": "IMAGE", "data_type": "TYPE_UINT8", "dims": [1]}]),
            "needs a TYPE_STRING input 'IMAGE'",
        ),
        (
            preprocessor_config(input=[{"name": "IMAGE", "data_type": "TYPE_STRING", "dims": [2]}]),
            r"dims \[1\]",
        ),
        (
            preprocessor_config(
                parameters={"height": {"string_value": "tall"}, "width": {"string_value": "4"}}
            ),
            "bad image parameters in config.pbtxt: image parameter 'height' must be an integer",
        ),
    ],
    ids=["dtype", "dims", "no output", "no batching", "input type", "input dims", "parameters"],
)
def test_initialize_refuses_a_config_that_disagrees_with_itself(
    version_dir: Path, load_model, make_args, config: dict, message: str
) -> None:
    model = load_model(version_dir).TritonPythonModel()
    with pytest.raises(ValueError, match=message):
        model.initialize(make_args(version_dir, config))


def test_dims_may_arrive_as_strings(
    fake_pb_utils: types.ModuleType, version_dir: Path, load_model, make_args
) -> None:
    config = preprocessor_config()
    config["input"][0]["dims"] = ["1"]
    config["output"][0]["dims"] = [str(dim) for dim in SPEC.shape]
    model = load_model(version_dir).TritonPythonModel()
    model.initialize(make_args(version_dir, config))
    (response,) = model.execute([fake_pb_utils.InferenceRequest(IMAGE=images(jpeg((0, 0, 0))))])
    assert response.output(PREPROCESSOR_OUTPUT).shape == (1, *SPEC.shape)
