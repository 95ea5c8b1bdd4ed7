"""Fixtures shared by unit and integration tests."""

from __future__ import annotations

import os

# TensorFlow's C++ start-up chatter buries real failures in CI logs.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
