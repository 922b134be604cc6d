"""`minisched celery worker`: a Celery worker that runs minisched tries.

The main process consumes messages (late acks, a prefetch of one) and heart-beats as a `job` row. Each
message is handled in a pool process:
1. start: the queued -> running compare-and-set on (ti id, try_number, the claiming scheduler's job
   named in the message): the fence, see `claims`. Nothing matched (a duplicate
   message, a try withdrawn or already failed by the queued timeout): the message is acknowledged and
   dropped. From here this worker's job owns the try, so recovery fails or retries it if we die.
2. run the try in a freshly forked child (timeout, process-group kill), shipping its log to the
   database about once a second;
3. finish: the final state, with the rest of the log, in one transaction;
4. tell the scheduler (its report list), so it schedules what comes next without waiting.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from minisched.db.retry import run_with_retries
from minisched.db.session import create_session
from minisched.db.task_logs import TryKey, ship_log
from minisched.models import JobState
from minisched.models.job import CELERY_WORKER_JOB_TYPE
from minisched.models.types import utcnow
from minisched.scheduler import job as jobs
from minisched.scheduler.dag_cache import DagStructureCache
from minisched.scheduler.executors import lease
from minisched.scheduler.executors.base import TryRequest, TryResult
from minisched.scheduler.executors.celery_messages import (
    TASK_NAME,
    ReportChannel,
    decode_try,
    finished_report,
    make_app,
    report_channel,
    started_report,
)
from minisched.scheduler.executors.forked_try import run_forked
from minisched.scheduler.executors.logs import log_path_for
from minisched.scheduler.executors.process_tree import set_parent_death_signal
from minisched.scheduler.executors.task_runner import DagFileCache
from minisched.settings import get_settings
from minisched.workers import claims

log = logging.getLogger(__name__)
#: Seconds between two shipments of a running try's log.
LOG_SHIP_INTERVAL = 1.0


@dataclass
class WorkerContext:
    """What every pool process of this worker shares (set before the pool forks)."""

    name: str
    job_id: int
    logs_folder: Path
    broker_url: str
    dag_files: DagFileCache = field(default_factory=DagFileCache)
    dags: DagStructureCache = field(default_factory=lambda: DagStructureCache(recheck_interval=1.0))
    _reports: tuple[int, ReportChannel] | None = None

    def reports(self) -> ReportChannel:
        """One connection per process: a forked pool process never shares its parent's socket."""
        if self._reports is None or self._reports[0] != os.getpid():
            self._reports = (os.getpid(), report_channel(self.broker_url))
        return self._reports[1]


_context: WorkerContext | None = None


def run_message(body: dict[str, Any]) -> str:
    """The Celery task: handle one try message; returns what became of it (for Celery's own log)."""
    assert _context is not None, "run_message runs inside `minisched celery worker` only"
    context = _context
    request, reply_to = decode_try(body)
    request = replace(
        request,
        log_path=str(
            log_path_for(
                context.logs_folder, request.dag_id, request.run_id, request.task_id, request.try_number
            )
        ),
    )
    if not run_with_retries(lambda: _start(context, request)):
        log.info(
            "try %s of %s.%s (%s) is not queued under that number any more: message dropped",
            request.try_number,
            request.dag_id,
            request.task_id,
            request.run_id,
        )
        return "dropped"
    _report(context, reply_to, started_report(request.ti_id, request.try_number))
    result = _run(context, request)
    _report(context, reply_to, finished_report(result))
    return result.outcome


def _start(context: WorkerContext, request: TryRequest) -> bool:
    with create_session() as session:
        return claims.start(
            request,
            hostname=context.name,
            pid=os.getpid(),
            job_id=context.job_id,
            session=session,
            now=utcnow(),
        )


def _run(context: WorkerContext, request: TryRequest) -> TryResult:
    with contextlib.suppress(Exception):  # a broken file fails the try in the child, with its error
        context.dag_files.load(request.fileloc)
    key = TryKey(request.dag_id, request.run_id, request.task_id, request.try_number)
    shipped = 0

    def ship_so_far() -> None:
        nonlocal shipped
        with contextlib.suppress(Exception):  # best effort while running; the final shipment must work

            def transaction() -> int:
                with create_session() as session:
                    return ship_log(
                        request.log_path,
                        key,
                        offset=shipped,
                        hostname=context.name,
                        session=session,
                        now=utcnow(),
                        final=False,
                    )

            shipped = run_with_retries(transaction)

    result = run_forked(
        request, dag_cache=context.dag_files, while_waiting=ship_so_far, interval=LOG_SHIP_INTERVAL
    )
    result = replace(result, hostname=context.name)

    def finish() -> None:
        with create_session() as session:
            now = utcnow()
            ship_log(
                request.log_path,
                key,
                offset=shipped,
                hostname=context.name,
                session=session,
                now=now,
                final=True,
            )
            claims.finish(result, job_id=context.job_id, session=session, cache=context.dags, now=now)

    run_with_retries(finish)
    return result


def _report(context: WorkerContext, reply_to: str, report: dict[str, Any]) -> None:
    """Best effort: the database already holds the truth, the scheduler's sweep finds it without us."""
    if not reply_to:
        return
    try:
        context.reports().push(reply_to, report)
    except Exception as exc:
        log.warning("could not report to the scheduler (%s): %s", reply_to, exc)


# -- the worker process ------------------------------------------------------------------------------


def run_worker(
    *,
    name: str,
    queues: Sequence[str],
    concurrency: int,
    broker_url: str,
    default_queue: str,
    logs_folder: Path,
    heartbeat_interval: float,
) -> int:
    """Register the job, consume until a warm shutdown (SIGTERM, `celery stop`), end the job."""
    global _context
    from celery import signals

    # Celery's per-message lines would cost more than a short try; warnings and errors still show.
    logging.getLogger("celery").setLevel(logging.WARNING)
    app = make_app(broker_url, default_queue=default_queue)
    app.task(name=TASK_NAME, acks_late=True)(run_message)
    registered = time.monotonic()
    job_id = run_with_retries(lambda: _register(name))
    _context = WorkerContext(name=name, job_id=job_id, logs_folder=logs_folder, broker_url=broker_url)
    beat = _Heartbeat(job_id, heartbeat_interval, lease_seconds=get_settings().zombie_threshold / 2)
    lease.renew(registered + beat.lease_seconds)
    signals.worker_process_init.connect(_die_with_parent, weak=False)
    signals.worker_ready.connect(lambda **_: beat.start(), weak=False)
    state = JobState.FAILED
    try:
        app.worker_main(
            [
                "worker",
                f"--hostname={nodename(name)}",
                f"--queues={','.join(queues)}",
                f"--concurrency={concurrency}",
                "--pool=prefork",
                "--loglevel=WARNING",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ]
        )
        state = JobState.SUCCESS
    except SystemExit as exc:
        state = JobState.SUCCESS if not exc.code else JobState.FAILED
    finally:
        beat.stop()
        run_with_retries(lambda: _end(job_id, state))
    return 0 if state == JobState.SUCCESS else 1


def nodename(name: str) -> str:
    """Celery's name for the worker called `name` (what `celery stop --hostname` targets)."""
    return name if "@" in name else f"minisched@{name}"


def _register(name: str) -> int:
    with create_session() as session:
        return jobs.register_job(session=session, now=utcnow(), job_type=CELERY_WORKER_JOB_TYPE, host=name)


def _end(job_id: int, state: JobState) -> None:
    with create_session() as session:
        jobs.end_job(job_id, state, session=session, now=utcnow())


def _die_with_parent(**_: object) -> None:
    """A pool process dies with the worker (SIGKILLed or not); its running try then gets SIGTERM from
    the same mechanism one level down, and recovery fails or retries it."""
    set_parent_death_signal(signal.SIGKILL)


class _Heartbeat:
    """Beats the worker's job row from a thread; a worker declared dead stops at once, so none of its
    tries overlaps the retry that recovery may have started elsewhere. Each committed beat renews the
    worker's lease (half the zombie threshold, see `executors.lease`): a worker stopped or cut off from
    the database long enough for that to run out has its pool processes kill their tries before
    anyone may reap them."""

    def __init__(self, job_id: int, interval: float, *, lease_seconds: float) -> None:
        self.job_id = job_id
        self.lease_seconds = lease_seconds
        self.interval = min(interval, lease_seconds / 3)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="minisched-heartbeat", daemon=True)

    def start(self) -> None:
        """Beat once now, then from the thread: the lease taken at registration may have run out
        while Celery started, and a try fenced by a stale lease would be handed back for nothing."""
        if not self._thread.is_alive():
            self._beat_once()
            self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stopped.wait(self.interval):
            self._beat_once()

    def _beat_once(self) -> None:
        try:
            run_with_retries(self._beat)
        except jobs.JobDeclaredDead as exc:
            log.error("%s", exc)
            os._exit(1)
        except Exception as exc:  # the database is away for a moment: keep trying
            log.warning("worker heartbeat failed: %s", exc)

    def _beat(self) -> None:
        tick = time.monotonic()  # before `now`: the lease counts from no later than the heartbeat
        with create_session() as session:
            jobs.heartbeat(self.job_id, session=session, now=utcnow())
        lease.renew(tick + self.lease_seconds)
