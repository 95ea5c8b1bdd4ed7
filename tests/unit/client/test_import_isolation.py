"""An SDK user installs only the base package: importing the client must not pull in the rest."""

from __future__ import annotations

import json
import subprocess
import sys

FORBIDDEN = (
    "tritonkit.converters",
    "tritonkit.repository",
    "tritonkit.server",
    "tensorflow",
    "onnx",
    "pytriton",
)


def _modules_after(code: str) -> set[str]:
    script = f"import sys, json\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True).stdout
    return set(json.loads(out.splitlines()[-1]))


def _offending(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == f or m.startswith(f + ".") for f in FORBIDDEN))


def test_importing_the_client_imports_no_converter_repository_server_or_tensorflow() -> None:
    assert _offending(_modules_after("import tritonkit.client")) == []


def test_using_the_client_classes_imports_none_of_them_either() -> None:
    code = (
        "from tritonkit.client import TritonClient, AsyncTritonClient, parse_metrics\n"
        "TritonClient('http://127.0.0.1:1').close()\n"
        "TritonClient('grpc://127.0.0.1:1').is_live(timeout_s=0.5)\n"
        "parse_metrics('')"
    )
    assert _offending(_modules_after(code)) == []
