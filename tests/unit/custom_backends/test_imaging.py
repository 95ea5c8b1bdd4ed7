"""The pure image pipeline: formats, modes, orientation, resizing, scaling, layouts and refusals."""

from __future__ import annotations

import io
import struct
import time
import zlib
from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image, ImageFile, ImageOps

from tritonkit.custom_backends import (
    VGG_MEAN_BGR,
    ImageDecodeError,
    ImageSpec,
    image_bytes,
    preprocess_batch,
    preprocess_image,
)

RAW = ImageSpec(height=8, width=8, scaling="none")


def encode(image: Image.Image, format: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def solid(colour: tuple[int, ...], mode: str = "RGB", size: tuple[int, int] = (24, 16)) -> Image.Image:
    return Image.new(mode, size, colour)


def palette_png_with_transparency() -> bytes:
    image = Image.new("P", (16, 16), 1)
    image.putpalette([255, 0, 0, 0, 255, 0] + [0, 0, 0] * 254)
    return encode(image, "PNG", transparency=1)  # the whole image is the transparent index


def sixteen_bit_png(value: int) -> bytes:
    image = Image.fromarray(np.full((16, 24), value, dtype=np.uint16))
    assert image.mode == "I;16"
    return encode(image, "PNG")


def animated_gif() -> bytes:
    frames = [solid((255, 0, 0)), solid((0, 0, 255)), solid((0, 255, 0))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert Image.open(io.BytesIO(data)).n_frames == 3
    return data


# name -> (encoded image, the RGB colour it should come out as, tolerance)
FORMATS: dict[str, tuple[Callable[[], bytes], tuple[int, int, int], int]] = {
    "rgb jpeg": (lambda: encode(solid((200, 30, 60)), "JPEG", quality=95), (200, 30, 60), 4),
    "rgba png, alpha dropped": (lambda: encode(solid((10, 200, 30, 0), "RGBA"), "PNG"), (10, 200, 30), 0),
    "palette png with transparency": (palette_png_with_transparency, (0, 255, 0), 0),
    "grey png": (lambda: encode(solid(77, "L"), "PNG"), (77, 77, 77), 0),
    "grey+alpha png": (lambda: encode(solid((120, 0), "LA"), "PNG"), (120, 120, 120), 0),
    "bilevel png": (lambda: encode(solid(1, "1"), "PNG"), (255, 255, 255), 0),
    "cmyk jpeg": (lambda: encode(solid((255, 0, 0)).convert("CMYK"), "JPEG", quality=95), (255, 0, 0), 6),
    "16-bit png": (lambda: sixteen_bit_png(51400), (200, 200, 200), 0),
    "bmp": (lambda: encode(solid((1, 2, 3)), "BMP"), (1, 2, 3), 0),
    "animated gif, first frame": (animated_gif, (255, 0, 0), 0),
    "lossless webp": (lambda: encode(solid((9, 99, 199)), "WEBP", lossless=True), (9, 99, 199), 0),
    "lossy webp": (lambda: encode(solid((9, 99, 199)), "WEBP", quality=90), (9, 99, 199), 6),
    "tiff": (lambda: encode(solid((250, 128, 5)), "TIFF"), (250, 128, 5), 0),
    "32-bit int tiff": (lambda: encode(solid(65535, "I"), "TIFF"), (255, 255, 255), 0),
    "float tiff": (lambda: encode(solid(100.0, "F"), "TIFF"), (100, 100, 100), 0),
}


@pytest.mark.parametrize("name", FORMATS)
def test_every_format_and_mode_decodes_to_rgb_with_the_right_colour(name: str) -> None:
    make, colour, tolerance = FORMATS[name]
    pixels = preprocess_image(make(), RAW)
    assert pixels.shape == (8, 8, 3)
    assert pixels.dtype == np.float32
    assert np.abs(pixels - np.asarray(colour, dtype=np.float32)).max() <= tolerance


@pytest.mark.parametrize("name", FORMATS)
def test_every_format_gives_a_contiguous_tensor_of_the_spec_shape_and_range(name: str) -> None:
    spec = ImageSpec(height=5, width=7)
    pixels = preprocess_image(FORMATS[name][0](), spec)
    assert pixels.shape == (5, 7, 3)
    assert pixels.dtype == np.float32
    assert pixels.flags.c_contiguous
    assert pixels.min() >= -1.0
    assert pixels.max() <= 1.0


def test_sixteen_bit_grey_keeps_its_full_range() -> None:
    assert preprocess_image(sixteen_bit_png(65535), RAW).min() == 255
    assert preprocess_image(sixteen_bit_png(0), RAW).max() == 0
    assert preprocess_image(sixteen_bit_png(32896), RAW)[0, 0, 0] == 128  # 32896 / 257 = 128


def test_exif_orientation_is_applied() -> None:
    stored = Image.new("RGB", (40, 20), (0, 0, 255))
    stored.paste((255, 0, 0), (0, 0, 20, 20))  # left half red
    exif = Image.Exif()
    exif[0x0112] = 6  # the camera was turned: rotate 90° clockwise to display
    data = encode(stored, "JPEG", quality=95, exif=exif.tobytes())
    spec = ImageSpec(height=30, width=10, scaling="none")

    pixels = preprocess_image(data, spec)

    decoded = Image.open(io.BytesIO(data)).convert("RGB")
    reference = decoded.transpose(Image.Transpose.ROTATE_270).resize((10, 30), Image.Resampling.BILINEAR)
    assert reference.size == ImageOps.exif_transpose(decoded).resize((10, 30)).size
    assert np.abs(pixels - np.asarray(reference, dtype=np.float32)).max() <= 2
    assert np.abs(pixels[:12] - (255, 0, 0)).max() <= 8  # the red half is on top now
    assert np.abs(pixels[-12:] - (0, 0, 255)).max() <= 8


def test_whole_image_is_resized_without_crop_or_aspect() -> None:
    image = Image.new("RGB", (60, 20), (0, 0, 0))
    image.paste((255, 255, 255), (0, 0, 30, 20))  # left half white
    pixels = preprocess_image(encode(image, "PNG"), ImageSpec(height=10, width=10, scaling="none"))
    assert pixels.shape == (10, 10, 3)
    assert (pixels[:, :4] == 255).all()  # nothing was cropped away: both halves remain
    assert (pixels[:, -4:] == 0).all()


def test_big_jpeg_decoded_at_reduced_scale_looks_like_a_full_decode() -> None:
    y, x = np.mgrid[0:1200, 0:1600]
    rgb = np.stack([x * 255 // 1600, y * 255 // 1200, (x + y) % 256], axis=-1).astype(np.uint8)
    data = encode(Image.fromarray(rgb), "JPEG", quality=92)
    spec = ImageSpec(height=64, width=64, scaling="none")

    pixels = preprocess_image(data, spec)

    full = Image.open(io.BytesIO(data)).convert("RGB").resize((64, 64), Image.Resampling.BILINEAR)
    difference = np.abs(pixels - np.asarray(full, dtype=np.float32))
    assert difference.mean() < 1.5
    assert difference.max() < 16


RED = encode(solid((255, 0, 0)), "PNG")


@pytest.mark.parametrize(
    ("scaling", "expected"),
    [
        ("inception", [1.0, -1.0, -1.0]),
        ("unit", [1.0, 0.0, 0.0]),
        ("none", [255.0, 0.0, 0.0]),
        ("vgg", [0.0 - VGG_MEAN_BGR[0], 0.0 - VGG_MEAN_BGR[1], 255.0 - VGG_MEAN_BGR[2]]),
    ],
)
def test_scaling_gives_exact_values_for_pure_red(scaling: str, expected: list[float]) -> None:
    pixels = preprocess_image(RED, ImageSpec(height=4, width=4, scaling=scaling))
    np.testing.assert_array_equal(pixels, np.broadcast_to(np.asarray(expected, dtype=np.float32), (4, 4, 3)))


def test_vgg_values_are_bgr_minus_the_imagenet_means() -> None:
    pixels = preprocess_image(encode(solid((10, 20, 30)), "PNG"), ImageSpec(height=2, width=2, scaling="vgg"))
    np.testing.assert_allclose(pixels[0, 0], [30 - 103.939, 20 - 116.779, 10 - 123.68], rtol=1e-6)


def test_nchw_layout_puts_channels_first() -> None:
    pixels = preprocess_image(RED, ImageSpec(height=4, width=6, layout="NCHW"))
    assert pixels.shape == (3, 4, 6)
    assert pixels.flags.c_contiguous
    assert (pixels[0] == 1.0).all()
    assert (pixels[1:] == -1.0).all()


@pytest.mark.parametrize(("layout", "shape"), [("NHWC", (4, 6, 1)), ("NCHW", (1, 4, 6))])
def test_one_channel_gives_luminance(layout: str, shape: tuple[int, int, int]) -> None:
    pixels = preprocess_image(RED, ImageSpec(height=4, width=6, channels=1, layout=layout, scaling="none"))
    assert pixels.shape == shape
    assert (pixels == 76).all()  # ITU-R 601 luma of pure red


@pytest.mark.parametrize("dtype", ["uint8", "int32"])
def test_integer_dtype_carries_raw_values(dtype: str) -> None:
    pixels = preprocess_image(RED, ImageSpec(height=2, width=2, scaling="none", dtype=dtype))
    assert pixels.dtype == np.dtype(dtype)
    assert pixels[0, 0].tolist() == [255, 0, 0]


@pytest.mark.parametrize("dtype", ["float16", "float64"])
def test_other_float_dtypes_are_scaled_then_cast(dtype: str) -> None:
    pixels = preprocess_image(RED, ImageSpec(height=2, width=2, dtype=dtype, layout="NCHW"))
    assert pixels.dtype == np.dtype(dtype)
    assert pixels[:, 0, 0].tolist() == [1.0, -1.0, -1.0]


def test_out_receives_the_result_in_place() -> None:
    spec = ImageSpec(height=3, width=3)
    out = np.zeros(spec.shape, dtype=np.float32)
    assert preprocess_image(RED, spec, out=out) is out
    assert (out[..., 0] == 1.0).all()
    with pytest.raises(ValueError, match="out must be float32 of shape"):
        preprocess_image(RED, spec, out=np.zeros((3, 3, 3), dtype=np.float64))


def test_batch_reports_bad_items_without_stopping_the_good_ones() -> None:
    spec = ImageSpec(height=2, width=2)
    batch, errors = preprocess_batch([RED, b"", RED], spec)
    assert batch.shape == (3, 2, 2, 3)
    assert errors[0] is None
    assert errors[2] is None
    assert isinstance(errors[1], ImageDecodeError)
    assert (batch[1] == 0).all()
    np.testing.assert_array_equal(batch[2], preprocess_image(RED, spec))


def test_image_bytes_reads_files_unchanged_and_encodes_pil_images(tmp_path) -> None:
    path = tmp_path / "photo.jpg"
    path.write_bytes(encode(solid((1, 2, 3)), "JPEG"))
    assert image_bytes(path) == path.read_bytes()
    assert image_bytes(str(path)) == path.read_bytes()
    decoded = Image.open(io.BytesIO(image_bytes(solid((1, 2, 3)))))
    assert decoded.format == "PNG"
    assert decoded.getpixel((0, 0)) == (1, 2, 3)


# ---- refusals -------------------------------------------------------------------------------

JPEG = encode(Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)), "JPEG")
PNG = encode(Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8)), "PNG")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", r"^empty image: 0 bytes$"),
        (b"hello, this is plain text", r"^not an image Pillow can read \(starts with b'hello, this is p'\)$"),
        (b"\x89PNX" + PNG[4:], r"^not an image Pillow can read \(starts with b'\\x89PNX"),
        (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", r"^not an image Pillow can read"),
        (JPEG[: len(JPEG) // 2], r"^truncated or corrupt image: image file is truncated"),
        (PNG[: len(PNG) // 2], r"^truncated or corrupt image: image file is truncated"),
        ("a string, not bytes", r"^expected the encoded image as bytes, got str$"),
    ],
    ids=["empty", "text", "wrong magic", "eps", "truncated jpeg", "truncated png", "not bytes"],
)
def test_unusable_payloads_are_refused_with_their_reason(data: bytes, message: str) -> None:
    with pytest.raises(ImageDecodeError, match=message):
        preprocess_image(data, ImageSpec(height=4, width=4))


def test_payload_over_max_bytes_is_refused() -> None:
    spec = ImageSpec(height=4, width=4, max_bytes=1000)
    with pytest.raises(
        ImageDecodeError, match=rf"^image is {len(PNG)} bytes; the limit is 1000 \(max_bytes\)$"
    ):
        preprocess_image(PNG, spec)


def png_declaring(width: int, height: int) -> bytes:
    """A real 1x1 PNG whose IHDR claims another size (CRC fixed), so no pixels back it up."""
    data = bytearray(encode(Image.new("L", (1, 1)), "PNG"))
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Records every ``ImageFile.load`` call: a refused bomb must never get that far."""
    calls: list[object] = []
    real_load = ImageFile.ImageFile.load

    def load(self: ImageFile.ImageFile):  # type: ignore[no-untyped-def]
        calls.append(self)
        return real_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    return calls


@pytest.mark.parametrize(
    ("width", "height", "max_pixels", "message"),
    [
        (
            9000,
            9000,
            40_000_000,
            r"^image is 9000x9000 = 81000000 pixels; the limit is 40000000 \(max_pixels\)$",
        ),
        (30000, 30000, 40_000_000, r"too many pixels.*900000000 pixels"),  # Pillow's own error
        (10000, 10000, 10**9, r"too many pixels.*100000000 pixels"),  # Pillow's own warning
    ],
    ids=["over max_pixels", "pillow error", "pillow warning"],
)
def test_decompression_bomb_is_refused_from_its_header(
    loads: list[object], width: int, height: int, max_pixels: int, message: str
) -> None:
    spec = ImageSpec(height=4, width=4, max_pixels=max_pixels)
    started = time.perf_counter()
    with pytest.raises(ImageDecodeError, match=message):
        preprocess_image(png_declaring(width, height), spec)
    assert time.perf_counter() - started < 0.5
    assert loads == []


def test_image_just_within_max_pixels_is_decoded(loads: list[object]) -> None:
    data = encode(solid((0, 0, 0), size=(10, 10)), "PNG")
    assert preprocess_image(data, ImageSpec(height=4, width=4, max_pixels=100)).shape == (4, 4, 3)
    assert loads  # the counter does see real decodes
    with pytest.raises(ImageDecodeError, match="max_pixels"):
        preprocess_image(data, ImageSpec(height=4, width=4, max_pixels=99))


# ---- ImageSpec -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"height": 0}, "height must be positive, got 0"),
        ({"width": True}, "width must be an int, got True"),
        ({"channels": 2}, "channels must be 1 or 3, got 2"),
        ({"layout": "HWC"}, "layout must be one of NHWC, NCHW, got 'HWC'"),
        ({"scaling": "torch"}, "scaling must be one of inception, vgg, unit, none, got 'torch'"),
        ({"scaling": "vgg", "channels": 1}, "scaling 'vgg' .* needs channels=3"),
        ({"dtype": "bogus"}, "dtype must be a numpy dtype name, got 'bogus'"),
        ({"dtype": "int8", "scaling": "none"}, "holds 0..255, got int8"),
        ({"dtype": "uint8"}, "dtype uint8 cannot hold 'inception'-scaled values"),
        ({"dtype": "str"}, "dtype must be a float or an integer type"),
        ({"max_bytes": 0}, "max_bytes must be positive"),
        ({"max_pixels": -1}, "max_pixels must be positive"),
    ],
)
def test_image_spec_refuses_bad_fields(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ImageSpec(**{"height": 4, "width": 4, **fields})  # type: ignore[arg-type]


def test_image_spec_normalises_dtype_names() -> None:
    assert ImageSpec(height=1, width=1, dtype="f4").dtype == "float32"


def test_image_spec_round_trips_through_parameters() -> None:
    spec = ImageSpec(
        height=5, width=7, channels=1, layout="NCHW", scaling="unit", dtype="float16", max_bytes=9
    )
    params = spec.to_parameters()
    assert all(isinstance(value, str) for value in params.values())
    assert ImageSpec.from_parameters({**params, "EXECUTION_ENV_PATH": "ignored"}) == spec
    assert ImageSpec.from_parameters({"height": "2", "width": "3"}) == ImageSpec(height=2, width=3)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"width": "3"}, "missing image parameter 'height'"),
        ({"height": "2", "width": "wide"}, "image parameter 'width' must be an integer, got 'wide'"),
        ({"height": "2", "width": "3", "layout": "nhwc"}, "layout must be one of"),
    ],
)
def test_image_spec_from_parameters_names_the_bad_key(params: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ImageSpec.from_parameters(params)
