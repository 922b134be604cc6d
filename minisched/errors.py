"""Deprecated alias: the error types live in `minisched.exceptions`."""

from minisched.exceptions import MinischedError

__all__ = ["MinischedError"]
