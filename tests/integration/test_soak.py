"""A short soak against the real server: many concurrent clients, no errors, flat memory."""

from __future__ import annotations

from pathlib import Path

import pytest

from testsupport import make_onnx_classifier, start_server
from tritonkit.demo import make_shapes
from tritonkit.repository import BuildOptions, build_repository
from tritonkit.soak import process_tree, run_soak

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_sixteen_clients_for_a_few_seconds_fail_nothing_and_memory_stays_flat(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    build_repository(make_onnx_classifier(tmp_path / "tiny.onnx"), BuildOptions(name="tiny", repository=repo))
    images, _ = make_shapes(8, seed=3, size=(320, 240))
    server = start_server(repo)
    try:
        assert server.pid is not None
        pid = server.pid
        report = run_soak(
            server.grpc_url,
            "tiny",
            images,
            clients=16,
            duration_s=8,
            window_s=2,
            warmup_s=2,
            pids=lambda: process_tree(pid),
        )
    finally:
        server.stop()
    assert report.errors == {}
    assert report.requests > 100
    assert len(report.rss_samples) >= 10 and report.rss_first_mb and report.rss_first_mb > 50
    growth = report.memory_growth
    assert growth is not None and growth < 0.05, f"memory grew {growth:.1%}: {report.rss_samples}"
