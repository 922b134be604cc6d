"""What the UI's grid and run pages show: runs x tasks states, in a fixed number of statements."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from minisched.models import DagRun, TaskInstance
from minisched.service.paging import Page, count, ordered
from minisched.service.runs import ORDER_COLUMNS, require_dag


@dataclass(frozen=True)
class Cell:
    state: str | None
    try_number: int


@dataclass(frozen=True)
class GridPage:
    runs: list[DagRun]
    """Oldest first, as Airflow's grid reads left to right."""
    total_runs: int
    cells: dict[tuple[str, str], Cell]
    """(run_id, task_id) -> the task instance's state."""


def grid(dag_id: str, *, session: Session, limit: int = 25, offset: int = 0) -> GridPage:
    """The `limit` runs before the `offset` newest, and every task instance of them: three statements."""
    require_dag(dag_id, session=session)
    query = select(DagRun).where(DagRun.dag_id == dag_id)
    total = count(query, session=session)
    page = Page(limit=limit, offset=offset, order_by="-logical_date")
    runs = list(session.scalars(ordered(query, page, ORDER_COLUMNS, "-logical_date", (DagRun.id.desc(),))))
    runs.reverse()
    return GridPage(runs, total, task_states(dag_id, [run.run_id for run in runs], session=session))


def task_states(dag_id: str, run_ids: Sequence[str], *, session: Session) -> dict[tuple[str, str], Cell]:
    if not run_ids:
        return {}
    rows = session.execute(
        select(TaskInstance.run_id, TaskInstance.task_id, TaskInstance.state, TaskInstance.try_number).where(
            TaskInstance.dag_id == dag_id, TaskInstance.run_id.in_(list(run_ids))
        )
    )
    return {(run_id, task_id): Cell(state, tries) for run_id, task_id, state, tries in rows}


def run_task_instances(dag_id: str, run_id: str, *, session: Session) -> list[TaskInstance]:
    """Every task instance of one run, in one statement (the run page and its Gantt chart)."""
    return list(
        session.scalars(
            select(TaskInstance)
            .where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id)
            .order_by(TaskInstance.start_date.is_(None), TaskInstance.start_date, TaskInstance.task_id)
        )
    )
