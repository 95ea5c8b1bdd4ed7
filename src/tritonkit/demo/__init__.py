"""The demo: a really trained shape classifier taken through build-repo, serve, classify, metrics.

Training needs TensorFlow (the [convert] extra); the shape images need only Pillow.
"""

from ._shapes import SHAPE_LABELS, draw_shape, encode, make_shapes, write_shape_images

__all__ = ["SHAPE_LABELS", "draw_shape", "encode", "make_shapes", "write_shape_images"]
