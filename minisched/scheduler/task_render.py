"""`tasks render`: a task's template fields as a try of it would see them, without running it.

The run is the recorded one at that logical date when there is one (its run_id, conf and data
interval), else the manual run a trigger at that date would create, as `airflow tasks render`
does with an in-memory run. Nothing is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from minisched.authoring.context import running_with_context, task_context
from minisched.authoring.templating import rendered_copy
from minisched.models import DagRun, DagRunType
from minisched.scheduler.dagruns import run_id_for

if TYPE_CHECKING:
    from minisched.authoring.baseoperator import BaseOperator
    from minisched.authoring.dag import DAG


@dataclass(frozen=True)
class RenderRun:
    """The run a rendering pretends to be part of."""

    run_id: str
    conf: dict[str, Any] | None
    data_interval_start: datetime
    data_interval_end: datetime


def run_to_render_for(dag: DAG, logical_date: datetime, *, session: Session) -> RenderRun:
    """The recorded run of ``dag`` at ``logical_date``, else the manual run a trigger would create."""
    recorded = session.execute(
        select(DagRun.run_id, DagRun.conf, DagRun.data_interval_start, DagRun.data_interval_end).where(
            DagRun.dag_id == dag.dag_id, DagRun.logical_date == logical_date
        )
    ).first()
    if recorded is None:
        start, end = dag.timetable.infer_manual_data_interval(logical_date)
        return RenderRun(run_id_for(DagRunType.MANUAL, logical_date), None, start, end)
    return RenderRun(
        recorded.run_id,
        recorded.conf,
        recorded.data_interval_start or logical_date,
        recorded.data_interval_end or logical_date,
    )


def render_task(task: BaseOperator, logical_date: datetime, run: RenderRun) -> list[tuple[str, Any]]:
    """``(field, rendered value)`` for each of the task's template fields, in declaration order.

    Runs user code (macros, filters), so call it outside any database transaction.
    """
    context = task_context(
        task,
        run_id=run.run_id,
        logical_date=logical_date,
        data_interval_start=run.data_interval_start,
        data_interval_end=run.data_interval_end,
        try_number=1,
        conf=run.conf,
    )
    with running_with_context(context):
        rendered = rendered_copy(task, context)
    return [(name, getattr(rendered, name)) for name in task.template_fields]


def format_rendered(fields: list[tuple[str, Any]]) -> str:
    """Airflow's layout: a three-line header per field, then its value."""
    rule = "# " + "-" * 58
    blocks = [f"{rule}\n# property: {name}\n{rule}\n{value}\n" for name, value in fields]
    return "\n".join(blocks)
