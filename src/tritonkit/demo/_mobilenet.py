"""MobileNet v1 for benchmarks and soaks: the real architecture, weights we are allowed to have.

Pretrained weights cannot be downloaded here, so the network keeps Keras' random initialisation
(``weights=None``); its BatchNorm statistics are then calibrated on one batch of images, so that
activations have realistic ranges and the scores vary from image to image instead of collapsing
to one class.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tritonkit.custom_backends import ImageSpec, preprocess_image

from ._shapes import make_shapes


def build_mobilenet(path: Path, *, size: int = 224, calibration_images: int = 32, seed: int = 0) -> Path:
    """Save a calibrated MobileNet v1 (``size`` x ``size``, 1000 classes) as a .keras file."""
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.applications.MobileNet(weights=None, input_shape=(size, size, 3), classes=1000)
    spec = ImageSpec(height=size, width=size, scaling="inception")
    images, _ = make_shapes(calibration_images, seed=seed, size=(640, 480))
    batch = np.stack([preprocess_image(data, spec) for data in images])
    _calibrate_batchnorm(model, batch)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    return path


def _calibrate_batchnorm(model: object, batch: np.ndarray) -> None:
    """Set every BatchNorm layer's moving mean/variance to the statistics of ``batch``."""
    import keras

    assert isinstance(model, keras.Model)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            probe = keras.Model(model.inputs, layer.input)
            activations = np.asarray(probe(batch, training=False))
            axes = tuple(range(activations.ndim - 1))
            gamma, beta, _, _ = layer.get_weights()
            layer.set_weights([gamma, beta, activations.mean(axis=axes), activations.var(axis=axes) + 1e-3])
