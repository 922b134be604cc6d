"""Dag runs for the API and the UI: list, look up, trigger, clear, and mark success or failed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select, update
from sqlalchemy.orm import Session

from minisched.exceptions import MinischedError
from minisched.models import DagModel, DagRun, DagRunState, TaskInstance, TaskInstanceState
from minisched.models.state import ACTIVE_TI_STATES, FINISHED_TI_STATES
from minisched.models.types import utcnow
from minisched.scheduler.clear import ClearableTi, RunFilter, clear_task_instances, plan_clear
from minisched.service.actor import Actor, audit
from minisched.service.dags import dag_not_found, get_structure
from minisched.service.dates import as_utc, as_utc_or_none
from minisched.service.errors import Conflict, InvalidInput, NotFound
from minisched.service.paging import Page, count, ordered

ALL = "~"
ORDER_COLUMNS = {
    "id": DagRun.id,
    "dag_id": DagRun.dag_id,
    "run_id": DagRun.run_id,
    "dag_run_id": DagRun.run_id,
    "state": DagRun.state,
    "logical_date": DagRun.logical_date,
    "execution_date": DagRun.logical_date,
    "start_date": DagRun.start_date,
    "end_date": DagRun.end_date,
}
MARKABLE_RUN_STATES = (DagRunState.SUCCESS, DagRunState.FAILED)


def list_runs(
    dag_id: str,
    *,
    session: Session,
    page: Page,
    states: Sequence[str] = (),
    logical_date_gte: datetime | None = None,
    logical_date_lte: datetime | None = None,
) -> tuple[list[DagRun], int]:
    """One page of runs of `dag_id` (`~` for every DAG), newest first unless ordered otherwise."""
    query = select(DagRun)
    if dag_id != ALL:
        require_dag(dag_id, session=session)
        query = query.where(DagRun.dag_id == dag_id)
    if states:
        query = query.where(DagRun.state.in_(list(states)))
    if logical_date_gte is not None:
        query = query.where(DagRun.logical_date >= as_utc(logical_date_gte))
    if logical_date_lte is not None:
        query = query.where(DagRun.logical_date <= as_utc(logical_date_lte))
    total = count(query, session=session)
    rows = session.scalars(ordered(query, page, ORDER_COLUMNS, "-logical_date", (DagRun.id.desc(),)))
    return list(rows), total


def require_dag(dag_id: str, *, session: Session) -> None:
    if session.scalar(select(DagModel.dag_id).where(DagModel.dag_id == dag_id)) is None:
        raise dag_not_found(dag_id)


def get_run(dag_id: str, run_id: str, *, session: Session) -> DagRun:
    run = session.scalar(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
    if run is None:
        require_dag(dag_id, session=session)
        raise NotFound(f"DAG {dag_id!r} has no run {run_id!r}; GET /api/v1/dags/{dag_id}/dagRuns lists them")
    return run


def recent_runs(dag_ids: Sequence[str], limit: int, *, session: Session) -> dict[str, list[Any]]:
    """dag_id -> its last `limit` runs (run_id, state, logical_date), oldest first, in one statement."""
    if not dag_ids:
        return {}
    ranked = (
        select(
            DagRun.dag_id,
            DagRun.run_id,
            DagRun.state,
            DagRun.logical_date,
            func.row_number()
            .over(partition_by=DagRun.dag_id, order_by=(DagRun.logical_date.desc(), DagRun.id.desc()))
            .label("position"),
        )
        .where(DagRun.dag_id.in_(list(dag_ids)))
        .subquery()
    )
    rows = session.execute(
        select(ranked.c.dag_id, ranked.c.run_id, ranked.c.state, ranked.c.logical_date)
        .where(ranked.c.position <= limit)
        .order_by(ranked.c.dag_id, ranked.c.logical_date)
    )
    found: dict[str, list[Any]] = {dag_id: [] for dag_id in dag_ids}
    for row in rows:
        found[row.dag_id].append(row)
    return found


def trigger(
    dag_id: str,
    *,
    actor: Actor,
    session: Session,
    logical_date: datetime | None = None,
    conf: dict[str, Any] | None = None,
    run_id: str | None = None,
) -> DagRun:
    """A queued manual run, as `minisched dags trigger` (`run_id` defaults to manual__<logical date>);
    a clash with an existing run is a Conflict."""
    from minisched.exceptions import ParamValidationError
    from minisched.inputs import check_conf
    from minisched.scheduler.manual_runs import trigger_dag

    if conf is not None:
        check_conf(conf)
    require_dag(dag_id, session=session)
    get_structure(dag_id, session=session)
    logical_date = as_utc_or_none(logical_date)
    try:
        run_id = trigger_dag(dag_id, session=session, logical_date=logical_date, conf=conf, run_id=run_id)
    except ParamValidationError:
        raise  # a conf the DAG's params refuse is bad input (400), as in Airflow's API
    except OverflowError:  # the data interval before it would fall before year 1
        raise InvalidInput(
            f"logical date {logical_date} is too early: its data interval would start before year 1"
        ) from None
    except MinischedError as exc:
        raise Conflict(str(exc)) from None
    audit(
        actor,
        "trigger",
        session=session,
        dag_id=dag_id,
        run_id=run_id,
        extra={"logical_date": logical_date, "conf": conf},
    )
    return get_run(dag_id, run_id, session=session)


def clear_run(
    dag_id: str, run_id: str, *, actor: Actor, session: Session, dry_run: bool = True
) -> list[ClearableTi]:
    """Every finished task instance of the run back to none, the run queued again (or, dry, the plan)."""
    get_run(dag_id, run_id, session=session)
    dag = get_structure(dag_id, session=session)
    plan = plan_clear(dag, dag.tasks, session=session, runs=RunFilter(run_ids=[run_id]))
    if dry_run:
        return plan.to_clear
    result = clear_task_instances(dag, plan.to_clear, session=session)
    audit(actor, "clear_run", session=session, dag_id=dag_id, run_id=run_id, extra={"dry_run": False})
    return result.cleared


def set_run_state(dag_id: str, run_id: str, state: str, *, actor: Actor, session: Session) -> DagRun:
    """Mark a run success or failed, as Airflow does: its unfinished task instances become `state`
    (success) or `skipped` (failed). Refused while one of its tries is queued or running."""
    if state not in MARKABLE_RUN_STATES:
        raise InvalidInput(f"a run can be marked {' or '.join(MARKABLE_RUN_STATES)}, not {state!r}")
    run = get_run(dag_id, run_id, session=session)
    refuse_in_flight(dag_id, [run_id], None, session=session)
    now = utcnow()
    ti_state = TaskInstanceState.SUCCESS if state == DagRunState.SUCCESS else TaskInstanceState.SKIPPED
    session.execute(
        update(TaskInstance)
        .where(
            TaskInstance.dag_id == dag_id,
            TaskInstance.run_id == run_id,
            (TaskInstance.state.is_(None)) | TaskInstance.state.not_in(sorted(FINISHED_TI_STATES)),
        )
        .values(state=ti_state, end_date=now)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(DagRun)
        .where(DagRun.id == run.id)
        .values(state=state, end_date=now, start_date=func.coalesce(DagRun.start_date, now))
        .execution_options(synchronize_session=False)
    )
    audit(actor, f"mark_run_{state}", session=session, dag_id=dag_id, run_id=run_id, extra={"state": state})
    session.expire_all()
    return get_run(dag_id, run_id, session=session)


def refuse_in_flight(
    dag_id: str,
    run_ids: Sequence[str],
    task_ids: Sequence[str] | None,
    *,
    session: Session,
    map_index: int | None = None,
) -> None:
    query = select(TaskInstance.run_id, TaskInstance.task_id, TaskInstance.state).where(
        and_(
            TaskInstance.dag_id == dag_id,
            TaskInstance.run_id.in_(list(run_ids)),
            TaskInstance.state.in_(sorted(ACTIVE_TI_STATES)),
        )
    )
    if task_ids is not None:
        query = query.where(TaskInstance.task_id.in_(list(task_ids)))
    if map_index is not None:
        query = query.where(TaskInstance.map_index == map_index)
    busy = session.execute(query.limit(1)).first()
    if busy is not None:
        raise Conflict(
            f"task {busy.task_id!r} of run {busy.run_id!r} is {busy.state}: "
            "wait until its try has finished, then mark it"
        )
