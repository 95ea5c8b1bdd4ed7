"""CPU-aware defaults: the core count this process may use, the layout drawn from it, and what a
default build writes into the configs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from testsupport import make_onnx_classifier
from tritonkit.repository import (
    BuildOptions,
    CpuLayout,
    ModelConfig,
    available_cores,
    build_repository,
    default_cpu_layout,
    parallel_runs_for,
    parse_config,
)


def _pin_cores(monkeypatch: pytest.MonkeyPatch, cores: int) -> None:
    """As if the process were confined to ``cores`` CPUs (taskset, a cgroup cpuset)."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)


def test_available_cores_counts_the_cpus_this_process_may_run_on_not_the_machine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _pin_cores(monkeypatch, 3)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    assert available_cores() == 3


@pytest.mark.parametrize(("cpu_count", "expected"), [(6, 6), (None, 1)])
def test_available_cores_falls_back_to_cpu_count_where_there_is_no_affinity(
    monkeypatch: pytest.MonkeyPatch, cpu_count: int | None, expected: int
) -> None:
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: cpu_count)
    assert available_cores() == expected


# cores -> the layout documented on CpuLayout: one process per model; every core as intra-op
# threads; one parallel run more than cores (one run alone on one core); two requests per
# parallel run and two images per preprocessing thread (at least four) in a preferred batch.
LAYOUTS = {
    1: CpuLayout(1, 1, 1, parallel_runs=1, preprocess_threads=1, classifier_preferred_batch_sizes=(2,),
                 preprocess_preferred_batch_sizes=(4,)),
    2: CpuLayout(1, 1, 2, parallel_runs=3, preprocess_threads=2, classifier_preferred_batch_sizes=(6,),
                 preprocess_preferred_batch_sizes=(4,)),
    8: CpuLayout(1, 1, 8, parallel_runs=9, preprocess_threads=8, classifier_preferred_batch_sizes=(18,),
                 preprocess_preferred_batch_sizes=(16,)),
}  # fmt: skip


@pytest.mark.parametrize("cores", sorted(LAYOUTS))
def test_default_layout_gives_one_process_per_model_with_threads_and_parallel_runs_sized_to_the_cores(
    cores: int,
) -> None:
    assert default_cpu_layout(cores) == LAYOUTS[cores]


@pytest.mark.parametrize("cores", sorted(LAYOUTS))
def test_default_layout_without_a_count_uses_the_available_cores(
    monkeypatch: pytest.MonkeyPatch, cores: int
) -> None:
    _pin_cores(monkeypatch, cores)
    assert default_cpu_layout() == LAYOUTS[cores]


@pytest.mark.parametrize(
    ("instances", "threads", "runs"),
    [(1, 1, 1), (1, 2, 3), (1, 8, 9), (2, 8, 1), (4, 1, 1)],
)
def test_only_a_single_multi_threaded_instance_runs_a_batch_in_parallel_parts(
    instances: int, threads: int, runs: int
) -> None:
    assert parallel_runs_for(instances, threads) == runs


def _configs(repo: Path) -> dict[str, ModelConfig]:
    return {
        m: parse_config((repo / m / "config.pbtxt").read_text())
        for m in ("tiny_classifier", "tiny_preprocess")
    }


@pytest.mark.parametrize(
    ("cores", "parallel_runs", "classifier_preferred"),
    [(1, "1", [2]), (2, "3", [6]), (8, "9", [])],  # 18 > max_batch_size 16: the batcher chooses
)
def test_a_default_build_sizes_threads_parallel_runs_and_preprocessor_threads_to_the_cores(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    cores: int,
    parallel_runs: str,
    classifier_preferred: list[int],
) -> None:
    _pin_cores(monkeypatch, cores)
    model = make_onnx_classifier(tmp_path / "tiny.onnx")
    build_repository(model, BuildOptions(name="tiny", repository=tmp_path / "repo", max_batch_size=16))
    configs = _configs(tmp_path / "repo")
    classifier, preprocess = configs["tiny_classifier"], configs["tiny_preprocess"]
    parameters = {k: v.string_value for k, v in classifier.parameters.items()}
    assert parameters == {
        "intra_op_threads": str(cores),
        "inter_op_threads": "1",
        "allow_spinning": "0",
        "parallel_runs": parallel_runs,
    }
    assert [g.count for g in classifier.instance_group] == [1]
    assert list(classifier.dynamic_batching.preferred_batch_size) == classifier_preferred
    assert preprocess.parameters["threads"].string_value == str(cores)
    assert [g.count for g in preprocess.instance_group] == [1]


def test_explicit_instances_and_threads_override_the_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _pin_cores(monkeypatch, 8)
    model = make_onnx_classifier(tmp_path / "tiny.onnx")
    options = BuildOptions(
        name="tiny", repository=tmp_path / "repo", instances=2, intra_op_threads=3, preprocess_instances=2
    )
    build_repository(model, options)
    configs = _configs(tmp_path / "repo")
    classifier, preprocess = configs["tiny_classifier"], configs["tiny_preprocess"]
    assert classifier.parameters["intra_op_threads"].string_value == "3"
    assert classifier.parameters["parallel_runs"].string_value == "1"  # two instances: no parallel parts
    assert [g.count for g in classifier.instance_group] == [2]
    # the cores' decoding threads are shared between the preprocessor instances
    assert preprocess.parameters["threads"].string_value == "4"
    assert [g.count for g in preprocess.instance_group] == [2]


def test_the_triton_target_sizes_the_onnxruntime_backends_thread_count_to_the_cores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _pin_cores(monkeypatch, 2)
    model = make_onnx_classifier(tmp_path / "tiny.onnx")
    build_repository(model, BuildOptions(name="tiny", repository=tmp_path / "repo", target="triton"))
    classifier = _configs(tmp_path / "repo")["tiny_classifier"]
    parameters = {k: v.string_value for k, v in classifier.parameters.items()}
    assert parameters == {"intra_op_thread_count": "2", "inter_op_thread_count": "1"}
