"""Measure served performance (``tritonkit bench``) and tune a pipeline's config (``tritonkit tune``).

>>> result = run_bench(BenchOptions(model="flowers", concurrency=(1, 16), duration_s=10, reference=True))
>>> result.level(16).throughput_vs_reference
0.93
"""

from ._errors import BenchError, ReferenceUnavailable, TuneError, WorkloadError
from ._photos import make_photo, make_photos, write_photos
from ._reference import ReferencePlan, measure_reference
from ._report import result_dict, write_csv, write_json, write_plot
from ._results import (
    BenchResult,
    LatencySummary,
    LevelResult,
    MachineLoad,
    ModelFigures,
    ProcessFigures,
    ReferenceLayout,
    ReferenceResult,
    ReferenceTrial,
    ServerFigures,
)
from ._run import BenchEvent, BenchOptions, parse_concurrency, reference_plan, run_bench
from ._tune import Candidate, CandidateResult, LevelFigures, SearchSpace, TuneOptions, TuneResult, tune
from ._workload import Workload, build_workload

__all__ = [
    "BenchError",
    "BenchEvent",
    "BenchOptions",
    "BenchResult",
    "Candidate",
    "CandidateResult",
    "LatencySummary",
    "LevelFigures",
    "LevelResult",
    "MachineLoad",
    "ModelFigures",
    "ProcessFigures",
    "ReferenceLayout",
    "ReferencePlan",
    "ReferenceResult",
    "ReferenceTrial",
    "ReferenceUnavailable",
    "SearchSpace",
    "ServerFigures",
    "TuneError",
    "TuneOptions",
    "TuneResult",
    "Workload",
    "WorkloadError",
    "build_workload",
    "make_photo",
    "make_photos",
    "measure_reference",
    "parse_concurrency",
    "reference_plan",
    "result_dict",
    "run_bench",
    "tune",
    "write_csv",
    "write_json",
    "write_photos",
    "write_plot",
]
