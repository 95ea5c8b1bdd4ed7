"""docker-compose.yml (+ the GPU override) and the Prometheus config, checked by the real tools.

No container engine runs here: Debian's ``docker-compose config`` parses, merges and validates
the files against the Compose schema, and ``promtool check config`` validates Prometheus's.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

TRITON_TAG = "nvcr.io/nvidia/tritonserver:24.10-py3"
VARIANTS = {"default": ["docker-compose.yml"], "gpu": ["docker-compose.yml", "docker-compose.gpu.yml"]}


def _compose_config(root: Path, tool: str, files: list[str]) -> dict[str, Any]:
    args = [tool]
    for name in files:
        args += ["-f", str(root / name)]
    result = subprocess.run(
        [*args, "config"], capture_output=True, text=True, cwd=root, timeout=60, env={"PATH": "/usr/bin:/bin"}
    )
    assert result.returncode == 0, result.stderr
    return dict(yaml.safe_load(result.stdout))


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def compose(request: pytest.FixtureRequest, root: Path, system_tool: Callable[[str], str]) -> dict[str, Any]:
    """The merged, validated configuration of one variant, as ``docker-compose config`` prints it."""
    config = _compose_config(root, system_tool("docker-compose"), VARIANTS[request.param])
    config["variant"] = request.param
    return config


def _flags(service: dict[str, Any]) -> dict[str, str]:
    return dict(arg.removeprefix("--").split("=", 1) for arg in service["command"] if arg.startswith("--"))


def test_compose_runs_triton_prometheus_and_grafana(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"triton", "prometheus", "grafana"}


def test_triton_serves_the_mounted_repository_on_the_standard_ports(
    compose: dict[str, Any], root: Path
) -> None:
    triton = compose["services"]["triton"]
    assert triton["build"]["target"] == "triton"
    assert triton["build"]["args"]["TRITON_IMAGE"] == TRITON_TAG
    assert {int(p.split(":")[-1].split("/")[0]) for p in triton["ports"]} == {8000, 8001, 8002}
    assert all(p.startswith("127.0.0.1:") for p in triton["ports"]), "ports stay private unless asked"
    flags = _flags(triton)
    mounts = {v.split(":")[1]: v.split(":")[0] for v in triton["volumes"]}
    assert mounts[flags["model-repository"]] == str(root / "model_repository")
    assert flags["model-control-mode"] == "poll"
    assert flags["metrics-config"] == "summary_latencies=true"  # the dashboard's quantile panels
    assert triton["environment"]["PYTHONDONTWRITEBYTECODE"] == "1"
    size = re.fullmatch(r"(\d+)([kmg])b?", str(triton["shm_size"]).lower())
    assert size and int(size.group(1)) * {"k": 1, "m": 1024, "g": 1024**2}[size.group(2)] >= 512 * 1024
    health = " ".join(triton["healthcheck"]["test"])
    assert "http://127.0.0.1:8000/v2/health/ready" in health


def test_gpu_variant_reserves_one_nvidia_gpu_and_exports_gpu_metrics(compose: dict[str, Any]) -> None:
    triton = compose["services"]["triton"]
    assert all(v.endswith(":ro") for v in triton["volumes"])
    if compose["variant"] == "default":
        assert "deploy" not in triton
        assert _flags(triton).get("allow-gpu-metrics") != "true"
        return
    (device,) = triton["deploy"]["resources"]["reservations"]["devices"]
    assert device == {"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}
    assert _flags(triton)["allow-gpu-metrics"] == "true"


def test_every_bind_mount_and_build_context_exists(compose: dict[str, Any], root: Path) -> None:
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("/") and source != str(root / "model_repository"):  # that one is built
                assert Path(source).exists(), f"{name}: {source} does not exist"
    context = Path(compose["services"]["triton"]["build"]["context"])
    assert (context / "Dockerfile").is_file()


def test_prometheus_config_is_valid_and_scrapes_the_triton_service(
    root: Path, deploy_dir: Path, system_tool: Callable[[str], str]
) -> None:
    config_file = deploy_dir / "prometheus" / "prometheus.yml"
    result = subprocess.run(
        [system_tool("promtool"), "check", "config", str(config_file)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    config = yaml.safe_load(config_file.read_text())
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "triton")
    assert job["static_configs"][0]["targets"] == ["triton:8002"]
    datasource = yaml.safe_load((deploy_dir / "grafana/provisioning/datasources/prometheus.yml").read_text())
    source = datasource["datasources"][0]
    assert source["url"] == "http://prometheus:9090"
    assert source["jsonData"]["timeInterval"] == config["global"]["scrape_interval"]
    compose = yaml.safe_load((root / "docker-compose.yml").read_text())
    mounts = [v.split(":") for v in compose["services"]["prometheus"]["volumes"]]
    assert ["./deploy/prometheus/prometheus.yml", "/etc/prometheus/prometheus.yml", "ro"] in mounts
