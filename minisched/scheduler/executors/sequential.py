"""The sequential executor: one try at a time, each in a freshly forked child process.

Meant for debugging and `dags test`-like runs: nothing is shared between tries, and a task that
crashes its process (os._exit, a segfault) still cannot take the scheduler down with it.
"""

from __future__ import annotations

from minisched.scheduler.executors.local import LocalExecutor


class SequentialExecutor(LocalExecutor):
    name = "sequential"
    reuse_workers = False

    def __init__(self, parallelism: int = 1) -> None:
        super().__init__(1, queue_depth=0)
