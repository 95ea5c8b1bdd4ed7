"""Model names: one folder name each, legal for Triton and safe on every file system we write."""

from __future__ import annotations

import re

from ._errors import InvalidNameError

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")
MAX_NAME_LENGTH = 128
PREPROCESS_SUFFIX = "_preprocess"
CLASSIFIER_SUFFIX = "_classifier"


def validate_model_name(name: str) -> str:
    """Return ``name`` if it can name a model folder; raise :class:`InvalidNameError` otherwise."""
    if not name:
        raise InvalidNameError("the model name is empty: pass --name with e.g. 'flowers'")
    if "/" in name or "\\" in name or name in (".", "..") or ".." in name:
        raise InvalidNameError(
            f"model name {name!r} contains a path separator or '..': a model name is one folder name, "
            "e.g. 'flowers'"
        )
    if len(name) > MAX_NAME_LENGTH - len(PREPROCESS_SUFFIX):
        raise InvalidNameError(
            f"model name {name!r} is longer than {MAX_NAME_LENGTH - len(PREPROCESS_SUFFIX)} characters"
        )
    if not _NAME.fullmatch(name):
        raise InvalidNameError(
            f"model name {name!r} may hold only letters, digits, '_', '-' and '.', and must start with "
            "a letter or digit"
        )
    return name


def preprocess_name(name: str) -> str:
    return name + PREPROCESS_SUFFIX


def classifier_name(name: str) -> str:
    return name + CLASSIFIER_SUFFIX
