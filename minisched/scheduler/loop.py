"""The scheduler loop: each iteration is a fixed sequence of set-based steps in one transaction.

Everything it decides is read from and written to the database, so a restarted (or a second)
scheduler carries on where this one stopped.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import FrameType

from sqlalchemy.orm import Session

from minisched.db.audit import buffered_events
from minisched.db.retry import run_with_retries
from minisched.db.session import create_session, get_engine
from minisched.host import hostname
from minisched.models import JobState
from minisched.models.types import utcnow
from minisched.scheduler import job as jobs
from minisched.scheduler.critical_section import QueuedTi, queue_scheduled, warn_about_stuck_pools
from minisched.scheduler.dag_cache import DagStructureCache
from minisched.scheduler.dagruns import create_scheduled_runs, start_queued_runs
from minisched.scheduler.executors.base import BaseExecutor, TryRequest, TryResult
from minisched.scheduler.executors.logs import log_path_for
from minisched.scheduler.recovery import recover_orphans
from minisched.scheduler.results import StartedTry, mark_running, record_results, requeue
from minisched.scheduler.run_state import finish_runs, finished_states
from minisched.scheduler.scheduling import running_runs, schedule_pass

log = logging.getLogger(__name__)
RunKey = tuple[str, str]


@dataclass
class SchedulerOptions:
    logs_folder: Path
    dags_folder: Path | None = None  # None: do not read DAG files (dags test refreshes once itself)
    num_runs: int | None = None
    idle_sleep: float = 0.05
    heartbeat_interval: float = 2.0
    zombie_threshold: float = 60.0
    refresh_interval: float = 2.0
    full_sweep_interval: float = 2.0
    recovery_interval: float = 1.0
    stop_grace: float = 30.0
    only_runs: frozenset[RunKey] | None = None  # dags test / backfill: these runs only, create none
    handle_signals: bool = True
    job_type: str = jobs.SCHEDULER_JOB_TYPE
    job_id: int | None = None  # a job row registered by the caller (dags test owns its run through it)
    respect_limits: bool = True  # pools and max_active_tasks; dags test runs tries one by one anyway


@dataclass
class _StepOutcome:
    queued: list[QueuedTi] = field(default_factory=list)
    carry: dict[RunKey, set[str]] = field(default_factory=dict)
    ended: dict[RunKey, str] = field(default_factory=dict)
    created: list[RunKey] = field(default_factory=list)
    busy: bool = False
    tick: float = 0.0
    timers_run: list[_Every] = field(default_factory=list)
    retries_checked: bool = False
    next_retry_at: datetime | None = None
    queue_wanted: bool = False


class _Every:
    """True once every `interval` seconds (and on the first call)."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._last: float | None = None

    def due(self, now: float) -> bool:
        return self._last is None or now - self._last >= self.interval

    def mark(self, now: float) -> None:
        self._last = now


class SchedulerLoop:
    def __init__(
        self, executor: BaseExecutor, options: SchedulerOptions, on_loop: Callable[[], None] | None = None
    ) -> None:
        self.executor = executor
        self.on_loop = on_loop
        self.options = options
        self.cache = DagStructureCache(recheck_interval=1.0)
        self.job_id: int | None = None
        self.loops = 0
        self.ended_runs: dict[RunKey, str] = {}
        self._stop_requested = False
        self._in_flight: dict[int, QueuedTi] = {}
        self._carry: dict[RunKey, set[str]] = {}
        self._busy = True
        self._retry_check_at: datetime | None = None  # None: no retry waiting that this loop knows of
        self._refresh = _Every(options.refresh_interval)
        self._sweep = _Every(options.full_sweep_interval)
        self._recovery = _Every(options.recovery_interval)
        self._heartbeat = _Every(options.heartbeat_interval)
        # Triggered runs are looked for at least once per idle sleep, so a trigger waits no longer.
        self._queued_runs = _Every(options.idle_sleep)
        self._runs_changed = True  # runs were created or ended: queued runs may start
        self._unrecorded: tuple[list[TryResult], list[StartedTry]] = ([], [])
        self._queue_wanted = True  # scheduled task instances may be waiting for the critical section
        self._lock_rows = get_engine().dialect.name == "postgresql"

    # -- life cycle ---------------------------------------------------------------------------------
    def request_stop(self, *_: object) -> None:
        self._stop_requested = True

    def run(self) -> int:
        """Loop until --num-runs, a stop signal, or (dags test) the one run ends; returns loops made."""
        restore = self._install_signal_handlers()
        try:
            self.executor.start()
            self.job_id = self.options.job_id or run_with_retries(self._register)
        except BaseException:
            restore()
            raise
        state = JobState.FAILED
        try:
            while not self._should_stop():
                self._iteration()
            state = JobState.SUCCESS
        finally:
            self._shutdown(state)
            restore()
        return self.loops

    def _register(self) -> int:
        with create_session() as session:
            return jobs.register_job(session=session, now=utcnow(), job_type=self.options.job_type)

    def _should_stop(self) -> bool:
        if self._stop_requested:
            return True
        if self.options.num_runs is not None and self.loops >= self.options.num_runs:
            return True
        only = self.options.only_runs
        return only is not None and only <= self.ended_runs.keys()

    def _shutdown(self, state: JobState) -> None:
        """Give back tries that never started, let running ones finish (up to the grace), record all."""
        results = self._unrecorded[0] + self.executor.stop(self.options.stop_grace)
        never_started = self.executor.withdraw_pending()
        started = self._unrecorded[1] + self._started_tries()

        def final() -> None:
            with create_session() as session, buffered_events(session):
                now = utcnow()
                requeue(never_started, session=session, now=now)
                mark_running(started, session=session)
                finished = record_results(results, session=session, cache=self.cache, now=now)
                finish_runs(finished, session=session, cache=self.cache, now=now)
                assert self.job_id is not None
                jobs.end_job(self.job_id, state, session=session, now=now)

        run_with_retries(final)

    def _install_signal_handlers(self) -> Callable[[], None]:
        if not self.options.handle_signals or threading.current_thread() is not threading.main_thread():
            return lambda: None

        def handler(_signum: int, _frame: FrameType | None) -> None:
            self.request_stop()

        previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}

        def restore() -> None:
            for sig, old in previous.items():
                signal.signal(sig, old)

        return restore

    # -- one iteration -----------------------------------------------------------------------------
    def _iteration(self) -> None:
        busy = self._busy or bool(self._carry)
        if self.options.dags_folder is not None and self._refresh.due(time.monotonic()):
            self._refresh_dags(self.options.dags_folder)
            self._refresh.mark(time.monotonic())
        results = self.executor.poll(0.0 if busy else self.options.idle_sleep)
        started = self._started_tries()
        # Kept until committed: if the transaction fails for good, the shutdown still records them.
        self._unrecorded = (results, started)
        outcome = run_with_retries(lambda: self._transaction(results, started))
        self._unrecorded = ([], [])
        for timer in outcome.timers_run:  # bookkeeping only once the work is committed
            timer.mark(outcome.tick)
        self._runs_changed = bool(outcome.ended)
        self._queue_wanted = outcome.queue_wanted
        if outcome.retries_checked:
            self._retry_check_at = outcome.next_retry_at
        for result in results:
            self._in_flight.pop(result.ti_id, None)
        self._carry = outcome.carry
        self._busy = outcome.busy
        self.ended_runs.update(outcome.ended)
        for dag_id, run_id in outcome.created:
            log.info("created dag run %s of %s", run_id, dag_id)
        for (dag_id, run_id), state in outcome.ended.items():
            log.info("dag run %s of %s finished: %s", run_id, dag_id, state)
        if outcome.queued:
            self._submit(outcome.queued)
        self.loops += 1
        if self.on_loop is not None:
            self.on_loop()

    def _started_tries(self) -> list[StartedTry]:
        host = hostname()
        started = []
        for event in self.executor.drain_started():
            queued = self._in_flight.get(event.ti_id)
            if queued is not None:
                started.append(
                    StartedTry(
                        event.ti_id,
                        event.try_number,
                        queued.dag_id,
                        queued.run_id,
                        queued.task_id,
                        event.start_date,
                        host,
                        event.pid,
                    )
                )
        return started

    def _transaction(self, results: list[TryResult], started: list[StartedTry]) -> _StepOutcome:
        self.cache.begin_step()
        with create_session() as session, buffered_events(session):
            return self._step(session, results, started, utcnow(), time.monotonic())

    def _step(
        self,
        session: Session,
        results: list[TryResult],
        started: list[StartedTry],
        now: datetime,
        tick: float,
    ) -> _StepOutcome:
        assert self.job_id is not None
        options = self.options
        timers: list[_Every] = []  # periodic steps that ran: marked once the transaction commits
        mark_running(started, session=session, finished={r.ti_id for r in results})
        pump = self.executor.pump
        changed = _merge(self._carry, record_results(results, session=session, cache=self.cache, now=now))
        only = options.only_runs
        recovered: dict[RunKey, set[str]] = {}
        if self._recovery.due(tick):  # backfills and dags test clean up after dead processes too
            recovered = self._recover(session, now)
            changed = _merge(changed, recovered)
            timers.append(self._recovery)
        created: list[RunKey] = []
        if only is None:
            new_runs = create_scheduled_runs(
                session=session, cache=self.cache, now=now, job_id=self.job_id, lock_rows=self._lock_rows
            )
            created = [(run.dag_id, run.effective_run_id) for run in new_runs]
        full: set[RunKey] = set()
        if created or self._runs_changed or self._queued_runs.due(tick):
            full.update(start_queued_runs(session=session, now=now, only_runs=only))
            timers.append(self._queued_runs)
        ended_elsewhere: dict[RunKey, str] = {}
        if self._sweep.due(tick):
            full.update(running_runs(session=session, only_runs=only))
            if only is not None:  # e.g. a run cleared and finished by someone else meanwhile
                ended_elsewhere = finished_states(only, session=session)
            elif options.respect_limits:
                warn_about_stuck_pools(session=session)
            timers.append(self._sweep)
        pump()
        # A retry can only fall due after a try failed, at a known time, or through another process (sweep).
        check_retries = (
            bool(full)
            or any(r.outcome == "failed" for r in results)
            or (self._retry_check_at is not None and now >= self._retry_check_at)
        )
        decided = schedule_pass(
            session=session,
            cache=self.cache,
            now=now,
            full_runs=full,
            changed=changed,
            check_retries=check_retries,
        )
        pump()
        # A run in which a task instance was just scheduled cannot have ended.
        to_check = (set(changed) | decided.touched_runs | full) - decided.progressing_runs
        ended = ended_elsewhere | finish_runs(
            to_check, session=session, cache=self.cache, now=now, deadlocked=decided.deadlocked_runs
        )
        pump()
        # The critical section only runs when something may be queued: task instances were just
        # scheduled, slots were freed, the last one filled the executor, or a sweep ran (which also
        # covers work scheduled by other processes). An idle loop costs two queries, not five.
        capacity = self.executor.free_slots
        may_queue = self._queue_wanted or bool(results or recovered or full) or decided.scheduled > 0
        queued: list[QueuedTi] = []
        if may_queue:
            queued = queue_scheduled(
                session=session,
                job_id=self.job_id,
                capacity=capacity,
                now=now,
                lock_rows=self._lock_rows,
                only_runs=only,
                respect_limits=options.respect_limits,
            )
        self.cache.get_many({q.dag_id for q in queued}, session=session)
        if self._heartbeat.due(tick):
            jobs.heartbeat(self.job_id, session=session, now=now)
            timers.append(self._heartbeat)
        busy = bool(results or queued or ended or created or decided.touched_runs)
        carry = dict(decided.changed_tasks)
        return _StepOutcome(
            queued=queued,
            carry=carry,
            ended=ended,
            created=created,
            busy=busy,
            tick=tick,
            timers_run=timers,
            retries_checked=check_retries,
            next_retry_at=decided.next_retry_at,
            queue_wanted=may_queue and (capacity == 0 or len(queued) >= capacity),
        )

    def _refresh_dags(self, folder: Path) -> None:
        """Read the DAG folder: plan and write in short transactions, import changed files in between
        (no transaction, so no SQLite write lock, is held while user code runs)."""
        from minisched.dagfiles import loader

        def plan() -> loader.Plan:
            with create_session() as session:
                return loader.plan_refresh(folder, session=session)

        changes = run_with_retries(plan)
        if changes.unchanged:
            return
        results = loader.import_changed(changes, folder)

        def apply() -> None:
            with create_session() as session:
                loader.apply_refresh(changes, results, folder, session=session)

        run_with_retries(apply)

    def _recover(self, session: Session, now: datetime) -> dict[RunKey, set[str]]:
        assert self.job_id is not None
        logs = self.options.logs_folder
        return recover_orphans(
            session=session,
            my_job_id=self.job_id,
            threshold=self.options.zombie_threshold,
            now=now,
            cache=self.cache,
            log_path_for=lambda d, r, t, n: log_path_for(logs, d, r, t, n),
        )

    def _submit(self, queued: list[QueuedTi]) -> None:
        self._in_flight.update((q.id, q) for q in queued)
        self.executor.submit([self._request(q) for q in queued])

    def _request(self, queued: QueuedTi) -> TryRequest:
        dag = self.cache.cached(queued.dag_id)
        task = dag.tasks.get(queued.task_id) if dag is not None else None
        timeout = task.execution_timeout.total_seconds() if task and task.execution_timeout else None
        return TryRequest(
            ti_id=queued.id,
            dag_id=queued.dag_id,
            run_id=queued.run_id,
            task_id=queued.task_id,
            try_number=queued.try_number,
            fileloc=dag.fileloc if dag is not None else queued.fileloc,  # fresh if the file moved
            log_path=str(
                log_path_for(
                    self.options.logs_folder, queued.dag_id, queued.run_id, queued.task_id, queued.try_number
                )
            ),
            logical_date=queued.logical_date,
            data_interval_start=queued.data_interval_start,
            data_interval_end=queued.data_interval_end,
            conf=queued.conf,
            timeout=timeout,
        )


def _merge(*parts: Mapping[RunKey, Iterable[str]]) -> dict[RunKey, set[str]]:
    merged: dict[RunKey, set[str]] = defaultdict(set)
    for part in parts:
        for key, tasks in part.items():
            merged[key].update(tasks)
    return dict(merged)
