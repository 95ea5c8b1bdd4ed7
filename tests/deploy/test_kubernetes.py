"""The Kubernetes overlays: rendered by ``kubectl kustomize``, every object checked against the schemas.

Built-in kinds are validated offline against the Kubernetes OpenAPI schemas that the
kubernetes-validate package carries (strict: unknown fields fail), for the oldest and the newest
Kubernetes it knows. The Prometheus Operator's PodMonitor has no schema there; it is checked for
the fields the operator requires and for pointing at the Deployment's pods and metrics port.
Cross-references (Service -> pods, HPA -> Deployment, ConfigMap keys, volumes, claims) are checked
on the rendered output, since neither tool follows them.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

OVERLAYS = ("cpu", "gpu", "s3")
QUEUE_METRIC = "triton_queue_time_per_request_us"


def _render(deploy_dir: Path, kubectl: str, overlay: str) -> list[dict[str, Any]]:
    result = subprocess.run(
        [kubectl, "kustomize", str(deploy_dir / "k8s" / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "deprecated" not in result.stderr.lower(), result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(
    request: pytest.FixtureRequest, deploy_dir: Path, system_tool: Callable[[str], str]
) -> tuple[str, dict[tuple[str, str], dict[str, Any]]]:
    """One overlay's objects by (kind, name)."""
    objects = _render(deploy_dir, system_tool("kubectl"), request.param)
    by_key = {(o["kind"], o["metadata"]["name"]): o for o in objects}
    assert len(by_key) == len(objects), "duplicate objects"
    return request.param, by_key


def _one(objects: dict[tuple[str, str], dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [o for (k, _), o in objects.items() if k == kind]
    return found


def _container(objects: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
    (container,) = _one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    return dict(container)


def test_every_builtin_object_matches_the_kubernetes_schemas(
    rendered: tuple[str, dict[tuple[str, str], dict[str, Any]]],
) -> None:
    import kubernetes_validate

    versions = ["1.25.0", kubernetes_validate.utils.latest_version()]
    _, objects = rendered
    checked = 0
    for (kind, name), obj in objects.items():
        if obj["apiVersion"].startswith("monitoring.coreos.com/"):
            continue
        for version in versions:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                where = ".".join(map(str, exc.path))
                pytest.fail(f"{kind}/{name} against Kubernetes {version}: {where}: {exc.message}")
        checked += 1
    assert checked >= 6
    assert {"Namespace", "ConfigMap", "Deployment", "Service", "HorizontalPodAutoscaler"} <= {
        k for k, _ in objects
    }


def test_deployment_probes_triton_health_and_requests_resources(
    rendered: tuple[str, dict[tuple[str, str], dict[str, Any]]],
) -> None:
    _, objects = rendered
    container = _container(objects)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 8000, "grpc": 8001, "metrics": 8002}
    for probe, path in (("livenessProbe", "/v2/health/live"), ("readinessProbe", "/v2/health/ready")):
        assert container[probe]["httpGet"] == {"path": path, "port": "http"}
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert "summary_latencies=true" in " ".join(container["args"])  # the dashboard's quantile panels


def test_references_resolve_within_the_overlay(
    rendered: tuple[str, dict[tuple[str, str], dict[str, Any]]],
) -> None:
    _, objects = rendered
    deployment = _one(objects, "Deployment")
    pod = deployment["spec"]["template"]
    pod_labels = pod["metadata"]["labels"]
    container = _container(objects)

    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod_labels.items()
    for ref in [e["valueFrom"]["configMapKeyRef"] for e in container["env"] if "valueFrom" in e]:
        assert ref["key"] in objects[("ConfigMap", ref["name"])]["data"], ref
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert {m["name"] for m in container["volumeMounts"]} <= set(volumes)
    for volume in volumes.values():
        if "persistentVolumeClaim" in volume:
            assert ("PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"]) in objects

    service = _one(objects, "Service")
    assert service["spec"]["selector"].items() <= pod_labels.items()
    port_names = {p["name"] for p in container["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names

    hpa = _one(objects, "HorizontalPodAutoscaler")
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert {"type": "Utilization", "averageUtilization": 70} == hpa["spec"]["metrics"][0]["resource"][
        "target"
    ]

    monitor = _one(objects, "PodMonitor")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["port"] == "metrics" and endpoint["port"] in port_names
    assert set(endpoint) <= {"port", "path", "interval", "scrapeTimeout"}


def test_overlays_differ_where_they_should(
    rendered: tuple[str, dict[tuple[str, str], dict[str, Any]]],
) -> None:
    overlay, objects = rendered
    container = _container(objects)
    config = next(o for (k, _), o in objects.items() if k == "ConfigMap")["data"]
    limits = container["resources"].get("limits", {})
    hpa_metrics = [
        m["pods"]["metric"]["name"]
        for m in _one(objects, "HorizontalPodAutoscaler")["spec"]["metrics"]
        if m["type"] == "Pods"
    ]
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    if overlay == "cpu":
        assert "nvidia.com/gpu" not in limits
        assert config["model-repository"] == "/models" and mounts["/models"]["readOnly"] is True
        assert hpa_metrics == []
    elif overlay == "gpu":
        assert limits["nvidia.com/gpu"] == "1"
        assert "--allow-gpu-metrics=true" in container["args"]
        assert mounts["/models"]["readOnly"] is True
        assert hpa_metrics == [QUEUE_METRIC]
    else:
        assert config["model-repository"].startswith("s3://")
        assert ("PersistentVolumeClaim", "model-repository") not in objects
        assert "/models" not in mounts
        assert container["envFrom"] == [{"secretRef": {"name": "tritonkit-s3"}}]


def test_queue_time_metric_is_the_one_prometheus_adapter_serves(deploy_dir: Path) -> None:
    values = yaml.safe_load((deploy_dir / "k8s" / "prometheus-adapter" / "values.yaml").read_text())
    (rule,) = values["rules"]["custom"]
    assert rule["name"]["as"] == QUEUE_METRIC
    assert set(rule["resources"]["overrides"]) == {"namespace", "pod"}  # labels the PodMonitor adds
    assert "<<.LabelMatchers>>" in rule["metricsQuery"] and "<<.GroupBy>>" in rule["metricsQuery"]
