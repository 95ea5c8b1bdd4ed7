"""The Grafana dashboard: provisionable from files, and every query returns data from a live Triton.

The live test runs the real embedded Triton on a small pipeline (ensemble -> preprocess ->
classifier, Python backend, ``tests/deploy/models``), puts a bounded load on it, lets Debian's
real Prometheus scrape it every second with the scrape job of ``deploy/prometheus/prometheus.yml``,
and evaluates each PromQL expression of the dashboard (panels and variables) through
Prometheus's HTTP API with the dashboard variables replaced by concrete values. Each must return
at least one finite sample.

GPU panels (title starting with "GPU", every metric ``nv_gpu_*``) are checked only when the server
exports GPU metrics: a CPU-only Triton has none, and the panels say so in their description.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "dashboards" / "tritonkit.json"
MODELS = Path(__file__).parent / "models"
PIPELINE = "pipeline"  # tests/deploy/models: pipeline, pipeline_preprocess, pipeline_classifier


@dataclass(frozen=True)
class Query:
    """One PromQL expression of the dashboard and where it comes from."""

    where: str
    expr: str
    gpu_only: bool = False
    label: str | None = None  # for label_values(expr, label): the label the result must carry


def _all_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _all_panels(panel.get("panels", []))


_GRAFANA_FUNCTION = re.compile(r"^\s*(label_values|query_result)\((.*)\)\s*$", re.DOTALL)


def _variable_query(variable: dict[str, Any]) -> Query:
    text = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
    match = _GRAFANA_FUNCTION.match(text)
    where = f"variable ${variable['name']}"
    if match is None:
        return Query(where, text)
    function, args = match.groups()
    if function == "query_result":
        return Query(where, args)
    expr, _, label = args.rpartition(",")
    return Query(where, expr.strip() or label.strip(), label=label.strip() if expr else None)


def dashboard_queries(dashboard: dict[str, Any]) -> list[Query]:
    """Every PromQL expression in a dashboard: panel targets and query variables."""
    queries = []
    for panel in _all_panels(dashboard["panels"]):
        gpu = panel.get("title", "").startswith("GPU")
        for target in panel.get("targets", []):
            queries.append(Query(f"panel {panel['title']!r} {target['refId']}", target["expr"], gpu_only=gpu))
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable["type"] == "query":
            queries.append(_variable_query(variable))
    return queries


def substitute(expr: str, values: dict[str, str]) -> str:
    """Replace Grafana variables (``$name``, ``${name}``, ``${name:format}``, ``[[name]]``)."""
    for name in sorted(values, key=len, reverse=True):  # longest first: $model_x before $model
        escaped = values[name].replace("\\", "\\\\")  # re.sub reads backslashes in the replacement
        expr = re.sub(r"\$\{" + re.escape(name) + r"(:[a-z]+)?\}", escaped, expr)
        expr = expr.replace(f"[[{name}]]", values[name])
        expr = re.sub(r"\$" + re.escape(name) + r"(?![A-Za-z0-9_])", escaped, expr)
    return expr


def _load_dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


# -- static checks ------------------------------------------------------------------------------
def test_dashboard_needs_no_import_inputs_and_uses_the_provisioned_datasource(deploy_dir: Path) -> None:
    text = DASHBOARD.read_text()
    assert "${DS_" not in text and "__inputs" not in text, "file provisioning cannot fill import inputs"
    provisioned = yaml.safe_load((deploy_dir / "grafana/provisioning/datasources/prometheus.yml").read_text())
    uids = {source["uid"] for source in provisioned["datasources"] if source["type"] == "prometheus"}
    assert len(uids) == 1
    dashboard = _load_dashboard()
    used = []
    for panel in _all_panels(dashboard["panels"]):
        if panel["type"] == "row":
            continue
        used.append(panel["datasource"])
        used += [target["datasource"] for target in panel["targets"]]
    used += [v["datasource"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    assert used and all(ref == {"type": "prometheus", "uid": next(iter(uids))} for ref in used)


def test_dashboard_is_read_from_the_folder_compose_mounts(root: Path, deploy_dir: Path) -> None:
    provider = yaml.safe_load((deploy_dir / "grafana/provisioning/dashboards/tritonkit.yml").read_text())
    path = provider["providers"][0]["options"]["path"]
    compose = yaml.safe_load((root / "docker-compose.yml").read_text())
    mounts = {v.split(":")[1]: v.split(":")[0] for v in compose["services"]["grafana"]["volumes"]}
    assert (root / mounts[path] / DASHBOARD.name).resolve() == DASHBOARD
    assert (root / mounts["/etc/grafana/provisioning"]).resolve() == deploy_dir / "grafana" / "provisioning"


def test_dashboard_has_the_panels_and_variables_the_issue_asks_for() -> None:
    dashboard = _load_dashboard()
    ids = [p["id"] for p in _all_panels(dashboard["panels"])]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    exprs = " ".join(q.expr for q in dashboard_queries(dashboard))
    for metric in (
        "nv_inference_request_success",
        "nv_inference_count",
        "nv_inference_request_failure",
        "nv_inference_queue_duration_us",
        "nv_inference_compute_input_duration_us",
        "nv_inference_compute_infer_duration_us",
        "nv_inference_compute_output_duration_us",
        "nv_inference_pending_request_count",
        "nv_inference_request_summary_us",
        "nv_cpu_utilization",
        "nv_cpu_memory_used_bytes",
        "nv_gpu_utilization",
        "nv_gpu_memory_used_bytes",
    ):
        assert metric in exprs, metric
    selector = '{model=~"$model", version=~"$version"}[$__rate_interval]'
    batch_size = (
        f"sum by (model) (rate(nv_inference_count{selector})) / "
        f"sum by (model) (rate(nv_inference_exec_count{selector}))"
    )
    assert batch_size in exprs
    assert {v["name"] for v in dashboard["templating"]["list"]} == {"model", "version", "pipeline"}


def test_substitute_replaces_every_variable_syntax() -> None:
    values = {"model": "(a|b)", "pipeline": "p", "__rate_interval": "30s"}
    expr = 'x{model=~"$model", m=~"${pipeline}_.+", n="[[pipeline]]", o="${model:regex}"}[$__rate_interval]'
    assert substitute(expr, values) == 'x{model=~"(a|b)", m=~"p_.+", n="p", o="(a|b)"}[30s]'


# -- live: Prometheus scraping the embedded Triton --------------------------------------------------
def _prometheus_config(metrics_target: str) -> dict[str, Any]:
    """deploy/prometheus/prometheus.yml's triton job, pointed at the test server, scraped every 1 s."""
    shipped = yaml.safe_load((DASHBOARD.parents[2] / "prometheus" / "prometheus.yml").read_text())
    job = next(j for j in shipped["scrape_configs"] if j["job_name"] == "triton")
    job["static_configs"][0]["targets"] = [metrics_target]
    job["scrape_interval"] = "1s"
    return {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"}, "scrape_configs": [job]}


class Prometheus:
    """Debian's prometheus on a loopback port with its storage in a temporary folder."""

    def __init__(self, binary: str, folder: Path, config: dict[str, Any], port: int) -> None:
        config_file = folder / "prometheus.yml"
        config_file.write_text(yaml.safe_dump(config))
        self.url = f"http://127.0.0.1:{port}"
        self._log = open(folder / "prometheus.log", "wb")  # closed in stop()
        self._process = subprocess.Popen(
            [
                binary,
                f"--config.file={config_file}",
                f"--storage.tsdb.path={folder / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        self.log_path = folder / "prometheus.log"

    def wait_ready(self, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"prometheus exited: {self.log_path.read_text()}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"prometheus not ready after {timeout_s} s: {self.log_path.read_text()}")

    def query(self, expr: str) -> list[dict[str, Any]]:
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                body = json.load(response)
        except urllib.error.HTTPError as exc:  # 400: a PromQL syntax error, with Prometheus's words
            raise AssertionError(f"{expr}\n{exc.read().decode(errors='replace')}") from None
        assert body["status"] == "success", body
        return list(body["data"]["result"])

    def stop(self) -> None:
        self._process.terminate()
        try:
            self._process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._log.close()


def _send_load(http_url: str, total: int = 400, bad_every: int = 20, deadline_s: float = 20.0) -> int:
    """``total`` requests to the pipeline from 8 threads, every ``bad_every``-th one failing; bounded."""
    import tritonclient.http as httpclient

    local = threading.local()
    clients: list[httpclient.InferenceServerClient] = []
    stop_at = time.monotonic() + deadline_s

    def one(index: int) -> bool:
        if time.monotonic() > stop_at:
            return False
        if not hasattr(local, "client"):
            local.client = httpclient.InferenceServerClient(http_url.removeprefix("http://"))
            clients.append(local.client)
        payload = b"bad image" if index % bad_every == 0 else bytes([index % 256, 40, 80, 120]) * 4
        image = httpclient.InferInput("IMAGE", [1, 1], "BYTES")
        image.set_data_from_numpy(np.array([[payload]], dtype=np.object_))
        try:
            local.client.infer(PIPELINE, [image])
        except Exception:
            return False
        time.sleep(0.005)  # spread the load over a few scrapes
        return True

    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            return sum(pool.map(one, range(total)))
    finally:
        for client in clients:  # open keep-alive connections would hold up the server's exit
            client.close()


@pytest.fixture(scope="module")
def scraped_triton(
    tmp_path_factory: pytest.TempPathFactory, system_tool: Callable[[str], str]
) -> Iterator[tuple[Prometheus, bool]]:
    """A loaded embedded Triton and a Prometheus that has scraped it; and whether GPU metrics exist."""
    from tritonkit.server import EmbeddedServer, ServerOptions, free_port

    binary = system_tool("prometheus")
    folder = tmp_path_factory.mktemp("prometheus")
    repository = folder / "models"
    shutil.copytree(MODELS, repository)
    options = ServerOptions(
        repository=repository,
        http_port=free_port(),
        grpc_port=free_port(),
        metrics_port=free_port(),
        log_file=folder / "tritonserver.log",
        # The same metric settings as docker-compose.yml's triton service.
        extra_args=("--metrics-config=summary_latencies=true", "--metrics-interval-ms=1000"),
    )
    server = EmbeddedServer(options)
    server.start(timeout_s=120)
    prometheus = None
    try:
        prometheus = Prometheus(
            binary, folder, _prometheus_config(f"127.0.0.1:{options.metrics_port}"), free_port()
        )
        prometheus.wait_ready()
        _wait_for(lambda: prometheus.query('up{job="triton"} == 1'), "Prometheus never scraped Triton")
        succeeded = _send_load(server.http_url)
        assert succeeded >= 300, f"only {succeeded} requests succeeded; see {server.log_path}"
        expected = urllib.request.urlopen(server.metrics_url, timeout=5).read().decode()
        final = re.search(rf'nv_inference_request_success{{model="{PIPELINE}",version="1"}} (\d+)', expected)
        assert final is not None
        final_count = float(final.group(1))

        def scraped_after_load() -> bool:  # the final counts, and samples before them for rate()
            seen = prometheus.query(
                f'count_over_time(nv_inference_request_success{{model="{PIPELINE}"}}[30s])'
            )
            last = prometheus.query(f'nv_inference_request_success{{model="{PIPELINE}"}}')
            return (
                bool(seen and last)
                and float(seen[0]["value"][1]) >= 4
                and float(last[0]["value"][1]) >= final_count
            )

        _wait_for(scraped_after_load, "Prometheus did not scrape the state after the load")
        yield prometheus, "nv_gpu_utilization" in expected
    finally:
        if prometheus is not None:
            prometheus.stop()
        server.stop()


def _wait_for(condition: Callable[[], object], failure: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(failure)
        time.sleep(0.25)


VARIABLE_VALUES = {
    "__rate_interval": "30s",
    "__interval": "5s",
    "__range": "1m",
    "pipeline": PIPELINE,
    "version": "1",
}


@pytest.mark.integration
@pytest.mark.parametrize(
    "model",
    [f"({PIPELINE}|{PIPELINE}_preprocess|{PIPELINE}_classifier)", ".+"],
    ids=["three-models-selected", "all-models"],
)
def test_every_dashboard_query_returns_data_from_a_live_triton(
    scraped_triton: tuple[Prometheus, bool], model: str
) -> None:
    prometheus, has_gpu_metrics = scraped_triton
    values = {**VARIABLE_VALUES, "model": model}
    empty = []
    checked = 0
    for query in dashboard_queries(_load_dashboard()):
        if query.gpu_only and not has_gpu_metrics:
            assert re.findall(r"\bnv_\w+", query.expr) and all(
                m.startswith("nv_gpu_") for m in re.findall(r"\bnv_\w+", query.expr)
            ), f"{query.where} is not a pure GPU panel: {query.expr}"
            continue
        expr = substitute(query.expr, values)
        assert "$" not in expr.replace('"$1"', ""), f"{query.where}: unreplaced variable in {expr}"
        result = prometheus.query(expr)
        finite = [r for r in result if math.isfinite(float(r["value"][1]))]
        if not finite or (query.label and not all(query.label in r["metric"] for r in finite)):
            empty.append(f"{query.where}: {expr} -> {result}")
        checked += 1
    assert not empty, "queries without data:\n" + "\n".join(empty)
    assert checked >= 25


@pytest.mark.integration
def test_pipeline_variable_finds_the_ensemble(scraped_triton: tuple[Prometheus, bool]) -> None:
    prometheus, _ = scraped_triton
    variable = next(v for v in _load_dashboard()["templating"]["list"] if v["name"] == "pipeline")
    query = _variable_query(variable)
    pattern = re.compile(variable["regex"].strip("/"))
    found = set()
    for series in prometheus.query(query.expr):
        labels = ", ".join(f'{k}="{v}"' for k, v in series["metric"].items())
        match = pattern.search("{" + labels + "}")
        if match:
            found.add(match.group(1))
    assert found == {PIPELINE}


@pytest.mark.integration
def test_prometheus_adapter_queue_time_rule_returns_data(scraped_triton: tuple[Prometheus, bool]) -> None:
    """The custom metric the Kubernetes HPA scales on (deploy/k8s/prometheus-adapter/values.yaml).

    The adapter fills in the pod/namespace matchers that a PodMonitor scrape carries; here the
    series come from a plain scrape job, so the test groups by ``instance`` instead.
    """
    prometheus, _ = scraped_triton
    values = yaml.safe_load((DASHBOARD.parents[2] / "k8s" / "prometheus-adapter" / "values.yaml").read_text())
    (rule,) = values["rules"]["custom"]
    expr = (
        rule["metricsQuery"].replace("<<.LabelMatchers>>", 'job="triton"').replace("<<.GroupBy>>", "instance")
    )
    result = prometheus.query(expr)
    assert result and all(math.isfinite(float(r["value"][1])) and float(r["value"][1]) > 0 for r in result), (
        result
    )
