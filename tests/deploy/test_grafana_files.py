"""Grafana's files checked against Grafana's own models: the dashboard JSON and the provisioning YAML.

No Grafana runs here: Debian has no grafana package and PyPI ships no Grafana server, so nothing
can load these files the way Grafana does. What comes closest:

* **The dashboard** is checked against the dashboard schema Grafana publishes, as generated into
  ``grafana-foundation-sdk`` (the [dev] extra pins the build for the Grafana release that
  docker-compose.yml runs). It is decoded with the SDK's models and its panel and Prometheus-query
  plugins, and then every field must survive the round trip back to JSON (the SDK drops a field
  the schema lacks: a misspelling that Grafana would silently ignore), and every value must have
  the type the schema gives it, enums and literals included. The SDK's decoders check neither by
  themselves; the two checks below do.
* **The provisioning files** have no published schema. They are checked against strict JSON
  schemas written from the YAML fields of Grafana's provisioning readers (``configsV1`` and
  ``upsertDataSourceFromConfigV1`` for data sources; ``configV1``/``configs`` and the file reader's
  options for dashboard providers), with no other keys allowed, since Grafana ignores unknown keys.

Both loaders refuse duplicate keys, which JSON and YAML parsers otherwise resolve silently.
"""

from __future__ import annotations

import copy
import enum
import json
import re
import types
import typing
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models.dashboard import Dashboard

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "tritonkit.json"
DATASOURCES = DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
DASHBOARD_PROVIDERS = DEPLOY / "grafana" / "provisioning" / "dashboards" / "tritonkit.yml"

# Fields that Grafana itself writes but the published schema does not have, each with its reason.
OUTSIDE_THE_SCHEMA = {
    # Grafana's query-variable editor stores the query's display text here (QueryVariableModel in
    # Grafana's TypeScript types); the CUE schema the SDK is generated from has no such field.
    re.compile(r"^\$\.templating\.list\[\d+\]\.definition$"),
}


# -- loading: no duplicate keys ---------------------------------------------------------------------
def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    duplicates = sorted({key for key in keys if keys.count(key) > 1})
    if duplicates:
        raise ValueError(f"duplicate keys: {', '.join(duplicates)}")
    return dict(pairs)


def load_json(text: str) -> Any:
    """JSON, refusing an object that repeats a key (json.loads would keep the last one)."""
    return json.loads(text, object_pairs_hook=_unique_pairs)


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a mapping repeating a key (PyYAML keeps the last one)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str) -> Any:
    """YAML (safe), refusing a mapping that repeats a key."""
    return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass: no arbitrary objects


# -- the dashboard against the schema in grafana-foundation-sdk ----------------------------------
def _is_model(value: object) -> bool:
    return callable(getattr(type(value), "from_json", None)) and callable(getattr(value, "to_json", None))


def _primitive_ok(value: object, hint: type) -> bool:
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, hint)


def _could_be(value: object, hint: Any) -> bool:
    """Whether ``value`` has the outer shape of ``hint`` (to pick the member of a union to report)."""
    origin = typing.get_origin(hint)
    if origin is list:
        return isinstance(value, list)
    if origin is dict:
        return isinstance(value, dict)
    if origin is typing.Literal:
        return any(type(value) is type(arg) for arg in typing.get_args(hint))
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return any(type(value) in (type(member.value), hint) for member in hint)
    if isinstance(hint, type):
        return _primitive_ok(value, hint)
    return True


def _type_errors(value: object, hint: Any, path: str) -> Iterator[str]:
    """How ``value`` (decoded by the SDK) differs from the schema type ``hint``; nothing if it fits."""
    if hint is Any or hint is object:  # panel options and field config: the plugin's model, if any
        if _is_model(value):
            yield from _model_errors(value, path)
        return
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        results = [list(_type_errors(value, arg, path)) for arg in args]
        if any(not errors for errors in results):
            return
        shaped = [errors for arg, errors in zip(args, results, strict=True) if _could_be(value, arg)]
        if len(shaped) == 1:
            yield from shaped[0]
        else:
            yield f"{path}: {value!r} is none of {' | '.join(map(_type_name, args))}"
        return
    if origin is typing.Literal:
        if not any(value == arg and type(value) is type(arg) for arg in args):
            yield f"{path}: {value!r} is not one of {list(args)}"
        return
    if origin is list:
        if not isinstance(value, list):
            yield f"{path}: {value!r} is not a list"
            return
        for index, item in enumerate(value):
            yield from _type_errors(item, args[0], f"{path}[{index}]")
        return
    if origin is dict:
        if not isinstance(value, dict):
            yield f"{path}: {value!r} is not an object"
            return
        for key, item in value.items():
            yield from _type_errors(item, args[1], f"{path}.{key}")
        return
    if hint is type(None):
        if value is not None:
            yield f"{path}: {value!r} is not null"
        return
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        allowed = [member.value for member in hint]
        if not any(value == v and type(value) in (type(v), hint) for v in allowed):
            yield f"{path}: {value!r} is not one of {allowed}"
        return
    if isinstance(hint, type):
        if not _primitive_ok(value, hint):
            yield f"{path}: {value!r} is not {_type_name(hint)}"
        elif _is_model(value):
            yield from _model_errors(value, path)
        return
    raise TypeError(f"{path}: no check for the schema type {hint!r}")  # a new kind of annotation


def _type_name(hint: Any) -> str:
    return hint.__name__ if isinstance(hint, type) else str(hint).replace("typing.", "")


def _model_errors(model: object, path: str) -> Iterator[str]:
    """Type errors in every field of an SDK model object (named as the SDK's attributes)."""
    for name, hint in typing.get_type_hints(type(model)).items():
        yield from _type_errors(getattr(model, name), hint, f"{path}.{name}")


def _lost_in_round_trip(original: Any, decoded: Any, path: str = "$") -> Iterator[str]:
    """Fields of ``original`` that the schema's models dropped or changed."""
    if isinstance(original, dict):
        for key, value in original.items():
            where = f"{path}.{key}"
            if not isinstance(decoded, dict) or key not in decoded:
                if not any(pattern.match(where) for pattern in OUTSIDE_THE_SCHEMA):
                    yield f"{where}: not a field of Grafana's schema"
            else:
                yield from _lost_in_round_trip(value, decoded[key], where)
    elif isinstance(original, list) and isinstance(decoded, list) and len(original) == len(decoded):
        for index, (item, back) in enumerate(zip(original, decoded, strict=True)):
            yield from _lost_in_round_trip(item, back, f"{path}[{index}]")
    elif original != decoded:
        yield f"{path}: {original!r} reads back as {decoded!r}"


def dashboard_schema_errors(data: dict[str, Any]) -> list[str]:
    """Where a dashboard's JSON leaves Grafana's dashboard schema (as grafana-foundation-sdk has it)."""
    register_default_plugins()  # panel options, field config and Prometheus queries get their models
    dashboard = Dashboard.from_json(copy.deepcopy(data))
    decoded = json.loads(json.dumps(dashboard, cls=JSONEncoder))
    return [*_lost_in_round_trip(data, decoded), *_model_errors(dashboard, "$")]


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def _first(data: dict[str, Any], panel_type: str) -> dict[str, Any]:
    return next(panel for panel in _panels(data["panels"]) if panel["type"] == panel_type)


def test_the_schema_is_that_of_the_grafana_release_compose_runs(root: Path) -> None:
    compose = yaml.safe_load((root / "docker-compose.yml").read_text())
    image = compose["services"]["grafana"]["image"]
    grafana = re.fullmatch(r"grafana/grafana:(\d+\.\d+)\.\d+", image)
    assert grafana, f"pin the Grafana image to a release: {image}"
    sdk = version("grafana-foundation-sdk").split("!")[-1]  # EPOCH!GRAFANA_VERSION
    assert sdk.rsplit(".", 1)[0] == grafana.group(1), (
        f"grafana-foundation-sdk {sdk} checks a different Grafana than {image}: pin the SDK build "
        "for that release in the [dev] extra"
    )


def test_dashboard_fits_grafanas_dashboard_schema() -> None:
    assert dashboard_schema_errors(load_json(DASHBOARD.read_text())) == []


def test_every_panel_and_query_is_checked_by_a_model_of_its_own() -> None:
    """The check is only as deep as the models: each panel's options, its field config and its
    queries must decode to the SDK's model for that panel type and Prometheus, not a bare dict."""
    register_default_plugins()
    dashboard = Dashboard.from_json(load_json(DASHBOARD.read_text()))
    panels = [p for row in dashboard.panels or [] for p in [row, *getattr(row, "panels", [])]]
    checked = [p for p in panels if getattr(p, "type_val", "row") != "row"]
    assert checked
    for panel in checked:
        assert _is_model(panel.options), f"{panel.title}: {panel.type_val} options have no model"
        assert panel.targets and all(
            type(target).__module__.endswith(".prometheus") for target in panel.targets
        ), panel.title
        if panel.type_val == "timeseries":
            assert _is_model(panel.field_config.defaults.custom), panel.title


def _mutated(change: str) -> dict[str, Any]:
    data: dict[str, Any] = load_json(DASHBOARD.read_text())
    stat, series = _first(data, "stat"), _first(data, "timeseries")
    if change == "misspelt panel field":
        stat["gridpos"] = stat.pop("gridPos")
    elif change == "misspelt unit":
        stat["fieldConfig"]["defaults"]["unt"] = stat["fieldConfig"]["defaults"].pop("unit")
    elif change == "misspelt query field":
        series["targets"][0]["exp"] = series["targets"][0].pop("expr")
    elif change == "height as text":
        stat["gridPos"]["h"] = "4"
    elif change == "unknown stat colour mode":
        stat["options"]["colorMode"] = "values"
    elif change == "unknown draw style":
        series["fieldConfig"]["defaults"]["custom"]["drawStyle"] = "lines"
    elif change == "unknown tooltip sync":
        data["graphTooltip"] = 5
    elif change == "unknown variable refresh":
        data["templating"]["list"][0]["refresh"] = 7
    elif change == "unknown legend placement":
        series["options"]["legend"]["placement"] = "below"
    else:
        raise AssertionError(change)
    return data


@pytest.mark.parametrize(
    ("change", "reported"),
    [
        ("misspelt panel field", r"^\$\.panels\[1\]\.gridpos: not a field"),
        ("misspelt unit", r"\.fieldConfig\.defaults\.unt: not a field"),
        ("misspelt query field", r"\.targets\[0\]\.exp: not a field"),
        ("height as text", r"\.grid_pos\.h: '4' is not int"),
        ("unknown stat colour mode", r"\.options\.color_mode: 'values' is not one of"),
        ("unknown draw style", r"\.custom\.draw_style: 'lines' is not one of"),
        ("unknown tooltip sync", r"^\$\.graph_tooltip: 5 is not one of \[0, 1, 2\]"),
        ("unknown variable refresh", r"\.list_val\[0\]\.refresh: 7 is not one of"),
        ("unknown legend placement", r"\.legend\.placement: 'below' is not one of"),
    ],
)
def test_schema_check_reports_what_grafana_would_ignore_or_reject(change: str, reported: str) -> None:
    errors = dashboard_schema_errors(_mutated(change))
    assert len(errors) == 1 and re.search(reported, errors[0]), errors


def test_loaders_refuse_duplicate_keys() -> None:
    with pytest.raises(ValueError, match="duplicate keys: uid"):
        load_json('{"uid": "a", "title": "t", "uid": "b"}')
    with pytest.raises(yaml.YAMLError, match="duplicate key 'url'"):
        load_yaml("datasources:\n  - url: http://a\n    url: http://b\n")


# -- provisioning files against Grafana's provisioning readers ------------------------------------
_STRING = {"type": "string"}
_BOOLEAN = {"type": "boolean"}
_INTEGER = {"type": "integer"}
DATASOURCES_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "datasources"],
    "properties": {
        "apiVersion": {"const": 1},
        "prune": _BOOLEAN,
        "deleteDatasources": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name"],
                "properties": {"name": _STRING, "orgId": _INTEGER, "orgName": _STRING},
            },
        },
        "datasources": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "type"],
                "properties": {
                    "name": _STRING,
                    "type": _STRING,
                    "uid": {"type": "string", "pattern": r"^[a-zA-Z0-9\-_]{1,40}$"},
                    "access": {"enum": ["proxy", "direct"]},
                    "url": _STRING,
                    "user": _STRING,
                    "database": _STRING,
                    "basicAuth": _BOOLEAN,
                    "basicAuthUser": _STRING,
                    "withCredentials": _BOOLEAN,
                    "isDefault": _BOOLEAN,
                    "editable": _BOOLEAN,
                    "version": _INTEGER,
                    "orgId": _INTEGER,
                    "orgName": _STRING,
                    "correlations": {"type": "array", "items": {"type": "object"}},
                    "jsonData": {"type": "object"},
                    "secureJsonData": {"type": "object", "additionalProperties": _STRING},
                },
            },
        },
    },
}
# jsonData of a Prometheus data source, with the keys of PromOptions (and of DataSourceJsonData,
# which it extends) in Grafana 11's Prometheus plugin: a misspelt key would be ignored.
_DURATION = {"type": "string", "pattern": r"^\d+(ms|s|m|h|d)$"}
PROMETHEUS_JSON_DATA_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "timeInterval": _DURATION,
        "queryTimeout": _DURATION,
        "httpMethod": {"enum": ["GET", "POST"]},
        "customQueryParameters": _STRING,
        "disableMetricsLookup": _BOOLEAN,
        "exemplarTraceIdDestinations": {"type": "array", "items": {"type": "object"}},
        "prometheusType": {"enum": ["Prometheus", "Cortex", "Mimir", "Thanos"]},
        "prometheusVersion": _STRING,
        "cacheLevel": {"enum": ["Low", "Medium", "High", "None"]},
        "defaultEditor": {"enum": ["code", "builder"]},
        "incrementalQuerying": _BOOLEAN,
        "incrementalQueryOverlapWindow": _DURATION,
        "disableRecordingRules": _BOOLEAN,
        "sigV4Auth": _BOOLEAN,
        "oauthPassThru": _BOOLEAN,
        "manageAlerts": _BOOLEAN,
        "alertmanagerUid": _STRING,
        "authType": _STRING,
    },
}
DASHBOARD_PROVIDERS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "providers"],
    "properties": {
        "apiVersion": {"const": 1},
        "providers": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "type", "options"],
                "properties": {
                    "name": _STRING,
                    "type": {"const": "file"},
                    "orgId": _INTEGER,
                    "folder": _STRING,
                    "folderUid": _STRING,
                    "editable": _BOOLEAN,
                    "disableDeletion": _BOOLEAN,
                    "updateIntervalSeconds": {"type": "integer", "minimum": 1},
                    "allowUiUpdates": _BOOLEAN,
                    "options": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["path"],
                        "properties": {
                            "path": {"type": "string", "pattern": "^/"},
                            "foldersFromFilesStructure": _BOOLEAN,
                        },
                    },
                },
            },
        },
    },
}


def provisioning_errors(data: Any, schema: dict[str, Any]) -> list[str]:
    """Every place where ``data`` leaves ``schema``, as ``path: message``."""
    validator = jsonschema.Draft202012Validator(schema)
    return sorted(f"{error.json_path}: {error.message}" for error in validator.iter_errors(data))


def _datasource_errors(data: Any) -> list[str]:
    errors = provisioning_errors(data, DATASOURCES_SCHEMA)
    for index, source in enumerate(data.get("datasources", []) if isinstance(data, dict) else []):
        if isinstance(source, dict) and source.get("type") == "prometheus":
            errors += [
                f"$.datasources[{index}].jsonData{e.removeprefix('$')}"
                for e in provisioning_errors(source.get("jsonData", {}), PROMETHEUS_JSON_DATA_SCHEMA)
            ]
    return errors


def test_datasource_provisioning_fits_grafanas_reader() -> None:
    assert _datasource_errors(load_yaml(DATASOURCES.read_text())) == []


def test_dashboard_provider_provisioning_fits_grafanas_reader() -> None:
    assert provisioning_errors(load_yaml(DASHBOARD_PROVIDERS.read_text()), DASHBOARD_PROVIDERS_SCHEMA) == []


@pytest.mark.parametrize(
    ("key", "value", "reported"),
    [
        ("is_default", True, r"'is_default' was unexpected"),  # the v0 spelling, ignored by v1
        ("access", "server", r"\$\.datasources\[0\]\.access: 'server' is not one of"),
        ("jsonData", {"timeinterval": "5s"}, r"jsonData: .*'timeinterval' was unexpected"),
        ("jsonData", {"httpMethod": "PUT"}, r"jsonData\.httpMethod: 'PUT' is not one of"),
    ],
)
def test_datasource_check_reports_keys_and_values_grafana_would_ignore_or_reject(
    key: str, value: Any, reported: str
) -> None:
    data = load_yaml(DATASOURCES.read_text())
    data["datasources"][0][key] = value
    errors = _datasource_errors(data)
    assert len(errors) == 1 and re.search(reported, errors[0]), errors


@pytest.mark.parametrize(
    ("change", "reported"),
    [
        ("allowUIUpdates", r"'allowUIUpdates' was unexpected"),
        ("path", r"options: 'path' is a required property"),
    ],
)
def test_dashboard_provider_check_reports_misspelt_and_missing_keys(change: str, reported: str) -> None:
    data = load_yaml(DASHBOARD_PROVIDERS.read_text())
    provider = data["providers"][0]
    if change == "allowUIUpdates":
        provider["allowUIUpdates"] = provider.pop("allowUiUpdates")
    else:
        provider["options"]["paths"] = provider["options"].pop("path")
    errors = provisioning_errors(data, DASHBOARD_PROVIDERS_SCHEMA)
    assert any(re.search(reported, error) for error in errors), errors
