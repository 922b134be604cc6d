"""How the scheduler side reads the workers' reports (Celery's in-memory broker, no database)."""

from __future__ import annotations

import threading
import uuid

import pytest

from minisched.scheduler.executors.base import TryRequest, TryResult
from minisched.scheduler.executors.celery_messages import finished_report, report_channel, started_report
from tests.scheduler.helpers import wait_until

pytest.importorskip("celery")


def _request(ti_id: int) -> TryRequest:
    return TryRequest(
        ti_id=ti_id,
        dag_id="d",
        run_id="r",
        task_id="t",
        try_number=1,
        fileloc="/nowhere/d.py",
        log_path="/nowhere/log",
        logical_date=None,
        data_interval_start=None,
        data_interval_end=None,
    )


def test_a_started_report_does_not_end_the_wait_for_a_result() -> None:
    """A `started` report lowers the backlog at once, but `poll` goes on waiting for a finished one,
    so the scheduler's loop wakes for the result, not for an empty iteration just before it."""
    from minisched.scheduler.executors.celery_executor import CeleryExecutor

    executor = CeleryExecutor(
        1, broker_url="memory://", default_queue=f"q-{uuid.uuid4().hex}", queued_timeout=600
    )
    executor.start()
    try:
        executor.submit([_request(1), _request(2)])
        assert executor.running == 2
        channel = report_channel("memory://")
        channel.push(executor.reply_to, started_report(1, 1))
        result = TryResult.failed(1, 1, "boom", pid=1)

        def report_result_once_started_was_read() -> None:
            wait_until(lambda: executor.running == 1, timeout=120, message="the started report read")
            channel.push(executor.reply_to, finished_report(result))

        pusher = threading.Thread(target=report_result_once_started_was_read)
        pusher.start()
        try:
            results = executor.poll(300.0)
        finally:
            pusher.join()
        assert [(r.ti_id, r.outcome, r.error) for r in results] == [(1, "failed", "boom")]
        assert executor.running == 1  # try 2 still waits for a worker
    finally:
        executor.stop(0.0)
