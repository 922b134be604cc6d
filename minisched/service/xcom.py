"""A task instance's XCom values, for `GET .../xcomEntries`."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from minisched.models.xcom import XCom
from minisched.service.errors import NotFound
from minisched.service.paging import Page, count, ordered
from minisched.service.task_instances import get_task_instance


def list_entries(
    dag_id: str, run_id: str, task_id: str, *, session: Session, page: Page
) -> tuple[list[XCom], int]:
    get_task_instance(dag_id, run_id, task_id, session=session)
    query = select(XCom).where(XCom.dag_id == dag_id, XCom.run_id == run_id, XCom.task_id == task_id)
    total = count(query, session=session)
    columns = {"key": XCom.key, "timestamp": XCom.timestamp, "map_index": XCom.map_index}
    return list(session.scalars(ordered(query, page, columns, "key", (XCom.id,)))), total


def get_entry(dag_id: str, run_id: str, task_id: str, key: str, *, session: Session) -> XCom:
    row = session.scalar(
        select(XCom).where(
            XCom.dag_id == dag_id, XCom.run_id == run_id, XCom.task_id == task_id, XCom.key == key
        )
    )
    if row is None:
        get_task_instance(dag_id, run_id, task_id, session=session)
        raise NotFound(f"task {task_id!r} of run {run_id!r} has no XCom value {key!r}")
    return row
