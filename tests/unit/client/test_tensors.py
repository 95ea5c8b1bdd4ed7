"""Input planning: names, lossless casts, BYTES, the batch dimension and splits, with no server."""

from __future__ import annotations

import numpy as np
import pytest

from tritonkit.client import InvalidInput
from tritonkit.client._status import parse_model_config, parse_model_metadata
from tritonkit.client._tensors import merge_results, plan_inference

ADD_SUB = parse_model_metadata(
    {
        "name": "add_sub",
        "versions": ["1"],
        "platform": "python",
        "inputs": [
            {"name": "A", "datatype": "FP32", "shape": [-1, 4]},
            {"name": "B", "datatype": "INT32", "shape": [-1, 4]},
        ],
        "outputs": [{"name": "C", "datatype": "FP32", "shape": [-1, 4]}],
    }
)
ADD_SUB_CONFIG = parse_model_config({"name": "add_sub", "max_batch_size": 3})
TEXT = parse_model_metadata(
    {
        "name": "text",
        "versions": ["1"],
        "platform": "python",
        "inputs": [{"name": "T", "datatype": "BYTES", "shape": [-1, 1]}],
        "outputs": [{"name": "U", "datatype": "BYTES", "shape": [-1, 1]}],
    }
)
TEXT_CONFIG = parse_model_config({"name": "text", "max_batch_size": 8})
FIXED = parse_model_metadata(
    {
        "name": "fixed",
        "versions": ["1"],
        "platform": "python",
        "inputs": [{"name": "X", "datatype": "UINT8", "shape": [2, -1]}],
        "outputs": [{"name": "Y", "datatype": "UINT8", "shape": [2, -1]}],
    }
)
FIXED_CONFIG = parse_model_config({"name": "fixed", "max_batch_size": 0})


def test_lossless_casts_are_made() -> None:
    plan = plan_inference(ADD_SUB, ADD_SUB_CONFIG, {"A": [[1, 2, 3, 4]], "B": np.ones((1, 4), np.int8)})
    a, b = plan.chunks[0]
    assert a.array.dtype == np.float32 and b.array.dtype == np.int32
    np.testing.assert_array_equal(a.array, [[1, 2, 3, 4]])


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"A": np.full((1, 4), 0.1), "B": np.ones((1, 4), np.int32)}, "its float64 values would change"),
        ({"A": np.ones((1, 4), np.float32), "B": np.full((1, 4), 1.5)}, "takes INT32"),
        ({"A": np.ones((1, 4), np.float32), "B": np.full((1, 4), 2**40)}, "int64 values would change"),
        ({"A": np.array([["a"] * 4]), "B": np.ones((1, 4), np.int32)}, "takes FP32 numbers"),
    ],
)
def test_casts_that_change_values_are_refused(values: dict[str, np.ndarray], fragment: str) -> None:
    with pytest.raises(InvalidInput, match=fragment):
        plan_inference(ADD_SUB, ADD_SUB_CONFIG, values)


def test_missing_batch_dimension_is_added_and_later_removed() -> None:
    plan = plan_inference(ADD_SUB, ADD_SUB_CONFIG, {"A": np.zeros(4), "B": np.zeros(4, np.int32)})
    assert plan.added_batch_dim and plan.chunks[0][0].array.shape == (1, 4)
    merged = merge_results([{"C": np.ones((1, 4))}], plan.added_batch_dim)
    assert merged["C"].shape == (4,)


def test_batch_dimension_must_be_given_to_all_inputs_or_none() -> None:
    with pytest.raises(InvalidInput, match="every input a batch dimension, or none"):
        plan_inference(ADD_SUB, ADD_SUB_CONFIG, {"A": np.zeros(4), "B": np.zeros((1, 4), np.int32)})


def test_inputs_with_different_batch_sizes_are_refused() -> None:
    with pytest.raises(InvalidInput, match=r"different batch sizes \(A: 2, B: 3\)"):
        plan_inference(ADD_SUB, ADD_SUB_CONFIG, {"A": np.zeros((2, 4)), "B": np.zeros((3, 4), np.int32)})


def test_large_batches_are_split_in_order_and_merged_back() -> None:
    a = np.arange(8 * 4, dtype=np.float32).reshape(8, 4)
    plan = plan_inference(ADD_SUB, ADD_SUB_CONFIG, {"A": a, "B": np.zeros((8, 4), np.int32)})
    assert [c[0].array.shape[0] for c in plan.chunks] == [3, 3, 2]
    merged = merge_results([{"C": chunk[0].array} for chunk in plan.chunks], plan.added_batch_dim)
    np.testing.assert_array_equal(merged["C"], a)


def test_strings_and_bytes_become_an_object_array_of_bytes() -> None:
    plan = plan_inference(TEXT, TEXT_CONFIG, [["é"], [b"raw"], [np.bytes_(b"np")]])
    assert plan.chunks[0][0].array.tolist() == [["é".encode()], [b"raw"], [b"np"]]
    single = plan_inference(TEXT, TEXT_CONFIG, "one")
    assert single.added_batch_dim and single.chunks[0][0].array.shape == (1, 1)
    with pytest.raises(InvalidInput, match="takes BYTES"):
        plan_inference(TEXT, TEXT_CONFIG, np.ones((1, 1)))
    with pytest.raises(InvalidInput, match="element of type int"):
        plan_inference(TEXT, TEXT_CONFIG, np.array([[1]], dtype=object))


def test_non_batching_model_checks_its_fixed_dimensions() -> None:
    plan = plan_inference(FIXED, FIXED_CONFIG, np.zeros((2, 5), np.uint8))
    assert len(plan.chunks) == 1 and not plan.added_batch_dim
    with pytest.raises(InvalidInput, match=r"has shape \[2, \?\], got \[3, 5\]"):
        plan_inference(FIXED, FIXED_CONFIG, np.zeros((3, 5), np.uint8))


def test_names_are_checked_against_the_metadata() -> None:
    with pytest.raises(InvalidInput, match="has no input 'Z'"):
        plan_inference(ADD_SUB, ADD_SUB_CONFIG, {"A": np.zeros(4), "B": np.zeros(4), "Z": 1})
    with pytest.raises(InvalidInput, match="needs input 'B'"):
        plan_inference(ADD_SUB, ADD_SUB_CONFIG, {"A": np.zeros(4)})
    with pytest.raises(InvalidInput, match="has 2 inputs"):
        plan_inference(ADD_SUB, ADD_SUB_CONFIG, np.zeros(4))
    with pytest.raises(InvalidInput, match="has no output 'D'"):
        plan_inference(ADD_SUB, ADD_SUB_CONFIG, {"A": np.zeros(4), "B": np.zeros(4)}, outputs=["D"])


def test_classification_outputs_are_requested_with_their_class_count() -> None:
    plan = plan_inference(ADD_SUB, ADD_SUB_CONFIG, {"A": np.zeros(4), "B": np.zeros(4)}, ["C"], {"C": 3})
    assert [(o.name, o.class_count) for o in plan.outputs] == [("C", 3)]
