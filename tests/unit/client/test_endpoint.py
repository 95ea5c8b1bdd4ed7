"""URL parsing: the scheme decides the protocol and TLS, in one place."""

from __future__ import annotations

from pathlib import Path

import pytest

from tritonkit.client import TLSConfig, parse_endpoint


@pytest.mark.parametrize(
    ("url", "protocol", "host", "port", "tls"),
    [
        ("http://127.0.0.1:8000", "http", "127.0.0.1", 8000, False),
        ("https://triton.example.com", "http", "triton.example.com", 8000, True),
        ("grpc://localhost:9001", "grpc", "localhost", 9001, False),
        ("grpcs://localhost", "grpc", "localhost", 8001, True),
        ("GRPC://[::1]:8001/", "grpc", "::1", 8001, False),
        ("localhost:8000", "http", "localhost", 8000, False),
    ],
)
def test_url_scheme_decides_protocol_port_and_tls(
    url: str, protocol: str, host: str, port: int, tls: bool
) -> None:
    endpoint = parse_endpoint(url)
    assert (endpoint.protocol, endpoint.host, endpoint.port, endpoint.tls is not None) == (
        protocol,
        host,
        port,
        tls,
    )


def test_bare_address_takes_the_protocol_argument() -> None:
    endpoint = parse_endpoint("10.0.0.2:8001", protocol="grpc")
    assert endpoint.url == "grpc://10.0.0.2:8001" and endpoint.address == "10.0.0.2:8001"


def test_ipv6_address_is_bracketed_for_tritonclient() -> None:
    assert parse_endpoint("grpc://[::1]:8001").address == "[::1]:8001"


def test_metrics_url_defaults_to_port_8002_of_the_same_host() -> None:
    assert parse_endpoint("grpc://box:9001").metrics_url() == "http://box:8002/metrics"


@pytest.mark.parametrize(
    ("url", "protocol", "message"),
    [
        ("ftp://host", None, "unsupported URL scheme"),
        ("http://host:8000", "grpc", "says http but protocol='grpc'"),
        ("http://host:8000/v2", None, "must be only scheme://host:port"),
        ("http://:8000", None, "has no host"),
        ("host:8000", "websocket", "protocol must be"),
    ],
)
def test_bad_urls_are_refused_with_a_reason(url: str, protocol: str | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_endpoint(url, protocol)


def test_tls_flag_and_config(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not checked here")
    config = TLSConfig(root_certificates=ca)
    assert parse_endpoint("grpc://h:1", tls=config).tls is config
    assert parse_endpoint("http://h:1", tls=True).url == "https://h:1"
    with pytest.raises(ValueError, match="asks for TLS but ssl=False"):
        parse_endpoint("https://h:1", tls=False)
    with pytest.raises(ValueError, match="does not exist"):
        TLSConfig(root_certificates=tmp_path / "missing.pem")
    with pytest.raises(ValueError, match="both certificate_chain and private_key"):
        TLSConfig(certificate_chain=ca)


def test_grpc_headers_are_lowercased_and_also_sent_under_tritons_restricted_prefix() -> None:
    from tritonkit.client._common import ClientSettings

    def settings(url: str) -> ClientSettings:
        return ClientSettings.create(url, None, 5.0, 0, None, {"Admin-Key": "k"}, 1, None, None)

    assert settings("http://h:1").headers == {"Admin-Key": "k"}
    assert settings("grpc://h:1").headers == {"admin-key": "k", "triton-grpc-protocol-admin-key": "k"}
    assert settings("grpc://h:1").merged_headers({"X-Trace": "1"})["x-trace"] == "1"
    with pytest.raises(ValueError, match="headers must map str to str"):
        ClientSettings.create("http://h:1", None, 5.0, 0, None, {"a": 1}, 1, None, None)  # type: ignore[dict-item]
