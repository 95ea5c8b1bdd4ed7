"""Errors raised by :mod:`tritonkit.repository`.

    RepositoryError             anything that stops a model repository from being built or changed
    ├── InvalidNameError        a model name Triton (or a file system) would not accept
    ├── LabelsError             a labels file that does not fit the model
    ├── BuildOptionsError       build options that contradict each other or the model
    ├── PublishError            the repository could not be changed; it is left as it was
    │   └── VersionExistsError  the version is already in the object store; nothing was uploaded
    └── ObjectStoreError        an object store (S3) that cannot be used: its URL, bucket, access
        ├── ObjectStoreURLError an ``s3://`` URL that Triton would not read as meant
        └── S3ExtraMissingError boto3 (the ``[s3]`` extra) is not installed

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


class VersionExistsError(PublishError):
    """The version already has objects in the object store; it is never overwritten."""


class ObjectStoreError(RepositoryError):
    """An object store that cannot be read or written: missing bucket, no access, no connection."""


class ObjectStoreURLError(ObjectStoreError, ValueError):
    """An ``s3://`` URL that names no bucket, or that Triton would parse differently."""


class S3ExtraMissingError(ObjectStoreError):
    """boto3 is not installed: ``pip install 'tritonkit[s3]'``."""
