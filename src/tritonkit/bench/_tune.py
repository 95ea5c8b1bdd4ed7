"""``tune``: a small Model Analyzer. Sweep a few configs of a pipeline on a private embedded
Triton (EXPLICIT mode, config overrides through the model-repository API), measure each with
the bench engine, and publish the best one that meets the latency budget as a new version.

The search is a coordinate descent from the current config: the classifier's layout (instances x
onnxruntime intra-op threads) first, then preprocessor instances, preferred batch sizes and the
queue delay, one dimension at a time, keeping the best value of each. The two best candidates are
then measured once more and ranked on the mean, because one run on a shared machine is noisy.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from tritonclient.grpc.model_config_pb2 import ModelInstanceGroup

from tritonkit.client import TritonClient, parse_endpoint
from tritonkit.repository import (
    ModelConfig,
    parallel_runs_for,
    parse_config,
    preprocess_threads_for,
    publish_config_variant,
)
from tritonkit.server import ADMIN_KEY_HEADER, EmbeddedServer, ServerOptions, free_port

from ._errors import TuneError
from ._local import available_cores, load_average, machine_info
from ._probe import ServerProbe
from ._results import LevelResult
from ._run import BenchEvent, BenchOptions, _run_levels, discover
from ._workload import Workload, build_workload

CONFIG_FILENAME = "config.pbtxt"
THREADS_PARAMETER = "intra_op_threads"
PARALLEL_PARAMETER = "parallel_runs"
PREPROCESS_THREADS_PARAMETER = "threads"


@dataclass(frozen=True)
class Candidate:
    """One configuration of a tritonkit pipeline.

    The queue delay applies to both composing models; ``preferred_batch_sizes`` are the
    classifier's. As build-repo does, a single classifier instance runs a batch's requests side by
    side (``parallel_runs``, see :func:`tritonkit.repository.parallel_runs_for`) and the
    preprocessor decodes with the cores shared among its instances.
    """

    classifier_instances: int
    intra_op_threads: int
    preprocess_instances: int
    max_queue_delay_us: int
    preferred_batch_sizes: tuple[int, ...] = ()
    preprocess_preferred_batch_sizes: tuple[int, ...] = ()

    @property
    def parallel_runs(self) -> int:
        return parallel_runs_for(self.classifier_instances, self.intra_op_threads)

    def __str__(self) -> str:
        preferred = ",".join(map(str, self.preferred_batch_sizes)) or "-"
        return (
            f"classifier {self.classifier_instances}x{self.intra_op_threads}t"
            f"{' (parallel runs)' if self.parallel_runs > 1 else ''}, "
            f"preprocess {self.preprocess_instances}, preferred {preferred}, "
            f"delay {self.max_queue_delay_us} us"
        )


@dataclass(frozen=True)
class SearchSpace:
    """The values tune may try, per dimension."""

    classifier_instances: tuple[int, ...]
    intra_op_threads: tuple[int, ...]
    preprocess_instances: tuple[int, ...]
    preferred_batch_sizes: tuple[tuple[int, ...], ...]
    max_queue_delay_us: tuple[int, ...]

    def __post_init__(self) -> None:
        for name in ("classifier_instances", "intra_op_threads", "preprocess_instances"):
            values = getattr(self, name)
            if not values or any(v < 1 for v in values):
                raise TuneError(
                    f"{name.replace('_', ' ')} to try must be whole numbers >= 1, got {list(values)}"
                )
        if not self.max_queue_delay_us or any(v < 0 for v in self.max_queue_delay_us):
            raise TuneError(f"queue delays must be >= 0 microseconds, got {list(self.max_queue_delay_us)}")
        if not self.preferred_batch_sizes or any(
            b < 1 for sizes in self.preferred_batch_sizes for b in sizes
        ):
            raise TuneError("preferred batch sizes must be whole numbers >= 1")

    @classmethod
    def for_cores(cls, cores: int | None = None) -> SearchSpace:
        """A small space for ``cores``: 1 or ``cores`` instances and threads, a few batching choices."""
        n = cores or available_cores()
        counts = tuple(sorted({1, n}))
        return cls(
            classifier_instances=counts,
            intra_op_threads=counts,
            preprocess_instances=tuple(sorted({1, max(1, n // 2), n})),
            preferred_batch_sizes=((), (2,), (4,)),
            max_queue_delay_us=(0, 1000, 5000),
        )

    def dimensions(self) -> list[list[dict[str, Any]]]:
        """The coordinate-descent steps, each a list of field changes to try."""
        return [
            [
                {"classifier_instances": i, "intra_op_threads": t}
                for i, t in itertools.product(self.classifier_instances, self.intra_op_threads)
            ],
            [{"preprocess_instances": p} for p in self.preprocess_instances],
            [{"preferred_batch_sizes": tuple(sizes)} for sizes in self.preferred_batch_sizes],
            [{"max_queue_delay_us": d} for d in self.max_queue_delay_us],
        ]


@dataclass(frozen=True)
class TuneOptions:
    """One ``tritonkit tune`` run on the pipeline ``model`` of ``repository``."""

    model: str
    repository: Path = Path("model_repository")
    space: SearchSpace | None = None
    max_p99_ms: float | None = None
    concurrency: tuple[int, ...] = (16,)
    duration_s: float = 5.0
    warmup_s: float = 2.0
    images: tuple[Path, ...] = ()
    publish: bool = True
    confirm: bool = True
    protocol: str = "grpc"
    timeout_s: float = 60.0
    budget_s: float = 300.0

    def __post_init__(self) -> None:
        if self.budget_s <= 0:
            raise TuneError(f"--budget must be a positive number of seconds, got {self.budget_s}")
        if self.max_p99_ms is not None and self.max_p99_ms <= 0:
            raise TuneError(f"--max-p99-ms must be positive, got {self.max_p99_ms}")
        if not self.concurrency or any(c < 1 for c in self.concurrency):
            raise TuneError(f"--concurrency needs whole numbers >= 1, got {list(self.concurrency)}")
        if self.duration_s <= 0 or self.warmup_s < 0:
            raise TuneError("--duration must be positive and --warmup >= 0")
        if self.protocol not in ("grpc", "http"):
            raise TuneError(f"--protocol must be grpc or http, got {self.protocol!r}")


@dataclass(frozen=True)
class LevelFigures:
    """What one concurrency level gave a candidate (client side, plus server batch sizes)."""

    concurrency: int
    throughput: float
    p50_ms: float | None
    p99_ms: float | None
    errors: int
    avg_batch_size: dict[str, float | None] = field(default_factory=dict)

    @classmethod
    def of(cls, level: LevelResult) -> LevelFigures:
        batches = {}
        if level.server is not None:
            batches = {m.model: m.avg_batch_size for m in level.server.models if m.role != "pipeline"}
        return cls(
            concurrency=level.concurrency,
            throughput=level.throughput,
            p50_ms=level.latency.p50_ms if level.latency else None,
            p99_ms=level.latency.p99_ms if level.latency else None,
            errors=level.error_count,
            avg_batch_size=batches,
        )


@dataclass(frozen=True)
class CandidateResult:
    """A candidate's runs; ``score`` is the mean over runs of the best throughput among the
    levels without errors within the p99 budget (0 when none qualifies)."""

    candidate: Candidate
    runs: tuple[tuple[LevelFigures, ...], ...]
    max_p99_ms: float | None

    def _run_score(self, levels: Sequence[LevelFigures]) -> tuple[float, LevelFigures | None]:
        fitting = [
            level
            for level in levels
            if level.errors == 0
            and level.p99_ms is not None
            and (self.max_p99_ms is None or level.p99_ms <= self.max_p99_ms)
        ]
        best = max(fitting, key=lambda level: level.throughput, default=None)
        return (best.throughput if best else 0.0), best

    @property
    def score(self) -> float:
        return sum(self._run_score(run)[0] for run in self.runs) / len(self.runs)

    @property
    def feasible(self) -> bool:
        return all(self._run_score(run)[1] is not None for run in self.runs)

    @property
    def best_level(self) -> LevelFigures | None:
        """The level that scored in the last run."""
        return self._run_score(self.runs[-1])[1]


@dataclass(frozen=True)
class TuneResult:
    """Every candidate tune measured, the baseline (the config it started from) and the winner."""

    model: str
    repository: str
    baseline: Candidate
    results: tuple[CandidateResult, ...]
    winner: CandidateResult
    published_version: int | None
    from_version: int
    skipped: int = 0
    """Candidates of the search left unmeasured because the time budget ran out."""

    def record(self) -> dict[str, Any]:
        """What goes into the new version's manifest."""
        return {
            "objective": "throughput",
            "from_version": self.from_version,
            "max_p99_ms": self.winner.max_p99_ms,
            "machine": asdict(machine_info()),
            "loadavg": load_average(),
            "skipped_for_time": self.skipped,
            "baseline": asdict(self.baseline),
            "winner": _row(self.winner),
            "candidates": [_row(result) for result in self.results],
        }


def _row(result: CandidateResult) -> dict[str, Any]:
    return {
        **asdict(result.candidate),
        "score": round(result.score, 2),
        "feasible": result.feasible,
        "runs": [[asdict(level) for level in run] for run in result.runs],
    }


@dataclass(frozen=True)
class Pipeline:
    """The three models of a tritonkit pipeline, with their configs as the repository has them."""

    ensemble: str
    preprocess: str
    classifier: str
    configs: dict[str, ModelConfig]
    version: int

    @classmethod
    def read(cls, repo: Path, name: str) -> Pipeline:
        configs: dict[str, ModelConfig] = {}

        def config(model: str) -> ModelConfig:
            path = repo / model / CONFIG_FILENAME
            if not path.is_file():
                raise TuneError(
                    f"{path} does not exist: build the pipeline with `tritonkit build-repo` first"
                )
            configs[model] = parse_config(path.read_text())
            return configs[model]

        ensemble = config(name)
        steps = [step.model_name for step in ensemble.ensemble_scheduling.step]
        if ensemble.platform != "ensemble" or len(steps) != 2:
            raise TuneError(
                f"{name} is not a tritonkit pipeline (an ensemble of a preprocessor and a classifier)"
            )
        preprocess, classifier = steps
        classifier_config = config(classifier)
        config(preprocess)
        if classifier_config.backend != "python" or THREADS_PARAMETER not in classifier_config.parameters:
            raise TuneError(
                f"{classifier} is not tritonkit's embedded onnxruntime classifier; tune runs pipelines "
                "built with --target embedded"
            )
        versions = [int(p.name) for p in (repo / name).iterdir() if p.is_dir() and p.name.isdigit()]
        return cls(name, preprocess, classifier, configs, max(versions, default=0))

    def candidate(self) -> Candidate:
        """The configuration the repository has now."""
        cls_config = self.configs[self.classifier]
        pre_config = self.configs[self.preprocess]
        return Candidate(
            classifier_instances=_instances(cls_config),
            intra_op_threads=int(cls_config.parameters[THREADS_PARAMETER].string_value or 1),
            preprocess_instances=_instances(pre_config),
            max_queue_delay_us=int(cls_config.dynamic_batching.max_queue_delay_microseconds),
            preferred_batch_sizes=tuple(cls_config.dynamic_batching.preferred_batch_size),
            preprocess_preferred_batch_sizes=tuple(pre_config.dynamic_batching.preferred_batch_size),
        )

    def configs_for(self, candidate: Candidate) -> dict[str, ModelConfig]:
        """The composing models' configs with ``candidate`` applied."""
        result = {}
        for name, instances, preferred in (
            (self.classifier, candidate.classifier_instances, candidate.preferred_batch_sizes),
            (self.preprocess, candidate.preprocess_instances, candidate.preprocess_preferred_batch_sizes),
        ):
            config = ModelConfig()
            config.CopyFrom(self.configs[name])
            if not config.instance_group:
                config.instance_group.add(kind=ModelInstanceGroup.KIND_CPU)
            config.instance_group[0].count = instances
            batching = config.dynamic_batching
            batching.max_queue_delay_microseconds = candidate.max_queue_delay_us
            del batching.preferred_batch_size[:]
            batching.preferred_batch_size.extend(b for b in preferred if b <= config.max_batch_size)
            if name == self.classifier:
                config.parameters[THREADS_PARAMETER].string_value = str(candidate.intra_op_threads)
                config.parameters[PARALLEL_PARAMETER].string_value = str(candidate.parallel_runs)
            else:
                threads = preprocess_threads_for(candidate.preprocess_instances)
                config.parameters[PREPROCESS_THREADS_PARAMETER].string_value = str(threads)
            result[name] = config
        return result


def _instances(config: ModelConfig) -> int:
    return int(config.instance_group[0].count) if config.instance_group else 1


Progress = Callable[[str, CandidateResult | None], None]


class _Session:
    """A private embedded Triton on the repository, and what is needed to load and measure."""

    def __init__(self, options: TuneOptions, pipeline: Pipeline) -> None:
        self.options = options
        self.pipeline = pipeline
        self.key = secrets.token_urlsafe(18)
        self.server = EmbeddedServer(
            ServerOptions(
                repository=Path(options.repository).resolve(),
                http_port=free_port(),
                grpc_port=free_port(),
                metrics_port=free_port(),
                model_control_mode="explicit",
                load_models=(pipeline.preprocess, pipeline.classifier, pipeline.ensemble),
                admin_key=self.key,
                heal=False,
            )
        )
        self.loaded: dict[str, str] = {}
        self.workload: Workload | None = None

    def url(self) -> str:
        return self.server.grpc_url if self.options.protocol == "grpc" else self.server.http_url

    def load(self, candidate: Candidate) -> None:
        changed = {
            name: json_format.MessageToJson(config)
            for name, config in self.pipeline.configs_for(candidate).items()
            if self.loaded.get(name) != json_format.MessageToJson(config)
        }
        if not changed:
            return
        with TritonClient(
            self.server.http_url, headers={ADMIN_KEY_HEADER: self.key}, timeout_s=120
        ) as client:
            for name, text in changed.items():
                client.load_model(name, config=text)
                self.loaded[name] = text
            client.wait_until_ready(self.pipeline.ensemble, timeout_s=120)

    def measure(self, candidate: Candidate) -> tuple[LevelFigures, ...]:
        self.load(candidate)
        options = self.options
        bench = BenchOptions(
            model=self.pipeline.ensemble,
            url=self.url(),
            concurrency=options.concurrency,
            duration_s=options.duration_s,
            warmup_s=options.warmup_s,
            timeout_s=options.timeout_s,
        )
        endpoint = parse_endpoint(self.url())
        if self.workload is None:
            with TritonClient(
                self.url(), timeout_s=options.timeout_s, headers={ADMIN_KEY_HEADER: self.key}
            ) as client:
                served = discover(client, self.pipeline.ensemble)
            self.workload = build_workload(served.metadata, served.config, options.images)
        probe = ServerProbe(
            self.pipeline.ensemble,
            self.server.metrics_url,
            {self.pipeline.ensemble: (self.pipeline.preprocess, self.pipeline.classifier)},
            self.server.pid,
        )

        def ignore(_event: BenchEvent) -> None:
            return None

        levels = asyncio.run(_run_levels(bench, endpoint, self.workload, probe, ignore))
        return tuple(LevelFigures.of(level) for level in levels)


def tune(options: TuneOptions, progress: Progress | None = None) -> TuneResult:
    """Measure candidates around the repository's current config and publish the best one.

    The search stops starting new measurements once the next one (estimated by the longest so
    far) would end past ``budget_s`` after the server started; the baseline is always measured.

    Raises :class:`TuneError` when no candidate meets the budget (nothing is published then).
    """
    say = progress or (lambda _text, _result: None)
    repo = Path(options.repository)
    pipeline = Pipeline.read(repo, options.model)
    space = options.space or SearchSpace.for_cores()
    baseline = pipeline.candidate()
    session = _Session(options, pipeline)
    results: dict[Candidate, CandidateResult] = {}

    def measure(candidate: Candidate) -> CandidateResult:
        say(f"measuring {candidate}", None)
        levels = session.measure(candidate)
        previous = results.get(candidate)
        runs = (*previous.runs, levels) if previous else (levels,)
        results[candidate] = CandidateResult(candidate, runs, options.max_p99_ms)
        say(f"measured {candidate}", results[candidate])
        return results[candidate]

    say("starting a private Triton in EXPLICIT mode", None)
    started = time.monotonic()
    longest = 0.0  # the longest measurement so far: what the next one may take
    skipped = 0

    def affordable() -> bool:
        return time.monotonic() - started + longest <= options.budget_s

    def timed(candidate: Candidate) -> CandidateResult:
        nonlocal longest
        begin = time.monotonic()
        measured = measure(candidate)
        longest = max(longest, time.monotonic() - begin)
        return measured

    session.server.start(timeout_s=180)
    try:
        best = timed(baseline)  # always measured: the winner is chosen against it
        for dimension in space.dimensions():
            for change in dimension:
                candidate = replace(best.candidate, **change)
                if candidate in results:
                    continue
                if not affordable():
                    skipped += 1
                    continue
                measured = timed(candidate)
                if measured.score > best.score:
                    best = measured
        if skipped:
            say(f"time budget of {options.budget_s:g} s reached: {skipped} candidate(s) not measured", None)
        ranked = sorted(results.values(), key=lambda r: r.score, reverse=True)
        if options.confirm and len(ranked) > 1 and ranked[1].score > 0 and affordable():
            say("measuring the two best again", None)
            for top in ranked[:2]:
                timed(top.candidate)
    finally:
        session.server.stop()
    ordered = tuple(results.values())
    feasible = [r for r in ordered if r.feasible and r.score > 0]
    if not feasible:
        budget = f"p99 <= {options.max_p99_ms:g} ms" if options.max_p99_ms else "the run"
        raise TuneError(
            f"no candidate met {budget} without errors at concurrency {list(options.concurrency)}; "
            "raise --max-p99-ms or lower --concurrency"
        )
    winner = max(feasible, key=lambda r: r.score)
    result = TuneResult(
        model=options.model,
        repository=str(repo),
        baseline=baseline,
        results=ordered,
        winner=winner,
        published_version=None,
        from_version=pipeline.version,
        skipped=skipped,
    )
    say(f"tuned in {time.monotonic() - started:.0f} s", None)
    if options.publish:
        configs = {**pipeline.configs_for(winner.candidate)}
        ensemble = ModelConfig()
        ensemble.CopyFrom(pipeline.configs[pipeline.ensemble])
        configs[pipeline.ensemble] = ensemble
        record = result.record()
        record["measured"] = {
            "concurrency": list(options.concurrency),
            "duration_s": options.duration_s,
            "warmup_s": options.warmup_s,
            "protocol": options.protocol,
        }
        version = publish_config_variant(repo, configs, record)
        result = replace(result, published_version=version)
    return result
