"""Executors run tries handed over by the scheduler; see `base.BaseExecutor` for the contract."""

from __future__ import annotations

from minisched.scheduler.executors.base import BaseExecutor, TryOutcome, TryRequest, TryResult
from minisched.settings import EXECUTORS

__all__ = ["BaseExecutor", "TryOutcome", "TryRequest", "TryResult", "executor_for"]


def executor_for(name: str, parallelism: int) -> BaseExecutor:
    """The executor called `name` ("local" or "sequential"; the sequential one ignores parallelism)."""
    key = name.strip().lower()
    if key == "local":
        from minisched.scheduler.executors.local import LocalExecutor

        return LocalExecutor(parallelism)
    if key == "sequential":
        from minisched.scheduler.executors.sequential import SequentialExecutor

        return SequentialExecutor()
    raise ValueError(f"unknown executor {name!r}; valid executors: {', '.join(EXECUTORS)}")
