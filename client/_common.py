"""Settings and rules both clients share: defaults, argument checks, failure explanations."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._endpoint import Endpoint, TLSConfig, parse_endpoint
from ._errors import ModelLoadFailed, ModelNotFound, Timeout, TritonClientError
from ._instrumentation import ClientMetrics
from ._retry import Deadline, RetryPolicy, as_retry_policy
from ._status import ModelConfig, RepositoryModel

DEFAULT_TIMEOUT_S = 30.0
DEFAULT_CONCURRENCY = 4
# Tensor data in one request: far above any ordinary batch of images, far below gRPC's 2 GiB
# message limit; larger numeric tensors belong in shared memory, which does not count.
DEFAULT_MAX_REQUEST_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class ClientSettings:
    """Everything a client is configured with, checked once."""

    endpoint: Endpoint
    timeout_s: float
    retry: RetryPolicy
    headers: Mapping[str, str]
    concurrency: int
    metrics_url: str
    instrumentation: ClientMetrics | None
    max_request_bytes: int | None = DEFAULT_MAX_REQUEST_BYTES

    @classmethod
    def create(
        cls,
        url: str,
        protocol: str | None,
        timeout_s: float,
        retries: int | RetryPolicy,
        ssl: TLSConfig | bool | None,
        headers: Mapping[str, str] | None,
        concurrency: int,
        metrics_url: str | None,
        instrumentation: ClientMetrics | None,
        max_request_bytes: int | None = DEFAULT_MAX_REQUEST_BYTES,
    ) -> ClientSettings:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        if max_request_bytes is not None and (
            isinstance(max_request_bytes, bool)
            or not isinstance(max_request_bytes, int)
            or max_request_bytes < 1
        ):
            raise ValueError(f"max_request_bytes must be a positive int or None, got {max_request_bytes!r}")
        endpoint = parse_endpoint(url, protocol, ssl)
        for key, value in (headers or {}).items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise ValueError("headers must map str to str")
        return cls(
            endpoint=endpoint,
            timeout_s=timeout_s,
            retry=as_retry_policy(retries),
            headers=_wire_headers(endpoint.protocol, headers),
            concurrency=concurrency,
            metrics_url=metrics_url or endpoint.metrics_url(),
            instrumentation=instrumentation,
            max_request_bytes=max_request_bytes,
        )

    def deadline(self, timeout_s: float | None) -> Deadline:
        return Deadline(self.timeout_s if timeout_s is None else timeout_s)

    def merged_headers(self, headers: Mapping[str, str] | None) -> dict[str, str]:
        return {**self.headers, **_wire_headers(self.endpoint.protocol, headers)}


_GRPC_RESTRICTED_PREFIX = "triton-grpc-protocol-"


def _wire_headers(protocol: str, headers: Mapping[str, str] | None) -> dict[str, str]:
    """Headers as each protocol needs them.

    gRPC metadata keys must be lowercase, and Triton looks for the key of a restricted gRPC
    protocol under a ``triton-grpc-protocol-`` prefix; each header is sent under both names so
    ``headers={"admin-key": ...}`` opens the same APIs over gRPC as over HTTP.
    """
    if protocol != "grpc":
        return dict(headers or {})
    result: dict[str, str] = {}
    for key, value in (headers or {}).items():
        lower = key.lower()
        result[lower] = value
        if not lower.startswith(_GRPC_RESTRICTED_PREFIX):
            result[_GRPC_RESTRICTED_PREFIX + lower] = value
    return result


def version_text(version: int | str | None) -> str:
    """Triton's version argument: ``""`` lets the server choose by its version policy."""
    if version is None or version == "":
        return ""
    text = str(version)
    if not text.isdigit():
        raise ValueError(f"a model version is a whole number, got {version!r}")
    return text


def config_text(config: ModelConfig | Mapping[str, Any] | str | None) -> str | None:
    """A config override as the JSON text Triton's load API takes."""
    if config is None or isinstance(config, str):
        return config
    if isinstance(config, ModelConfig):
        return config.to_json()
    return json.dumps(dict(config))


def explain_load_failure(
    error: TritonClientError, name: str, index: list[RepositoryModel] | None
) -> TritonClientError:
    """Turn a failed load into ModelNotFound or ModelLoadFailed with the repository's reason."""
    if not isinstance(error, ModelLoadFailed) or index is None:
        return error
    entries = [m for m in index if m.name == name]
    if not entries:
        return ModelNotFound(
            f"model {name!r} is not in the server's model repository ({error.message})",
            status=error.status,
            protocol=error.protocol,
            model=name,
        )
    reasons = [m.reason for m in entries if m.reason]
    reason = "; ".join(reasons) if reasons else None
    message = error.message.strip()
    if reason and reason.strip() not in message:
        message = f"{message}: {reason.strip()}"
    return ModelLoadFailed(message, reason=reason, status=error.status, protocol=error.protocol, model=name)


def timeout_error(
    what: str, deadline: Deadline, settings: ClientSettings, model: str | None = None
) -> Timeout:
    return Timeout(
        f"{what} did not finish within {deadline.timeout_s:g} s ({settings.endpoint.url})",
        protocol=settings.endpoint.protocol,
        model=model,
    )


def gave_up(error: TritonClientError, attempts: int) -> TritonClientError:
    """The last error of a retried call, saying how many attempts were made."""
    if attempts > 1:
        error.message = f"{error.message} (gave up after {attempts} attempts)"
        error.args = (error.message,)
    return error
