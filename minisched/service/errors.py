"""Errors the entry points turn into HTTP statuses: 404, 409 and 400 (any other MinischedError)."""

from __future__ import annotations

from minisched.exceptions import MinischedError
from minisched.inputs import InvalidInput

__all__ = ["Conflict", "InvalidInput", "NotFound"]


class NotFound(MinischedError):
    """The DAG, run, task instance, pool or log asked for does not exist."""


class Conflict(MinischedError):
    """The change cannot be made in the current state (e.g. a try is in flight, the run exists)."""
