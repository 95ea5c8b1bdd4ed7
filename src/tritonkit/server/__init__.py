"""Run the embedded Triton server (the ``tritonserver`` binary nvidia-pytriton ships).

>>> with EmbeddedServer(ServerOptions(repository=Path("model_repository"))) as server:
...     print(server.http_url)
"""

from ._distribution import TritonDistribution, locate_distribution
from ._embedded import MODEL_CONTROL_MODES, EmbeddedServer, ServerOptions
from ._errors import PortInUseError, ServeExtraMissingError, ServerError, ServerStartError
from ._ports import ensure_ports_free, free_port

__all__ = [
    "MODEL_CONTROL_MODES",
    "EmbeddedServer",
    "PortInUseError",
    "ServeExtraMissingError",
    "ServerError",
    "ServerOptions",
    "ServerStartError",
    "TritonDistribution",
    "ensure_ports_free",
    "free_port",
    "locate_distribution",
]
