"""What really crosses the wire over HTTP, read from a recording proxy: tensors travel as binary
data (Triton's binary tensor extension), both ways, never as JSON numbers nor compressed."""

from __future__ import annotations

import asyncio
import io
import json
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from PIL import Image

from tritonkit.client import AsyncTritonClient, TritonClient

if TYPE_CHECKING:
    from conftest import TCPProxy

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class HttpMessage:
    start_line: str
    headers: dict[str, str]  # names lowercased
    body: bytes

    def binary_parts(self) -> tuple[dict[str, Any], bytes]:
        """The JSON inference header and the binary tensor data after it."""
        size = int(self.headers["inference-header-content-length"])
        return json.loads(self.body[:size]), self.body[size:]


def http_messages(stream: bytes) -> list[HttpMessage]:
    """Split a recorded HTTP/1.1 byte stream into its messages (Content-Length or chunked)."""
    messages = []
    while stream:
        head, _, rest = stream.partition(b"\r\n\r\n")
        start_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size_line, _, rest = rest.partition(b"\r\n")
                size = int(size_line.split(b";")[0], 16)
                body, rest = body + rest[:size], rest[size + 2 :]
                if size == 0:
                    rest = rest.partition(b"\r\n")[2] if rest.startswith(b"\r\n") else rest
                    break
        else:
            length = int(headers.get("content-length", "0"))
            body, rest = rest[:length], rest[length:]
        messages.append(HttpMessage(start_line, headers, body))
        stream = rest
    return messages


def _exchange(proxy: TCPProxy, path: str) -> tuple[HttpMessage, HttpMessage]:
    """The one request to ``path`` the client sent, and the server's answer to it."""
    requests = http_messages(proxy.sent)
    answers = http_messages(proxy.received)
    assert len(requests) == len(answers)
    matching = [i for i, r in enumerate(requests) if r.start_line.startswith(f"POST {path} ")]
    assert len(matching) == 1, [r.start_line for r in requests]
    return requests[matching[0]], answers[matching[0]]


def _run(kind: str, url: str, model: str, inputs: Any, **kwargs: Any) -> dict[str, np.ndarray]:
    if kind == "sync":
        with TritonClient(url) as client:
            return client.infer(model, inputs, **kwargs)

    async def run() -> dict[str, np.ndarray]:
        async with AsyncTritonClient(url) as client:
            return await client.infer(model, inputs, **kwargs)

    return asyncio.run(run())


@pytest.mark.parametrize("protocol", ["http"])
@pytest.mark.parametrize("kind", ["sync", "async"])
def test_http_inference_sends_and_receives_tensors_as_binary_data(
    wire_proxy: tuple[str, TCPProxy], kind: str
) -> None:
    url, proxy = wire_proxy
    rng = np.random.default_rng(7)
    a, b = rng.random((3, 16), dtype=np.float32), rng.random((3, 16), dtype=np.float32)
    out = _run(kind, url, "add_sub", {"INPUT0": a, "INPUT1": b})
    np.testing.assert_array_equal(out["OUTPUT0"], a + b)

    request, answer = _exchange(proxy, "/v2/models/add_sub/infer")
    header, data = request.binary_parts()
    assert [(t["name"], t["parameters"]) for t in header["inputs"]] == [
        ("INPUT0", {"binary_data_size": a.nbytes}),
        ("INPUT1", {"binary_data_size": b.nbytes}),
    ]
    assert not any("data" in t for t in header["inputs"])  # no JSON numbers
    assert all(t["parameters"]["binary_data"] is True for t in header["outputs"])
    assert data == a.tobytes() + b.tobytes()

    assert answer.start_line.startswith("HTTP/1.1 200")
    assert "content-encoding" not in answer.headers  # raw tensor bytes, not gzip of them
    header, data = answer.binary_parts()
    sizes = {t["name"]: t["parameters"]["binary_data_size"] for t in header["outputs"]}
    assert sizes == {"OUTPUT0": a.nbytes, "OUTPUT1": a.nbytes}
    assert not any("data" in t for t in header["outputs"])
    expected = {"OUTPUT0": (a + b).tobytes(), "OUTPUT1": (a - b).tobytes()}
    assert data == b"".join(expected[t["name"]] for t in header["outputs"])


@pytest.mark.parametrize("protocol", ["http"])
def test_http_bytes_tensors_and_classifications_travel_as_binary_data(
    wire_proxy: tuple[str, TCPProxy],
) -> None:
    url, proxy = wire_proxy
    with TritonClient(url) as client:
        assert client.infer("identity_bytes", [["héllo"]])["OUTPUT0"].tolist() == [["héllo".encode()]]
        request, answer = _exchange(proxy, "/v2/models/identity_bytes/infer")
        serialized = struct.pack("<I", len("héllo".encode())) + "héllo".encode()
        header, data = request.binary_parts()
        assert header["inputs"][0]["parameters"] == {"binary_data_size": len(serialized)}
        assert data == serialized
        header, data = answer.binary_parts()
        assert header["outputs"][0]["parameters"] == {"binary_data_size": len(serialized)}
        assert data == serialized

        proxy.clear()
        (classes,) = client.classify("tiny_classifier", _png((250, 0, 0)), top_k=2)
        assert classes[0].label == "red"
        request, answer = _exchange(proxy, "/v2/models/tiny_classifier/infer")
        header, _ = request.binary_parts()
        assert header["outputs"] == [
            {"name": "SCORES", "parameters": {"binary_data": True, "classification": 2}}
        ]
        header, data = answer.binary_parts()
        assert "data" not in header["outputs"][0]
        assert header["outputs"][0]["parameters"]["binary_data_size"] == len(data)
        assert b":0:red" in data


def _png(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buffer, format="PNG")
    return buffer.getvalue()
