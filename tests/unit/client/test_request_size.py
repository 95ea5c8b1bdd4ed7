"""The client's request size limit: every request of a plan checked before any is sent, with a
message that says the size, the limit and how to raise it. No server."""

from __future__ import annotations

import numpy as np
import pytest

from tritonkit.client import AsyncTritonClient, InvalidInput, TritonClient
from tritonkit.client._common import DEFAULT_MAX_REQUEST_BYTES
from tritonkit.client._status import parse_model_config, parse_model_metadata
from tritonkit.client._tensors import InferPlan, check_request_size, plan_inference

NUMBERS = parse_model_metadata(
    {
        "name": "numbers",
        "versions": ["1"],
        "platform": "python",
        "inputs": [
            {"name": "A", "datatype": "FP32", "shape": [-1, 4]},
            {"name": "T", "datatype": "BYTES", "shape": [-1, 1]},
        ],
        "outputs": [{"name": "C", "datatype": "FP32", "shape": [-1, 4]}],
    }
)
NUMBERS_CONFIG = parse_model_config({"name": "numbers", "max_batch_size": 2})


def _plan(rows: int, text: list[bytes] | None = None) -> InferPlan:
    words = text if text is not None else [b"abcd"] * rows
    return plan_inference(
        NUMBERS, NUMBERS_CONFIG, {"A": np.zeros((rows, 4), np.float32), "T": [[w] for w in words]}
    )


def test_a_request_is_measured_as_the_tensor_data_it_carries() -> None:
    plan = _plan(2)  # A: 2 x 4 x 4 bytes = 32; T: 2 x (4-byte length + 4) = 16
    check_request_size(plan, "numbers", 48)
    with pytest.raises(InvalidInput) as caught:
        check_request_size(plan, "numbers", 47)
    message = str(caught.value)
    assert "model 'numbers' would send 48 bytes of tensor data (A 32 bytes, T 16 bytes)" in message
    assert "the client's limit of 47 bytes" in message
    assert "pass a larger max_request_bytes= (or None for no limit)" in message
    assert caught.value.model == "numbers" and caught.value.status is None


def test_each_request_of_a_split_batch_is_checked_and_the_one_over_named() -> None:
    # five rows, two per request: the third request holds the one long text
    # (requests 1 and 2: 32 + 2 x 5 = 42 bytes; request 3: 16 + 104 = 120 bytes)
    plan = _plan(5, [b"a", b"b", b"c", b"d", b"x" * 100])
    check_request_size(plan, "numbers", 120)
    with pytest.raises(InvalidInput, match=r"\(request 3 of 3: rows 4 to 4\) would send 120 bytes"):
        check_request_size(plan, "numbers", 119)


def test_a_batch_larger_than_the_limit_passes_when_every_request_fits() -> None:
    plan = _plan(6)  # 3 requests of 48 bytes: 144 in all
    check_request_size(plan, "numbers", 48)


def test_shared_memory_tensors_do_not_count_but_bytes_tensors_still_do() -> None:
    plan = _plan(2)
    check_request_size(plan, "numbers", 16, shared_memory=True)
    with pytest.raises(InvalidInput, match=r"would send 16 bytes of tensor data \(T 16 bytes\)"):
        check_request_size(plan, "numbers", 15, shared_memory=True)


def test_no_limit_with_none() -> None:
    check_request_size(_plan(2), "numbers", None)


def test_sizes_of_a_mebibyte_or_more_are_also_given_in_mib() -> None:
    metadata = parse_model_metadata(
        {
            "name": "big",
            "versions": ["1"],
            "platform": "python",
            "inputs": [{"name": "X", "datatype": "UINT8", "shape": [-1]}],
            "outputs": [{"name": "Y", "datatype": "UINT8", "shape": [-1]}],
        }
    )
    plan = plan_inference(metadata, parse_model_config({"name": "big"}), np.zeros(3 << 20, np.uint8))
    with pytest.raises(InvalidInput, match=r"3,145,728 bytes \(3\.0 MiB\) .* 2,097,152 bytes \(2\.0 MiB\)"):
        check_request_size(plan, "big", 2 << 20)


def _max_request_bytes(cls: type, **kwargs: object) -> int | None:
    client = cls("http://127.0.0.1:1", **kwargs)
    try:
        return client._settings.max_request_bytes  # type: ignore[no-any-return]
    finally:
        if isinstance(client, TritonClient):
            client.close()


@pytest.mark.parametrize("cls", [TritonClient, AsyncTritonClient])
def test_both_clients_default_to_64_mib_and_check_the_option(cls: type) -> None:
    assert DEFAULT_MAX_REQUEST_BYTES == 64 * 1024 * 1024
    assert _max_request_bytes(cls) == DEFAULT_MAX_REQUEST_BYTES
    assert _max_request_bytes(cls, max_request_bytes=None) is None
    assert _max_request_bytes(cls, max_request_bytes=1000) == 1000
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="max_request_bytes must be a positive int or None"):
            _max_request_bytes(cls, max_request_bytes=bad)
