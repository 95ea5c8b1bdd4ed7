"""CPU-aware defaults a user would otherwise have to discover by measuring."""

from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_MAX_BATCH_SIZE = 16


def available_cores() -> int:
    """Cores this process may run on (cgroup/affinity aware, unlike os.cpu_count())."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class CpuLayout:
    """How the generated models share the machine's cores.

    ``parallel_runs``: requests of one dynamic batch the classifier runs side by side (each on
    one core) instead of splitting one run across cores; ``preprocess_threads``: images of one
    batch the preprocessor decodes at once. The preferred batch sizes give every parallel run and
    every preprocessing thread two requests per batch: big enough to keep the cores busy between
    batches, small enough to keep onnxruntime's activations (and so its memory) small.
    """

    classifier_instances: int
    preprocess_instances: int
    intra_op_threads: int
    parallel_runs: int = 1
    preprocess_threads: int = 1
    classifier_preferred_batch_sizes: tuple[int, ...] = ()
    preprocess_preferred_batch_sizes: tuple[int, ...] = ()


def default_cpu_layout(cores: int | None = None) -> CpuLayout:
    """One process per model, each using every core, measured on 2 cores (docs/BENCHMARKS.md).

    A lone request gets every core: onnxruntime's intra-op threads (no spin-waiting, so idle
    threads give the cores back). Under load, the dynamic batcher hands the classifier two
    requests per parallel run, run side by side on single-threaded sessions (which uses the cores
    better than intra-op parallelism), and the preprocessor two images per core, decoded by as
    many threads. One process per model keeps the memory down: a second onnxruntime stub costs more
    than a second session inside the first (a second classifier instance measured ~10% more
    throughput and ~190 MB more resident memory on 2 cores).
    """
    n = cores or available_cores()
    runs = parallel_runs_for(1, n)
    return CpuLayout(
        classifier_instances=1,
        preprocess_instances=1,
        intra_op_threads=n,
        parallel_runs=runs,
        preprocess_threads=n,
        classifier_preferred_batch_sizes=(2 * runs,),
        preprocess_preferred_batch_sizes=(2 * max(2, n),),
    )


def parallel_runs_for(instances: int, intra_op_threads: int) -> int:
    """How many requests of a batch one classifier instance runs side by side: one more than its
    threads when a single instance has several (the extra run fills the cores while the others
    finish, instead of idling until the slowest one does), else one run for the whole batch."""
    return intra_op_threads + 1 if instances == 1 and intra_op_threads > 1 else 1


def preprocess_threads_for(instances: int, cores: int | None = None) -> int:
    """Decoding threads of each preprocessor instance: the cores shared among the instances."""
    return max(1, (cores or available_cores()) // instances)
