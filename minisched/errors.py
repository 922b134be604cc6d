"""The error type the command line turns into one clear line on stderr and exit code 1."""

from __future__ import annotations


class MinischedError(Exception):
    """An operation failed for a reason the user can act on; the message says what, where and how to fix."""
