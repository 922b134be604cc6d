"""`db clean`: delete old history in small transactions, never anything still queued or running.

Each batch takes up to `batch_size` ids and deletes them in its own short transaction, so the database
(and a scheduler next to it) never waits on one giant delete. A run's task instances and XCom rows go
with it (ON DELETE CASCADE, enforced on SQLite too). The latest scheduled run of every DAG is kept, as
Airflow's `db clean` keeps it: the scheduler starts again from it when a DAG's schedule changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, exists, func, not_, select
from sqlalchemy.orm import Session, aliased

from minisched.db.retry import run_with_retries
from minisched.db.session import create_session
from minisched.models import DagRun, DagRunType, ImportError_, Job, JobState, Log, TaskInstance
from minisched.models.base import Base
from minisched.models.state import FINISHED_RUN_STATES

TABLES = ("dag_run", "log", "import_error", "job")
DEFAULT_BATCH_SIZE = 1000


@dataclass(frozen=True)
class Target:
    table: str
    model: type[Base]
    id_column: Any
    condition: ColumnElement[bool]


def target(table: str, before: datetime) -> Target:
    """What `db clean` deletes from `table`: finished rows older than `before`."""
    if table == "dag_run":
        return Target(table, DagRun, DagRun.id, _old_finished_runs(before))
    if table == "log":
        return Target(table, Log, Log.id, Log.dttm < before)
    if table == "import_error":
        return Target(table, ImportError_, ImportError_.id, ImportError_.timestamp < before)
    if table == "job":
        return Target(table, Job, Job.id, and_(Job.state != JobState.RUNNING, Job.latest_heartbeat < before))
    raise ValueError(f"db clean does not know table {table!r}; choose from {', '.join(TABLES)}")


def _old_finished_runs(before: datetime) -> ColumnElement[bool]:
    newer = aliased(DagRun)
    latest_scheduled = and_(
        DagRun.run_type == DagRunType.SCHEDULED,
        ~exists().where(
            newer.dag_id == DagRun.dag_id,
            newer.run_type == DagRunType.SCHEDULED,
            newer.logical_date > DagRun.logical_date,
        ),
    )
    return and_(
        DagRun.state.in_(sorted(FINISHED_RUN_STATES)), DagRun.end_date < before, not_(latest_scheduled)
    )


def count_rows(tables: Iterable[str], before: datetime, *, session: Session) -> dict[str, int]:
    """How many rows a clean would delete, per table; `task_instance` counts those going with runs."""
    counts: dict[str, int] = {}
    for table in tables:
        found = target(table, before)
        counts[table] = (
            session.scalar(select(func.count()).select_from(found.model).where(found.condition)) or 0
        )
        if table == "dag_run":
            counts["task_instance"] = _task_instances_of(
                select(DagRun.id).where(found.condition), session=session
            )
    return counts


def _task_instances_of(run_ids: Any, *, session: Session) -> int:
    query = (
        select(func.count())
        .select_from(TaskInstance)
        .join(DagRun, and_(DagRun.dag_id == TaskInstance.dag_id, DagRun.run_id == TaskInstance.run_id))
        .where(DagRun.id.in_(run_ids))
    )
    return session.scalar(query) or 0


def delete_batch(found: Target, *, session: Session, batch_size: int) -> tuple[int, int]:
    """Delete up to `batch_size` rows of `found`; returns (rows deleted, task instances that went along)."""
    ids: Sequence[int] = session.scalars(
        select(found.id_column).where(found.condition).order_by(found.id_column).limit(batch_size)
    ).all()
    if not ids:
        return 0, 0
    cascaded = _task_instances_of(list(ids), session=session) if found.table == "dag_run" else 0
    # The condition again: a run cleared (queued again) since the SELECT is no longer finished.
    result = session.execute(
        delete(found.model)
        .where(found.id_column.in_(list(ids)), found.condition)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0), cascaded


def clean_tables(
    tables: Iterable[str],
    before: datetime,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_batch: Callable[[str, int], None] | None = None,
) -> dict[str, int]:
    """Delete old rows table by table, one short transaction per batch; returns rows deleted per table."""
    deleted: dict[str, int] = {}
    for table in tables:
        found = target(table, before)
        deleted[table] = 0
        if table == "dag_run":
            deleted["task_instance"] = 0
        while True:
            rows, cascaded = run_with_retries(partial(_one_batch, found, batch_size))
            if not rows:
                break
            deleted[table] += rows
            if table == "dag_run":
                deleted["task_instance"] += cascaded
            if on_batch is not None:
                on_batch(table, deleted[table])
    return deleted


def _one_batch(found: Target, batch_size: int) -> tuple[int, int]:
    with create_session() as session:
        return delete_batch(found, session=session, batch_size=batch_size)
