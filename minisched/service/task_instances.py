"""Task instances for the API and the UI: list, look up, clear (dry run first), mark success or failed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, select, update
from sqlalchemy.orm import Session

from minisched.models import DagRun, DagRunState, TaskInstance, TaskInstanceState
from minisched.models.state import FINISHED_RUN_STATES
from minisched.models.types import utcnow
from minisched.scheduler.clear import (
    ClearableTi,
    RunFilter,
    clear_task_instances,
    downstream_closure,
    plan_clear,
)
from minisched.service.actor import Actor, audit
from minisched.service.dags import get_structure
from minisched.service.dates import as_utc_or_none
from minisched.service.errors import InvalidInput, NotFound
from minisched.service.paging import Page, count, ordered
from minisched.service.runs import get_run, refuse_in_flight

ORDER_COLUMNS = {
    "task_id": TaskInstance.task_id,
    "map_index": TaskInstance.map_index,
    "state": TaskInstance.state,
    "start_date": TaskInstance.start_date,
    "end_date": TaskInstance.end_date,
    "duration": TaskInstance.duration,
    "try_number": TaskInstance.try_number,
    "priority_weight": TaskInstance.priority_weight,
    "pool": TaskInstance.pool,
}
MARKABLE_TI_STATES = (TaskInstanceState.SUCCESS, TaskInstanceState.FAILED)


def _with_run() -> Select[TaskInstance, datetime]:
    return select(TaskInstance, DagRun.logical_date).join(
        DagRun, and_(DagRun.dag_id == TaskInstance.dag_id, DagRun.run_id == TaskInstance.run_id)
    )


def list_task_instances(
    dag_id: str, run_id: str, *, session: Session, page: Page, states: Sequence[str] = ()
) -> tuple[list[tuple[TaskInstance, datetime]], int]:
    """One page of a run's task instances, each with its run's logical date."""
    get_run(dag_id, run_id, session=session)
    query = _with_run().where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id)
    if states:
        wanted = [s for s in states if s != "none"]
        condition = TaskInstance.state.in_(wanted)
        query = query.where(condition | TaskInstance.state.is_(None) if "none" in states else condition)
    total = count(query, session=session)
    rows = session.execute(
        ordered(query, page, ORDER_COLUMNS, "task_id", (TaskInstance.map_index, TaskInstance.id))
    )
    return [(ti, logical_date) for ti, logical_date in rows], total


def get_task_instance(
    dag_id: str, run_id: str, task_id: str, *, session: Session, map_index: int = -1
) -> tuple[TaskInstance, datetime]:
    """One task instance; a mapped task's instances are told apart by `map_index` (-1: not mapped)."""
    rows = session.execute(
        _with_run()
        .where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id, TaskInstance.task_id == task_id)
        .order_by(TaskInstance.map_index)
    ).all()
    found = [row for row in rows if row[0].map_index == map_index]
    if found:
        return found[0][0], found[0][1]
    get_run(dag_id, run_id, session=session)
    if not rows:
        raise NotFound(f"run {run_id!r} of DAG {dag_id!r} has no task {task_id!r}")
    indexes = [row[0].map_index for row in rows]
    if map_index < 0:
        raise NotFound(
            f"task {task_id!r} is mapped in run {run_id!r}: ask for one instance by its map_index "
            f"({indexes[0]} to {indexes[-1]})"
        )
    raise NotFound(f"task {task_id!r} of run {run_id!r} has no map_index {map_index}")


@dataclass(frozen=True)
class ClearRequest:
    """What `POST /dags/{dag_id}/clearTaskInstances` takes (Airflow's names and defaults)."""

    dry_run: bool = True
    task_ids: Sequence[str] | None = None
    dag_run_id: str | None = None
    start_date: datetime | None = None
    end_date: datetime | None = None
    only_failed: bool = True
    include_downstream: bool = False


def clear(dag_id: str, request: ClearRequest, *, actor: Actor, session: Session) -> list[ClearableTi]:
    """The task instances cleared (or, with `dry_run`, those that would be)."""
    dag = get_structure(dag_id, session=session)
    task_ids = set(dag.tasks)
    if request.task_ids is not None:
        unknown = sorted(set(request.task_ids) - task_ids)
        if unknown:
            raise InvalidInput(f"DAG {dag_id!r} has no task(s) {', '.join(map(repr, unknown))}")
        task_ids = set(request.task_ids)
    if request.include_downstream:
        task_ids = downstream_closure(dag, task_ids)
    if request.dag_run_id is not None:
        get_run(dag_id, request.dag_run_id, session=session)
    runs = RunFilter(
        run_ids=[request.dag_run_id] if request.dag_run_id else None,
        start=as_utc_or_none(request.start_date),
        end=as_utc_or_none(request.end_date),
    )
    plan = plan_clear(dag, task_ids, session=session, runs=runs, only_failed=request.only_failed)
    if request.dry_run:
        return plan.to_clear
    result = clear_task_instances(dag, plan.to_clear, session=session)
    audit(
        actor,
        "clear",
        session=session,
        dag_id=dag_id,
        run_id=request.dag_run_id,
        extra={
            "task_ids": sorted(task_ids) if request.task_ids is not None else None,
            "only_failed": request.only_failed,
            "include_downstream": request.include_downstream,
            "cleared": len(result.cleared),
        },
    )
    return result.cleared


def set_state(
    dag_id: str,
    run_id: str,
    task_ids: Sequence[str],
    state: str,
    *,
    actor: Actor,
    session: Session,
    dry_run: bool = False,
    map_index: int | None = None,
) -> list[tuple[TaskInstance, datetime]]:
    """Mark task instances success or failed (refused while a try of theirs is in flight); with
    `map_index`, only that instance of a mapped task, else every instance of the tasks.

    A finished run goes back to queued, so the scheduler decides its outcome again with the new state.
    """
    if state not in MARKABLE_TI_STATES:
        raise InvalidInput(f"a task instance can be marked {' or '.join(MARKABLE_TI_STATES)}, not {state!r}")
    get_run(dag_id, run_id, session=session)
    rows: list[tuple[TaskInstance, datetime]] = [
        (ti, when)
        for ti, when in session.execute(
            _with_run().where(
                TaskInstance.dag_id == dag_id,
                TaskInstance.run_id == run_id,
                TaskInstance.task_id.in_(list(task_ids)),
            )
        )
    ]
    missing = sorted(set(task_ids) - {ti.task_id for ti, _ in rows})
    if missing:
        raise NotFound(f"run {run_id!r} of DAG {dag_id!r} has no task(s) {', '.join(map(repr, missing))}")
    if map_index is not None:
        (task_id,) = task_ids
        rows = [get_task_instance(dag_id, run_id, task_id, session=session, map_index=map_index)]
    refuse_in_flight(dag_id, [run_id], task_ids, session=session, map_index=map_index)
    if dry_run:
        return rows
    now = utcnow()
    session.execute(
        update(TaskInstance)
        .where(TaskInstance.id.in_([ti.id for ti, _ in rows]))
        .values(state=state, end_date=now, next_retry_at=None)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(DagRun)
        .where(
            DagRun.dag_id == dag_id, DagRun.run_id == run_id, DagRun.state.in_(sorted(FINISHED_RUN_STATES))
        )
        .values(state=DagRunState.QUEUED, queued_at=now, end_date=None)
        .execution_options(synchronize_session=False)
    )
    extra: dict[str, Any] = {"state": state, "task_ids": sorted(task_ids)}
    if map_index is not None:
        extra["map_index"] = map_index
    audit(actor, f"mark_{state}", session=session, dag_id=dag_id, run_id=run_id, extra=extra)
    session.expire_all()
    ids = [ti.id for ti, _ in rows]
    marked = session.execute(
        _with_run().where(TaskInstance.id.in_(ids)).order_by(TaskInstance.task_id, TaskInstance.map_index)
    ).all()
    return [(ti, when) for ti, when in marked]
