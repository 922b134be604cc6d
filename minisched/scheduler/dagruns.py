"""Creating dag runs (scheduled, manual, backfill) with their task instances, and starting queued runs."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from minisched.authoring.schedules import DataInterval
from minisched.authoring.serialize import SerializedDag
from minisched.dagfiles.sync import next_dagrun_fields
from minisched.models import DagRunState, DagRunType
from minisched.scheduler import statements as sql
from minisched.scheduler.dag_cache import DagStructureCache

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NewRun:
    dag_id: str
    run_type: DagRunType
    logical_date: datetime
    data_interval: DataInterval | None
    conf: dict[str, Any] | None = None
    state: DagRunState = DagRunState.QUEUED
    run_id: str | None = None

    @property
    def effective_run_id(self) -> str:
        return self.run_id or run_id_for(self.run_type, self.logical_date)


def run_id_for(run_type: DagRunType, logical_date: datetime) -> str:
    return f"{run_type.value}__{logical_date.isoformat()}"


def existing_runs(runs: Sequence[NewRun], *, session: Session) -> set[tuple[str, object]]:
    """Which of `runs` clash with stored runs: keys (dag_id, run_id) and (dag_id, logical_date)."""
    if not runs:
        return set()
    rows = session.execute(
        sql.EXISTING_RUNS,
        {
            "run_ids": [(r.dag_id, r.effective_run_id) for r in runs],
            "logical_dates": [(r.dag_id, r.logical_date) for r in runs],
        },
    )
    taken: set[tuple[str, object]] = set()
    for dag_id, run_id, logical_date in rows:
        taken.add((dag_id, run_id))
        taken.add((dag_id, logical_date))
    return taken


def create_dag_runs(
    runs: Sequence[NewRun],
    dags: Mapping[str, SerializedDag],
    *,
    session: Session,
    now: datetime,
    job_id: int | None = None,
) -> list[NewRun]:
    """Insert the runs that do not exist yet, and all their task instances, in two bulk statements."""
    taken = existing_runs(runs, session=session)
    fresh: list[NewRun] = []
    for run in runs:
        if (run.dag_id, run.effective_run_id) in taken or (run.dag_id, run.logical_date) in taken:
            continue
        taken.update({(run.dag_id, run.effective_run_id), (run.dag_id, run.logical_date)})
        fresh.append(run)
    if not fresh:
        return []
    session.execute(sql.INSERT_RUNS, [_run_values(run, now, job_id) for run in fresh])
    ti_rows = [
        _ti_values(run, dags[run.dag_id], task_id) for run in fresh for task_id in dags[run.dag_id].tasks
    ]
    if ti_rows:
        session.execute(sql.INSERT_TIS, ti_rows)
    return fresh


def _run_values(run: NewRun, now: datetime, job_id: int | None) -> dict[str, Any]:
    interval = run.data_interval
    return {
        "dag_id": run.dag_id,
        "run_id": run.effective_run_id,
        "run_type": run.run_type.value,
        "state": run.state.value,
        "logical_date": run.logical_date,
        "data_interval_start": interval.start if interval else None,
        "data_interval_end": interval.end if interval else None,
        "queued_at": now,
        "start_date": now if run.state == DagRunState.RUNNING else None,
        "conf": run.conf,
        "creating_job_id": job_id,
    }


def _ti_values(run: NewRun, dag: SerializedDag, task_id: str) -> dict[str, Any]:
    return ti_values(run.dag_id, run.effective_run_id, dag, task_id)


def ti_values(dag_id: str, run_id: str, dag: SerializedDag, task_id: str) -> dict[str, Any]:
    """The row of a brand-new task instance of `task_id` in run `run_id`."""
    task = dag.tasks[task_id]
    return {
        "dag_id": dag_id,
        "run_id": run_id,
        "task_id": task_id,
        "state": None,
        "try_number": 0,
        "max_tries": task.retries,
        "pool": task.pool,
        "pool_slots": task.pool_slots,
        "priority_weight": task.priority_weight,
        "operator": task.operator,
        "hostname": "",
    }


def create_scheduled_runs(
    *, session: Session, cache: DagStructureCache, now: datetime, job_id: int | None, lock_rows: bool
) -> list[NewRun]:
    """Create the due scheduled run of every active, unpaused DAG below its max_active_runs."""
    due = session.execute(sql.DUE_DAGS_LOCKED if lock_rows else sql.DUE_DAGS, {"now": now}).all()
    if not due:
        return []
    dags = cache.get_many([row[0] for row in due], session=session)
    wanted: list[NewRun] = []
    advances: list[dict[str, Any]] = []
    for dag_id, start, end in due:
        dag = dags.get(dag_id)
        if dag is None or start is None or end is None:
            continue
        interval = DataInterval(start, end)
        wanted.append(NewRun(dag_id, DagRunType.SCHEDULED, start, interval))
        fields = next_dagrun_fields(dag.schedule, dag.start_date, dag.end_date, dag.catchup, interval, now)
        advances.append({"b_dag_id": dag_id, **fields})
    try:
        # A savepoint: a run that another process (a trigger, a backfill) created at the same logical
        # date just now makes this INSERT fail; the next loop sees that run and moves past it.
        with session.begin_nested():
            created = create_dag_runs(wanted, dags, session=session, now=now, job_id=job_id)
    except IntegrityError as exc:
        log.info("dag runs were created concurrently, trying again next loop: %s", exc.orig)
        return []
    if advances:
        session.execute(sql.ADVANCE_DAGS, advances)
    return created


def start_queued_runs(
    *, session: Session, now: datetime, only_runs: Iterable[tuple[str, str]] | None = None
) -> list[tuple[str, str]]:
    """Move queued runs to running, oldest first, while below max_active_runs.

    The scheduler leaves runs of paused DAGs queued; a backfill (`only_runs`) runs them anyway, as Airflow's.
    """
    if only_runs is None:
        queued = session.execute(sql.QUEUED_RUNS).all()
    else:
        queued = session.execute(sql.QUEUED_RUNS_OF, {"runs": sorted(only_runs)}).all()
    if not queued:
        return []
    dag_ids = sorted({row[1] for row in queued})
    running: Counter[str] = Counter(
        dict(session.execute(sql.RUNNING_RUNS_PER_DAG, {"dag_ids": dag_ids}).all())
    )
    chosen: list[int] = []
    started: list[tuple[str, str]] = []
    for run_pk, dag_id, run_id, max_active_runs in queued:
        if running[dag_id] < max_active_runs:
            running[dag_id] += 1
            chosen.append(run_pk)
            started.append((dag_id, run_id))
    if chosen:
        session.execute(sql.START_RUNS, {"ids": chosen, "now": now})
    return started
