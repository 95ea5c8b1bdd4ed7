"""tritonkit's client SDK: health, status, inference and metrics of a Triton server.

    >>> from tritonkit.client import TritonClient
    >>> with TritonClient("http://127.0.0.1:8000") as client:
    ...     client.wait_until_ready("flowers")
    ...     client.classify("flowers", ["rose.jpg"], top_k=3)

The same typed API runs over HTTP and gRPC (``grpc://host:8001``), synchronously
(:class:`TritonClient`) or with asyncio (:class:`AsyncTritonClient`). Every error is a
:class:`TritonClientError`; see ``tritonkit.client._errors`` for the tree.
"""

from ._async_client import AsyncSharedMemory, AsyncTritonClient
from ._classify import Classification, ImageSource
from ._client import SharedMemory, TritonClient
from ._endpoint import Endpoint, TLSConfig, parse_endpoint
from ._errors import (
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
from ._instrumentation import ClientMetrics
from ._metrics import (
    CacheMetrics,
    GpuMetrics,
    MetricsRates,
    MetricsSnapshot,
    ModelCounters,
    ModelRates,
    parse_metrics,
    scrape,
)
from ._retry import RetryPolicy
from ._status import (
    BatchStatistics,
    DurationStat,
    EnsembleStep,
    InstanceGroup,
    ModelConfig,
    ModelMetadata,
    ModelStatistics,
    RepositoryModel,
    ServerMetadata,
    TensorConfig,
    TensorMetadata,
)

__all__ = [
    "AsyncSharedMemory",
    "AsyncTritonClient",
    "BatchStatistics",
    "CacheMetrics",
    "Classification",
    "ClientMetrics",
    "DurationStat",
    "Endpoint",
    "EnsembleStep",
    "GpuMetrics",
    "ImageSource",
    "InferenceFailed",
    "InstanceGroup",
    "InvalidInput",
    "MetricsRates",
    "MetricsSnapshot",
    "ModelConfig",
    "ModelCounters",
    "ModelLoadFailed",
    "ModelMetadata",
    "ModelNotFound",
    "ModelNotReady",
    "ModelRates",
    "ModelStatistics",
    "PermissionDenied",
    "RepositoryModel",
    "RetryPolicy",
    "ServerMetadata",
    "ServerUnavailable",
    "SharedMemory",
    "TLSConfig",
    "TensorConfig",
    "TensorMetadata",
    "Timeout",
    "TritonClient",
    "TritonClientError",
    "parse_endpoint",
    "parse_metrics",
    "scrape",
]
