"""Errors raised by :mod:`tritonkit.client`, the same classes whichever protocol was used.

    TritonClientError              anything the SDK reports; keeps the server's own message
    ├── ServerUnavailable          no answer: refused, reset, TLS failure, gRPC UNAVAILABLE, HTTP 502-504
    ├── Timeout                    the call's deadline passed (gRPC DEADLINE_EXCEEDED included)
    ├── PermissionDenied           a restricted endpoint without the right header (HTTP 401/403)
    ├── ModelNotFound              the server knows no model (or version) of that name
    ├── ModelNotReady              the model exists but is not loaded / has no ready version
    ├── ModelLoadFailed            load_model failed; carries the repository's reason
    ├── InvalidInput               the request does not fit the model (checked here or by the server)
    └── InferenceFailed            the model ran and failed (gRPC INTERNAL, HTTP 500)

Only :class:`ServerUnavailable` is retried, always inside the call's deadline.
"""

from __future__ import annotations

import re
import ssl
from typing import Literal

Protocol = Literal["http", "grpc"]


class TritonClientError(Exception):
    """Root of every error raised by :mod:`tritonkit.client`.

    ``status`` is what the server or transport answered (an HTTP status such as ``"404"`` or a
    gRPC code such as ``"NOT_FOUND"``), ``None`` for errors found before sending anything.
    """

    def __init__(
        self,
        message: str,
        *,
        status: str | None = None,
        protocol: Protocol | None = None,
        model: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.protocol = protocol
        self.model = model


class ServerUnavailable(TritonClientError):
    """The server could not be reached or answered that it is unavailable."""


class Timeout(TritonClientError):
    """The call did not finish before its deadline."""


class PermissionDenied(TritonClientError):
    """The server refused the request: a restricted API needs a header (e.g. an admin key)."""


class ModelNotFound(TritonClientError):
    """No model (or no such version) of that name is known to the server."""


class ModelNotReady(TritonClientError):
    """The model is in the repository but not loaded, or its version is not ready."""


class ModelLoadFailed(TritonClientError):
    """The server could not load (or unload) the model; ``reason`` is the repository's account."""

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        status: str | None = None,
        protocol: Protocol | None = None,
        model: str | None = None,
    ) -> None:
        super().__init__(message, status=status, protocol=protocol, model=model)
        self.reason = reason


class InvalidInput(TritonClientError):
    """The inputs do not match the model: names, dtypes, shapes or batch size."""


class InferenceFailed(TritonClientError):
    """The model received the request and failed while running it."""


# Triton words a model-state answer the same way on both protocols; those messages are
# decisive where the status alone is not (HTTP answers 400 for many different things).
_NOT_READY = re.compile(r"has no available versions|is not ready|is not loaded|unavailable state", re.I)
_NOT_FOUND = re.compile(r"unknown model|requested model '.*' is not available|is not found", re.I)
# A restricted API (--http-restricted-api, --grpc-restricted-protocol) answers gRPC UNAVAILABLE.
_RESTRICTED = re.compile(r"is restricted, expecting header", re.I)

_GRPC_CLASSES: dict[str, type[TritonClientError]] = {
    "UNAVAILABLE": ServerUnavailable,
    "DEADLINE_EXCEEDED": Timeout,
    "NOT_FOUND": ModelNotFound,
    "INVALID_ARGUMENT": InvalidInput,
    "OUT_OF_RANGE": InvalidInput,
    "FAILED_PRECONDITION": InvalidInput,
    "RESOURCE_EXHAUSTED": InvalidInput,
    "INTERNAL": InferenceFailed,
    "UNKNOWN": InferenceFailed,
    "PERMISSION_DENIED": PermissionDenied,
    "UNAUTHENTICATED": PermissionDenied,
}

_HTTP_CLASSES: dict[str, type[TritonClientError]] = {
    "400": InvalidInput,
    "401": PermissionDenied,
    "403": PermissionDenied,
    "404": ModelNotFound,
    "408": Timeout,
    "413": InvalidInput,
    "500": InferenceFailed,
    "502": ServerUnavailable,
    "503": ServerUnavailable,
    "504": ServerUnavailable,
}


def error_from_status(
    status: str,
    message: str,
    *,
    protocol: Protocol,
    model: str | None = None,
    operation: str = "request",
) -> TritonClientError:
    """The error class for one server answer: the one place where statuses become classes."""
    status = status.removeprefix("StatusCode.")
    table = _GRPC_CLASSES if protocol == "grpc" else _HTTP_CLASSES
    cls: type[TritonClientError] = table.get(status, TritonClientError)
    if _RESTRICTED.search(message):
        cls = PermissionDenied
    elif cls is not PermissionDenied and cls is not Timeout:
        if _NOT_READY.search(message):
            cls = ModelNotReady
        elif _NOT_FOUND.search(message):
            cls = ModelNotFound
        elif cls is ModelNotFound and model is None:
            cls = TritonClientError
    if operation in ("load", "unload") and cls in (InvalidInput, InferenceFailed, ModelNotReady):
        cls = ModelLoadFailed
    elif operation != "infer" and cls is InferenceFailed:
        cls = TritonClientError
    return cls(message or f"the server answered {status}", status=status, protocol=protocol, model=model)


def error_from_exception(
    exc: BaseException,
    *,
    protocol: Protocol,
    model: str | None = None,
    operation: str = "request",
    url: str = "",
) -> TritonClientError:
    """Map anything tritonclient or its transports raised to our most specific class."""
    from tritonclient.utils import InferenceServerException

    if isinstance(exc, TritonClientError):
        return exc
    if isinstance(exc, InferenceServerException):
        status = exc.status()
        message = exc.message() or ""
        if status is None:
            # tritonclient raises status-less errors for its own checks, e.g. a closed client
            return TritonClientError(message, protocol=protocol, model=model)
        return error_from_status(str(status), message, protocol=protocol, model=model, operation=operation)
    where = f" at {url}" if url else ""
    if isinstance(exc, ssl.SSLError):
        return ServerUnavailable(f"TLS with the server{where} failed: {exc}", protocol=protocol, model=model)
    if isinstance(exc, TimeoutError):
        return Timeout(f"the server{where} did not answer in time", protocol=protocol, model=model)
    if isinstance(exc, OSError) or _is_aiohttp_connection_error(exc):
        return ServerUnavailable(
            f"cannot reach the server{where}: {exc or type(exc).__name__}", protocol=protocol, model=model
        )
    return TritonClientError(f"{type(exc).__name__}: {exc}", protocol=protocol, model=model)


def _is_aiohttp_connection_error(exc: BaseException) -> bool:
    try:
        import aiohttp
    except ImportError:  # pragma: no cover - aiohttp comes with tritonclient[http]
        return False
    return isinstance(exc, aiohttp.ClientConnectionError | aiohttp.ServerDisconnectedError)


def is_retryable(error: TritonClientError) -> bool:
    """Connection failures and UNAVAILABLE / 502-504 only; TLS failures do not heal by retrying."""
    return type(error) is ServerUnavailable and not error.message.startswith("TLS ")
