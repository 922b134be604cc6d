"""`dags backfill`: create the scheduled runs of a date range and drive them to their end here.

The runs belong to the backfill's own job from the moment they exist, so a scheduler running meanwhile
leaves them alone (and adopts them once that job is dead).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from minisched.authoring.serialize import SerializedDag
from minisched.db.session import NEW_SESSION, create_session, provide_session
from minisched.exceptions import InputError, MinischedError
from minisched.models import DagRun, DagRunState, DagRunType, JobState, RunKey
from minisched.models.job import BACKFILL_JOB_TYPE
from minisched.models.state import FINISHED_RUN_STATES
from minisched.models.types import utcnow
from minisched.scheduler.dagruns import NewRun, create_dag_runs
from minisched.scheduler.executors import executor_for
from minisched.scheduler.job import end_job, register_job
from minisched.scheduler.manual_runs import load_dag, run_states, run_to_completion

#: Seconds between two progress reports while the runs are driven.
PROGRESS_INTERVAL = 1.0


@dataclass(frozen=True)
class BackfillPlan:
    dag_id: str
    to_run: list[RunKey]
    skipped_existing: list[str]
    reset_existing: tuple[str, ...] = ()


@dataclass(frozen=True)
class BackfillProgress:
    done: int
    failed: int
    total: int


@provide_session
def runs_to_reset(
    dag_id: str, start: datetime, end: datetime, *, session: Session = NEW_SESSION
) -> tuple[str, ...]:
    """The finished runs in [start, end] that `--reset-dagruns` would clear and run again."""
    return plan_backfill(dag_id, start, end, session=session, dry_run=True, reset_dagruns=True).reset_existing


def run_backfill(
    dag_id: str,
    start: datetime,
    end: datetime,
    *,
    executor_name: str,
    parallelism: int,
    logs_folder: Path,
    dry_run: bool = False,
    reset_dagruns: bool = False,
    on_plan: Callable[[BackfillPlan], None] = lambda _plan: None,
    on_progress: Callable[[BackfillProgress], None] = lambda _progress: None,
) -> dict[RunKey, str]:
    """Plan the runs (`on_plan` sees the plan before anything runs), then, unless `dry_run`, drive
    them to their end with the scheduler's own loop; returns each run's final state."""
    with create_session() as session:
        job_id = None if dry_run else register_job(session=session, now=utcnow(), job_type=BACKFILL_JOB_TYPE)
        plan = plan_backfill(
            dag_id, start, end, session=session, dry_run=dry_run, reset_dagruns=reset_dagruns, job_id=job_id
        )
    on_plan(plan)
    if job_id is None:
        return {}
    report = _ProgressReport(plan.to_run, on_progress)
    if plan.to_run:
        run_to_completion(
            plan.to_run,
            executor_for(executor_name, parallelism),
            logs_folder=logs_folder,
            job_type=BACKFILL_JOB_TYPE,
            on_loop=report,
            job_id=job_id,
        )
    else:
        with create_session() as session:
            end_job(job_id, JobState.SUCCESS, session=session, now=utcnow())
    report(final=True)
    return run_states(plan.to_run)


class _ProgressReport:
    """Report progress at most once per PROGRESS_INTERVAL, and always when `final`."""

    def __init__(self, keys: list[RunKey], on_progress: Callable[[BackfillProgress], None]) -> None:
        self.keys = keys
        self.on_progress = on_progress
        self._last = 0.0

    def __call__(self, final: bool = False) -> None:
        if not final and time.monotonic() - self._last < PROGRESS_INTERVAL:
            return
        self._last = time.monotonic()
        states = run_states(self.keys)
        done = sum(state in FINISHED_RUN_STATES for state in states.values())
        failed = sum(state == DagRunState.FAILED for state in states.values())
        self.on_progress(BackfillProgress(done, failed, len(self.keys)))


def plan_backfill(
    dag_id: str,
    start: datetime,
    end: datetime,
    *,
    session: Session,
    dry_run: bool = False,
    reset_dagruns: bool = False,
    job_id: int | None = None,
) -> BackfillPlan:
    """Create (unless dry_run) the queued backfill runs whose logical_date lies in [start, end].

    Runs that already exist at those dates are kept as they are; their unfinished ones are driven too.
    With `reset_dagruns`, finished ones are cleared (back to queued) and run again. The runs to drive
    belong to `job_id` (the backfill's job): a scheduler leaves them alone while that job lives.
    """
    if end < start:
        raise InputError(
            f"end_date {end.isoformat()} is before start_date {start.isoformat()}", "end_date", "start_date"
        )
    dag = load_dag(dag_id, session=session)
    intervals = dag.schedule.intervals_between(start, end)
    if not intervals:
        raise MinischedError(
            f"DAG {dag_id!r} (schedule {dag.schedule_text!r}) has no scheduled run with a logical date "
            f"between {start.isoformat()} and {end.isoformat()}"
        )
    wanted = [NewRun(dag_id, DagRunType.BACKFILL, i.start, i) for i in intervals]
    existing = {
        row.logical_date: row
        for row in session.execute(
            select(DagRun.run_id, DagRun.logical_date, DagRun.state).where(
                DagRun.dag_id == dag_id, DagRun.logical_date.in_([run.logical_date for run in wanted])
            )
        ).all()
    }
    fresh = [run for run in wanted if run.logical_date not in existing]
    if not dry_run:
        create_dag_runs(fresh, {dag_id: dag}, session=session, now=utcnow(), job_id=job_id)
    unfinished = [(dag_id, r.run_id) for r in existing.values() if r.state not in FINISHED_RUN_STATES]
    finished = sorted(r.run_id for r in existing.values() if r.state in FINISHED_RUN_STATES)
    reset = _reset_runs(dag, finished, session=session, dry_run=dry_run) if reset_dagruns else []
    claimed = [run_id for _, run_id in unfinished] + reset
    if claimed and job_id is not None and not dry_run:
        session.execute(
            update(DagRun)
            .where(DagRun.dag_id == dag_id, DagRun.run_id.in_(claimed))
            .values(creating_job_id=job_id)
            .execution_options(synchronize_session=False)
        )
    return BackfillPlan(
        dag_id=dag_id,
        to_run=[(dag_id, run.effective_run_id) for run in fresh] + unfinished + [(dag_id, r) for r in reset],
        skipped_existing=[run_id for run_id in finished if run_id not in reset],
        reset_existing=tuple(reset),
    )


def _reset_runs(dag: SerializedDag, run_ids: list[str], *, session: Session, dry_run: bool) -> list[str]:
    """Clear every task instance of these finished runs; returns the runs that went back to queued."""
    from minisched.scheduler.clear import RunFilter, clear_task_instances, plan_clear

    if not run_ids:
        return []
    plan = plan_clear(dag, dag.tasks, session=session, runs=RunFilter(run_ids=run_ids))
    if dry_run:
        return sorted({ti.run_id for ti in plan.to_clear})
    return clear_task_instances(dag, plan.to_clear, session=session).requeued_runs
