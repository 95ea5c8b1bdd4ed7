"""Image bytes to a classifier's input tensor: the pure function behind the preprocessor model.

This module is copied next to ``model.py`` into every preprocessor version of a model
repository and imported there by the Python backend stub (stock NGC Triton included), so it
depends on numpy and Pillow only and uses no relative imports.

The pipeline for one image, in order (see :func:`preprocess_image`):

1. refuse empty payloads and payloads over ``max_bytes``;
2. read only the header (``Image.open`` is lazy) and refuse unknown formats and images over
   ``max_pixels`` before any pixel is decoded; Pillow's own decompression-bomb guard becomes an
   :class:`ImageDecodeError` too;
3. decode the first frame (JPEG at a reduced DCT scale when the target is much smaller);
   truncated or corrupt data is refused, never padded;
4. convert to 8-bit RGB (or L): alpha is dropped, 16-bit and 32-bit grey are scaled to 8 bits;
5. resize the whole image to the target size (no crop, aspect not kept), then apply the EXIF
   orientation;
6. scale the values, lay them out as HWC or CHW and cast to the spec's dtype.
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image

Scaling = Literal["inception", "vgg", "unit", "none"]
SCALINGS: tuple[str, ...] = ("inception", "vgg", "unit", "none")
LAYOUTS: tuple[str, ...] = ("NHWC", "NCHW")

DEFAULT_MAX_BYTES = 32 * 1024 * 1024
DEFAULT_MAX_PIXELS = 40_000_000

PREPROCESSOR_INPUT = "IMAGE"
"""Name of the preprocessor model's input: TYPE_STRING, dims [1], one encoded image per row."""
PREPROCESSOR_OUTPUT = "PIXELS"
"""Name of the preprocessor model's output: ``[batch, *ImageSpec.shape]`` of ``ImageSpec.dtype``."""

PARAMETER_KEYS: tuple[str, ...] = (
    "height",
    "width",
    "channels",
    "layout",
    "scaling",
    "dtype",
    "max_bytes",
    "max_pixels",
)
"""The model-config ``parameters`` keys an :class:`ImageSpec` is read from."""

# Caffe/VGG ImageNet channel means, in BGR order (keras.applications.imagenet_utils, mode="caffe").
VGG_MEAN_BGR: tuple[float, float, float] = (103.939, 116.779, 123.68)

# Decoding and resampling quality knobs; see preprocess_image's docstring.
_RESAMPLE = Image.Resampling.BILINEAR
_REDUCING_GAP = 3.0
_DRAFT_GAP = 2.0

# EPS is decoded by running Ghostscript in a subprocess: not something to do with request bytes.
_REFUSED_FORMATS = frozenset({"EPS"})

# EXIF Orientation tag value -> the transpose that undoes it (as PIL.ImageOps.exif_transpose).
_ORIENTATION_TAG = 0x0112
_ORIENTATION_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SWAPS_AXES = frozenset({5, 6, 7, 8})

_HIGH_BIT_GREY_MODES = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N", "F"})


class ImageDecodeError(ValueError):
    """One image could not be turned into a tensor; the message names the problem."""


def _positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an int, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be positive, got {value}")


@dataclass(frozen=True)
class ImageSpec:
    """What the classifier wants: size, layout, channel count, value scaling and dtype.

    ``scaling`` maps the 0..255 pixel values: ``"inception"`` to ``x / 127.5 - 1`` (-1..1),
    ``"vgg"`` to Caffe style (RGB to BGR, minus the ImageNet means :data:`VGG_MEAN_BGR`, no
    std), ``"unit"`` to ``x / 255`` (0..1), ``"none"`` keeps 0..255. ``dtype`` is a numpy dtype
    name (normalised, so ``"f4"`` becomes ``"float32"``); integer dtypes need ``scaling="none"``.
    ``max_bytes`` and ``max_pixels`` bound what one request may make the server decode.
    """

    height: int
    width: int
    channels: int = 3
    layout: str = "NHWC"
    scaling: str = "inception"
    dtype: str = "float32"
    max_bytes: int = DEFAULT_MAX_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS

    def __post_init__(self) -> None:
        for name in ("height", "width", "channels", "max_bytes", "max_pixels"):
            _positive_int(name, getattr(self, name))
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {self.channels}")
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {self.layout!r}")
        if self.scaling not in SCALINGS:
            raise ValueError(f"scaling must be one of {', '.join(SCALINGS)}, got {self.scaling!r}")
        if self.scaling == "vgg" and self.channels != 3:
            raise ValueError("scaling 'vgg' subtracts per-channel BGR means and needs channels=3")
        try:
            dtype = np.dtype(self.dtype)
        except TypeError as exc:
            raise ValueError(f"dtype must be a numpy dtype name, got {self.dtype!r}") from exc
        if dtype.kind == "f":
            pass
        elif dtype.kind in "iu" and np.iinfo(dtype).max >= 255:
            if self.scaling != "none":
                raise ValueError(
                    f"dtype {dtype.name} cannot hold {self.scaling!r}-scaled values; "
                    "use a float dtype or scaling 'none'"
                )
        else:
            raise ValueError(f"dtype must be a float or an integer type that holds 0..255, got {dtype.name}")
        object.__setattr__(self, "dtype", dtype.name)

    @property
    def shape(self) -> tuple[int, int, int]:
        """The shape of one preprocessed image (no batch dimension)."""
        if self.layout == "NHWC":
            return (self.height, self.width, self.channels)
        return (self.channels, self.height, self.width)

    def to_parameters(self) -> dict[str, str]:
        """The spec as Triton model-config ``parameters`` (string values, keys :data:`PARAMETER_KEYS`)."""
        return {
            "height": str(self.height),
            "width": str(self.width),
            "channels": str(self.channels),
            "layout": self.layout,
            "scaling": self.scaling,
            "dtype": self.dtype,
            "max_bytes": str(self.max_bytes),
            "max_pixels": str(self.max_pixels),
        }

    @classmethod
    def from_parameters(cls, params: dict[str, str]) -> ImageSpec:
        """Inverse of :meth:`to_parameters`; keys other than :data:`PARAMETER_KEYS` are ignored.

        ``height`` and ``width`` are required; every problem is a :class:`ValueError` naming the key.
        """

        def integer(key: str, default: int | None = None) -> int:
            if key not in params:
                if default is None:
                    raise ValueError(f"missing image parameter {key!r}")
                return default
            try:
                return int(params[key])
            except ValueError:
                raise ValueError(f"image parameter {key!r} must be an integer, got {params[key]!r}") from None

        return cls(
            height=integer("height"),
            width=integer("width"),
            channels=integer("channels", 3),
            layout=params.get("layout", "NHWC"),
            scaling=params.get("scaling", "inception"),
            dtype=params.get("dtype", "float32"),
            max_bytes=integer("max_bytes", DEFAULT_MAX_BYTES),
            max_pixels=integer("max_pixels", DEFAULT_MAX_PIXELS),
        )


def preprocess_image(data: bytes, spec: ImageSpec, out: np.ndarray | None = None) -> np.ndarray:
    """Decode one encoded image and return the classifier's input tensor for it.

    Returns a C-contiguous array of ``spec.shape`` and ``spec.dtype``; with ``out`` (an array
    of that shape and dtype, e.g. one row of a batch) the result is written there and ``out``
    is returned.

    Anything Pillow reads is accepted (JPEG, PNG, BMP, GIF, WebP, TIFF, ...) except EPS, which
    Pillow renders through a Ghostscript subprocess. Multi-frame images give their first frame.
    Alpha is dropped, not composited (what ``tf.io.decode_image(channels=3)`` and Keras'
    ``load_img`` do, so the server sees what training saw); palette images take their palette
    colours; CMYK goes through Pillow's conversion; 16-bit (``I;16``) and 32-bit integer grey
    are read as 0..65535 and scaled to 0..255, float grey (``F``) is clipped to 0..255.

    The whole image is resized to ``(spec.width, spec.height)`` without crop and without
    keeping the aspect ratio (the ``image_dataset_from_directory`` convention), with Pillow's
    antialiased BILINEAR filter and ``reducing_gap=3.0`` (an integer box reduction first, while
    the image is still more than three times the target: visually indistinguishable from the
    plain filter, and much faster on photos). A JPEG at least four times the target size is
    decoded at a reduced DCT scale (1/2, 1/4 or 1/8 via ``Image.draft``, as ``Image.thumbnail``
    does) that still leaves at least twice the target size. The EXIF orientation is applied
    after the resize (the target size is swapped for rotated images), which equals
    ``ImageOps.exif_transpose`` first, at a fraction of the cost.

    Raises :class:`ImageDecodeError` naming the problem for anything that is not a usable image;
    nothing larger than ``spec.max_pixels`` is ever decoded.
    """
    if out is None:
        out = np.empty(spec.shape, dtype=spec.dtype)
    elif out.shape != spec.shape or out.dtype != np.dtype(spec.dtype):
        raise ValueError(f"out must be {spec.dtype} of shape {spec.shape}, got {out.dtype} {out.shape}")
    with _decoding_warnings():
        pixels = _decode(data, spec)
    _scale_into(pixels, spec, out)
    return out


def preprocess_batch(
    items: Sequence[bytes], spec: ImageSpec, threads: int = 1
) -> tuple[np.ndarray, list[ImageDecodeError | None]]:
    """Preprocess several images into one ``[len(items), *spec.shape]`` array.

    Returns the array and, per item, ``None`` or the :class:`ImageDecodeError` it raised; the
    rows of failed items are zeros. One bad image never stops the others.

    With ``threads > 1`` the images are split into that many contiguous runs, preprocessed at
    the same time (Pillow's decoders and resampling, and numpy, release the GIL), each written
    straight into its rows of the batch; the result is the same as with one thread.
    """
    batch = np.empty((len(items), *spec.shape), dtype=spec.dtype)
    errors: list[ImageDecodeError | None] = [None] * len(items)

    def run(rows: range) -> None:
        for row in rows:
            try:
                _scale_into(_decode(items[row], spec), spec, batch[row])
            except ImageDecodeError as exc:
                batch[row].fill(0)
                errors[row] = exc

    parts = max(1, min(threads, len(items)))
    bounds = [len(items) * k // parts for k in range(parts + 1)]
    runs = [range(bounds[k], bounds[k + 1]) for k in range(parts)]
    with _decoding_warnings():  # once for the batch: the warning filters are process-wide
        if parts == 1:
            run(runs[0])
        else:
            pool = _thread_pool(parts - 1)
            pending = [pool.submit(run, rows) for rows in runs[1:]]
            run(runs[0])
            for future in pending:
                future.result()
    return batch, errors


_POOL_LOCK = threading.Lock()
_POOLS: dict[int, ThreadPoolExecutor] = {}


def _thread_pool(workers: int) -> ThreadPoolExecutor:
    """A process-wide pool of ``workers`` threads, made on first use and kept."""
    with _POOL_LOCK:
        pool = _POOLS.get(workers)
        if pool is None:
            pool = _POOLS[workers] = ThreadPoolExecutor(workers, thread_name_prefix="imaging")
        return pool


def image_bytes(source: Image.Image | str | os.PathLike[str], format: str = "PNG") -> bytes:
    """The bytes to send for an image: a file's contents as they are, or a PIL image encoded.

    A path is read unchanged (no re-encoding, so a JPEG stays that JPEG); a PIL image is saved
    in ``format`` (PNG by default, lossless).
    """
    if isinstance(source, Image.Image):
        buffer = io.BytesIO()
        source.save(buffer, format=format)
        return buffer.getvalue()
    with open(source, "rb") as file:
        return file.read()


def _decode(data: bytes, spec: ImageSpec) -> np.ndarray:
    """Steps 1-5 of the pipeline: a uint8 array of (height, width[, 3]) in RGB or L."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ImageDecodeError(f"expected the encoded image as bytes, got {type(data).__name__}")
    nbytes = memoryview(data).nbytes
    if nbytes == 0:
        raise ImageDecodeError("empty image: 0 bytes")
    if nbytes > spec.max_bytes:
        raise ImageDecodeError(f"image is {nbytes} bytes; the limit is {spec.max_bytes} (max_bytes)")

    with _open(data, spec) as opened:
        return _render(opened, spec)


@contextlib.contextmanager
def _decoding_warnings() -> Iterator[None]:
    """Request bytes make Pillow warn about all sorts of harmless oddities (corrupt EXIF, odd
    palettes): not worth a log line each. Its decompression-bomb warning, given between
    MAX_IMAGE_PIXELS and twice that (above, it raises), is a refusal.

    ``catch_warnings`` changes process-wide state: it is entered once per call of the public
    functions, never by the threads of a batch (a Python-backend instance runs one execute at a
    time in its own process).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        yield


def _open(data: bytes, spec: ImageSpec) -> Image.Image:
    """Read the header only, and refuse unknown formats and too many pixels."""
    try:
        opened = Image.open(io.BytesIO(data), formats=_readable_formats())
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageDecodeError(f"image has too many pixels to decode safely: {exc}") from None
    except Image.UnidentifiedImageError:
        head = bytes(memoryview(data)[:16])
        raise ImageDecodeError(f"not an image Pillow can read (starts with {head!r})") from None
    except Exception as exc:
        raise ImageDecodeError(f"truncated or corrupt image: {exc}") from None
    width, height = opened.size
    if width * height > spec.max_pixels:
        opened.close()
        raise ImageDecodeError(
            f"image is {width}x{height} = {width * height} pixels; "
            f"the limit is {spec.max_pixels} (max_pixels)"
        )
    return opened


def _render(opened: Image.Image, spec: ImageSpec) -> np.ndarray:
    """Decode the first frame, convert, resize and orient it."""
    try:
        if opened.format == "JPEG":
            side = int(max(spec.width, spec.height) * _DRAFT_GAP)
            opened.draft(None, (side, side))  # the orientation is not known yet: ask for a square
        opened.load()
        orientation = _exif_orientation(opened)
        image = _to_8bit(opened, "RGB" if spec.channels == 3 else "L")
        size = (spec.height, spec.width) if orientation in _SWAPS_AXES else (spec.width, spec.height)
        if image.size != size:
            image = image.resize(size, _RESAMPLE, reducing_gap=_REDUCING_GAP)
        if orientation in _ORIENTATION_TRANSPOSE:
            image = image.transpose(_ORIENTATION_TRANSPOSE[orientation])
        return np.asarray(image)
    except ImageDecodeError:
        raise
    except Exception as exc:
        raise ImageDecodeError(f"truncated or corrupt image: {exc}") from None


def _readable_formats() -> list[str]:
    Image.init()
    return [name for name in Image.OPEN if name not in _REFUSED_FORMATS]


def _exif_orientation(image: Image.Image) -> int:
    """The EXIF Orientation (1 when absent); an unreadable EXIF block does not spoil the image."""
    try:
        orientation = image.getexif().get(_ORIENTATION_TAG, 1)
    except Exception:
        return 1
    return orientation if isinstance(orientation, int) else 1


def _to_8bit(image: Image.Image, mode: str) -> Image.Image:
    """Convert a loaded image of any mode to 8-bit ``mode`` ("RGB" or "L"), dropping alpha."""
    if image.mode in _HIGH_BIT_GREY_MODES:
        grey = np.asarray(image)
        if image.mode == "F":
            grey = np.clip(grey, 0.0, 255.0)
        else:
            grey = np.clip(grey, 0, 65535) / 257.0
        image = Image.fromarray(np.rint(grey).astype(np.uint8))
    if image.mode == mode:
        return image
    try:
        return image.convert(mode)
    except ValueError:
        raise ImageDecodeError(f"unsupported image mode {image.mode}") from None


def _scale_into(pixels: np.ndarray, spec: ImageSpec, out: np.ndarray) -> None:
    """Step 6: scale uint8 ``pixels`` (H, W[, C]) into ``out`` in ``spec``'s layout and dtype."""
    if pixels.ndim == 2:
        pixels = pixels[:, :, np.newaxis]
    # Write through an HWC view of ``out`` whatever its layout: no intermediate array.
    target = out.transpose(1, 2, 0) if spec.layout == "NCHW" else out
    if spec.scaling == "none":
        np.copyto(target, pixels, casting="unsafe")
        return
    # Keras computes in float32; do the same, then cast when the output is another float type.
    work = target if out.dtype == np.float32 else np.empty(pixels.shape, dtype=np.float32)
    if spec.scaling == "inception":
        np.divide(pixels, np.float32(127.5), out=work, dtype=np.float32)
        np.subtract(work, np.float32(1.0), out=work)
    elif spec.scaling == "unit":
        np.divide(pixels, np.float32(255.0), out=work, dtype=np.float32)
    else:  # vgg
        np.subtract(
            pixels[:, :, ::-1], np.asarray(VGG_MEAN_BGR, dtype=np.float32), out=work, dtype=np.float32
        )
    if work is not target:
        np.copyto(target, work, casting="unsafe")
