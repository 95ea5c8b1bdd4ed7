"""Errors raised by :mod:`tritonkit.rollout`.

RolloutError            a version could not be made current; the previous one still serves
└── VerificationError   the new version loaded but did not give the answers its build recorded
"""

from __future__ import annotations


class RolloutError(Exception):
    """Root of every error raised by :mod:`tritonkit.rollout`."""


class VerificationError(RolloutError):
    """The version answered the check images differently from what its build recorded."""
