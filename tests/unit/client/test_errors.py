"""One mapping from gRPC codes and HTTP statuses (and Triton's words) to the error tree."""

from __future__ import annotations

import ssl

import pytest
from tritonclient.utils import InferenceServerException

from tritonkit.client import (
    InferenceFailed,
    InvalidInput,
    ModelLoadFailed,
    ModelNotFound,
    ModelNotReady,
    PermissionDenied,
    ServerUnavailable,
    Timeout,
    TritonClientError,
)
from tritonkit.client._errors import error_from_exception, error_from_status, is_retryable

# What Triton 2.51 answered in each case, over both protocols (recorded from the real server).
CASES = [
    ("404", "NOT_FOUND", "Request for unknown model: 'nope' is not found", "infer", ModelNotFound),
    ("404", "NOT_FOUND", "Request for unknown model: 'm' has no available versions", "infer", ModelNotReady),
    ("400", "INVALID_ARGUMENT", "requested model 'nope' is not available", "statistics", ModelNotFound),
    ("500", "INTERNAL", "negative input is not allowed", "infer", InferenceFailed),
    ("400", "INVALID_ARGUMENT", "unexpected shape for input 'X' for model 'm'", "infer", InvalidInput),
    ("400", "INVALID_ARGUMENT", "inference request batch-size must be <= 8 for 'm'", "infer", InvalidInput),
    (
        "400",
        "INVALID_ARGUMENT",
        "load failed for model 'broken': version 1 is at UNAVAILABLE state: Internal: boom",
        "load",
        ModelLoadFailed,
    ),
    ("500", "INTERNAL", "failed to load 'x', failed to poll from model repository", "load", ModelLoadFailed),
    ("503", "UNAVAILABLE", "failed to connect to all addresses", "infer", ServerUnavailable),
    (
        "403",
        "UNAVAILABLE",
        "This protocol is restricted, expecting header 'admin-key'",
        "load",
        PermissionDenied,
    ),
    ("408", "DEADLINE_EXCEEDED", "Deadline Exceeded", "infer", Timeout),
]


@pytest.mark.parametrize(("http", "grpc", "message", "operation", "expected"), CASES)
def test_both_protocols_map_to_the_same_class(
    http: str, grpc: str, message: str, operation: str, expected: type[TritonClientError]
) -> None:
    by_http = error_from_status(http, message, protocol="http", operation=operation, model="m")
    by_grpc = error_from_status(
        f"StatusCode.{grpc}", message, protocol="grpc", operation=operation, model="m"
    )
    assert type(by_http) is expected and type(by_grpc) is expected
    assert by_http.message == by_grpc.message == message  # the server's words are kept
    assert by_grpc.status == grpc and by_http.status == http


def test_a_500_outside_inference_is_not_called_an_inference_failure() -> None:
    error = error_from_status("500", "something odd", protocol="http", operation="server_metadata")
    assert type(error) is TritonClientError


def test_tritonclient_and_socket_errors_are_mapped() -> None:
    ise = InferenceServerException(
        "Request for unknown model: 'x' is not found", status="StatusCode.NOT_FOUND"
    )
    assert type(error_from_exception(ise, protocol="grpc")) is ModelNotFound
    refused = error_from_exception(
        ConnectionRefusedError(111, "Connection refused"), protocol="http", url="u"
    )
    assert type(refused) is ServerUnavailable and is_retryable(refused)
    assert type(error_from_exception(TimeoutError("timed out"), protocol="http")) is Timeout
    tls = error_from_exception(ssl.SSLCertVerificationError("bad cert"), protocol="http")
    assert type(tls) is ServerUnavailable and not is_retryable(tls)
    local = error_from_exception(InferenceServerException("client is closed"), protocol="http")
    assert type(local) is TritonClientError


@pytest.mark.parametrize("cls", [InvalidInput, ModelNotFound, InferenceFailed, PermissionDenied, Timeout])
def test_only_server_unavailable_is_retried(cls: type[TritonClientError]) -> None:
    assert not is_retryable(cls("x"))
    assert is_retryable(ServerUnavailable("x"))
