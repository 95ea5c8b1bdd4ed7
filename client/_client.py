"""The synchronous client: one typed API over tritonclient's HTTP and gRPC clients."""

from __future__ import annotations

import concurrent.futures
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

import numpy as np

from ._classify import (
    Classification,
    ImageSource,
    encode_images,
    image_input,
    parse_classifications,
    scores_output,
)
from ._common import (
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_REQUEST_BYTES,
    DEFAULT_TIMEOUT_S,
    ClientSettings,
    config_text,
    explain_load_failure,
    gave_up,
    timeout_error,
    version_text,
)
from ._endpoint import TLSConfig
from ._errors import (
    ServerUnavailable,
    Timeout,
    TritonClientError,
    error_from_exception,
    is_retryable,
)
from ._instrumentation import ClientMetrics
from ._metrics import MetricsSnapshot, fetch_metrics_text, parse_metrics
from ._retry import Deadline, RetryPolicy
from ._shm import Region, SharedMemoryPool, destroy
from ._status import (
    ModelConfig,
    ModelMetadata,
    ModelStatistics,
    RepositoryModel,
    ServerMetadata,
    parse_model_config,
    parse_model_metadata,
    parse_repository_index,
    parse_server_metadata,
    parse_statistics,
)
from ._tensors import InferPlan, check_request_size, merge_results, plan_inference
from ._wire import Wire

T = TypeVar("T")
_Attempt = Callable[[Any, dict[str, Any]], T]

_LOAD_TIMEOUT_S = 120.0


class TritonClient:
    """A client for one Triton server, over HTTP or gRPC, safe to share between threads.

        >>> with TritonClient("grpc://127.0.0.1:8001") as client:
        ...     client.wait_until_ready("resnet")
        ...     scores = client.infer("resnet", {"IMAGE": batch})["SCORES"]

    The protocol comes from the URL scheme (``http``, ``https``, ``grpc``, ``grpcs``) or from
    ``protocol`` for a bare ``host:port``. Every call has one deadline (``timeout_s``, overridable
    per call) that covers retries; only connection failures are retried (``retries`` times, with
    backoff and jitter). ``ssl`` turns on TLS (``True`` or a :class:`TLSConfig` with custom root
    certificates); ``headers`` go with every request (e.g. an admin key or a bearer token).
    ``concurrency`` bounds the requests one split ``infer`` sends at once.
    ``max_request_bytes`` (default 64 MiB, ``None`` for no limit) is the most tensor data one
    request may carry: a larger one is refused with :class:`InvalidInput` before anything is
    sent (numeric tensors sent through :meth:`shared_memory` do not count).

    Calls run on a small pool of worker threads owned by the client; over HTTP each worker has its
    own tritonclient connections, since tritonclient's HTTP client must not be shared by threads.
    """

    def __init__(
        self,
        url: str = "http://127.0.0.1:8000",
        protocol: str | None = None,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        retries: int | RetryPolicy = 2,
        ssl: TLSConfig | bool | None = None,
        headers: Mapping[str, str] | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        metrics_url: str | None = None,
        metrics: ClientMetrics | None = None,
        max_request_bytes: int | None = DEFAULT_MAX_REQUEST_BYTES,
    ) -> None:
        self._settings = ClientSettings.create(
            url,
            protocol,
            timeout_s,
            retries,
            ssl,
            headers,
            concurrency,
            metrics_url,
            metrics,
            max_request_bytes,
        )
        self._wire = Wire(self._settings.endpoint.protocol)
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=max(16, 2 * concurrency), thread_name_prefix="tritonkit-client"
        )
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[Any] = []
        self._shared: Any = None
        self._models: dict[tuple[str, str], tuple[ModelMetadata, ModelConfig]] = {}
        self._shared_memory: weakref.WeakSet[SharedMemory] = weakref.WeakSet()
        self._closed = False

    # -- properties and life cycle -------------------------------------------------------------
    @property
    def url(self) -> str:
        return self._settings.endpoint.url

    @property
    def protocol(self) -> str:
        return self._settings.endpoint.protocol

    @property
    def metrics_url(self) -> str:
        return self._settings.metrics_url

    def close(self) -> None:
        """Remove shared-memory regions, stop the workers and close every connection."""
        if self._closed:
            return
        for shm in list(self._shared_memory):
            shm.close()
        self._closed = True
        self._pool.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            connections, self._connections = self._connections, []
            self._shared = None
        for connection in connections:
            try:
                connection.close()
            except Exception:
                continue

    def __enter__(self) -> TritonClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"TritonClient({self.url!r})"

    # -- the machinery every call goes through ---------------------------------------------
    def _connection(self, remaining_s: float) -> Any:
        """tritonclient's client for this worker thread (HTTP) or the shared one (gRPC), for a
        call with ``remaining_s`` seconds left.

        gRPC takes each call's deadline as an argument. tritonclient's HTTP client fixes its
        socket timeout when it is made, and a socket timeout shorter than the call's deadline
        would end the call early; so each worker keeps one HTTP connection per socket timeout,
        the client's ``timeout_s`` doubled until it covers the call.
        """
        if self._closed:
            raise TritonClientError("the client is closed", protocol=self._wire.protocol)
        endpoint = self._settings.endpoint
        if endpoint.protocol == "grpc":
            with self._lock:
                if self._shared is None:
                    self._shared = _new_grpc(endpoint.address, endpoint.tls)
                    self._connections.append(self._shared)
                return self._shared
        socket_timeout = http_socket_timeout(self._settings.timeout_s, remaining_s)
        connections: dict[float, Any] | None = getattr(self._local, "connections", None)
        if connections is None:
            connections = self._local.connections = {}
        connection = connections.get(socket_timeout)
        if connection is None:
            connection = _new_http(endpoint.address, endpoint.tls, socket_timeout)
            connections[socket_timeout] = connection
            with self._lock:
                self._connections.append(connection)
        return connection

    def _attempts(
        self,
        operation: str,
        attempt: _Attempt[T],
        deadline: Deadline,
        headers: Mapping[str, str],
        model: str | None,
        retry: bool,
    ) -> T:
        tries = 0
        while True:
            if deadline.expired():
                raise timeout_error(operation, deadline, self._settings, model)
            tries += 1
            try:
                remaining = deadline.remaining()
                return attempt(self._connection(remaining), self._wire.call_kwargs(headers, remaining))
            except Exception as exc:
                error = error_from_exception(
                    exc, protocol=self._wire.protocol, model=model, operation=operation, url=self.url
                )
                if not (retry and is_retryable(error)) or tries > self._settings.retry.max_retries:
                    raise gave_up(error, tries) from exc
                delay = self._settings.retry.delay(tries)
                if delay >= deadline.remaining():
                    raise gave_up(error, tries) from exc
                time.sleep(delay)

    def _submit(
        self,
        operation: str,
        attempt: _Attempt[T],
        deadline: Deadline,
        *,
        model: str | None = None,
        retry: bool = True,
        headers: Mapping[str, str] | None = None,
    ) -> concurrent.futures.Future[T]:
        if self._closed:
            raise TritonClientError("the client is closed", protocol=self._wire.protocol)
        merged = self._settings.merged_headers(headers)
        return self._pool.submit(self._attempts, operation, attempt, deadline, merged, model, retry)

    def _wait(
        self,
        future: concurrent.futures.Future[T],
        operation: str,
        deadline: Deadline,
        started: float,
        model: str | None = None,
    ) -> T:
        error: BaseException | None = None
        try:
            return future.result(timeout=deadline.remaining())
        except concurrent.futures.TimeoutError:
            future.cancel()
            error = timeout_error(
                f"{operation} of model {model!r}" if model else operation, deadline, self._settings, model
            )
            raise error from None
        except BaseException as exc:
            error = exc
            raise
        finally:
            if self._settings.instrumentation is not None:
                self._settings.instrumentation.observe(
                    self._wire.protocol, operation, model, time.monotonic() - started, error
                )

    def _call(
        self,
        operation: str,
        attempt: _Attempt[T],
        deadline: Deadline,
        *,
        model: str | None = None,
        retry: bool = True,
        headers: Mapping[str, str] | None = None,
    ) -> T:
        started = time.monotonic()
        future = self._submit(operation, attempt, deadline, model=model, retry=retry, headers=headers)
        return self._wait(future, operation, deadline, started, model)

    # -- health ------------------------------------------------------------------------------
    def is_live(self, *, timeout_s: float | None = None) -> bool:
        """Whether the server answers and is live; an unreachable server is ``False``."""
        return self._probe("is_live", lambda c, kw: bool(c.is_server_live(**kw)), timeout_s)

    def is_ready(self, *, timeout_s: float | None = None) -> bool:
        """Whether the server is ready for inference; an unreachable server is ``False``."""
        return self._probe("is_ready", lambda c, kw: bool(c.is_server_ready(**kw)), timeout_s)

    def is_model_ready(
        self, name: str, version: int | str | None = None, *, timeout_s: float | None = None
    ) -> bool:
        """Whether a model (version) is loaded and ready; unknown models and dead servers are ``False``."""
        v = version_text(version)
        return self._probe(
            "is_model_ready", lambda c, kw: bool(c.is_model_ready(name, v, **kw)), timeout_s, name
        )

    def _probe(
        self, operation: str, attempt: _Attempt[bool], timeout_s: float | None, model: str | None = None
    ) -> bool:
        try:
            return self._call(
                operation, attempt, self._settings.deadline(timeout_s), model=model, retry=False
            )
        except (ServerUnavailable, Timeout):
            return False

    def wait_until_ready(
        self,
        model: str | None = None,
        version: int | str | None = None,
        *,
        timeout_s: float = 60.0,
        poll_interval_s: float = 0.2,
    ) -> None:
        """Wait until the server is live, then ready, then (if given) the model is ready.

        One deadline covers the three steps; :class:`Timeout` says which one did not happen.
        """
        deadline = Deadline(timeout_s)
        steps: list[tuple[str, Callable[[float], bool]]] = [
            ("live", lambda t: self.is_live(timeout_s=t)),
            ("ready", lambda t: self.is_ready(timeout_s=t)),
        ]
        if model is not None:
            steps.append(
                (f"model {model!r} ready", lambda t: self.is_model_ready(model, version, timeout_s=t))
            )
        for what, check in steps:
            while True:
                remaining = deadline.remaining()
                if remaining > 0 and check(min(remaining, max(poll_interval_s, 1.0))):
                    break
                if deadline.remaining() <= 0:
                    raise Timeout(
                        f"the server at {self.url} was not {what} after {timeout_s:g} s",
                        protocol=self._wire.protocol,
                        model=model,
                    )
                time.sleep(min(poll_interval_s, deadline.remaining()))

    # -- status ------------------------------------------------------------------------------
    def server_metadata(self, *, timeout_s: float | None = None) -> ServerMetadata:
        """The server's name, version and extensions."""
        raw = self._call(
            "server_metadata", lambda c, kw: c.get_server_metadata(**kw), self._settings.deadline(timeout_s)
        )
        return parse_server_metadata(raw)

    def model_metadata(
        self, name: str, version: int | str | None = None, *, timeout_s: float | None = None
    ) -> ModelMetadata:
        """A model's inputs and outputs as its metadata declares them."""
        v = version_text(version)
        raw = self._call(
            "model_metadata",
            lambda c, kw: c.get_model_metadata(name, v, **kw),
            self._settings.deadline(timeout_s),
            model=name,
        )
        return parse_model_metadata(raw)

    def model_config(
        self, name: str, version: int | str | None = None, *, timeout_s: float | None = None
    ) -> ModelConfig:
        """A model's configuration as the server completed it."""
        v = version_text(version)
        raw = self._call(
            "model_config",
            lambda c, kw: c.get_model_config(name, v, **kw),
            self._settings.deadline(timeout_s),
            model=name,
        )
        return parse_model_config(raw)

    def statistics(
        self, name: str | None = None, version: int | str | None = None, *, timeout_s: float | None = None
    ) -> list[ModelStatistics]:
        """Inference statistics of one model (each version) or, without a name, of every model."""
        v = version_text(version)
        raw = self._call(
            "statistics",
            lambda c, kw: c.get_inference_statistics(name or "", v, **kw),
            self._settings.deadline(timeout_s),
            model=name,
        )
        return parse_statistics(raw)

    def repository_index(
        self, *, ready_only: bool = False, timeout_s: float | None = None
    ) -> list[RepositoryModel]:
        """Every model in the server's repository with its state (and the reason when unavailable)."""
        raw = self._call(
            "repository_index",
            lambda c, kw: c.get_model_repository_index(**kw),
            self._settings.deadline(timeout_s),
        )
        models = parse_repository_index(raw)
        return [m for m in models if m.state == "READY"] if ready_only else models

    def load_model(
        self,
        name: str,
        *,
        config: ModelConfig | Mapping[str, Any] | str | None = None,
        files: Mapping[str, bytes] | None = None,
        timeout_s: float | None = None,
    ) -> None:
        """Load or reload a model (EXPLICIT model control mode), optionally with a config override.

        On failure raises :class:`ModelLoadFailed` with the repository's reason, or
        :class:`ModelNotFound` when the repository has no such model.
        """
        text = config_text(config)
        deadline = Deadline(
            timeout_s if timeout_s is not None else max(self._settings.timeout_s, _LOAD_TIMEOUT_S)
        )
        self._forget(name)
        try:
            self._call(
                "load",
                lambda c, kw: c.load_model(name, config=text, files=dict(files) if files else None, **kw),
                deadline,
                model=name,
            )
        except TritonClientError as error:
            raise explain_load_failure(error, name, self._index_or_none(deadline)) from error

    def unload_model(
        self, name: str, *, unload_dependents: bool = False, timeout_s: float | None = None
    ) -> None:
        """Unload a model (EXPLICIT model control mode)."""
        self._forget(name)
        self._call(
            "unload",
            lambda c, kw: c.unload_model(name, unload_dependents=unload_dependents, **kw),
            self._settings.deadline(timeout_s),
            model=name,
        )

    def _index_or_none(self, deadline: Deadline) -> list[RepositoryModel] | None:
        if deadline.remaining() <= 0:
            return None
        try:
            return self.repository_index(timeout_s=deadline.remaining())
        except TritonClientError:
            return None

    # -- inference ---------------------------------------------------------------------------
    def _model_info(self, name: str, version: str, deadline: Deadline) -> tuple[ModelMetadata, ModelConfig]:
        key = (name, version)
        cached = self._models.get(key)
        if cached is not None:
            return cached
        started = time.monotonic()
        metadata_future = self._submit(
            "model_metadata", lambda c, kw: c.get_model_metadata(name, version, **kw), deadline, model=name
        )
        config_future = self._submit(
            "model_config", lambda c, kw: c.get_model_config(name, version, **kw), deadline, model=name
        )
        metadata = parse_model_metadata(
            self._wait(metadata_future, "model_metadata", deadline, started, name)
        )
        config = parse_model_config(self._wait(config_future, "model_config", deadline, started, name))
        with self._lock:
            self._models[key] = (metadata, config)
        return metadata, config

    def _forget(self, name: str) -> None:
        with self._lock:
            for key in [k for k in self._models if k[0] == name]:
                del self._models[key]

    def infer(
        self,
        model: str,
        inputs: Mapping[str, Any] | Any,
        *,
        outputs: Sequence[str] | None = None,
        version: int | str | None = None,
        timeout_s: float | None = None,
        shared_memory: SharedMemory | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> dict[str, np.ndarray]:
        """Run a model: a dict of arrays by input name (or one array for a one-input model) in,
        a dict of arrays by output name out.

        Inputs are checked against the model's metadata (fetched once and cached): dtypes are
        converted when no value changes, strings and bytes become BYTES tensors, and a missing
        batch dimension is added (and removed from the outputs) for batching models. A batch
        larger than the model's ``max_batch_size`` is split, sent ``concurrency`` requests at a
        time and put back together in order. ``shared_memory`` (from :meth:`shared_memory`)
        moves the tensors through system shared memory instead of the socket. A request with
        more tensor data than the client's ``max_request_bytes`` raises :class:`InvalidInput`
        before any request is sent.
        """
        deadline = self._settings.deadline(timeout_s)
        v = version_text(version)
        plan, metadata, config = self._plan(model, v, inputs, outputs, None, deadline, shared_memory)
        return self._send(model, v, plan, metadata, config, deadline, shared_memory, headers)

    def _plan(
        self,
        model: str,
        version: str,
        inputs: Any,
        outputs: Sequence[str] | None,
        class_counts: Mapping[str, int] | None,
        deadline: Deadline,
        shared_memory: SharedMemory | None,
    ) -> tuple[InferPlan, ModelMetadata, ModelConfig]:
        """The checked requests of one inference, nothing sent yet but the (cached) model info."""
        metadata, config = self._model_info(model, version, deadline)
        plan = plan_inference(metadata, config, inputs, outputs, class_counts)
        check_request_size(
            plan, model, self._settings.max_request_bytes, shared_memory=shared_memory is not None
        )
        return plan, metadata, config

    def _send(
        self,
        model: str,
        version: str,
        plan: InferPlan,
        metadata: ModelMetadata,
        config: ModelConfig,
        deadline: Deadline,
        shared_memory: SharedMemory | None,
        headers: Mapping[str, str] | None,
    ) -> dict[str, np.ndarray]:
        try:
            if shared_memory is not None:
                parts = shared_memory._run(self, model, version, plan, metadata, config, deadline, headers)
            else:
                parts = self._run_chunks(model, version, plan, deadline, headers)
        except TritonClientError as error:
            if error.status is not None and not isinstance(error, ServerUnavailable | Timeout):
                self._forget(model)  # the model may have changed under us
            raise
        return merge_results(parts, plan.added_batch_dim)

    def _chunk_attempt(
        self, model: str, version: str, plan: InferPlan, index: int
    ) -> _Attempt[dict[str, np.ndarray]]:
        chunk = plan.chunks[index]
        wire = self._wire
        inputs = wire.infer_inputs(chunk)
        outputs = wire.infer_outputs(plan.outputs)

        def attempt(connection: Any, kwargs: dict[str, Any]) -> dict[str, np.ndarray]:
            result = connection.infer(model, inputs, model_version=version, outputs=outputs, **kwargs)
            return wire.read_outputs(result, plan.outputs, set())

        return attempt

    def _run_chunks(
        self, model: str, version: str, plan: InferPlan, deadline: Deadline, headers: Mapping[str, str] | None
    ) -> list[dict[str, np.ndarray]]:
        count = len(plan.chunks)
        if count == 1:
            return [
                self._call(
                    "infer",
                    self._chunk_attempt(model, version, plan, 0),
                    deadline,
                    model=model,
                    headers=headers,
                )
            ]
        results: list[dict[str, np.ndarray] | None] = [None] * count
        pending: dict[concurrent.futures.Future[dict[str, np.ndarray]], tuple[int, float]] = {}
        next_index = 0
        try:
            while next_index < count or pending:
                while next_index < count and len(pending) < self._settings.concurrency:
                    attempt = self._chunk_attempt(model, version, plan, next_index)
                    future = self._submit("infer", attempt, deadline, model=model, headers=headers)
                    pending[future] = (next_index, time.monotonic())
                    next_index += 1
                done, _ = concurrent.futures.wait(
                    pending, timeout=deadline.remaining(), return_when=concurrent.futures.FIRST_COMPLETED
                )
                if not done:
                    first = next(iter(pending))
                    self._wait(first, "infer", deadline, pending[first][1], model)  # raises Timeout
                for future in done:
                    index, started = pending.pop(future)
                    results[index] = self._wait(future, "infer", deadline, started, model)
        finally:
            for future in pending:
                future.cancel()
        return [r for r in results if r is not None]

    def classify(
        self,
        model: str,
        images: ImageSource | Sequence[ImageSource],
        top_k: int = 5,
        *,
        output: str | None = None,
        version: int | str | None = None,
        timeout_s: float | None = None,
    ) -> list[list[Classification]]:
        """Classify images (paths, encoded bytes or PIL images; one or a list) with a model that
        takes encoded images, such as a tritonkit ensemble.

        Returns, per image, up to ``top_k`` :class:`Classification` ``(label, index, score)``,
        best first, computed by Triton's classification extension; labels come from the
        model's label file (the index as text when it has none).
        """
        if top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {top_k}")
        batch = encode_images(images)
        deadline = self._settings.deadline(timeout_s)
        v = version_text(version)
        metadata, config = self._model_info(model, v, deadline)
        name = image_input(metadata)
        scores = scores_output(metadata, config, output)
        if config.batches:
            groups = [batch]
        else:
            groups = [row for row in batch]  # a model without batching takes one image per request
        # every request is planned (and its size checked) before the first one is sent
        plans = [self._plan(model, v, {name: g}, [scores], {scores: top_k}, deadline, None) for g in groups]
        results: list[list[Classification]] = []
        for plan, metadata, config in plans:
            answer = self._send(model, v, plan, metadata, config, deadline, None, None)
            results += parse_classifications(answer[scores] if config.batches else answer[scores][np.newaxis])
        return results

    # -- shared memory and metrics -----------------------------------------------------------
    def shared_memory(self) -> SharedMemory:
        """System shared-memory regions for :meth:`infer` (``shared_memory=...``); use as a context
        manager so the regions are unregistered and removed however the block ends.

        The server must run on this machine. Numeric tensors travel through the regions; BYTES
        tensors, classification outputs and outputs of data-dependent size travel as usual.
        """
        shm = SharedMemory(self)
        self._shared_memory.add(shm)
        return shm

    def metrics(self, *, timeout_s: float | None = None) -> MetricsSnapshot:
        """Scrape the server's metrics endpoint (``metrics_url``), with its ensembles identified."""
        deadline = self._settings.deadline(timeout_s)
        ensembles = self._ensembles(deadline)
        text = fetch_metrics_text(self.metrics_url, max(deadline.remaining(), 1e-3))
        return parse_metrics(text, ensembles)

    def _ensembles(self, deadline: Deadline) -> dict[str, tuple[str, ...]]:
        ensembles: dict[str, tuple[str, ...]] = {}
        names = sorted(
            {m.name for m in self.repository_index(ready_only=True, timeout_s=deadline.remaining())}
        )
        for name in names:
            try:
                _, config = self._model_info(name, "", deadline)
            except TritonClientError:
                continue  # unloaded since the index was read
            if config.is_ensemble:
                ensembles[name] = tuple(step.model_name for step in config.ensemble_steps)
        return ensembles


class SharedMemory:
    """System shared-memory regions one client uses for inference; removed on :meth:`close`.

        >>> with client.shared_memory() as shm:
        ...     outputs = client.infer("model", big_inputs, shared_memory=shm)

    Regions are registered with the server on first use, reused while large enough, and on
    close unregistered from the server and unlinked from ``/dev/shm``.
    """

    def __init__(self, client: TritonClient) -> None:
        self._client = client
        self.pool = SharedMemoryPool()

    @property
    def region_names(self) -> tuple[str, ...]:
        """Names of the regions this object currently holds."""
        return tuple(r.name for r in self.pool.regions)

    def _unregister(self, region: Region, deadline: Deadline, headers: Mapping[str, str] | None) -> None:
        if region.registered:
            self._client._call(
                "shm_unregister",
                lambda c, kw: c.unregister_system_shared_memory(region.name, **kw),
                deadline,
                headers=headers,
            )
            region.registered = False

    def _run(
        self,
        client: TritonClient,
        model: str,
        version: str,
        plan: InferPlan,
        metadata: ModelMetadata,
        config: ModelConfig,
        deadline: Deadline,
        headers: Mapping[str, str] | None,
    ) -> list[dict[str, np.ndarray]]:
        if client is not self._client:
            raise TritonClientError("this shared memory object belongs to another client")
        wire = client._wire
        parts = []
        with self.pool.lock:
            for chunk in plan.chunks:
                batch = chunk[0].array.shape[0] if config.batches and chunk else None
                in_slots, out_slots, change = self.pool.prepare(chunk, plan.outputs, metadata, batch)
                for region in change.retire:
                    self._unregister(region, deadline, headers)
                destroy(change.retire)
                for region in change.register:

                    def register(c: Any, kw: dict[str, Any], r: Region = region) -> None:
                        c.register_system_shared_memory(r.name, r.key, r.byte_size, **kw)

                    client._call("shm_register", register, deadline, headers=headers)
                    region.registered = True
                inputs = wire.infer_inputs(chunk, in_slots)
                outputs = wire.infer_outputs(plan.outputs, out_slots)

                def attempt(c: Any, kw: dict[str, Any], inputs: Any = inputs, outputs: Any = outputs) -> Any:
                    return c.infer(model, inputs, model_version=version, outputs=outputs, **kw)

                result = client._call("infer", attempt, deadline, model=model, headers=headers)
                arrays = wire.read_outputs(result, plan.outputs, set(out_slots))
                for name, slot in out_slots.items():
                    header = wire.output_header(result, name)
                    if header is not None:
                        arrays[name] = self.pool.read(slot.region, *header)
                parts.append({r.name: arrays[r.name] for r in plan.outputs if r.name in arrays})
        return parts

    def close(self, *, timeout_s: float | None = None) -> None:
        """Unregister every region from the server (best effort) and remove it locally."""
        with self.pool.lock:
            regions = self.pool.take_all()
            if not regions:
                return
            try:
                deadline = self._client._settings.deadline(timeout_s)
                for region in regions:
                    try:
                        self._unregister(region, deadline, None)
                    except TritonClientError:
                        continue  # the server may be gone; the local region still goes
            finally:
                destroy(regions)

    def __enter__(self) -> SharedMemory:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def http_socket_timeout(timeout_s: float, remaining_s: float) -> float:
    """The socket timeout of the HTTP connection for a call with ``remaining_s`` left: the
    client's ``timeout_s``, doubled until it is at least that (so a few connections serve
    every deadline, and none is cut short by its socket)."""
    socket_timeout = timeout_s
    while socket_timeout < remaining_s:
        socket_timeout *= 2
    return socket_timeout


def _new_http(address: str, tls: TLSConfig | None, timeout_s: float) -> Any:
    import tritonclient.http as httpclient

    kwargs: dict[str, Any] = {}
    if tls is not None:
        options: dict[str, Any] = {}
        if tls.root_certificates:
            options["ca_certs"] = str(tls.root_certificates)
        if tls.certificate_chain and tls.private_key:
            options["certfile"] = str(tls.certificate_chain)
            options["keyfile"] = str(tls.private_key)
        kwargs = {"ssl": True, "ssl_options": options, "insecure": not tls.verify}
    # The socket timeouts only end calls the caller has already given up on (see _wait).
    return httpclient.InferenceServerClient(
        address, connection_timeout=timeout_s, network_timeout=timeout_s, **kwargs
    )


def _new_grpc(address: str, tls: TLSConfig | None) -> Any:
    import tritonclient.grpc as grpcclient

    if tls is None:
        return grpcclient.InferenceServerClient(address)
    return grpcclient.InferenceServerClient(
        address,
        ssl=True,
        root_certificates=str(tls.root_certificates) if tls.root_certificates else None,
        private_key=str(tls.private_key) if tls.private_key else None,
        certificate_chain=str(tls.certificate_chain) if tls.certificate_chain else None,
    )
