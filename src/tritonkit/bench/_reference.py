"""The in-process reference: the served pipeline's own preprocessing and ONNX model, run here.

It answers "how fast could this machine do this work at all?": the preprocessing code is the
``imaging.py`` that the server's preprocessor runs (tritonkit's installed copy, checked to be the
same file as the version folder's), the model is the classifier's ``model.onnx``, and
onnxruntime runs it in the best of a few layouts:

- throughput: parallel streams (each a thread with its own session) x intra-op threads x batch
  size, every layout that does not oversubscribe the cores, tried briefly; the best one is then
  measured for longer;
- latency: one image at a time (decode, preprocess, run), for each intra-op thread count, with
  and without onnxruntime's spin-waiting; the lowest median wins.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from ._errors import ReferenceUnavailable
from ._local import available_cores, load_average
from ._results import ReferenceLayout, ReferenceResult, ReferenceTrial
from ._workload import Workload

ONNX_FILENAME = "model.onnx"
IMAGING_FILENAME = "imaging.py"
BATCH_SIZES: tuple[int, ...] = (1, 2, 4, 8)


@dataclass(frozen=True)
class ReferencePlan:
    """What the reference runs: an ONNX file and, for an image pipeline, how images become its input."""

    onnx_path: Path
    preprocessing: str
    preprocess: Callable[[Sequence[bytes]], np.ndarray] | None = None
    pixels_input: str | None = None


def latest_version_dir(model_dir: Path, ready: Sequence[int] = ()) -> Path:
    """The version folder the server runs: the highest ready version, else the highest present."""
    present = sorted(int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit())
    candidates = [v for v in present if v in set(ready)] or present
    if not candidates:
        raise ReferenceUnavailable(f"{model_dir} has no version folders")
    return model_dir / str(candidates[-1])


def check_imaging(path: Path) -> ModuleType:
    """tritonkit's own preprocessing module, once ``path`` (a version's ``imaging.py``) is shown
    to be the same file.

    The reference must run exactly the served preprocessing, but code from a model repository is
    never executed by tritonkit's own process (only by Triton's backend stubs): so it runs the
    installed copy, and refuses a version whose ``imaging.py`` differs from it (built by another
    tritonkit release, or edited by hand).
    """
    from tritonkit.custom_backends.image_preprocessor import imaging

    ours = Path(imaging.__file__)
    if path.read_bytes() != ours.read_bytes():
        raise ReferenceUnavailable(
            f"{path} differs from this tritonkit's {ours.name}: the reference only runs its own "
            "preprocessing code, never a repository's; rebuild the model with this tritonkit "
            "(`tritonkit build-repo`) or bench without --reference"
        )
    return imaging


def image_pipeline_plan(
    preprocess_dir: Path, parameters: dict[str, str], classifier_dir: Path, pixels_input: str
) -> ReferencePlan:
    """The plan for a tritonkit ensemble: its preprocessor's imaging.py and spec, then the ONNX."""
    onnx_path = classifier_dir / ONNX_FILENAME
    if not onnx_path.is_file():
        raise ReferenceUnavailable(
            f"no {ONNX_FILENAME} in {classifier_dir}: the reference runs ONNX models only"
        )
    imaging_path = preprocess_dir / IMAGING_FILENAME
    if not imaging_path.is_file():
        raise ReferenceUnavailable(
            f"no {IMAGING_FILENAME} in {preprocess_dir}: the reference reuses tritonkit's preprocessor code"
        )
    imaging = check_imaging(imaging_path)
    try:
        spec = imaging.ImageSpec.from_parameters(parameters)
    except ValueError as exc:
        raise ReferenceUnavailable(f"the preprocessor's image parameters are unusable: {exc}") from exc

    def preprocess(items: Sequence[bytes]) -> np.ndarray:
        batch, errors = imaging.preprocess_batch(items, spec)
        bad = [str(e) for e in errors if e is not None]
        if bad:
            raise ReferenceUnavailable(f"the reference cannot preprocess an image: {bad[0]}")
        return np.asarray(batch)

    return ReferencePlan(
        onnx_path=onnx_path,
        preprocessing=f"{imaging_path} ({spec.width}x{spec.height} {spec.layout}, {spec.scaling})",
        preprocess=preprocess,
        pixels_input=pixels_input,
    )


def tensor_model_plan(model_dir: Path) -> ReferencePlan:
    """The plan for a model whose version folder holds the ONNX file: random tensors straight in."""
    onnx_path = model_dir / ONNX_FILENAME
    if not onnx_path.is_file():
        raise ReferenceUnavailable(f"no {ONNX_FILENAME} in {model_dir}: the reference runs ONNX models only")
    return ReferencePlan(onnx_path=onnx_path, preprocessing="none (tensor inputs)")


def _session(path: Path, threads: int, spinning: bool = False) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    flag = "1" if spinning else "0"
    options.add_session_config_entry("session.intra_op.allow_spinning", flag)
    options.add_session_config_entry("session.inter_op.allow_spinning", flag)
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


class _Runner:
    """Feeds for ``batch`` items starting at ``start``, and one run of them."""

    def __init__(self, plan: ReferencePlan, workload: Workload) -> None:
        self._plan = plan
        self._workload = workload
        self.items = len(workload.images) if plan.preprocess is not None else len(workload.payloads)
        if self.items == 0:
            raise ReferenceUnavailable("the workload has nothing to run")

    def feeds(self, start: int, batch: int) -> dict[str, np.ndarray]:
        indices = [(start + k) % self.items for k in range(batch)]
        if self._plan.preprocess is not None:
            assert self._plan.pixels_input is not None
            return {
                self._plan.pixels_input: self._plan.preprocess([self._workload.images[i] for i in indices])
            }
        payloads = [self._workload.payloads[i] for i in indices]
        return {
            tensor.name: np.concatenate([p[n].array for p in payloads])
            for n, tensor in enumerate(payloads[0])
        }

    def run(self, session: Any, start: int, batch: int) -> None:
        session.run(None, self.feeds(start, batch))


def _layouts(cores: int) -> list[ReferenceLayout]:
    pairs = [(s, t) for s in range(1, cores + 1) for t in range(1, cores + 1) if s * t <= cores]
    return [ReferenceLayout(s, t, b) for (s, t), b in itertools.product(pairs, BATCH_SIZES)]


class _Sessions:
    """Sessions by intra-op thread count, as many as the most streams asked for; reused."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._pool: dict[tuple[int, bool], list[Any]] = {}

    def take(self, threads: int, count: int, spinning: bool = False) -> list[Any]:
        pool = self._pool.setdefault((threads, spinning), [])
        while len(pool) < count:
            pool.append(_session(self._path, threads, spinning))
        return pool[:count]


def _throughput(runner: _Runner, sessions: list[Any], batch: int, seconds: float) -> tuple[float, float]:
    """Items per second with one thread per session, each running batches; and CPU ms per item."""
    counts = [0] * len(sessions)
    errors: list[BaseException] = []
    for k, session in enumerate(sessions):  # warm each session up for this batch size
        runner.run(session, k, batch)
    barrier = threading.Barrier(len(sessions) + 1)
    stop = [0.0]

    def stream(k: int, session: Any) -> None:
        start = k * 7919
        barrier.wait()
        try:
            while time.perf_counter() < stop[0]:
                runner.run(session, start, batch)
                start += batch
                counts[k] += batch
        except BaseException as exc:  # reported in the caller's thread
            errors.append(exc)

    threads = [threading.Thread(target=stream, args=(k, s), daemon=True) for k, s in enumerate(sessions)]
    for thread in threads:
        thread.start()
    stop[0] = time.perf_counter() + seconds
    cpu0, began = time.process_time(), time.perf_counter()
    barrier.wait()
    for thread in threads:
        thread.join()
    wall, cpu = time.perf_counter() - began, time.process_time() - cpu0
    if errors:
        raise errors[0]
    total = sum(counts)
    return total / wall, (cpu * 1000 / total if total else float("nan"))


def _latency(runner: _Runner, session: Any, seconds: float) -> list[float]:
    runner.run(session, 0, 1)
    samples: list[float] = []
    index = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(samples) < 5:
        begin = time.perf_counter()
        runner.run(session, index, 1)
        samples.append(time.perf_counter() - begin)
        index += 1
    return samples


ProgressCallback = Callable[[str], None]


def measure_reference(
    plan: ReferencePlan,
    workload: Workload,
    *,
    cores: int | None = None,
    trial_s: float = 1.0,
    measure_s: float = 3.0,
    latency_s: float = 1.5,
    progress: ProgressCallback | None = None,
) -> ReferenceResult:
    """Find the best in-process layout for ``plan`` on this machine and measure it."""
    say = progress or (lambda _text: None)
    cores = cores or available_cores()
    runner = _Runner(plan, workload)
    sessions = _Sessions(plan.onnx_path)
    loads = [load_average()]
    trials = []
    for layout in _layouts(cores):
        say(f"reference: trying {layout}")
        rate, _ = _throughput(
            runner, sessions.take(layout.intra_op_threads, layout.streams), layout.batch_size, trial_s
        )
        trials.append(ReferenceTrial(layout, round(rate, 2)))
    best = max(trials, key=lambda t: t.throughput).layout
    say(f"reference: measuring {best}")
    rate, cpu_ms = _throughput(
        runner, sessions.take(best.intra_op_threads, best.streams), best.batch_size, measure_s
    )

    latency_trials: list[tuple[float, float, int, bool]] = []
    for threads in range(1, cores + 1):
        for spinning in (False, True):
            say(f"reference: single-image latency, {threads} thread(s){' spinning' if spinning else ''}")
            samples = _latency(runner, sessions.take(threads, 1, spinning)[0], latency_s / 2)
            p50, p99 = np.percentile(samples, [50, 99]) * 1000
            latency_trials.append((float(p50), float(p99), threads, spinning))
    p50, p99, latency_threads, latency_spinning = min(latency_trials)
    loads.append(load_average())
    return ReferenceResult(
        onnx_path=str(plan.onnx_path),
        preprocessing=plan.preprocessing,
        best=best,
        trials=tuple(trials),
        throughput_runs=(round(rate, 2),),
        latency_runs=(round(p50, 3),),
        latency_p99_ms=round(p99, 3),
        latency_threads=latency_threads,
        latency_spinning=latency_spinning,
        cpu_ms_per_item=round(cpu_ms, 3),
        loadavg=tuple(loads),
    )


def remeasure_reference(
    result: ReferenceResult,
    plan: ReferencePlan,
    workload: Workload,
    *,
    measure_s: float = 3.0,
    latency_s: float = 1.5,
    progress: ProgressCallback | None = None,
) -> ReferenceResult:
    """Measure ``result``'s best layouts once more (e.g. after the served levels) and add the runs."""
    say = progress or (lambda _text: None)
    runner = _Runner(plan, workload)
    sessions = _Sessions(plan.onnx_path)
    best = result.best
    say(f"reference: measuring {best} again")
    rate, _ = _throughput(
        runner, sessions.take(best.intra_op_threads, best.streams), best.batch_size, measure_s
    )
    spinning = result.latency_spinning
    say("reference: single-image latency again")
    samples = _latency(runner, sessions.take(result.latency_threads, 1, spinning)[0], latency_s / 2)
    p50 = float(np.percentile(samples, 50) * 1000)
    return replace(
        result,
        throughput_runs=(*result.throughput_runs, round(rate, 2)),
        latency_runs=(*result.latency_runs, round(p50, 3)),
        loadavg=(*result.loadavg, load_average()),
    )
