"""Typed views of what the server reports, built from its protobuf messages.

Both protocols end up here: gRPC answers are already protobuf messages, HTTP JSON answers are
parsed into the same messages first, so a status object cannot depend on how it was fetched.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message
from tritonclient.grpc import model_config_pb2, service_pb2


@dataclass(frozen=True)
class ServerMetadata:
    """Name, version and supported protocol extensions of the server."""

    name: str
    version: str
    extensions: tuple[str, ...]


@dataclass(frozen=True)
class TensorMetadata:
    """One input or output as the model's metadata declares it; ``-1`` marks a variable size."""

    name: str
    datatype: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class ModelMetadata:
    """What a model takes and returns; a batching model's shapes start with ``-1``."""

    name: str
    versions: tuple[str, ...]
    platform: str
    inputs: tuple[TensorMetadata, ...]
    outputs: tuple[TensorMetadata, ...]

    def input(self, name: str) -> TensorMetadata:
        return _by_name(self.inputs, name, "input", self.name)

    def output(self, name: str) -> TensorMetadata:
        return _by_name(self.outputs, name, "output", self.name)


@dataclass(frozen=True)
class TensorConfig:
    """One input or output of a model configuration; ``dims`` leave out the batch dimension."""

    name: str
    datatype: str
    dims: tuple[int, ...]
    label_filename: str | None = None
    optional: bool = False


@dataclass(frozen=True)
class EnsembleStep:
    """One composing model of an ensemble and how its tensors are wired."""

    model_name: str
    model_version: int
    input_map: Mapping[str, str]
    output_map: Mapping[str, str]


@dataclass(frozen=True)
class InstanceGroup:
    count: int
    kind: str


@dataclass(frozen=True)
class ModelConfig:
    """The parts of a model configuration callers use, plus ``raw``: the whole of it as JSON."""

    name: str
    platform: str
    backend: str
    max_batch_size: int
    inputs: tuple[TensorConfig, ...]
    outputs: tuple[TensorConfig, ...]
    dynamic_batching: bool
    preferred_batch_sizes: tuple[int, ...]
    max_queue_delay_us: int
    instance_groups: tuple[InstanceGroup, ...]
    ensemble_steps: tuple[EnsembleStep, ...]
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @property
    def is_ensemble(self) -> bool:
        return self.platform == "ensemble"

    @property
    def batches(self) -> bool:
        """Whether the model takes a leading batch dimension."""
        return self.max_batch_size > 0

    def to_json(self) -> str:
        """The configuration as Triton's JSON, e.g. to edit and pass to ``load_model(config=...)``."""
        return json.dumps(self.raw)


@dataclass(frozen=True)
class DurationStat:
    """A count and the total time spent, as Triton's statistics extension reports them."""

    count: int
    total_ns: int

    @property
    def mean_ms(self) -> float:
        return self.total_ns / self.count / 1e6 if self.count else 0.0


@dataclass(frozen=True)
class BatchStatistics:
    batch_size: int
    compute_input: DurationStat
    compute_infer: DurationStat
    compute_output: DurationStat


@dataclass(frozen=True)
class ModelStatistics:
    """Cumulative inference statistics of one model version since it was loaded."""

    name: str
    version: str
    last_inference_ms: int
    inference_count: int
    execution_count: int
    success: DurationStat
    fail: DurationStat
    queue: DurationStat
    compute_input: DurationStat
    compute_infer: DurationStat
    compute_output: DurationStat
    cache_hit: DurationStat
    cache_miss: DurationStat
    batches: tuple[BatchStatistics, ...]


@dataclass(frozen=True)
class RepositoryModel:
    """One entry of the repository index; ``state`` is e.g. ``READY`` or ``UNAVAILABLE``."""

    name: str
    version: str | None
    state: str | None
    reason: str | None


def _by_name(items: tuple[Any, ...], name: str, kind: str, model: str) -> Any:
    for item in items:
        if item.name == name:
            return item
    from ._errors import InvalidInput

    known = ", ".join(i.name for i in items) or "none"
    raise InvalidInput(f"model {model!r} has no {kind} {name!r} (its {kind}s: {known})", model=model)


# -- parsing: JSON or protobuf in, protobuf in the middle, dataclasses out -----------------------
def _message(raw: Any, message_type: type[Message]) -> Any:
    if isinstance(raw, message_type):
        return raw
    if isinstance(raw, Message):
        raise TypeError(f"expected {message_type.__name__}, got {type(raw).__name__}")
    return json_format.ParseDict(raw, message_type(), ignore_unknown_fields=True)


def datatype_from_config(data_type: int) -> str:
    """``TYPE_FP32`` -> ``FP32``; the config's ``TYPE_STRING`` is the wire's ``BYTES``."""
    name: str = model_config_pb2.DataType.Name(data_type).removeprefix("TYPE_")
    return "BYTES" if name == "STRING" else name


def parse_server_metadata(raw: Any) -> ServerMetadata:
    msg = _message(raw, service_pb2.ServerMetadataResponse)
    return ServerMetadata(name=msg.name, version=msg.version, extensions=tuple(msg.extensions))


def parse_model_metadata(raw: Any) -> ModelMetadata:
    msg = _message(raw, service_pb2.ModelMetadataResponse)

    def tensors(items: Any) -> tuple[TensorMetadata, ...]:
        return tuple(TensorMetadata(t.name, t.datatype, tuple(int(d) for d in t.shape)) for t in items)

    return ModelMetadata(
        name=msg.name,
        versions=tuple(msg.versions),
        platform=msg.platform,
        inputs=tensors(msg.inputs),
        outputs=tensors(msg.outputs),
    )


def parse_model_config(raw: Any) -> ModelConfig:
    if isinstance(raw, service_pb2.ModelConfigResponse):
        raw = raw.config
    elif isinstance(raw, Mapping) and "config" in raw and "name" not in raw:
        raw = raw["config"]
    msg = _message(raw, model_config_pb2.ModelConfig)

    def tensors(items: Any) -> tuple[TensorConfig, ...]:
        return tuple(
            TensorConfig(
                name=t.name,
                datatype=datatype_from_config(t.data_type),
                dims=tuple(int(d) for d in t.dims),
                label_filename=getattr(t, "label_filename", "") or None,
                optional=bool(getattr(t, "optional", False)),
            )
            for t in items
        )

    dynamic = msg.HasField("dynamic_batching")
    return ModelConfig(
        name=msg.name,
        platform=msg.platform,
        backend=msg.backend,
        max_batch_size=int(msg.max_batch_size),
        inputs=tensors(msg.input),
        outputs=tensors(msg.output),
        dynamic_batching=dynamic,
        preferred_batch_sizes=tuple(msg.dynamic_batching.preferred_batch_size) if dynamic else (),
        max_queue_delay_us=int(msg.dynamic_batching.max_queue_delay_microseconds) if dynamic else 0,
        instance_groups=tuple(
            InstanceGroup(count=int(g.count), kind=model_config_pb2.ModelInstanceGroup.Kind.Name(g.kind))
            for g in msg.instance_group
        ),
        ensemble_steps=tuple(
            EnsembleStep(
                model_name=s.model_name,
                model_version=int(s.model_version),
                input_map=dict(s.input_map),
                output_map=dict(s.output_map),
            )
            for s in msg.ensemble_scheduling.step
        ),
        raw=json_format.MessageToDict(msg, preserving_proto_field_name=True),
    )


def _duration(stat: Any) -> DurationStat:
    return DurationStat(count=int(stat.count), total_ns=int(stat.ns))


def parse_statistics(raw: Any) -> list[ModelStatistics]:
    msg = _message(raw, service_pb2.ModelStatisticsResponse)
    result = []
    for s in msg.model_stats:
        st = s.inference_stats
        result.append(
            ModelStatistics(
                name=s.name,
                version=s.version,
                last_inference_ms=int(s.last_inference),
                inference_count=int(s.inference_count),
                execution_count=int(s.execution_count),
                success=_duration(st.success),
                fail=_duration(st.fail),
                queue=_duration(st.queue),
                compute_input=_duration(st.compute_input),
                compute_infer=_duration(st.compute_infer),
                compute_output=_duration(st.compute_output),
                cache_hit=_duration(st.cache_hit),
                cache_miss=_duration(st.cache_miss),
                batches=tuple(
                    BatchStatistics(
                        batch_size=int(b.batch_size),
                        compute_input=_duration(b.compute_input),
                        compute_infer=_duration(b.compute_infer),
                        compute_output=_duration(b.compute_output),
                    )
                    for b in sorted(s.batch_stats, key=lambda b: b.batch_size)
                ),
            )
        )
    return result


def parse_repository_index(raw: Any) -> list[RepositoryModel]:
    if isinstance(raw, list):
        raw = {"models": raw}
    msg = _message(raw, service_pb2.RepositoryIndexResponse)
    return [
        RepositoryModel(
            name=m.name, version=m.version or None, state=m.state or None, reason=m.reason or None
        )
        for m in msg.models
    ]
