"""Errors raised by :mod:`tritonkit.repository`.

    RepositoryError             anything that stops a model repository from being built or changed
    ├── InvalidNameError        a model name Triton (or a file system) would not accept
    ├── LabelsError             a labels file that does not fit the model
    ├── BuildOptionsError       build options that contradict each other or the model
    └── PublishError            the repository could not be changed; it is left as it was

Conversion problems (a missing, corrupt or unconvertible model) are
:class:`tritonkit.converters.ConversionError` and are raised before anything is written.
"""

from __future__ import annotations


class RepositoryError(Exception):
    """Root of every error raised by :mod:`tritonkit.repository`."""


class InvalidNameError(RepositoryError, ValueError):
    """A model name that is not a single, Triton-legal folder name."""


class LabelsError(RepositoryError):
    """A labels file that cannot be read or does not match the model's classes."""


class BuildOptionsError(RepositoryError, ValueError):
    """Build options that are invalid on their own or for this model."""


class PublishError(RepositoryError):
    """Writing into the repository failed; nothing half-written is left visible."""
