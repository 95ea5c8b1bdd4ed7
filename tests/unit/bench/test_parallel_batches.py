"""Preprocessing a batch in several threads gives exactly what one thread gives."""

from __future__ import annotations

import warnings

import numpy as np

from tritonkit.bench import make_photos
from tritonkit.custom_backends import ImageSpec, preprocess_batch


def test_threads_change_nothing_in_the_batch_or_its_errors() -> None:
    spec = ImageSpec(height=48, width=64, scaling="inception")
    items = [*make_photos(5, size=(200, 150), seed=4), b"not an image", *make_photos(2, size=(90, 90))]
    one, one_errors = preprocess_batch(items, spec)
    for threads in (2, 3, 16):
        many, many_errors = preprocess_batch(items, spec, threads=threads)
        np.testing.assert_array_equal(many, one)
        assert [str(e) if e else None for e in many_errors] == [str(e) if e else None for e in one_errors]
    assert one_errors[5] is not None and not one[5].any()


def test_the_warning_filters_are_restored_after_a_threaded_batch() -> None:
    before = list(warnings.filters)
    preprocess_batch(make_photos(4, size=(64, 64)), ImageSpec(height=16, width=16), threads=2)
    assert warnings.filters == before
