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
    """A task in a run: its state, or for a mapped task the summary of its instances' states."""

    state: str | None
    try_number: int
    #: How many instances a mapped task has in the run; 0 for a task that is not mapped.
    instances: int = 0


#: Which state a mapped task's cell shows when its instances differ: the one most worth a look.
_SUMMARY_ORDER = (
    "failed",
    "upstream_failed",
    "up_for_retry",
    "running",
    "queued",
    "scheduled",
    None,
    "removed",
    "skipped",
    "success",
)


def summary_state(states: Sequence[str | None]) -> str | None:
    """The state a mapped task's cell shows: the first of `_SUMMARY_ORDER` any instance is in."""
    present = set(states)
    return next((state for state in _SUMMARY_ORDER if state in present), states[0] if states else None)


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
    ti = TaskInstance
    rows = session.execute(
        select(ti.run_id, ti.task_id, ti.map_index, ti.state, ti.try_number).where(
            ti.dag_id == dag_id, ti.run_id.in_(list(run_ids))
        )
    )
    cells: dict[tuple[str, str], Cell] = {}
    mapped: dict[tuple[str, str], list[tuple[str | None, int]]] = {}
    for run_id, task_id, map_index, state, tries in rows:
        if map_index < 0:
            cells[(run_id, task_id)] = Cell(state, tries)
        else:
            mapped.setdefault((run_id, task_id), []).append((state, tries))
    for key, instances in mapped.items():
        states = [state for state, _ in instances]
        cells[key] = Cell(summary_state(states), max(tries for _, tries in instances), len(instances))
    return cells


def run_task_instances(dag_id: str, run_id: str, *, session: Session) -> list[TaskInstance]:
    """Every task instance of one run, in one statement (the run page and its Gantt chart)."""
    return list(
        session.scalars(
            select(TaskInstance)
            .where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id)
            .order_by(
                TaskInstance.start_date.is_(None),
                TaskInstance.start_date,
                TaskInstance.task_id,
                TaskInstance.map_index,
            )
        )
    )
