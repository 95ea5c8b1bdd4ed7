"""tritonkit health|status|classify|metrics against the real server, through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from tritonkit.cli import app
from tritonkit.server import EmbeddedServer, free_port

pytestmark = pytest.mark.integration

runner = CliRunner()


def test_health_exits_zero_when_ready_and_one_when_the_model_is_not(triton: EmbeddedServer) -> None:
    ok = runner.invoke(app, ["health", "--url", triton.grpc_url, "--model", "add_sub", "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout) == {
        "url": triton.grpc_url,
        "live": True,
        "ready": True,
        "model": "add_sub",
        "model_ready": True,
        "model_answers": True,  # a probe request went through
        "problem": None,
        "healthy": True,
    }
    missing = runner.invoke(app, ["health", "--url", triton.http_url, "--model", "no_such_model"])
    assert missing.exit_code == 1
    assert "model no_such_model" in missing.stdout


def test_health_of_a_dead_server_exits_one(triton: EmbeddedServer) -> None:
    result = runner.invoke(
        app, ["health", "--json"], env={"TRITONKIT_URL": f"http://127.0.0.1:{free_port()}"}
    )
    assert result.exit_code == 1
    assert json.loads(result.stdout)["live"] is False


def test_status_shows_the_repository_and_a_model(triton: EmbeddedServer) -> None:
    table = runner.invoke(app, ["status", "--url", triton.http_url, "--model", "tiny_classifier"])
    assert table.exit_code == 0, table.output
    assert "add_sub" in table.stdout and "READY" in table.stdout and "labels.txt" in table.stdout
    as_json = runner.invoke(app, ["status", "--url", triton.grpc_url, "--model", "add_sub", "--json"])
    payload = json.loads(as_json.stdout)
    assert payload["server"]["version"] == "2.51.0"
    assert payload["model"]["config"]["max_batch_size"] == 8
    assert payload["model"]["metadata"]["inputs"][0]["name"] == "INPUT0"


def test_status_of_an_unknown_model_is_a_red_line_and_exit_one(triton: EmbeddedServer) -> None:
    result = runner.invoke(app, ["status", "--url", triton.http_url, "--model", "no_such_model"])
    assert result.exit_code == 1
    assert "error:" in result.stderr and "no_such_model" in result.stderr
    assert "Traceback" not in result.output


def test_classify_prints_labels(triton: EmbeddedServer, tmp_path: Path) -> None:
    red, blue = tmp_path / "red.png", tmp_path / "blue.jpg"
    Image.new("RGB", (10, 10), (250, 0, 0)).save(red)
    Image.new("RGB", (10, 10), (0, 0, 250)).save(blue)
    args = [
        "classify",
        str(red),
        str(blue),
        "--model",
        "tiny_classifier",
        "--top-k",
        "2",
        "--url",
        triton.grpc_url,
    ]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert [p["classes"][0]["label"] for p in payload] == ["red", "blue"]
    assert len(payload[0]["classes"]) == 2
    table = runner.invoke(app, args)
    assert "red" in table.stdout and "blue" in table.stdout


def test_metrics_shows_totals_and_watches_rates(triton: EmbeddedServer) -> None:
    env = {"TRITONKIT_URL": triton.http_url, "TRITONKIT_METRICS_URL": triton.metrics_url, "COLUMNS": "200"}
    totals = runner.invoke(app, ["metrics"], env=env)
    assert totals.exit_code == 0, totals.output
    assert "tiny_classifier v1 (pipeline)" in totals.stdout and "add_sub" in totals.stdout
    snapshot = json.loads(runner.invoke(app, ["metrics", "--json"], env=env).stdout)
    assert any(m["model"] == "add_sub" for m in snapshot["models"])
    watched = runner.invoke(app, ["metrics", "--watch", "0.2", "--count", "2", "--json"], env=env)
    assert watched.exit_code == 0, watched.output
    lines = [json.loads(line) for line in watched.stdout.splitlines() if line.strip()]
    assert len(lines) == 2 and all(line["interval_s"] > 0 for line in lines)
    table = runner.invoke(app, ["metrics", "--watch", "0.2", "--count", "1"], env=env)
    assert "req/s" in table.stdout


def test_a_bad_url_is_a_usage_error(triton: EmbeddedServer) -> None:
    result = runner.invoke(app, ["health", "--url", "ftp://example.com"])
    assert result.exit_code == 2
