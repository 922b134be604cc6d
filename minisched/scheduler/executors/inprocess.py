"""Runs each try inside the calling process, at submit time: what `dags test` uses.

No isolation (a task that crashes its process ends the command, as `airflow dags test` does), but no
process hand-over either, so the recording code is measured on its own.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from minisched.scheduler.executors.base import BaseExecutor, TryRequest, TryResult, TryStarted


class InProcessExecutor(BaseExecutor):
    name = "inprocess"

    def __init__(self, parallelism: int = 1_000_000) -> None:
        super().__init__(parallelism, queue_depth=0)
        self._finished: list[TryResult] = []
        self._dag_cache: object | None = None

    def start(self) -> None:
        from minisched.scheduler.executors.task_runner import DagFileCache

        self._dag_cache = DagFileCache()

    def submit(self, tries: Sequence[TryRequest]) -> None:
        from minisched.scheduler.executors.task_runner import DagFileCache, run_try, tries_in_turn
        from minisched.settings import environ_of_a_try

        cache = self._dag_cache if isinstance(self._dag_cache, DagFileCache) else None
        # What a worker's try would see: no database URL, no keys. Set once for the batch, not per try:
        # nothing between two tries here needs the credentials, and rebuilding the environment per try
        # was a fifth of a 1,000-task `dags test`'s CPU. The output redirections likewise, for more than
        # one try (for one, the batch's checks would cost more than they save).
        batch = tries_in_turn() if len(tries) > 1 else contextlib.nullcontext()
        with environ_of_a_try(), batch:
            for request in tries:
                result = run_try(request, dag_cache=cache)
                self._started_events.append(TryStarted.of(request, result.start_date, result.pid))
                self._finished.append(result)

    def poll(self, timeout: float = 0.0) -> list[TryResult]:
        finished, self._finished = self._finished, []
        return finished

    @property
    def running(self) -> int:
        return 0

    def stop(self, grace: float) -> list[TryResult]:
        return self.poll()
