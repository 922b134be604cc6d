"""The executor contract: the scheduler hands over tries and collects their results.

An executor never touches the database; the scheduler records every transition. That keeps a future
distributed executor (workers elsewhere claiming tries) behind this same small interface.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

TryOutcome = Literal["success", "failed", "skipped"]


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
    extra: dict[str, Any] = field(default_factory=dict)


class BaseExecutor(abc.ABC):
    """Runs tries somewhere; `poll` returns finished ones. Not thread-safe; one scheduler owns it."""

    name: str = "base"

    def __init__(self, parallelism: int) -> None:
        self.parallelism = parallelism

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
        """Tries submitted and not yet returned by `poll`."""

    @property
    def free_slots(self) -> int:
        return max(0, self.parallelism - self.running)

    @abc.abstractmethod
    def stop(self, grace: float) -> list[TryResult]:
        """Stop taking work, wait up to `grace` seconds for running tries, kill the rest (reported failed)."""
