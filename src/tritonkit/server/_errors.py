"""Errors raised by :mod:`tritonkit.server`.

ServerError                 anything that stops the embedded Triton from serving
├── ServeExtraMissingError  nvidia-pytriton (the [serve] extra) is not installed
├── PortInUseError          a port the server needs is taken
└── ServerStartError        tritonserver exited or never became ready; carries its log tail
"""

from __future__ import annotations


class ServerError(Exception):
    """Root of every error raised by :mod:`tritonkit.server`."""


class ServeExtraMissingError(ServerError):
    """The embedded server binary is not installed."""


class PortInUseError(ServerError):
    """A port the server was asked to listen on is already taken."""


class ServerStartError(ServerError):
    """tritonserver exited during start-up or did not become ready in time."""

    def __init__(self, message: str, log_tail: str = "") -> None:
        super().__init__(
            message + (f"\n--- tritonserver log (last lines) ---\n{log_tail}" if log_tail else "")
        )
        self.log_tail = log_tail
