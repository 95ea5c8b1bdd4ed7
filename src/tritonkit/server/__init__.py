"""Run the embedded Triton server (the ``tritonserver`` binary nvidia-pytriton ships).

>>> with EmbeddedServer(ServerOptions(repository=Path("model_repository"))) as server:
...     print(server.http_url)
"""

from ._distribution import TritonDistribution, locate_distribution
from ._embedded import (
    ADMIN_KEY_HEADER,
    MODEL_CONTROL_MODES,
    RESTRICTED_APIS,
    EmbeddedServer,
    GrpcTls,
    ServerOptions,
)
from ._errors import PortInUseError, ServeExtraMissingError, ServerError, ServerStartError
from ._ports import ensure_ports_free, free_port
from ._state import ServeState, read_state, remove_state, state_path, write_state
from ._watchdog import HealEvent, StubWatchdog, find_stubs

__all__ = [
    "ADMIN_KEY_HEADER",
    "MODEL_CONTROL_MODES",
    "RESTRICTED_APIS",
    "EmbeddedServer",
    "GrpcTls",
    "HealEvent",
    "PortInUseError",
    "ServeExtraMissingError",
    "ServeState",
    "ServerError",
    "ServerOptions",
    "ServerStartError",
    "StubWatchdog",
    "TritonDistribution",
    "ensure_ports_free",
    "find_stubs",
    "free_port",
    "locate_distribution",
    "read_state",
    "remove_state",
    "state_path",
    "write_state",
]
