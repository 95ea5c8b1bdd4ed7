"""Every ```python example of docs/SDK.md runs against a real server and prints something."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PIL import Image

from tritonkit.server import EmbeddedServer

pytestmark = pytest.mark.integration

SDK_DOC = Path(__file__).parents[3] / "docs" / "SDK.md"
_BLOCK = re.compile(r"^```python\n(.*?)^```$", re.S | re.M)


def _examples() -> list[str]:
    return _BLOCK.findall(SDK_DOC.read_text())


def test_the_sdk_guide_has_examples() -> None:
    assert len(_examples()) >= 6


@pytest.mark.parametrize("index", range(len(_examples())))
def test_sdk_guide_example_runs(
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
    code = _examples()[index]
    exec(compile(code, f"{SDK_DOC.name} example {index + 1}", "exec"), {"__name__": "__main__"})
    assert capsys.readouterr().out.strip()
