"""``run_bench``: find out what the model takes, build the requests, and run the levels."""

from __future__ import annotations

import asyncio
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tritonkit.client import (
    Endpoint,
    ModelConfig,
    ModelMetadata,
    PermissionDenied,
    TritonClient,
    parse_endpoint,
)

from ._engine import LiveStatus, closed_loop, open_sender
from ._errors import BenchError, ReferenceUnavailable
from ._local import find_server_pid, machine_info
from ._probe import ServerProbe
from ._reference import (
    ReferencePlan,
    image_pipeline_plan,
    latest_version_dir,
    measure_reference,
    remeasure_reference,
    tensor_model_plan,
)
from ._results import BenchResult, LatencySummary, LevelResult, ReferenceResult
from ._workload import Workload, build_workload

PROTOCOLS: tuple[str, ...] = ("grpc", "http")
DEFAULT_PORTS = {"grpc": 8001, "http": 8000}


def resolve_endpoint(url: str | None, protocol: str | None) -> Endpoint:
    """The server to load: ``url`` (its scheme decides the protocol), or ``protocol`` on this
    machine's default port; ``protocol`` alone applies to a ``host:port`` URL. Default gRPC."""
    if protocol is not None and protocol not in PROTOCOLS:
        raise BenchError(f"--protocol must be grpc or http, got {protocol!r}")
    try:
        if url is None:
            chosen = protocol or "grpc"
            return parse_endpoint(f"{chosen}://127.0.0.1:{DEFAULT_PORTS[chosen]}")
        if "://" not in url:
            return parse_endpoint(url, protocol or "grpc")
        return parse_endpoint(url, protocol)
    except ValueError as exc:
        raise BenchError(str(exc)) from exc


@dataclass(frozen=True)
class BenchOptions:
    """One ``tritonkit bench`` run. Exactly one of ``duration_s`` and ``requests`` bounds each level."""

    model: str
    url: str | None = None
    protocol: str | None = None
    metrics_url: str | None = None
    concurrency: tuple[int, ...] = (1, 4, 16)
    duration_s: float | None = 10.0
    requests: int | None = None
    warmup_s: float = 2.0
    images: tuple[Path, ...] = ()
    reference: bool = False
    repository: Path = Path("model_repository")
    reference_trial_s: float = 1.0
    reference_measure_s: float = 3.0
    timeout_s: float = 60.0
    server_pid: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.concurrency or any(c < 1 for c in self.concurrency):
            raise BenchError(f"--concurrency needs whole numbers >= 1, got {list(self.concurrency)}")
        if self.requests is not None:
            if self.requests < 1:
                raise BenchError(f"--requests must be at least 1, got {self.requests}")
            object.__setattr__(self, "duration_s", None)
        elif self.duration_s is None or self.duration_s <= 0:
            raise BenchError("give a positive --duration or a --requests count")
        if self.warmup_s < 0:
            raise BenchError(f"--warmup must be >= 0 seconds, got {self.warmup_s}")
        if self.reference_trial_s <= 0 or self.reference_measure_s <= 0:
            raise BenchError("the reference's trial and measure times must be positive")
        if self.timeout_s <= 0:
            raise BenchError(f"--timeout must be positive, got {self.timeout_s}")
        resolve_endpoint(self.url, self.protocol)


@dataclass(frozen=True)
class BenchEvent:
    """Progress for a display: a message, a live look at the running level, or a finished level."""

    message: str = ""
    live: LiveStatus | None = None
    level: LevelResult | None = None
    reference: ReferenceResult | None = None


Progress = Callable[[BenchEvent], None]


@dataclass(frozen=True)
class ServedModel:
    """What bench learned about the model from the server."""

    metadata: ModelMetadata
    config: ModelConfig
    steps: dict[str, ModelConfig] = field(default_factory=dict)
    ready_versions: dict[str, list[int]] = field(default_factory=dict)

    @property
    def ensembles(self) -> dict[str, tuple[str, ...]]:
        return {self.metadata.name: tuple(self.steps)} if self.steps else {}


def discover(client: TritonClient, model: str, wait_s: float = 30.0) -> ServedModel:
    """The model's metadata and config, its composing models' configs, and ready versions."""
    client.wait_until_ready(timeout_s=wait_s)
    if not client.is_model_ready(model):
        client.model_metadata(model)  # an unknown model fails now, with the server's words
        client.wait_until_ready(model, timeout_s=wait_s)
    metadata = client.model_metadata(model)
    config = client.model_config(model)
    steps = {step.model_name: client.model_config(step.model_name) for step in config.ensemble_steps}
    ready: dict[str, list[int]] = {}
    try:
        index = client.repository_index(ready_only=True)
    except PermissionDenied:  # the model-repository API is locked (an admin key): versions unknown
        index = []
    for entry in index:
        if entry.version and entry.version.isdigit():
            ready.setdefault(entry.name, []).append(int(entry.version))
    return ServedModel(metadata, config, steps, ready)


def reference_plan(served: ServedModel, repository: Path) -> ReferencePlan:
    """How to run ``served`` in process, from the repository the server reads."""
    repo = Path(repository)
    name = served.metadata.name
    if not repo.is_dir():
        raise ReferenceUnavailable(
            f"--reference reads the model files from --repo, and {repo} does not exist"
        )
    steps = served.config.ensemble_steps
    if steps:
        if len(steps) != 2:
            raise ReferenceUnavailable(
                f"{name} has {len(steps)} steps; the reference knows tritonkit's preprocessor + classifier"
            )
        pre, cls = steps
        parameters = {
            key: str(value.get("string_value", ""))
            for key, value in served.steps[pre.model_name].raw.get("parameters", {}).items()
        }
        pixels = next(iter(pre.output_map.values()))
        inputs = [key for key, value in cls.input_map.items() if value == pixels]
        if not inputs:
            raise ReferenceUnavailable(
                f"{name}: cannot tell which classifier input takes the preprocessed image"
            )
        return image_pipeline_plan(
            latest_version_dir(repo / pre.model_name, served.ready_versions.get(pre.model_name, [])),
            parameters,
            latest_version_dir(repo / cls.model_name, served.ready_versions.get(cls.model_name, [])),
            inputs[0],
        )
    if not (repo / name).is_dir():
        raise ReferenceUnavailable(f"{repo} has no folder {name}")
    return tensor_model_plan(latest_version_dir(repo / name, served.ready_versions.get(name, [])))


def run_bench(options: BenchOptions, progress: Progress | None = None) -> BenchResult:
    """Run every concurrency level of ``options`` against the server; see :class:`BenchResult`."""
    emit = progress or (lambda _event: None)
    endpoint = resolve_endpoint(options.url, options.protocol)
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    with TritonClient(endpoint.url, timeout_s=options.timeout_s, metrics_url=options.metrics_url) as client:
        emit(BenchEvent(f"asking {endpoint.url} about {options.model}"))
        served = discover(client, options.model)
        metrics_url = client.metrics_url
    workload = build_workload(served.metadata, served.config, options.images, seed=options.seed)
    emit(BenchEvent(f"workload: {workload.description}"))
    pid = options.server_pid or find_server_pid(endpoint.host, endpoint.port, endpoint.protocol)
    notes = [] if pid else ["the server's processes were not found on this machine: no server CPU or memory"]

    plan = reference = None
    if options.reference:
        plan = reference_plan(served, options.repository)
        if plan.preprocess is None and workload.kind != "tensors":
            raise ReferenceUnavailable("the reference of a tensor model needs tensor requests")
        reference = measure_reference(
            plan,
            workload,
            trial_s=options.reference_trial_s,
            measure_s=options.reference_measure_s,
            latency_s=options.reference_measure_s / 2,
            progress=lambda text: emit(BenchEvent(text)),
        )
        emit(BenchEvent("reference measured", reference=reference))

    probe = ServerProbe(options.model, metrics_url, served.ensembles, pid)
    levels = asyncio.run(_run_levels(options, endpoint, workload, probe, emit))

    if plan is not None and reference is not None:
        reference = remeasure_reference(
            reference,
            plan,
            workload,
            measure_s=options.reference_measure_s,
            latency_s=options.reference_measure_s / 2,
            progress=lambda text: emit(BenchEvent(text)),
        )
        levels = [_compare(level, reference) for level in levels]
        emit(BenchEvent("reference measured again", reference=reference))
    return BenchResult(
        model=options.model,
        url=endpoint.url,
        protocol=endpoint.protocol,
        started=started,
        machine=machine_info(),
        workload=workload.description,
        request_bytes=round(workload.request_bytes, 1),
        warmup_s=options.warmup_s,
        duration_s=options.duration_s,
        requests_per_level=options.requests,
        levels=tuple(levels),
        reference=reference,
        notes=tuple(notes),
    )


def _compare(level: LevelResult, reference: ReferenceResult) -> LevelResult:
    from dataclasses import replace

    throughput = level.throughput / reference.throughput if reference.throughput else None
    p50 = level.latency.p50_ms / reference.latency_ms if level.latency and reference.latency_ms else None
    return replace(level, throughput_vs_reference=throughput, p50_vs_reference=p50)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _run_levels(
    options: BenchOptions, endpoint: Endpoint, workload: Workload, probe: ServerProbe, emit: Progress
) -> list[LevelResult]:
    sender = open_sender(
        endpoint,
        options.model,
        workload,
        timeout_s=options.timeout_s,
        concurrency=max(options.concurrency),
    )

    def tick(status: LiveStatus) -> None:
        if status.phase == "measure":
            probe.sample()
        emit(BenchEvent(live=status))

    levels = []
    try:
        for concurrency in options.concurrency:
            if options.warmup_s > 0:
                await closed_loop(
                    sender,
                    len(workload.payloads),
                    concurrency,
                    duration_s=options.warmup_s,
                    phase="warmup",
                    on_tick=tick,
                )
            probe.begin()
            cpu_before = _cpu_seconds()
            samples = await closed_loop(
                sender,
                len(workload.payloads),
                concurrency,
                duration_s=options.duration_s,
                requests=options.requests,
                on_tick=tick,
            )
            client_cpu = _cpu_seconds() - cpu_before
            load = probe.machine_load()
            server = probe.end(samples.completed)
            completed = samples.completed
            level = LevelResult(
                concurrency=concurrency,
                requests=completed,
                successes=len(samples.latencies_s),
                errors=dict(sorted(samples.errors.items())),
                error_examples=dict(sorted(samples.examples.items())),
                elapsed_s=round(samples.elapsed_s, 3),
                throughput=round(len(samples.latencies_s) / samples.elapsed_s, 2)
                if samples.elapsed_s
                else 0.0,
                latency=LatencySummary.of(samples.latencies_s),
                client_cpu_s=round(client_cpu, 3),
                client_cpu_ms_per_request=round(client_cpu * 1000 / completed, 3) if completed else None,
                load=load,
                server=server,
            )
            levels.append(level)
            emit(BenchEvent(level=level))
    finally:
        await sender.close()
    return levels


def parse_concurrency(text: str | Sequence[str]) -> tuple[int, ...]:
    """``"1,4,16"`` (or several such strings) as ``(1, 4, 16)``."""
    values = [text] if isinstance(text, str) else list(text)
    try:
        return tuple(int(v) for value in values for v in value.replace(",", " ").split())
    except ValueError as exc:
        raise BenchError(f"--concurrency takes whole numbers such as 1,4,16: {exc}") from exc
