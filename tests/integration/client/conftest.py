"""Real embedded Tritons for the client SDK tests, started once per configuration.

``triton``: the Python-backend test models of ``models/`` in EXPLICIT mode, with latency
summaries and the response cache on. ``tls_triton``: gRPC over TLS with a CA made here, the
repository and shared-memory APIs restricted to an admin key, and an HTTPS front (a small TLS
proxy, as Triton's HTTP endpoint has no TLS of its own).
"""

from __future__ import annotations

import contextlib
import importlib.util
import shutil
import socket
import ssl
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from testsupport import start_server
from testsupport.tls import Certificates, make_certificates
from tritonkit.client import TritonClient
from tritonkit.server import EmbeddedServer, free_port

MODELS = Path(__file__).parent / "models"
LOADED = (
    "add_sub",
    "identity_bytes",
    "scores",
    "slow",
    "failing",
    "cached",
    "loadable",
    "tiny_classifier",
    "flowers",
    "flowers_classifier",
)
ADMIN_KEY = "s3cret-admin-key"
PROTOCOLS = ("http", "grpc")


@pytest.fixture(scope="session")
def client_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test models, plus ``flowers``: the tiny classifier under the names the docs use."""
    repository = tmp_path_factory.mktemp("client_repo") / "models"
    shutil.copytree(MODELS, repository)
    shutil.copytree(MODELS / "tiny_classifier", repository / "flowers")
    shutil.copytree(MODELS / "tiny_classifier_classifier", repository / "flowers_classifier")
    return repository


def _cache_directory() -> Path:
    """The response-cache implementations nvidia-pytriton ships next to its tritonserver."""
    spec = importlib.util.find_spec("pytriton")
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))) / "tritonserver" / "caches"


@pytest.fixture(scope="session")
def triton(client_repository: Path) -> Iterator[EmbeddedServer]:
    server = start_server(
        client_repository,
        model_control_mode="explicit",
        load_models=LOADED,
        extra_args=(
            "--metrics-config=summary_latencies=true",
            f"--cache-directory={_cache_directory()}",
            "--cache-config=local,size=1048576",
        ),
    )
    yield server
    server.stop()


@pytest.fixture
def stoppable_triton(tmp_path: Path) -> Iterator[EmbeddedServer]:
    """A dedicated embedded Triton serving only ``add_sub``, for tests that stop it themselves."""
    repository = tmp_path / "models"
    shutil.copytree(MODELS / "add_sub", repository / "add_sub")
    # A client's open keep-alive connection would hold a stopping server for exit_timeout_s.
    server = start_server(repository, exit_timeout_s=1)
    yield server
    server.stop()  # a no-op when the test stopped it already


@pytest.fixture(scope="session")
def timed_model(triton: EmbeddedServer) -> str:
    """The ``timed`` model, loaded by the first test that needs it (four stub processes a session
    that does not need them should not start). It stays loaded: Triton unloads in the
    background, and the server is not ready until it has finished."""
    with TritonClient(triton.http_url, timeout_s=120) as admin:
        admin.load_model("timed")
    return "timed"


def most_at_once(spans: Iterable[Sequence[float]]) -> int:
    """The largest number of ``[start, end]`` spans that overlap at one moment (touching ends
    do not overlap: a request that starts as another ends did not run beside it)."""
    pairs = [(float(start), float(end)) for start, end in spans]
    events = sorted([(start, 1) for start, _ in pairs] + [(end, -1) for _, end in pairs])
    running = most = 0
    for _, step in events:
        running += step
        most = max(most, running)
    return most


def url_of(server: EmbeddedServer, protocol: str) -> str:
    return server.http_url if protocol == "http" else server.grpc_url


@pytest.fixture
def triton_url_http(triton: EmbeddedServer) -> str:
    return triton.http_url


@pytest.fixture(params=PROTOCOLS)
def protocol(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def client(triton: EmbeddedServer, protocol: str) -> Iterator[TritonClient]:
    """A sync client of the plain server, once per protocol."""
    with TritonClient(url_of(triton, protocol), timeout_s=20, metrics_url=triton.metrics_url) as made:
        yield made


# -- TLS ------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("tls"))


class TCPProxy:
    """Forwards a loopback port to a plain TCP port, keeping a copy of the bytes each way.

    ``sent`` is what clients sent towards the server, ``received`` what came back: what really
    crossed the wire, whatever the client library says it did.
    """

    def __init__(self, target_port: int) -> None:
        self.port = free_port()
        self._target = target_port
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._stopped = threading.Event()
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._sent = bytearray()
        self._received = bytearray()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def sent(self) -> bytes:
        with self._lock:
            return bytes(self._sent)

    @property
    def received(self) -> bytes:
        with self._lock:
            return bytes(self._received)

    def clear(self) -> None:
        with self._lock:
            self._sent.clear()
            self._received.clear()

    def _serve(self) -> None:
        while not self._stopped.is_set():
            try:
                raw, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(raw,), daemon=True).start()

    def _wrap(self, raw: socket.socket) -> socket.socket | None:
        """The client's side of one connection, ready to read (``None`` to drop it)."""
        return raw

    def _handle(self, raw: socket.socket) -> None:
        client = self._wrap(raw)
        if client is None:
            return
        upstream = socket.create_connection(("127.0.0.1", self._target))
        self._open |= {client, upstream}

        def pump(source: socket.socket, sink: socket.socket, record: bytearray) -> None:
            with contextlib.suppress(OSError):
                while data := source.recv(65536):
                    with self._lock:
                        record += data
                    sink.sendall(data)
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

        back = threading.Thread(target=pump, args=(upstream, client, self._received), daemon=True)
        back.start()
        pump(client, upstream, self._sent)
        back.join()
        client.close()
        upstream.close()
        self._open -= {client, upstream}

    def close(self) -> None:
        """Stop listening and end open connections, so Triton does not wait for them to go idle."""
        self._stopped.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() that close() alone would not
        self._listener.close()
        self._thread.join(timeout=5)
        for sock in list(self._open):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class TLSProxy(TCPProxy):
    """Terminates TLS on a loopback port and forwards the bytes to a plain TCP port."""

    def __init__(self, target_port: int, cert: Path, key: Path) -> None:
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._context.load_cert_chain(str(cert), str(key))
        super().__init__(target_port)

    def _wrap(self, raw: socket.socket) -> socket.socket | None:
        try:
            return self._context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            raw.close()
            return None


@pytest.fixture
def wire_proxy(triton: EmbeddedServer, protocol: str) -> Iterator[tuple[str, TCPProxy]]:
    """A URL of the plain server, for the protocol under test, through a recording proxy."""
    target = triton.options.http_port if protocol == "http" else triton.options.grpc_port
    proxy = TCPProxy(target)
    yield f"{protocol}://127.0.0.1:{proxy.port}", proxy
    proxy.close()


@dataclass(frozen=True)
class TLSServer:
    server: EmbeddedServer
    certificates: Certificates
    https_url: str
    admin_key: str = ADMIN_KEY

    @property
    def grpcs_url(self) -> str:
        return self.server.grpc_url.replace("grpc://", "grpcs://")


@pytest.fixture(scope="session")
def tls_triton(client_repository: Path, certificates: Certificates) -> Iterator[TLSServer]:
    server = start_server(
        client_repository,
        model_control_mode="explicit",
        load_models=("add_sub",),
        admin_key=ADMIN_KEY,  # --http-restricted-api / --grpc-restricted-protocol
        extra_args=(
            "--grpc-use-ssl=true",
            f"--grpc-server-cert={certificates.server_cert}",
            f"--grpc-server-key={certificates.server_key}",
            f"--grpc-root-cert={certificates.ca}",
        ),
    )
    proxy = TLSProxy(server.options.http_port, certificates.server_cert, certificates.server_key)
    yield TLSServer(server, certificates, f"https://localhost:{proxy.port}")
    proxy.close()
    server.stop()
