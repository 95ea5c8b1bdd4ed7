"""tritonkit: from a trained image classifier to a production NVIDIA Triton deployment."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tritonkit")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
