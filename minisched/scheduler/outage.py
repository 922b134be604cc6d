"""Riding out an unreachable metadata database: how long it has lasted, and when to give up.

While the database is down the scheduler keeps its executor going: running tries go on and their
results are kept in memory (and in each try's record beside its log). New tries stop by themselves
once the scheduler's lease runs out (see `executors.lease`). The loop tries the database again with
backoff and logs one line when the outage begins, when it ends and when it gives up.
"""

from __future__ import annotations

import logging
import time

from sqlalchemy.exc import DBAPIError

from minisched.exceptions import MinischedError
from minisched.settings import mask_secrets

log = logging.getLogger(__name__)
#: The first and the longest wait between two attempts to reach the database (seconds).
FIRST_BACKOFF = 0.5
MAX_BACKOFF = 5.0


class DatabaseUnreachable(MinischedError):
    """The database stayed unreachable for longer than the grace period."""


class DatabaseOutage:
    def __init__(self, grace: float) -> None:
        self.grace = grace
        self._since: float | None = None
        self._delay = FIRST_BACKOFF

    @property
    def ongoing(self) -> bool:
        return self._since is not None

    def backoff(self) -> float:
        """How long to wait (collecting results) before the next attempt; doubles up to a bound."""
        delay, self._delay = self._delay, min(MAX_BACKOFF, self._delay * 2)
        return delay

    def failed(self, exc: DBAPIError) -> None:
        """An attempt failed: note the outage, or raise DatabaseUnreachable once past the grace."""
        now = time.monotonic()
        if self._since is None:
            self._since = now
            log.warning(
                "the metadata database is unreachable (%s); running tries go on, results are kept; "
                "retrying for up to %gs (MINISCHED_DB_OUTAGE_GRACE)",
                _one_line(exc),
                self.grace,
            )
        elif now - self._since > self.grace:
            log.error("the metadata database is still unreachable after %gs; stopping", self.grace)
            raise DatabaseUnreachable(
                f"the metadata database was unreachable for more than {self.grace:g}s "
                "(MINISCHED_DB_OUTAGE_GRACE); stopped. Tries that ended meanwhile are recorded beside "
                "their logs (attempt=<n>.json), so the next scheduler records their real outcome"
            ) from exc

    def over(self, pending: int) -> None:
        """An attempt succeeded (and recorded `pending` results kept meanwhile)."""
        if self._since is None:
            return
        log.warning(
            "the metadata database is reachable again after %.1fs; recorded %d results kept meanwhile",
            time.monotonic() - self._since,
            pending,
        )
        self._since = None
        self._delay = FIRST_BACKOFF


def _one_line(exc: DBAPIError) -> str:
    return mask_secrets(" ".join(str(exc.orig).split()))[:300]
