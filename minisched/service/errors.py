"""Errors the entry points turn into HTTP statuses: 404, 409 and 400 (any other MinischedError)."""

from __future__ import annotations

from minisched.exceptions import MinischedError


class NotFound(MinischedError):
    """The DAG, run, task instance, pool or log asked for does not exist."""


class Conflict(MinischedError):
    """The change cannot be made in the current state (e.g. a try is in flight, the run exists)."""


class InvalidInput(MinischedError):
    """A parameter has a value that cannot be used; the message says which and how to fix it."""
