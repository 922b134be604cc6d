"""The scheduler loop: each iteration is a fixed sequence of set-based steps in one transaction.

Everything it decides is read from and written to the database, so a restarted (or a second)
scheduler carries on where this one stopped.
"""

from __future__ import annotations

import contextlib
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

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from minisched.dagfiles.refresh import FolderRefresher
from minisched.db.audit import buffered_events
from minisched.db.retry import is_disconnect, run_with_retries
from minisched.db.session import create_session, is_postgresql
from minisched.models import JobState, RunKey
from minisched.models.job import HEARTBEATING_JOB_TYPES, SCHEDULER_JOB_TYPE
from minisched.models.types import utcnow
from minisched.scheduler import job as jobs
from minisched.scheduler import transitions
from minisched.scheduler.dag_cache import DagStructureCache
from minisched.scheduler.dag_callback_requests import LOG_NAME as DAG_CALLBACKS_LOG
from minisched.scheduler.dag_callback_requests import DagCallbackLauncher
from minisched.scheduler.dag_callback_requests import any_pending as dag_callbacks_waiting
from minisched.scheduler.dagruns import create_scheduled_runs, start_queued_runs
from minisched.scheduler.executors import lease
from minisched.scheduler.executors.base import BaseExecutor, TryRequest, TryResult, TryStarted
from minisched.scheduler.executors.logs import log_path_for
from minisched.scheduler.outage import DatabaseOutage
from minisched.scheduler.recovery import recover_orphans
from minisched.scheduler.run_ends import finish_runs, finished_states
from minisched.scheduler.scheduling import PassResult, running_runs, schedule_pass
from minisched.scheduler.transitions import QueuedTi, queue_scheduled, warn_about_stuck_pools

log = logging.getLogger(__name__)


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
    #: How long the loop rides out an unreachable database before it stops (MINISCHED_DB_OUTAGE_GRACE).
    db_outage_grace: float = 60.0
    only_runs: frozenset[RunKey] | None = None  # dags test / backfill: these runs only, create none
    handle_signals: bool = True
    job_type: str = SCHEDULER_JOB_TYPE
    job_id: int | None = None  # a job row registered by the caller (dags test owns its run through it)
    respect_limits: bool = True  # pools and max_active_tasks; dags test runs tries one by one anyway
    #: Fail or retry tries queued longer than this (executors whose queue can lose work: celery).
    queued_timeout: float | None = None
    #: Start the DAG callback process for ended runs (dags test calls their callbacks itself).
    launch_dag_callbacks: bool = True


@dataclass(frozen=True)
class _Reports:
    """What the executor reported since the last iteration: tries that started, tries that ended."""

    results: list[TryResult] = field(default_factory=list)
    started: list[TryStarted] = field(default_factory=list)

    def __add__(self, more: _Reports) -> _Reports:
        return _Reports(self.results + more.results, self.started + more.started)


@dataclass
class _Iteration:
    """One iteration's work, phase by phase; once committed, `_LoopState.apply` keeps what the next
    iteration needs."""

    now: datetime
    tick: float
    reports: _Reports
    #: Periodic steps that ran; marked done only once the transaction commits.
    timers: list[_Every] = field(default_factory=list)
    #: Tasks that reached a final state, per run: their downstream tasks are decided this iteration.
    changed: dict[RunKey, set[str]] = field(default_factory=dict)
    recovered: bool = False
    created: list[RunKey] = field(default_factory=list)
    #: Runs decided in full (just started, or swept), not only downstream of what changed.
    full: set[RunKey] = field(default_factory=set)
    ended: dict[RunKey, str] = field(default_factory=dict)
    retries_checked: bool = False
    decided: PassResult = field(default_factory=PassResult)
    queued: list[QueuedTi] = field(default_factory=list)
    #: The critical section should run next time too: this one filled the executor.
    queue_wanted: bool = False
    #: DAG callback requests wait, left by a dead scheduler or a killed callback process.
    dag_callbacks_waiting: bool = False

    @property
    def busy(self) -> bool:
        """Runs ended or were created, so queued runs may start at once: the next poll does not wait.

        Recording results and queuing tries is not such work: what it decides is done in the same
        iteration, and what follows is the next report, which `poll` returns the moment it arrives. An
        iteration run at once instead (mostly to record that the tries just handed over started) held
        the CPU and the database when the next result came, and cost a transaction of its own per try.
        """
        return bool(self.ended or self.created)


class _Every:
    """True once every `interval` seconds (and on the first call)."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._last: float | None = None

    def due(self, now: float) -> bool:
        return self._last is None or now - self._last >= self.interval

    def mark(self, now: float) -> None:
        self._last = now


class _LoopState:
    """What one iteration leaves for the next, so that an idle loop skips what cannot have changed."""

    def __init__(self) -> None:
        #: Tasks decided terminal last time (skipped, upstream_failed): their downstreams are next.
        self.carry: dict[RunKey, set[str]] = {}
        self.busy = True
        #: When the earliest known retry falls due; None: no retry waiting that this loop knows of.
        self.retry_check_at: datetime | None = None
        #: Runs were created or ended: queued runs may start.
        self.runs_changed = True
        #: Scheduled task instances may be waiting for the critical section.
        self.queue_wanted = True
        self.ended_runs: dict[RunKey, str] = {}

    def apply(self, done: _Iteration) -> None:
        """Take in a committed iteration."""
        for timer in done.timers:
            timer.mark(done.tick)
        self.carry = dict(done.decided.changed_tasks)
        self.busy = done.busy
        if done.retries_checked:
            self.retry_check_at = done.decided.next_retry_at
        self.runs_changed = bool(done.ended)
        self.queue_wanted = done.queue_wanted
        self.ended_runs.update(done.ended)


class SchedulerLoop:
    """Each iteration: refresh the DAG folder when due, collect what the executor reported, then in one
    transaction record those reports, advance runs, decide task instances and queue tries, and finally
    hand the queued tries to the executor."""

    def __init__(
        self,
        executor: BaseExecutor,
        options: SchedulerOptions,
        on_loop: Callable[[], None] | None = None,
        cache: DagStructureCache | None = None,
    ) -> None:
        self.executor = executor
        self.on_loop = on_loop
        self.options = options
        #: Given by a caller that already loaded the DAGs (`dags test`), so they are not read twice.
        self.cache = cache or DagStructureCache(recheck_interval=1.0)
        self.job_id: int | None = None
        self.loops = 0
        self.state = _LoopState()
        self._stop_requested = False
        self._dag_folder = (  # DAG files are parsed by other processes: see dagfiles/refresh.py
            FolderRefresher(options.dags_folder, interval=options.refresh_interval)
            if options.dags_folder is not None
            else None
        )
        self._sweep = _Every(options.full_sweep_interval)
        self._recovery = _Every(options.recovery_interval)
        self._dag_callbacks = DagCallbackLauncher(options.logs_folder / DAG_CALLBACKS_LOG)
        # Fenced jobs (those another scheduler may declare dead) start tries only under a lease of
        # half the zombie threshold, renewed by each committed heartbeat: beat well within it.
        self._lease = options.zombie_threshold / 2 if options.job_type in HEARTBEATING_JOB_TYPES else None
        beat = (
            options.heartbeat_interval
            if self._lease is None
            else min(options.heartbeat_interval, self._lease / 3)
        )
        self._heartbeat = _Every(beat)
        # Triggered runs are looked for at least once per idle sleep, so a trigger waits no longer.
        # `dags test` and backfills create their runs themselves and start the next one when a run
        # ends (`runs_changed`): for them, a run queued by someone else is looked for with the sweep.
        self._queued_runs = _Every(
            options.idle_sleep if options.only_runs is None else options.full_sweep_interval
        )
        # Scheduled runs fall due by the clock: looking once per idle sleep is as soon as an idle loop
        # looks, and a busy loop (a chain: one iteration per task) does not pay the query every time.
        self._due_runs = _Every(options.idle_sleep)
        #: Reports not yet committed: if the transaction fails for good, the shutdown records them.
        self._unrecorded = _Reports()
        self._outage = DatabaseOutage(options.db_outage_grace)
        self._lock_rows = is_postgresql()

    @property
    def ended_runs(self) -> dict[RunKey, str]:
        """The runs this loop saw end, with their final state."""
        return self.state.ended_runs

    # -- life cycle ---------------------------------------------------------------------------------
    def request_stop(self, *_: object) -> None:
        self._stop_requested = True

    def run(self) -> int:
        """Loop until --num-runs, a stop signal, or (dags test) the one run ends; returns loops made."""
        restore = self._install_signal_handlers()
        try:
            self.executor.start()
            registered = time.monotonic()
            self.job_id = self.options.job_id or run_with_retries(self._register)
            self._renew_lease(registered)
        except BaseException:
            restore()
            raise
        state = JobState.FAILED
        try:
            while not self._should_stop():
                self._iteration()
            state = JobState.SUCCESS
        finally:
            try:
                self._shutdown(state)
            finally:
                lease.release()
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
        results = self._unrecorded.results + self.executor.stop(self.options.stop_grace)
        never_started = self.executor.withdraw_pending()
        started = self._unrecorded.started + self.executor.drain_started()
        if self._outage.ongoing:  # one attempt: the tries' records tell the next scheduler the rest
            with contextlib.suppress(DBAPIError):
                self._record_final(results, never_started, started, state)
            return
        run_with_retries(lambda: self._record_final(results, never_started, started, state))

    def _record_final(
        self,
        results: list[TryResult],
        never_started: list[TryRequest],
        started: list[TryStarted],
        state: JobState,
    ) -> None:
        assert self.job_id is not None
        job_id = self.job_id
        with create_session() as session, buffered_events(session):
            now = utcnow()
            transitions.withdraw(never_started, job_id=job_id, session=session, now=now)
            transitions.start(started, job_id=job_id, session=session)
            finished = transitions.finish(results, job_id=job_id, session=session, cache=self.cache, now=now)
            finish_runs(finished, session=session, cache=self.cache, now=now)
            jobs.end_job(job_id, state, session=session, now=now)

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
        try:
            if self._dag_folder is not None:
                self._dag_folder.poll()  # never waits for a DAG file to import
            idle = not (self.state.busy or self.state.carry)
            wait = (
                self._outage.backoff() if self._outage.ongoing else self.options.idle_sleep if idle else 0.0
            )
            # Reports pile up while the database is unreachable; all are recorded once it is back.
            self._unrecorded += _Reports(self.executor.poll(wait), self.executor.drain_started())
            done = run_with_retries(lambda: self._transaction(self._unrecorded))
        except DBAPIError as exc:
            if not is_disconnect(exc):
                raise
            self._outage.failed(exc)
            return
        self._outage.over(len(self._unrecorded.results))
        self._unrecorded = _Reports()
        if self._heartbeat in done.timers:
            self._renew_lease(done.tick)
        self.state.apply(done)
        for dag_id, run_id in done.created:
            log.info("created dag run %s of %s", run_id, dag_id)
        for (dag_id, run_id), state in done.ended.items():
            log.info("dag run %s of %s finished: %s", run_id, dag_id, state)
        if done.queued:
            self.executor.submit([self._request(q) for q in done.queued])
        self._start_dag_callbacks(done)
        self.loops += 1
        if self.on_loop is not None:
            self.on_loop()

    def _start_dag_callbacks(self, done: _Iteration) -> None:
        """Once the runs' ends (and their callback requests) are committed, have another process call
        the callbacks: user code never runs in the scheduler."""
        if not self.options.launch_dag_callbacks:
            return
        self._dag_callbacks.poll()
        requested = any(
            (dag := self.cache.cached(dag_id)) is not None and dag.callbacks for dag_id, _ in done.ended
        )
        if requested or done.dag_callbacks_waiting:
            self._dag_callbacks.launch()

    def _transaction(self, reports: _Reports) -> _Iteration:
        """The database part of an iteration, phase by phase, in one transaction. Between phases the
        executor hands queued tries to idle workers, so they do not wait for the whole transaction."""
        assert self.job_id is not None
        self.cache.begin_step()
        with create_session(core=True) as session, buffered_events(session):
            tick = time.monotonic()  # before `now`: the lease counts from no later than the heartbeat
            it = _Iteration(now=utcnow(), tick=tick, reports=reports)
            self._record_reports(session, it)
            self._advance_runs(session, it)
            self.executor.pump()
            self._decide(session, it)
            self.executor.pump()
            self._end_runs(session, it)
            self.executor.pump()
            self._queue(session, it)
            if self._heartbeat.due(it.tick):
                jobs.heartbeat(self.job_id, session=session, now=it.now)
                it.timers.append(self._heartbeat)
            return it

    def _renew_lease(self, beat_tick: float) -> None:
        """A heartbeat read at `beat_tick` (monotonic) committed: workers may start tries for half the
        zombie threshold from then (see `executors.lease` for why that is safe)."""
        if self._lease is not None:
            lease.renew(beat_tick + self._lease)

    # -- the phases ----------------------------------------------------------------------------------
    def _record_reports(self, session: Session, it: _Iteration) -> None:
        """Record what the executor reported: queued -> running, then the final states."""
        job_id, started, results = self.job_id, it.reports.started, it.reports.results
        transitions.start(started, job_id=job_id, session=session, finished={r.ti_id for r in results})
        finished = transitions.finish(results, job_id=job_id, session=session, cache=self.cache, now=it.now)
        it.changed = _merge(self.state.carry, finished)

    def _advance_runs(self, session: Session, it: _Iteration) -> None:
        """Recover dead jobs' tries, create due runs, start queued runs, and (when due) sweep every
        running run, so work changed by other processes is seen too."""
        assert self.job_id is not None
        only = self.options.only_runs
        if self._recovery.due(it.tick):  # backfills and dags test clean up after dead processes too
            recovered = self._recover(session, it.now)
            it.recovered = bool(recovered)
            if self.options.launch_dag_callbacks:
                it.dag_callbacks_waiting = dag_callbacks_waiting(session=session, now=it.now)
            it.changed = _merge(it.changed, recovered)
            it.timers.append(self._recovery)
        if only is None and self._due_runs.due(it.tick):
            new_runs = create_scheduled_runs(
                session=session, cache=self.cache, now=it.now, job_id=self.job_id, lock_rows=self._lock_rows
            )
            it.created = [(run.dag_id, run.effective_run_id) for run in new_runs]
            if not it.created:  # more may be due at once (it creates at most MAX_DAGS_PER_LOOP)
                it.timers.append(self._due_runs)
        if it.created or self.state.runs_changed or self._queued_runs.due(it.tick):
            it.full.update(start_queued_runs(session=session, now=it.now, only_runs=only))
            it.timers.append(self._queued_runs)
        if self._sweep.due(it.tick):
            it.full.update(running_runs(session=session, only_runs=only))
            if only is not None:  # e.g. a run cleared and finished by someone else meanwhile
                it.ended = finished_states(only, session=session)
            elif self.options.respect_limits:
                warn_about_stuck_pools(session=session)
            it.timers.append(self._sweep)

    def _decide(self, session: Session, it: _Iteration) -> None:
        """Decide the task instances downstream of what changed, and all of the `full` runs."""
        it.retries_checked = self._check_retries(it)
        it.decided = schedule_pass(
            session=session,
            cache=self.cache,
            now=it.now,
            full_runs=it.full,
            changed=it.changed,
            check_retries=it.retries_checked,
        )

    def _check_retries(self, it: _Iteration) -> bool:
        """Whether a retry may have fallen due: only after a try failed, at a time known from an
        earlier check, or through another process (seen by a sweep, which makes `full` runs)."""
        due_at = self.state.retry_check_at
        return (
            bool(it.full)
            or any(r.outcome == "failed" for r in it.reports.results)
            or (due_at is not None and it.now >= due_at)
        )

    def _end_runs(self, session: Session, it: _Iteration) -> None:
        # A run in which a task instance was just scheduled cannot have ended.
        decided = it.decided
        to_check = (set(it.changed) | decided.touched_runs | it.full) - decided.progressing_runs
        it.ended = it.ended | finish_runs(
            to_check, session=session, cache=self.cache, now=it.now, deadlocked=decided.deadlocked_runs
        )

    def _queue(self, session: Session, it: _Iteration) -> None:
        """The critical section: claim scheduled task instances within every limit."""
        capacity = self.executor.free_slots
        if not self._may_queue(it):
            return
        assert self.job_id is not None
        it.queued = queue_scheduled(
            session=session,
            job_id=self.job_id,
            capacity=capacity,
            now=it.now,
            lock_rows=self._lock_rows,
            only_runs=self.options.only_runs,
            respect_limits=self.options.respect_limits,
        )
        it.queue_wanted = capacity == 0 or len(it.queued) >= capacity
        self.cache.get_many({q.dag_id for q in it.queued}, session=session)

    def _may_queue(self, it: _Iteration) -> bool:
        """Whether anything may be claimable: task instances were just scheduled, slots were freed, the
        last critical section filled the executor, or a sweep ran (which also covers work scheduled by
        other processes). An idle loop costs two queries, not five."""
        return (
            self.state.queue_wanted
            or bool(it.reports.results or it.recovered or it.full)
            or it.decided.scheduled > 0
        )

    # -- outside the transaction ---------------------------------------------------------------------
    def _recover(self, session: Session, now: datetime) -> dict[RunKey, set[str]]:
        assert self.job_id is not None
        logs = self.options.logs_folder
        return recover_orphans(
            session=session,
            my_job_id=self.job_id,
            threshold=self.options.zombie_threshold,
            now=now,
            cache=self.cache,
            log_path_for=lambda d, r, t, n, i: log_path_for(logs, d, r, t, n, map_index=i),
            queued_timeout=self.options.queued_timeout,
        )

    def _request(self, queued: QueuedTi) -> TryRequest:
        dag = self.cache.cached(queued.dag_id)
        task = dag.tasks.get(queued.task_id) if dag is not None else None
        timeout = task.execution_timeout.total_seconds() if task and task.execution_timeout else None
        return TryRequest(
            ti_id=queued.id,
            dag_id=queued.dag_id,
            run_id=queued.run_id,
            task_id=queued.task_id,
            map_index=queued.map_index,
            try_number=queued.try_number,
            max_tries=queued.max_tries,
            fileloc=dag.fileloc if dag is not None else queued.fileloc,  # fresh if the file moved
            log_path=str(
                log_path_for(
                    self.options.logs_folder,
                    queued.dag_id,
                    queued.run_id,
                    queued.task_id,
                    queued.try_number,
                    map_index=queued.map_index,
                )
            ),
            logical_date=queued.logical_date,
            data_interval_start=queued.data_interval_start,
            data_interval_end=queued.data_interval_end,
            conf=queued.conf,
            timeout=timeout,
            queue=task.queue if task is not None else None,
            claimed_by_job_id=self.job_id,
        )


def _merge(*parts: Mapping[RunKey, Iterable[str]]) -> dict[RunKey, set[str]]:
    merged: dict[RunKey, set[str]] = defaultdict(set)
    for part in parts:
        for key, tasks in part.items():
            merged[key].update(tasks)
    return dict(merged)
