"""The asyncio twin of :class:`TritonClient`, over tritonclient's ``http.aio`` and ``grpc.aio``."""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
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
from ._errors import ServerUnavailable, Timeout, TritonClientError, error_from_exception, is_retryable
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
_Attempt = Callable[[Any, dict[str, Any]], Awaitable[T]]

_LOAD_TIMEOUT_S = 120.0


class AsyncTritonClient:
    """:class:`TritonClient` for asyncio: the same methods and arguments, awaited.

        >>> async with AsyncTritonClient("grpc://127.0.0.1:8001") as client:
        ...     outputs = await client.infer("add_sub", {"INPUT0": a, "INPUT1": b})

    The connection is made on first use, inside the running event loop; use one client per loop.
    The deadline of each call is enforced by cancelling it, for both protocols. The arguments
    are :class:`TritonClient`'s, ``max_request_bytes`` included (default 64 MiB of tensor data
    per request, ``None`` for no limit; a larger request raises :class:`InvalidInput` unsent).
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
        self._client: Any = None
        self._models: dict[tuple[str, str], tuple[ModelMetadata, ModelConfig]] = {}
        self._shared_memory: weakref.WeakSet[AsyncSharedMemory] = weakref.WeakSet()
        self._closed = False

    @property
    def url(self) -> str:
        return self._settings.endpoint.url

    @property
    def protocol(self) -> str:
        return self._settings.endpoint.protocol

    @property
    def metrics_url(self) -> str:
        return self._settings.metrics_url

    async def close(self) -> None:
        """Remove shared-memory regions and close the connection."""
        if self._closed:
            return
        for shm in list(self._shared_memory):
            await shm.close()
        self._closed = True
        client, self._client = self._client, None
        if client is not None:
            try:
                await client.close()
            except Exception:
                pass

    async def __aenter__(self) -> AsyncTritonClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"AsyncTritonClient({self.url!r})"

    # -- the machinery every call goes through ---------------------------------------------
    def _connection(self) -> Any:
        if self._closed:
            raise TritonClientError("the client is closed", protocol=self._wire.protocol)
        if self._client is None:
            endpoint = self._settings.endpoint
            tls = endpoint.tls
            if endpoint.protocol == "grpc":
                import tritonclient.grpc.aio as grpcaio

                if tls is None:
                    self._client = grpcaio.InferenceServerClient(endpoint.address)
                else:
                    self._client = grpcaio.InferenceServerClient(
                        endpoint.address,
                        ssl=True,
                        root_certificates=str(tls.root_certificates) if tls.root_certificates else None,
                        private_key=str(tls.private_key) if tls.private_key else None,
                        certificate_chain=str(tls.certificate_chain) if tls.certificate_chain else None,
                    )
            else:
                import tritonclient.http.aio as httpaio

                # No session-wide timeout: aiohttp's would cut short calls given a longer
                # deadline than timeout_s; _call enforces every call's own deadline instead.
                self._client = httpaio.InferenceServerClient(
                    endpoint.address,
                    conn_limit=max(16, 2 * self._settings.concurrency),
                    conn_timeout=None,
                    ssl=tls is not None,
                    ssl_context=tls.ssl_context() if tls is not None else None,
                )
        return self._client

    async def _attempts(
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
            tries += 1
            try:
                return await attempt(
                    self._connection(), self._wire.call_kwargs(headers, deadline.remaining())
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                error = error_from_exception(
                    exc, protocol=self._wire.protocol, model=model, operation=operation, url=self.url
                )
                if not (retry and is_retryable(error)) or tries > self._settings.retry.max_retries:
                    raise gave_up(error, tries) from exc
                delay = self._settings.retry.delay(tries)
                if delay >= deadline.remaining():
                    raise gave_up(error, tries) from exc
                await asyncio.sleep(delay)

    async def _call(
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
        error: BaseException | None = None
        merged = self._settings.merged_headers(headers)
        if self._wire.protocol == "http" and not any(k.lower() == "accept-encoding" for k in merged):
            # aiohttp asks for gzip by default, and Triton then compresses every answer, binary
            # tensors included: CPU on both sides for data that hardly shrinks. The sync client
            # never asks; this one must not either.
            merged["Accept-Encoding"] = "identity"
        try:
            remaining = deadline.remaining()
            if remaining <= 0:
                raise timeout_error(operation, deadline, self._settings, model)
            return await asyncio.wait_for(
                self._attempts(operation, attempt, deadline, merged, model, retry), timeout=remaining
            )
        except asyncio.TimeoutError:
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

    # -- health ------------------------------------------------------------------------------
    async def is_live(self, *, timeout_s: float | None = None) -> bool:
        """Whether the server answers and is live; an unreachable server is ``False``."""

        async def attempt(c: Any, kw: dict[str, Any]) -> bool:
            return bool(await c.is_server_live(**kw))

        return await self._probe("is_live", attempt, timeout_s)

    async def is_ready(self, *, timeout_s: float | None = None) -> bool:
        """Whether the server is ready for inference; an unreachable server is ``False``."""

        async def attempt(c: Any, kw: dict[str, Any]) -> bool:
            return bool(await c.is_server_ready(**kw))

        return await self._probe("is_ready", attempt, timeout_s)

    async def is_model_ready(
        self, name: str, version: int | str | None = None, *, timeout_s: float | None = None
    ) -> bool:
        """Whether a model (version) is loaded and ready; unknown models and dead servers are ``False``."""
        v = version_text(version)

        async def attempt(c: Any, kw: dict[str, Any]) -> bool:
            return bool(await c.is_model_ready(name, v, **kw))

        return await self._probe("is_model_ready", attempt, timeout_s, name)

    async def _probe(
        self, operation: str, attempt: _Attempt[bool], timeout_s: float | None, model: str | None = None
    ) -> bool:
        try:
            return await self._call(
                operation, attempt, self._settings.deadline(timeout_s), model=model, retry=False
            )
        except (ServerUnavailable, Timeout):
            return False

    async def wait_until_ready(
        self,
        model: str | None = None,
        version: int | str | None = None,
        *,
        timeout_s: float = 60.0,
        poll_interval_s: float = 0.2,
    ) -> None:
        """Wait until the server is live, then ready, then (if given) the model is ready."""
        deadline = Deadline(timeout_s)
        steps: list[tuple[str, Callable[[float], Awaitable[bool]]]] = [
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
                if remaining > 0 and await check(min(remaining, max(poll_interval_s, 1.0))):
                    break
                if deadline.remaining() <= 0:
                    raise Timeout(
                        f"the server at {self.url} was not {what} after {timeout_s:g} s",
                        protocol=self._wire.protocol,
                        model=model,
                    )
                await asyncio.sleep(min(poll_interval_s, deadline.remaining()))

    # -- status ------------------------------------------------------------------------------
    async def _fetch(
        self,
        operation: str,
        method: str,
        args: tuple[Any, ...],
        timeout_s: float | None,
        model: str | None = None,
    ) -> Any:
        async def attempt(c: Any, kw: dict[str, Any]) -> Any:
            return await getattr(c, method)(*args, **kw)

        return await self._call(operation, attempt, self._settings.deadline(timeout_s), model=model)

    async def server_metadata(self, *, timeout_s: float | None = None) -> ServerMetadata:
        """The server's name, version and extensions."""
        return parse_server_metadata(
            await self._fetch("server_metadata", "get_server_metadata", (), timeout_s)
        )

    async def model_metadata(
        self, name: str, version: int | str | None = None, *, timeout_s: float | None = None
    ) -> ModelMetadata:
        """A model's inputs and outputs as its metadata declares them."""
        raw = await self._fetch(
            "model_metadata", "get_model_metadata", (name, version_text(version)), timeout_s, name
        )
        return parse_model_metadata(raw)

    async def model_config(
        self, name: str, version: int | str | None = None, *, timeout_s: float | None = None
    ) -> ModelConfig:
        """A model's configuration as the server completed it."""
        raw = await self._fetch(
            "model_config", "get_model_config", (name, version_text(version)), timeout_s, name
        )
        return parse_model_config(raw)

    async def statistics(
        self, name: str | None = None, version: int | str | None = None, *, timeout_s: float | None = None
    ) -> list[ModelStatistics]:
        """Inference statistics of one model (each version) or, without a name, of every model."""
        raw = await self._fetch(
            "statistics", "get_inference_statistics", (name or "", version_text(version)), timeout_s, name
        )
        return parse_statistics(raw)

    async def repository_index(
        self, *, ready_only: bool = False, timeout_s: float | None = None
    ) -> list[RepositoryModel]:
        """Every model in the server's repository with its state (and the reason when unavailable)."""
        models = parse_repository_index(
            await self._fetch("repository_index", "get_model_repository_index", (), timeout_s)
        )
        return [m for m in models if m.state == "READY"] if ready_only else models

    async def load_model(
        self,
        name: str,
        *,
        config: ModelConfig | Mapping[str, Any] | str | None = None,
        files: Mapping[str, bytes] | None = None,
        timeout_s: float | None = None,
    ) -> None:
        """Load or reload a model (EXPLICIT mode); see :meth:`TritonClient.load_model`."""
        text = config_text(config)
        deadline = Deadline(
            timeout_s if timeout_s is not None else max(self._settings.timeout_s, _LOAD_TIMEOUT_S)
        )
        self._forget(name)

        async def attempt(c: Any, kw: dict[str, Any]) -> None:
            await c.load_model(name, config=text, files=dict(files) if files else None, **kw)

        try:
            await self._call("load", attempt, deadline, model=name)
        except TritonClientError as error:
            index = None
            if deadline.remaining() > 0:
                try:
                    index = await self.repository_index(timeout_s=deadline.remaining())
                except TritonClientError:
                    index = None
            raise explain_load_failure(error, name, index) from error

    async def unload_model(
        self, name: str, *, unload_dependents: bool = False, timeout_s: float | None = None
    ) -> None:
        """Unload a model (EXPLICIT model control mode)."""
        self._forget(name)

        async def attempt(c: Any, kw: dict[str, Any]) -> None:
            await c.unload_model(name, unload_dependents=unload_dependents, **kw)

        await self._call("unload", attempt, self._settings.deadline(timeout_s), model=name)

    # -- inference ---------------------------------------------------------------------------
    async def _model_info(
        self, name: str, version: str, deadline: Deadline
    ) -> tuple[ModelMetadata, ModelConfig]:
        key = (name, version)
        cached = self._models.get(key)
        if cached is not None:
            return cached

        async def metadata(c: Any, kw: dict[str, Any]) -> Any:
            return await c.get_model_metadata(name, version, **kw)

        async def config(c: Any, kw: dict[str, Any]) -> Any:
            return await c.get_model_config(name, version, **kw)

        raw_metadata, raw_config = await asyncio.gather(
            self._call("model_metadata", metadata, deadline, model=name),
            self._call("model_config", config, deadline, model=name),
        )
        info = (parse_model_metadata(raw_metadata), parse_model_config(raw_config))
        self._models[key] = info
        return info

    def _forget(self, name: str) -> None:
        for key in [k for k in self._models if k[0] == name]:
            del self._models[key]

    async def infer(
        self,
        model: str,
        inputs: Mapping[str, Any] | Any,
        *,
        outputs: Sequence[str] | None = None,
        version: int | str | None = None,
        timeout_s: float | None = None,
        shared_memory: AsyncSharedMemory | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> dict[str, np.ndarray]:
        """Run a model; see :meth:`TritonClient.infer`."""
        deadline = self._settings.deadline(timeout_s)
        v = version_text(version)
        plan, metadata, config = await self._plan(model, v, inputs, outputs, None, deadline, shared_memory)
        return await self._send(model, v, plan, metadata, config, deadline, shared_memory, headers)

    async def _plan(
        self,
        model: str,
        version: str,
        inputs: Any,
        outputs: Sequence[str] | None,
        class_counts: Mapping[str, int] | None,
        deadline: Deadline,
        shared_memory: AsyncSharedMemory | None,
    ) -> tuple[InferPlan, ModelMetadata, ModelConfig]:
        """The checked requests of one inference, nothing sent yet but the (cached) model info."""
        metadata, config = await self._model_info(model, version, deadline)
        plan = plan_inference(metadata, config, inputs, outputs, class_counts)
        check_request_size(
            plan, model, self._settings.max_request_bytes, shared_memory=shared_memory is not None
        )
        return plan, metadata, config

    async def _send(
        self,
        model: str,
        version: str,
        plan: InferPlan,
        metadata: ModelMetadata,
        config: ModelConfig,
        deadline: Deadline,
        shared_memory: AsyncSharedMemory | None,
        headers: Mapping[str, str] | None,
    ) -> dict[str, np.ndarray]:
        try:
            if shared_memory is not None:
                parts = await shared_memory._run(
                    self, model, version, plan, metadata, config, deadline, headers
                )
            else:
                parts = await self._run_chunks(model, version, plan, deadline, headers)
        except TritonClientError as error:
            if error.status is not None and not isinstance(error, ServerUnavailable | Timeout):
                self._forget(model)
            raise
        return merge_results(parts, plan.added_batch_dim)

    async def _run_chunks(
        self, model: str, version: str, plan: InferPlan, deadline: Deadline, headers: Mapping[str, str] | None
    ) -> list[dict[str, np.ndarray]]:
        wire = self._wire
        gate = asyncio.Semaphore(self._settings.concurrency)

        async def one(index: int) -> dict[str, np.ndarray]:
            inputs = wire.infer_inputs(plan.chunks[index])
            outputs = wire.infer_outputs(plan.outputs)

            async def attempt(c: Any, kw: dict[str, Any]) -> dict[str, np.ndarray]:
                result = await c.infer(model, inputs, model_version=version, outputs=outputs, **kw)
                return wire.read_outputs(result, plan.outputs, set())

            async with gate:
                return await self._call("infer", attempt, deadline, model=model, headers=headers)

        if len(plan.chunks) == 1:
            return [await one(0)]
        tasks = [asyncio.ensure_future(one(i)) for i in range(len(plan.chunks))]
        try:
            return list(await asyncio.gather(*tasks))
        finally:
            for task in tasks:
                task.cancel()

    async def classify(
        self,
        model: str,
        images: ImageSource | Sequence[ImageSource],
        top_k: int = 5,
        *,
        output: str | None = None,
        version: int | str | None = None,
        timeout_s: float | None = None,
    ) -> list[list[Classification]]:
        """Classify images; see :meth:`TritonClient.classify`."""
        if top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {top_k}")
        batch = encode_images(images)
        deadline = self._settings.deadline(timeout_s)
        v = version_text(version)
        metadata, config = await self._model_info(model, v, deadline)
        name = image_input(metadata)
        scores = scores_output(metadata, config, output)
        groups = [batch] if config.batches else list(batch)
        # every request is planned (and its size checked) before the first one is sent
        plans = [
            await self._plan(model, v, {name: g}, [scores], {scores: top_k}, deadline, None) for g in groups
        ]
        results: list[list[Classification]] = []
        for plan, metadata, config in plans:
            answer = await self._send(model, v, plan, metadata, config, deadline, None, None)
            results += parse_classifications(answer[scores] if config.batches else answer[scores][np.newaxis])
        return results

    # -- shared memory and metrics -----------------------------------------------------------
    def shared_memory(self) -> AsyncSharedMemory:
        """System shared-memory regions for :meth:`infer`; use with ``async with``."""
        shm = AsyncSharedMemory(self)
        self._shared_memory.add(shm)
        return shm

    async def metrics(self, *, timeout_s: float | None = None) -> MetricsSnapshot:
        """Scrape the server's metrics endpoint, with its ensembles identified."""
        deadline = self._settings.deadline(timeout_s)
        ensembles: dict[str, tuple[str, ...]] = {}
        for entry in await self.repository_index(ready_only=True, timeout_s=deadline.remaining()):
            if entry.name in ensembles:
                continue
            try:
                _, config = await self._model_info(entry.name, "", deadline)
            except TritonClientError:
                continue
            if config.is_ensemble:
                ensembles[entry.name] = tuple(step.model_name for step in config.ensemble_steps)
        text = await asyncio.to_thread(fetch_metrics_text, self.metrics_url, max(deadline.remaining(), 1e-3))
        return parse_metrics(text, ensembles)


class AsyncSharedMemory:
    """:class:`SharedMemory` for :class:`AsyncTritonClient`; use with ``async with``."""

    def __init__(self, client: AsyncTritonClient) -> None:
        self._client = client
        self.pool = SharedMemoryPool()
        self._lock = asyncio.Lock()

    @property
    def region_names(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.pool.regions)

    async def _unregister(
        self, region: Region, deadline: Deadline, headers: Mapping[str, str] | None
    ) -> None:
        if region.registered:

            async def attempt(c: Any, kw: dict[str, Any]) -> None:
                await c.unregister_system_shared_memory(region.name, **kw)

            await self._client._call("shm_unregister", attempt, deadline, headers=headers)
            region.registered = False

    async def _run(
        self,
        client: AsyncTritonClient,
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
        async with self._lock:
            for chunk in plan.chunks:
                batch = chunk[0].array.shape[0] if config.batches and chunk else None
                in_slots, out_slots, change = self.pool.prepare(chunk, plan.outputs, metadata, batch)
                for region in change.retire:
                    await self._unregister(region, deadline, headers)
                destroy(change.retire)
                for region in change.register:

                    async def register(c: Any, kw: dict[str, Any], r: Region = region) -> None:
                        await c.register_system_shared_memory(r.name, r.key, r.byte_size, **kw)

                    await client._call("shm_register", register, deadline, headers=headers)
                    region.registered = True
                inputs = wire.infer_inputs(chunk, in_slots)
                outputs = wire.infer_outputs(plan.outputs, out_slots)

                async def attempt(
                    c: Any, kw: dict[str, Any], inputs: Any = inputs, outputs: Any = outputs
                ) -> Any:
                    return await c.infer(model, inputs, model_version=version, outputs=outputs, **kw)

                result = await client._call("infer", attempt, deadline, model=model, headers=headers)
                arrays = wire.read_outputs(result, plan.outputs, set(out_slots))
                for name, slot in out_slots.items():
                    header = wire.output_header(result, name)
                    if header is not None:
                        arrays[name] = self.pool.read(slot.region, *header)
                parts.append({r.name: arrays[r.name] for r in plan.outputs if r.name in arrays})
        return parts

    async def close(self, *, timeout_s: float | None = None) -> None:
        """Unregister every region from the server (best effort) and remove it locally."""
        async with self._lock:
            regions = self.pool.take_all()
            if not regions:
                return
            try:
                deadline = self._client._settings.deadline(timeout_s)
                for region in regions:
                    try:
                        await self._unregister(region, deadline, None)
                    except TritonClientError:
                        continue
            finally:
                destroy(regions)

    async def __aenter__(self) -> AsyncSharedMemory:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
