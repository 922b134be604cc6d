"""A task instance's XCom values, for `GET .../xcomEntries`."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from minisched.models import TaskInstance
from minisched.models.xcom import XCom
from minisched.service.errors import NotFound
from minisched.service.paging import Page, count, ordered
from minisched.service.task_instances import get_task_instance


def list_entries(
    dag_id: str, run_id: str, task_id: str, *, session: Session, page: Page, map_index: int | None = None
) -> tuple[list[XCom], int]:
    """The entries of every instance of the task, or of the one `map_index` names."""
    query = select(XCom).where(XCom.dag_id == dag_id, XCom.run_id == run_id, XCom.task_id == task_id)
    if map_index is None:
        _any_instance(dag_id, run_id, task_id, session=session)
    else:
        get_task_instance(dag_id, run_id, task_id, session=session, map_index=map_index)
        query = query.where(XCom.map_index == map_index)
    total = count(query, session=session)
    columns = {"key": XCom.key, "timestamp": XCom.timestamp, "map_index": XCom.map_index}
    return list(session.scalars(ordered(query, page, columns, "key", (XCom.map_index, XCom.id)))), total


def get_entry(
    dag_id: str, run_id: str, task_id: str, key: str, *, session: Session, map_index: int = -1
) -> XCom:
    """One entry of one instance (-1: the task is not mapped), as Airflow's getXcomEntry."""
    row = session.scalar(
        select(XCom).where(
            XCom.dag_id == dag_id,
            XCom.run_id == run_id,
            XCom.task_id == task_id,
            XCom.map_index == map_index,
            XCom.key == key,
        )
    )
    if row is None:
        get_task_instance(dag_id, run_id, task_id, session=session, map_index=map_index)
        instance = f" (map_index {map_index})" if map_index >= 0 else ""
        raise NotFound(f"task {task_id!r}{instance} of run {run_id!r} has no XCom value {key!r}")
    return row


def _any_instance(dag_id: str, run_id: str, task_id: str, *, session: Session) -> None:
    """NotFound unless the run has the task (mapped or not)."""
    where = (TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id, TaskInstance.task_id == task_id)
    if session.scalar(select(TaskInstance.id).where(*where).limit(1)) is None:
        get_task_instance(dag_id, run_id, task_id, session=session)  # says whether the run or task is missing
