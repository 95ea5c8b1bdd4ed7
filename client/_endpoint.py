"""Where the server is and how to talk to it: URL parsing in one place."""

from __future__ import annotations

import ssl as _ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

Protocol = Literal["http", "grpc"]

_SCHEMES: dict[str, tuple[Protocol, bool]] = {
    "http": ("http", False),
    "https": ("http", True),
    "grpc": ("grpc", False),
    "grpcs": ("grpc", True),
}
_DEFAULT_PORTS: dict[Protocol, int] = {"http": 8000, "grpc": 8001}
METRICS_PORT = 8002


@dataclass(frozen=True)
class TLSConfig:
    """TLS settings for HTTPS and gRPC SSL.

    ``root_certificates`` is a PEM file of the CAs to trust (default: the system's).
    ``certificate_chain`` and ``private_key`` are the client's own PEM files for mutual TLS.
    ``verify=False`` skips server-certificate checks over HTTPS (gRPC always verifies).
    """

    root_certificates: Path | str | None = None
    certificate_chain: Path | str | None = None
    private_key: Path | str | None = None
    verify: bool = True

    def __post_init__(self) -> None:
        if (self.certificate_chain is None) != (self.private_key is None):
            raise ValueError("a client certificate needs both certificate_chain and private_key")
        for path in (self.root_certificates, self.certificate_chain, self.private_key):
            if path is not None and not Path(path).is_file():
                raise ValueError(f"TLS file {path} does not exist")

    def ssl_context(self) -> _ssl.SSLContext:
        """An :class:`ssl.SSLContext` for HTTPS with these settings."""
        context = _ssl.create_default_context(
            cafile=str(self.root_certificates) if self.root_certificates else None
        )
        if self.certificate_chain and self.private_key:
            context.load_cert_chain(str(self.certificate_chain), str(self.private_key))
        if not self.verify:
            context.check_hostname = False
            context.verify_mode = _ssl.CERT_NONE
        return context


@dataclass(frozen=True)
class Endpoint:
    """One server address: protocol, host, port and whether TLS is on."""

    protocol: Protocol
    host: str
    port: int
    tls: TLSConfig | None = None

    @property
    def address(self) -> str:
        """``host:port`` as tritonclient wants it."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def url(self) -> str:
        scheme = {"http": "https", "grpc": "grpcs"}[self.protocol] if self.tls else self.protocol
        return f"{scheme}://{self.address}"

    def metrics_url(self) -> str:
        """Triton's default metrics address on the same host."""
        return f"http://{self.address.rsplit(':', 1)[0]}:{METRICS_PORT}/metrics"


def parse_endpoint(url: str, protocol: str | None = None, tls: TLSConfig | bool | None = None) -> Endpoint:
    """Read ``http://``, ``https://``, ``grpc://`` or ``grpcs://`` URLs (or ``host:port`` plus a protocol).

    The scheme decides the protocol; an explicit ``protocol`` must agree with it. ``tls=True``
    (or a :class:`TLSConfig`) turns TLS on for a plain scheme; ``https``/``grpcs`` imply it.
    """
    if protocol is not None and protocol not in _DEFAULT_PORTS:
        raise ValueError(f"protocol must be 'http' or 'grpc', got {protocol!r}")
    text = url.strip()
    if "://" not in text:
        text = f"{protocol or 'http'}://{text}"
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise ValueError(f"unsupported URL scheme {scheme!r} in {url!r}: use http, https, grpc or grpcs")
    proto, scheme_tls = _SCHEMES[scheme]
    if protocol is not None and protocol != proto:
        raise ValueError(f"the URL {url!r} says {proto} but protocol={protocol!r}")
    if parts.path not in ("", "/") or parts.query:
        raise ValueError(f"the URL {url!r} must be only scheme://host:port")
    if not parts.hostname:
        raise ValueError(f"the URL {url!r} has no host")
    try:
        port = parts.port or _DEFAULT_PORTS[proto]
    except ValueError as exc:
        raise ValueError(f"the URL {url!r} has an invalid port") from exc
    config: TLSConfig | None
    if isinstance(tls, TLSConfig):
        config = tls
    elif tls or scheme_tls:
        config = TLSConfig()
    else:
        config = None
    if tls is False and scheme_tls:
        raise ValueError(f"the URL {url!r} asks for TLS but ssl=False")
    return Endpoint(protocol=proto, host=parts.hostname, port=port, tls=config)
