"""Runs made on request: `dags trigger`, `dags test` and `dags backfill`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select, tuple_
from sqlalchemy.orm import Session

from minisched.authoring.serialize import SerializedDag
from minisched.db.retry import run_with_retries
from minisched.db.session import NEW_SESSION, create_session, provide_session
from minisched.exceptions import InputError, MinischedError
from minisched.models import DagModel, DagRun, DagRunState, DagRunType, ImportError_, RunKey, TaskInstance
from minisched.models.job import DAG_TEST_JOB_TYPE
from minisched.models.types import utcnow
from minisched.scheduler.dag_cache import DagStructureCache
from minisched.scheduler.dagruns import NewRun, create_dag_runs, run_id_for
from minisched.scheduler.executors.base import BaseExecutor
from minisched.scheduler.job import register_job


@provide_session
def load_dag(
    dag_id: str, *, session: Session = NEW_SESSION, cache: DagStructureCache | None = None
) -> SerializedDag:
    """The stored structure of an active DAG, or an error that says how to find the right id."""
    dag = (cache or DagStructureCache()).get(dag_id, session=session)
    active = session.scalar(select(DagModel.is_active).where(DagModel.dag_id == dag_id))
    if dag is None or not active:
        raise dag_not_found(dag_id, hint=_import_error_hint(dag_id, session=session))
    return dag


def dag_not_found(dag_id: str, *, hint: str = "") -> MinischedError:
    """The one error for an unknown DAG id, wherever a command looks one up."""
    return MinischedError(f"DAG {dag_id!r} not found{hint}; run `minisched dags list` to see the DAGs")


def _import_error_hint(dag_id: str, *, session: Session) -> str:
    count = session.scalar(select(func.count()).select_from(ImportError_)) or 0
    return f" (there are {count} import errors: `minisched dags list-import-errors`)" if count else ""


@provide_session
def trigger_dag(
    dag_id: str,
    *,
    session: Session = NEW_SESSION,
    logical_date: datetime | None = None,
    conf: dict[str, Any] | None = None,
    run_id: str | None = None,
) -> str:
    """Create a queued manual run (with its task instances); returns its run_id (`run_id`, else
    manual__<logical date>).

    The DAG's params, overridden by ``conf``, must validate first (Airflow's trigger check);
    otherwise nothing is created.
    """
    dag = load_dag(dag_id, session=session)
    check_params(dag, conf)
    when = logical_date or utcnow()
    run = NewRun(
        dag_id,
        DagRunType.MANUAL,
        when,
        dag.schedule.infer_manual_data_interval(when),
        conf=conf,
        run_id=run_id,
    )
    if not create_dag_runs([run], {dag_id: dag}, session=session, now=utcnow()):
        raise InputError(
            f"DAG {dag_id!r} already has a run at logical date {when.isoformat()} "
            f"(or with run_id {run.effective_run_id}); pick another logical_date",
            "logical_date",
        )
    return run.effective_run_id


def check_params(dag: SerializedDag, conf: dict[str, Any] | None) -> None:
    """Refuse a conf that leaves a param without a value or breaks a param's schema
    (ParamValidationError: bad input, unlike the run that already exists)."""
    from minisched.authoring.params import validate_conf
    from minisched.exceptions import ParamValidationError

    try:
        validate_conf(dag.params, conf)
    except ParamValidationError as exc:
        raise ParamValidationError(
            f"DAG {dag.dag_id!r}: {exc}; no run was created (fix --conf or the param's default)"
        ) from None


@dataclass(frozen=True)
class RunOutcome:
    dag_id: str
    run_id: str
    state: str
    tasks: list[dict[str, Any]]


@provide_session
def task_states(dag_id: str, run_id: str, *, session: Session = NEW_SESSION) -> list[dict[str, Any]]:
    """The task instances of one run, in the column order of `tasks states-for-dag-run`."""
    rows = session.execute(
        select(
            TaskInstance.task_id,
            TaskInstance.map_index,
            TaskInstance.state,
            TaskInstance.try_number,
            TaskInstance.start_date,
            TaskInstance.end_date,
            TaskInstance.duration,
        )
        .where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id)
        .order_by(
            TaskInstance.start_date.is_(None),
            TaskInstance.start_date,
            TaskInstance.task_id,
            TaskInstance.map_index,
        )
    ).all()
    return [row._asdict() for row in rows]


def run_to_completion(
    keys: Sequence[RunKey],
    executor: BaseExecutor,
    *,
    logs_folder: Path,
    job_type: str,
    on_loop: Callable[[], None] | None = None,
    respect_limits: bool = True,
    job_id: int | None = None,
    launch_dag_callbacks: bool = True,
    dag_cache: DagStructureCache | None = None,
) -> int:
    """Drive only these runs with the scheduler's own loop (same decisions, same recording)."""
    from minisched.scheduler.loop import SchedulerLoop, SchedulerOptions

    options = SchedulerOptions(
        logs_folder=logs_folder,
        only_runs=frozenset(keys),
        job_type=job_type,
        job_id=job_id,
        respect_limits=respect_limits,
        launch_dag_callbacks=launch_dag_callbacks,
    )
    loop = SchedulerLoop(executor, options, on_loop=on_loop, cache=dag_cache)
    return loop.run()


def run_dag_test(
    dag_id: str,
    logical_date: datetime | None,
    *,
    dags_folder: Path,
    logs_folder: Path,
) -> RunOutcome:
    """`dags test`: one run, executed in this process to the end, recorded like any other."""
    from minisched.dagfiles.refresh import refresh_dag_folder
    from minisched.scheduler.executors.dag_callbacks import run_requests
    from minisched.scheduler.executors.inprocess import InProcessExecutor

    when = logical_date or utcnow()
    run_id = run_id_for(DagRunType.MANUAL, when)
    refresh_dag_folder(dags_folder)  # DAG files are parsed by other processes, outside any transaction
    dag_cache = DagStructureCache(recheck_interval=1.0)  # the loop decides with the structure read here

    def prepare() -> int:
        with create_session() as session:
            dag = load_dag(dag_id, session=session, cache=dag_cache)
            check_params(dag, None)
            # The run belongs to this job while it lives: a scheduler running meanwhile leaves it alone.
            job_id = register_job(session=session, now=utcnow(), job_type=DAG_TEST_JOB_TYPE)
            # As `airflow dags test`: a run already at that date is replaced.
            session.execute(delete(DagRun).where(DagRun.dag_id == dag_id, DagRun.logical_date == when))
            session.execute(delete(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
            interval = dag.schedule.infer_manual_data_interval(when)
            new = NewRun(dag_id, DagRunType.MANUAL, when, interval, state=DagRunState.RUNNING, run_id=run_id)
            create_dag_runs([new], {dag_id: dag}, session=session, now=utcnow(), job_id=job_id)
            return job_id

    job_id = run_with_retries(prepare)
    # Tries run one at a time in this process, so pools and max_active_tasks have nothing to limit.
    run_to_completion(
        [(dag_id, run_id)],
        InProcessExecutor(),
        logs_folder=logs_folder,
        job_type=DAG_TEST_JOB_TYPE,
        respect_limits=False,
        job_id=job_id,
        launch_dag_callbacks=False,
        dag_cache=dag_cache,
    )
    # As `airflow dags test`: the DAG's callback runs here, once the run's end is committed.
    run_requests(only_run=(dag_id, run_id))
    with create_session() as session:
        state = run_states([(dag_id, run_id)], session=session).get((dag_id, run_id), "unknown")
        return RunOutcome(dag_id, run_id, state, task_states(dag_id, run_id, session=session))


@provide_session
def run_states(keys: Sequence[RunKey], *, session: Session = NEW_SESSION) -> dict[RunKey, str]:
    """The current state of each of these runs (those that exist)."""
    if not keys:
        return {}
    rows = session.execute(
        select(DagRun.dag_id, DagRun.run_id, DagRun.state).where(
            tuple_(DagRun.dag_id, DagRun.run_id).in_(list(keys))
        )
    )
    return {(dag_id, run_id): state for dag_id, run_id, state in rows}
