"""Executors run tries handed over by the scheduler; see `base.BaseExecutor` for the contract."""

from __future__ import annotations

from minisched.scheduler.executors.base import BaseExecutor, TryOutcome, TryRequest, TryResult
from minisched.settings import EXECUTORS

__all__ = ["BaseExecutor", "TryOutcome", "TryRequest", "TryResult", "executor_for"]


def executor_for(name: str, parallelism: int) -> BaseExecutor:
    """The executor called `name`; the sequential one ignores parallelism, the celery one reads its
    broker and queues from the settings."""
    key = name.strip().lower()
    if key == "local":
        from minisched.scheduler.executors.local import LocalExecutor

        return LocalExecutor(parallelism)
    if key == "sequential":
        from minisched.scheduler.executors.sequential import SequentialExecutor

        return SequentialExecutor()
    if key == "celery":
        from minisched.scheduler.executors.celery_executor import CeleryExecutor
        from minisched.scheduler.executors.celery_messages import require_celery_setup
        from minisched.settings import get_settings

        settings = get_settings()
        require_celery_setup(db_url=settings.db_url, broker_url=settings.celery_broker_url)
        return CeleryExecutor(
            parallelism,
            broker_url=settings.celery_broker_url,
            default_queue=settings.default_queue,
            queued_timeout=settings.task_queued_timeout,
        )
    raise ValueError(f"unknown executor {name!r}; valid executors: {', '.join(EXECUTORS)}")
