"""Every ```python example of docs/SDK.md and of the README runs against a real server and prints
something.

The examples read the server's addresses from ``TRITONKIT_URL``, ``TRITONKIT_GRPC_URL`` and
``TRITONKIT_METRICS_URL`` (defaulting to Triton's standard ports); here they point at the test
server, which serves the tiny classifier under the name the docs use, ``flowers``. Blocks marked
```python no-test are left out.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PIL import Image

from tritonkit.server import EmbeddedServer

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[3]
SDK_DOC = ROOT / "docs" / "SDK.md"
README = ROOT / "README.md"
_BLOCK = re.compile(r"^```python\n(.*?)^```$", re.S | re.M)


def _examples(doc: Path) -> list[str]:
    return _BLOCK.findall(doc.read_text())


_EXAMPLES = [(doc, index) for doc in (SDK_DOC, README) for index in range(len(_examples(doc)))]


def test_the_sdk_guide_has_examples() -> None:
    assert len(_examples(SDK_DOC)) >= 6


def test_the_readme_has_sdk_examples() -> None:
    examples = _examples(README)
    assert len(examples) >= 2
    assert all("from tritonkit.client import" in code for code in examples)


@pytest.mark.parametrize(
    ("doc", "index"), _EXAMPLES, ids=[f"{doc.name}-{index + 1}" for doc, index in _EXAMPLES]
)
def test_documented_example_runs(
    doc: Path,
    index: int,
    triton: EmbeddedServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TRITONKIT_URL", triton.http_url)
    monkeypatch.setenv("TRITONKIT_GRPC_URL", triton.grpc_url)
    monkeypatch.setenv("TRITONKIT_METRICS_URL", triton.metrics_url)
    Image.new("RGB", (24, 24), (220, 30, 40)).save(tmp_path / "rose.jpg", format="JPEG")
    Image.new("RGB", (24, 24), (40, 30, 220)).save(tmp_path / "tulip.png", format="PNG")
    code = _examples(doc)[index]
    exec(compile(code, f"{doc.name} example {index + 1}", "exec"), {"__name__": "__main__"})
    assert capsys.readouterr().out.strip()
