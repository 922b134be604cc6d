"""The `xcom` table: values pulled by tasks and listed by `tasks xcom`.

Rows are written by the scheduler together with the try results that carry them (see the result
recording), never by a worker, so a value appears exactly when its try's result does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from minisched.db.session import create_session
from minisched.models import XCom
from minisched.models.xcom import NOT_MAPPED


def read_values(dag_id: str, run_id: str, task_ids: Sequence[str], key: str) -> dict[str, Any]:
    """The `key` values of `task_ids` in one run, by task id, in one short read of its own.

    A mapped task's value is the list of its instances' values, in map_index order (as Airflow's
    pull of a mapped task without map_indexes).
    """
    with create_session() as session:
        rows = session.execute(
            select(XCom.task_id, XCom.map_index, XCom.value)
            .where(
                XCom.dag_id == dag_id,
                XCom.run_id == run_id,
                XCom.task_id.in_(list(task_ids)),
                XCom.key == key,
            )
            .order_by(XCom.task_id, XCom.map_index)
        )
        found: dict[str, Any] = {}
        for task_id, map_index, value in rows:
            if map_index == NOT_MAPPED:
                found[task_id] = value
            else:
                found.setdefault(task_id, []).append(value)
        return found


def list_values(
    dag_id: str, run_id: str, task_id: str | None = None, *, session: Session
) -> list[dict[str, Any]]:
    """Every value of a run (or of one of its tasks), in task, map index and key order."""
    query = select(XCom.task_id, XCom.map_index, XCom.key, XCom.value, XCom.timestamp).where(
        XCom.dag_id == dag_id, XCom.run_id == run_id
    )
    if task_id is not None:
        query = query.where(XCom.task_id == task_id)
    rows = session.execute(query.order_by(XCom.task_id, XCom.map_index, XCom.key))
    return [row._asdict() for row in rows]
