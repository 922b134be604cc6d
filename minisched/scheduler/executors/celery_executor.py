"""The Celery executor: the scheduler publishes tries to a broker; workers elsewhere run them.

Workers claim each try themselves (queued -> running, a compare-and-set) and record its final state
in the database; this side only publishes and listens to the workers' reports, so the scheduler
schedules a downstream task as soon as its upstream ended. A try whose report never comes (broker
lost, worker died) is the database's business: recovery and the queued timeout deal with it.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from minisched.scheduler.executors.base import BaseExecutor, TryRequest, TryResult
from minisched.scheduler.executors.celery_messages import (
    TASK_NAME,
    ReportChannel,
    encode_try,
    make_app,
    report_channel,
    result_of,
    task_id_for,
)

if TYPE_CHECKING:
    from celery import Celery

log = logging.getLogger(__name__)
TryKey = tuple[int, int]
#: Seconds between two warnings about an unreachable broker.
WARN_EVERY = 10.0


def _batch(producer: Any) -> contextlib.AbstractContextManager[Any]:
    """kombu's publish batch (kombu 5.7+; older ones publish each message at once)."""
    batch = getattr(producer, "batch", None)
    return batch() if batch is not None else contextlib.nullcontext()


class CeleryExecutor(BaseExecutor):
    """`running` counts the tries published and not yet started by a worker: that is the backlog the
    scheduler must bound. A started try occupies a worker slot and a pool slot, not this executor."""

    name = "celery"

    def __init__(
        self,
        parallelism: int,
        *,
        broker_url: str,
        default_queue: str,
        queued_timeout: float,
        queue_depth: int | None = None,
    ) -> None:
        super().__init__(parallelism, queue_depth)
        self.broker_url = broker_url
        self.default_queue = default_queue
        self.queued_timeout = queued_timeout
        #: This scheduler's report list; unique per executor, so two schedulers never read each other's.
        self.reply_to = f"minisched:reports:{uuid.uuid4().hex}"
        self._app: Celery | None = None
        self._reports: ReportChannel | None = None
        self._unstarted: dict[TryKey, tuple[TryRequest, float]] = {}
        self._warned_at = -WARN_EVERY

    def start(self) -> None:
        self._app = make_app(self.broker_url, default_queue=self.default_queue)
        self._reports = report_channel(self.broker_url)

    def submit(self, tries: Sequence[TryRequest]) -> None:
        if self._app is None:
            raise RuntimeError("the celery executor is not started; call start() first")
        now = time.monotonic()
        for request in tries:
            self._unstarted[(request.ti_id, request.try_number)] = (request, now)
        if tries:
            self.publish(tries)

    def publish(self, tries: Sequence[TryRequest]) -> None:
        """Send tries in one Redis round trip (kombu's publish batch: one pipeline, one producer
        checkout); if the broker is unreachable they stay queued in the database, and the queued
        timeout fails or retries them, as it does for a message the broker lost. A try published
        twice (a batch that failed half-way and is resent by recovery) is still claimed once."""
        assert self._app is not None
        try:
            with self._app.producer_or_acquire() as producer, _batch(producer):
                for request in tries:
                    self._app.send_task(
                        TASK_NAME,
                        args=[encode_try(request, self.reply_to)],
                        task_id=task_id_for(request.ti_id, request.try_number),
                        queue=request.queue or self.default_queue,
                        producer=producer,
                    )
        except Exception as exc:  # kombu raises several types for a broker that is away
            self._warn(f"cannot publish {len(tries)} tries (first: task instance {tries[0].ti_id}): {exc}")

    def poll(self, timeout: float = 0.0) -> list[TryResult]:
        """Waits up to `timeout` for a *finished* report: a `started` one only lowers the backlog, and
        waking the scheduler for it would make it busy with an empty iteration just when the result
        comes in."""
        deadline = time.monotonic() + timeout
        while True:
            results = self._take_reports(self._read_reports(timeout))
            timeout = deadline - time.monotonic()
            if results or timeout <= 0:
                break
        self._forget_lost()
        return results

    def _take_reports(self, reports: list[dict[str, Any]]) -> list[TryResult]:
        results = []
        for report in reports:
            if report.get("kind") == "finished":
                result = result_of(report)
                self._unstarted.pop((result.ti_id, result.try_number), None)
                results.append(result)
            elif report.get("kind") == "started":
                self._unstarted.pop((int(report["ti_id"]), int(report["try_number"])), None)
        return results

    def _read_reports(self, timeout: float) -> list[dict[str, Any]]:
        if self._reports is None:
            return []
        try:
            return self._reports.pop_all(self.reply_to, timeout)
        except Exception as exc:  # the broker's Redis is away: the database still has every result
            self._warn(f"cannot read worker reports: {exc}")
            if timeout > 0:
                time.sleep(timeout)
            return []

    def _forget_lost(self) -> None:
        """A try not started within the queued timeout is failed or retried by recovery; stop counting it."""
        expired_before = time.monotonic() - self.queued_timeout
        for key in [k for k, (_, sent) in self._unstarted.items() if sent < expired_before]:
            del self._unstarted[key]

    def _warn(self, message: str) -> None:
        now = time.monotonic()
        if now - self._warned_at >= WARN_EVERY:
            self._warned_at = now
            log.warning("celery executor: %s", message)

    @property
    def running(self) -> int:
        return len(self._unstarted)

    def withdraw_pending(self) -> list[TryRequest]:
        """Tries no worker reported as started. The scheduler hands them back with the withdraw
        compare-and-set (queued -> scheduled): that is what revokes their messages, since a worker that
        receives one later finds nothing to claim and drops it."""
        withdrawn = [request for request, _ in self._unstarted.values()]
        self._unstarted.clear()
        return withdrawn

    def stop(self, grace: float) -> list[TryResult]:
        """Tries already on workers go on there and are recorded by them; nothing to wait for."""
        results = self.poll(0.0)
        if self._app is not None:
            self._app.close()
        return results
