"""The one place that retries transient database errors: dropped connections, deadlocks, busy SQLite."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, OperationalError

log = logging.getLogger(__name__)

R = TypeVar("R")

# PostgreSQL SQLSTATEs worth another try: serialization failure, deadlock, lock not available,
# and the connection-exception class.
_RETRYABLE_SQLSTATES = {"40001", "40P01", "55P03", "08000", "08003", "08006", "08001", "57P01"}
_RETRYABLE_SQLITE_TEXT = ("database is locked", "database is busy")


def is_transient(exc: BaseException) -> bool:
    """True for errors where the same transaction may well succeed when tried again."""
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    sqlstate = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    if sqlstate in _RETRYABLE_SQLSTATES:
        return True
    return isinstance(exc, OperationalError) and any(text in str(exc.orig) for text in _RETRYABLE_SQLITE_TEXT)


def is_disconnect(exc: BaseException) -> bool:
    """True when the database cannot be reached at all (server down, connection lost or refused), as
    opposed to an error in what was asked of it."""
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    sqlstate = str(getattr(exc.orig, "sqlstate", None) or "")
    if sqlstate.startswith("08") or sqlstate in {"57P01", "57P02", "57P03"}:
        return True
    # psycopg raises a connection failure (refused, server gone) as an OperationalError without a state.
    return (
        isinstance(exc, OperationalError) and not sqlstate and type(exc.orig).__module__.startswith("psycopg")
    )


def run_with_retries(
    func: Callable[[], R], *, attempts: int = 5, base_delay: float = 0.05, max_delay: float = 2.0
) -> R:
    """Call `func` (a whole transaction), again after a transient error, with jittered exponential backoff."""
    for attempt in range(1, attempts + 1):
        try:
            return func()
        except DBAPIError as exc:
            if attempt == attempts or not is_transient(exc):
                raise
            delay = min(max_delay, base_delay * 2 ** (attempt - 1)) * (0.5 + random.random())
            log.warning("transient database error (attempt %d/%d), retrying: %s", attempt, attempts, exc.orig)
            time.sleep(delay)
    raise AssertionError("unreachable")
