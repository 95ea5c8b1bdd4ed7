"""Port checks done before starting a server, so a taken port is a clear error, not a log line."""

from __future__ import annotations

import socket

from ._errors import PortInUseError


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def ensure_ports_free(host: str, ports: dict[str, int]) -> None:
    """Raise :class:`PortInUseError` naming the first of ``ports`` (role -> port) that is taken."""
    for role, port in ports.items():
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
            except OSError as exc:
                raise PortInUseError(
                    f"port {port} ({role}) on {host} is already in use: stop what holds it or pass "
                    f"--{role}-port with a free port"
                ) from exc
