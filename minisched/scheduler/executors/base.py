"""The executor contract: the scheduler hands over tries and collects their results.

An executor never touches the database; the scheduler records every transition. That keeps a future
distributed executor (workers elsewhere claiming tries) behind this same small interface.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from minisched.host import hostname

#: How a try ended; `not_started`: its worker did not run it (the scheduler's lease had run out, see
#: `lease`), so it goes back to scheduled without counting as a try.
TryOutcome = Literal["success", "failed", "skipped", "not_started"]


@dataclass(frozen=True)
class TryRequest:
    """Everything a worker needs to run one try, without reading the database."""

    ti_id: int
    dag_id: str
    run_id: str
    task_id: str
    try_number: int
    fileloc: str
    log_path: str
    logical_date: datetime
    data_interval_start: datetime | None
    data_interval_end: datetime | None
    conf: dict[str, Any] | None = None
    timeout: float | None = None
    #: The task's `queue=` (None: the default queue); only executors with queues read it.
    queue: str | None = None
    #: The job that claimed the try (queued it): a remote worker's start is keyed on it.
    claimed_by_job_id: int | None = None
    #: Which instance of a mapped task the try runs; -1 for a task that is not mapped.
    map_index: int = -1
    #: The task instance's `max_tries` when queued (a clear raises it past `retries`): a failed try
    #: numbered up to it is retried, so the worker calls `on_retry_callback`, else `on_failure_callback`.
    max_tries: int = 0


def will_retry(try_number: int, max_tries: int, *, retry: bool = True) -> bool:
    """Whether a failed try is retried: while tries remain (max_tries = retries, plus what clears
    added; try_number counts from 1), unless the task said retrying cannot help (``FailTask``)."""
    return retry and try_number <= max_tries


@dataclass(frozen=True)
class TryResult:
    ti_id: int
    try_number: int
    outcome: TryOutcome
    start_date: datetime
    end_date: datetime
    hostname: str
    pid: int
    #: One line saying why a failed try failed (exception, exit code, timeout); None on success.
    error: str | None = None
    #: False when the task said retrying cannot help (``FailTask``): the try ends failed, not up_for_retry.
    retry: bool = True
    #: Tasks of the same run a succeeded branching try skips (transitions.finish marks them).
    skip_task_ids: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)
    #: (key, value) of every XCom the try pushed, values as plain JSON data; stored with the result.
    xcom: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def failed(
        cls,
        ti_id: int,
        try_number: int,
        error: str,
        *,
        pid: int,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
    ) -> TryResult:
        """A try that failed from the outside (its worker died, it timed out, its scheduler died), as
        seen from this host; it ends `end_date` (default now) and began then too if never started."""
        now = end_date or datetime.now(UTC)
        return cls(
            ti_id=ti_id,
            try_number=try_number,
            outcome="failed",
            start_date=start_date or now,
            end_date=now,
            hostname=hostname(),
            pid=pid,
            error=error,
        )


@dataclass(frozen=True)
class TryStarted:
    """A try left the executor's queue and began running (the scheduler records queued -> running).

    It names its task instance and where it runs, so recording it needs nothing else."""

    ti_id: int
    try_number: int
    dag_id: str
    run_id: str
    task_id: str
    start_date: datetime
    hostname: str
    pid: int | None

    @classmethod
    def of(cls, request: TryRequest, start_date: datetime, pid: int | None) -> TryStarted:
        """`request` began at `start_date` in process `pid` on this host."""
        return cls(
            request.ti_id,
            request.try_number,
            request.dag_id,
            request.run_id,
            request.task_id,
            start_date,
            hostname(),
            pid,
        )


class BaseExecutor(abc.ABC):
    """Runs tries somewhere; `poll` returns finished ones. Not thread-safe; one scheduler owns it.

    Up to `parallelism` tries run at once; up to `queue_depth` more may wait inside the executor, so a
    worker that finishes picks its next try without waiting for the scheduler's next loop.
    """

    name: str = "base"

    def __init__(self, parallelism: int, queue_depth: int | None = None) -> None:
        self.parallelism = parallelism
        # Enough queued work to keep every worker busy through one scheduler loop (a few ms).
        self.queue_depth = max(16, 16 * parallelism) if queue_depth is None else queue_depth
        self._started_events: list[TryStarted] = []

    def drain_started(self) -> list[TryStarted]:
        """Tries that began running since the last call."""
        started, self._started_events = self._started_events, []
        return started

    def pump(self) -> None:  # noqa: B027 -- an optional hook: executors without a queue need nothing
        """Hand queued tries to idle workers now (the scheduler calls this between its DB steps, so
        workers do not wait for a whole loop); finished results are kept for the next `poll`."""

    def withdraw_pending(self) -> list[TryRequest]:
        """Take back the tries that never started (still queued, or left over by `stop`)."""
        return []

    @abc.abstractmethod
    def start(self) -> None:
        """Acquire resources (worker processes)."""

    @abc.abstractmethod
    def submit(self, tries: Sequence[TryRequest]) -> None:
        """Start running `tries`; never more than `free_slots` at once."""

    @abc.abstractmethod
    def poll(self, timeout: float = 0.0) -> list[TryResult]:
        """Finished tries since the last call; waits up to `timeout` seconds for the first one."""

    @property
    @abc.abstractmethod
    def running(self) -> int:
        """Tries submitted and not yet returned by `poll` (queued inside the executor or running)."""

    @property
    def free_slots(self) -> int:
        """How many more tries `submit` takes now: running ones plus a bounded queue."""
        return max(0, self.parallelism + self.queue_depth - self.running)

    @abc.abstractmethod
    def stop(self, grace: float) -> list[TryResult]:
        """Stop taking work, wait up to `grace` seconds for running tries, kill the rest (reported
        failed). Tries that never started are kept for `withdraw_pending`."""
