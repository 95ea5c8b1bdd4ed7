"""Train the demo's shape classifier with Keras (imports TensorFlow: the [convert] extra)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tritonkit.custom_backends import ImageSpec, preprocess_image

from ._shapes import SHAPE_LABELS, make_shapes

INPUT_SIZE = 64


@dataclass(frozen=True)
class TrainedModel:
    path: Path
    labels_path: Path
    accuracy: float
    spec: ImageSpec


def training_spec() -> ImageSpec:
    """Raw 0..255 pixels: the model rescales them itself (so build-repo picks scaling 'none')."""
    return ImageSpec(height=INPUT_SIZE, width=INPUT_SIZE, channels=3, layout="NHWC", scaling="none")


def to_arrays(images: list[bytes], spec: ImageSpec) -> np.ndarray:
    """Preprocess encoded images exactly as the served preprocessor does."""
    return np.stack([preprocess_image(data, spec) for data in images])


def train_shape_classifier(
    out_dir: Path, *, train_count: int = 2000, test_count: int = 400, epochs: int = 12, seed: int = 0
) -> TrainedModel:
    """Train a small CNN on generated shapes, save it as ``shapes.keras`` with ``labels.txt``."""
    import keras

    keras.utils.set_random_seed(seed)
    spec = training_spec()
    train_images, train_labels = make_shapes(train_count, seed=seed)
    test_images, test_labels = make_shapes(test_count, seed=seed + 1000)
    x_train, x_test = to_arrays(train_images, spec), to_arrays(test_images, spec)

    layers = keras.layers

    def conv_block(filters: int) -> list[keras.layers.Layer]:
        return [
            layers.Conv2D(filters, 3, padding="same", use_bias=False),
            layers.BatchNormalization(),
            layers.ReLU(),
            layers.MaxPooling2D(),
        ]

    model = keras.Sequential(
        [
            keras.Input((INPUT_SIZE, INPUT_SIZE, 3), name="image"),
            layers.Rescaling(1.0 / 255),
            *conv_block(16),
            *conv_block(32),
            *conv_block(64),
            layers.Conv2D(64, 3, padding="same", activation="relu"),
            # Max pooling: "is there a corner/edge pattern anywhere", whatever the shape's position.
            layers.GlobalMaxPooling2D(),
            layers.Dense(len(SHAPE_LABELS), activation="softmax", name="scores"),
        ],
        name="shapes",
    )
    model.compile(
        optimizer=keras.optimizers.Adam(2e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    model.fit(x_train, train_labels, epochs=epochs, batch_size=32, verbose=0)
    _, accuracy = model.evaluate(x_test, test_labels, verbose=0)

    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "shapes.keras"
    model.save(path)
    labels_path = out_dir / "labels.txt"
    labels_path.write_text("\n".join(SHAPE_LABELS) + "\n")
    return TrainedModel(path=path, labels_path=labels_path, accuracy=float(accuracy), spec=spec)
