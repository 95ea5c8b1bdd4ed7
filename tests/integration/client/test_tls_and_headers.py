"""TLS with custom root certificates (gRPC SSL, HTTPS) and headers for a restricted API."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pytest

from tritonkit.client import PermissionDenied, ServerUnavailable, TLSConfig, TritonClient

if TYPE_CHECKING:
    from conftest import TLSServer

pytestmark = pytest.mark.integration


def _urls(tls: TLSServer) -> dict[str, str]:
    return {"grpc": tls.grpcs_url, "http": tls.https_url}


def test_tls_with_custom_root_certificates_works(tls_triton: TLSServer, protocol: str) -> None:
    url = _urls(tls_triton)[protocol]
    with TritonClient(url, ssl=TLSConfig(root_certificates=tls_triton.certificates.ca)) as client:
        assert client.url.startswith(("https://", "grpcs://"))
        assert client.is_live() and client.is_model_ready("add_sub")
        out = client.infer("add_sub", {"INPUT0": np.ones(16), "INPUT1": np.ones(16)})
        np.testing.assert_array_equal(out["OUTPUT0"], np.full(16, 2, np.float32))


def test_tls_refuses_a_server_whose_ca_is_not_trusted(tls_triton: TLSServer, protocol: str) -> None:
    url = _urls(tls_triton)[protocol]
    untrusted = TLSConfig(root_certificates=tls_triton.certificates.other_ca)
    with TritonClient(url, ssl=untrusted, timeout_s=3, retries=0) as client:
        assert client.is_live() is False
        with pytest.raises(ServerUnavailable):
            client.server_metadata()


def test_plain_text_to_a_tls_port_is_server_unavailable(tls_triton: TLSServer) -> None:
    with TritonClient(tls_triton.server.grpc_url, timeout_s=2, retries=0) as client:
        assert client.is_live() is False


def test_restricted_api_needs_the_admin_header(tls_triton: TLSServer, protocol: str) -> None:
    url = _urls(tls_triton)[protocol]
    tls = TLSConfig(root_certificates=tls_triton.certificates.ca)
    with TritonClient(url, ssl=tls) as anonymous:
        assert anonymous.is_ready()  # health and inference stay open
        with pytest.raises(PermissionDenied, match="admin-key"):
            anonymous.repository_index()
        with pytest.raises(PermissionDenied):
            anonymous.unload_model("add_sub")
        assert anonymous.is_model_ready("add_sub")
    with TritonClient(url, ssl=tls, headers={"Admin-Key": tls_triton.admin_key}) as admin:
        assert {m.name for m in admin.repository_index(ready_only=True)} == {"add_sub"}
        admin.load_model("add_sub")
        assert admin.is_model_ready("add_sub")
