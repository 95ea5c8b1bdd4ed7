"""The public API of tritonkit.bench is what ``__all__`` says: sorted, and from private modules."""

from __future__ import annotations

import inspect

import tritonkit.bench as bench


def test_all_is_sorted_unique_and_complete() -> None:
    assert bench.__all__ == sorted(set(bench.__all__))
    public = {
        name
        for name, member in vars(bench).items()
        if not name.startswith("_") and not inspect.ismodule(member) and name != "annotations"
    }
    assert public == set(bench.__all__)


def test_every_exported_name_comes_from_a_private_module() -> None:
    for name in bench.__all__:
        member = getattr(bench, name)
        if inspect.isclass(member) or inspect.isfunction(member):
            assert member.__module__.startswith("tritonkit.bench._"), (name, member.__module__)


def test_every_error_is_a_bench_error() -> None:
    errors = [bench.WorkloadError, bench.ReferenceUnavailable, bench.TuneError]
    assert all(issubclass(error, bench.BenchError) for error in errors)
