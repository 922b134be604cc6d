"""`minisched celery worker`: a Celery worker that runs minisched tries.

The process consumes messages (late acks, a prefetch of one) and heart-beats as a `job` row. Each
message is handled by one of `--concurrency` threads (Celery's threads pool: the message never crosses
a pipe to a pool process):
1. start: the queued -> running compare-and-set on (ti id, try_number, the claiming scheduler's job
   named in the message): the fence, see `claims`. Nothing matched (a duplicate
   message, a try withdrawn or already failed by the queued timeout): the message is acknowledged and
   dropped. From here this worker's job owns the try, so recovery fails or retries it if we die.
2. run the try in the thread's warm task process: the local executor's own, with its keeper, timeout
   and process-group kill (a try costs a pipe round trip, not a fork), shipping its log to the database
   about once a second;
3. finish: the final state, with the rest of the log, in one transaction;
4. tell the scheduler (its report list), so it schedules what comes next without waiting; a try
   still running after STARTED_REPORT_DELAY is reported as started first, which frees the scheduler's
   count of unstarted tries.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from minisched.db.retry import run_with_retries
from minisched.db.session import configure_orm, create_session
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
from minisched.scheduler.executors.local import LocalExecutor
from minisched.scheduler.executors.logs import log_path_for
from minisched.settings import get_settings
from minisched.workers import claims

log = logging.getLogger(__name__)
#: Seconds between two shipments of a running try's log.
LOG_SHIP_INTERVAL = 1.0
#: Seconds a try runs before its `started` report is sent (see `_run_warm`).
STARTED_REPORT_DELAY = 0.05


@dataclass
class WorkerContext:
    """What every thread of this worker shares."""

    name: str
    job_id: int
    logs_folder: Path
    broker_url: str
    dags: DagStructureCache = field(default_factory=lambda: DagStructureCache(recheck_interval=1.0))
    _reports: ReportChannel | None = None
    _runners: dict[int, LocalExecutor] = field(default_factory=dict)
    _held: set[tuple[int, int]] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def hold(self, request: TryRequest) -> bool:
        """Take the try (ti id, try number) for this thread; False if another thread of this worker
        holds it (a duplicate message): then only the database's answer may start it, never a retry's
        "already running under my job"."""
        key = (request.ti_id, request.try_number)
        with self._lock:
            if key in self._held:
                return False
            self._held.add(key)
            return True

    def release(self, request: TryRequest) -> None:
        with self._lock:
            self._held.discard((request.ti_id, request.try_number))

    def reports(self) -> ReportChannel:
        """One client for every thread (it has a connection pool of its own)."""
        with self._lock:
            if self._reports is None:
                self._reports = report_channel(self.broker_url)
            return self._reports

    def runner(self) -> LocalExecutor:
        """This thread's warm task process: the local executor's own, one try at a time. Its worker
        imports a DAG file once and runs try after try; one that dies or times out is replaced. Each
        thread drives its own: a worker dies with the thread that forked it (PR_SET_PDEATHSIG)."""
        thread = threading.get_ident()
        with self._lock:
            runner = self._runners.get(thread)
            if runner is None:
                runner = self._runners[thread] = LocalExecutor(1, queue_depth=0)
                runner.start()
            return runner

    def close(self) -> None:
        """Stop the task processes (idle: the worker has stopped consuming, or we are dying)."""
        with self._lock:
            runners, self._runners = list(self._runners.values()), {}
        for runner in runners:
            runner.stop(grace=0.0)


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
                context.logs_folder,
                request.dag_id,
                request.run_id,
                request.task_id,
                request.try_number,
                map_index=request.map_index,
            )
        ),
    )
    key = (request.ti_id, request.try_number)
    held = context.hold(request)
    try:
        if not _start(context, request, held=held):
            log.info(
                "try %s of %s.%s (%s) is not queued under that number any more: message dropped",
                request.try_number,
                request.dag_id,
                request.task_id,
                request.run_id,
            )
            return "dropped"
        result = _run(context, request, started=lambda: _report(context, reply_to, started_report(*key)))
        _report(context, reply_to, finished_report(result))
        return result.outcome
    finally:
        if held:
            context.release(request)


def _start(context: WorkerContext, request: TryRequest, *, held: bool) -> bool:
    """The start, retried whole on a transient error; a retry of a try this thread holds may find the
    earlier attempt's lost COMMIT (see `claims.start`)."""
    attempts = 0

    def attempt() -> bool:
        nonlocal attempts
        attempts += 1
        with create_session() as session:
            return claims.start(
                request,
                hostname=context.name,
                pid=os.getpid(),
                job_id=context.job_id,
                session=session,
                now=utcnow(),
                retried=held and attempts > 1,
            )

    return run_with_retries(attempt)


def _run(context: WorkerContext, request: TryRequest, *, started: Callable[[], None]) -> TryResult:
    key = TryKey(request.dag_id, request.run_id, request.task_id, request.try_number, request.map_index)
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

    result = replace(_run_warm(context.runner(), request, started, ship_so_far), hostname=context.name)

    def finish() -> None:
        context.dags.begin_step()  # the DAG's hash read at most once per recheck interval, not per try
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


def _run_warm(
    runner: LocalExecutor,
    request: TryRequest,
    started: Callable[[], None],
    while_waiting: Callable[[], None],
) -> TryResult:
    """Run `request` to its end on the warm task process; `while_waiting` every LOG_SHIP_INTERVAL.

    `started` (the scheduler's `started` report, which only lowers its count of unstarted tries) is
    sent once the try has run STARTED_REPORT_DELAY: a try that ends sooner is reported once, finished,
    which lowers that count too; two pushes per short try would be a third of the worker's Redis work."""
    runner.submit([request])
    timeout, reported = STARTED_REPORT_DELAY, False
    while True:
        results = runner.poll(timeout)
        runner.drain_started()  # the start is ours to record (done already), not the executor's
        if results:
            (result,) = results
            return result
        if not reported:
            started()
            reported, timeout = True, LOG_SHIP_INTERVAL
            continue
        while_waiting()


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
    # Celery's per-message lines would cost more than a short try; warnings and errors still show.
    logging.getLogger("celery").setLevel(logging.WARNING)
    app = make_app(broker_url, default_queue=default_queue)
    app.task(name=TASK_NAME, acks_late=True)(run_message)
    # Every transaction of a worker is retried as a whole: no ping per checkout (two per try).
    configure_orm(pre_ping=False)
    registered = time.monotonic()
    job_id = run_with_retries(lambda: _register(name))
    _context = context = WorkerContext(
        name=name, job_id=job_id, logs_folder=logs_folder, broker_url=broker_url
    )
    # Beat from the moment the row exists, whatever Celery's boot takes: a job that is alive must never
    # be declared dead (tries are handed to it only by its own starts, once it consumes). Each committed
    # beat renews the lease that the tries' keepers (forked from this process) watch.
    beat = _Heartbeat(job_id, heartbeat_interval, lease_seconds=get_settings().zombie_threshold / 2)
    lease.renew(registered + beat.lease_seconds)
    beat.start()
    state = JobState.FAILED
    try:
        # Celery's worker without its command line (`worker_main` imports click-repl and
        # prompt_toolkit: ~1 s of CPU per worker start, for options we set here anyway).
        from celery.concurrency import get_implementation

        worker = app.Worker(
            hostname=nodename(name),
            queues=list(queues),
            concurrency=concurrency,
            pool_cls=get_implementation("threads"),
            loglevel="WARNING",
            quiet=True,
            without_gossip=True,
            without_mingle=True,
            without_heartbeat=True,
        )
        worker.start()
        state = JobState.FAILED if worker.exitcode else JobState.SUCCESS
    except SystemExit as exc:
        state = JobState.SUCCESS if not exc.code else JobState.FAILED
    finally:
        context.close()
        beat.stop()
        lease.release()  # as the scheduler loop does: no lease outlives the worker that held it
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
        if not self._stopped.is_set():  # a beat that ends after `stop` must not renew a released lease
            lease.renew(tick + self.lease_seconds)
