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
    """How the generated models share the machine's cores."""

    classifier_instances: int
    preprocess_instances: int
    intra_op_threads: int


def default_cpu_layout(cores: int | None = None) -> CpuLayout:
    """One classifier instance whose onnxruntime uses every core (no spin-waiting, so idle
    threads give the cores back to the preprocessor), and preprocessor instances for half of
    them: decoding is single-threaded per instance and overlaps with inference."""
    n = cores or available_cores()
    return CpuLayout(classifier_instances=1, preprocess_instances=max(1, n // 2), intra_op_threads=n)
