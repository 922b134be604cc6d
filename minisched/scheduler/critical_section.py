"""The critical section: move `scheduled` task instances to `queued` within every limit.

Limits: pool open slots (occupancy derived from task-instance states, never a stored counter),
each DAG's max_active_tasks, and the executor's free capacity. Highest priority_weight first, then
the oldest run. On PostgreSQL, pool rows are locked first, then task-instance rows are taken with
SKIP LOCKED, always in that order, so schedulers never deadlock each other; each change is a
compare-and-set on the state, so a try can never be queued twice.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select, tuple_, update
from sqlalchemy.orm import Session

from minisched.db.audit import record_events, ti_event
from minisched.models import DagModel, DagRun, DagRunState, Pool, TaskInstance, TaskInstanceState
from minisched.models.state import ACTIVE_TI_STATES

log = logging.getLogger(__name__)
S = TaskInstanceState
_warned_missing_pools: set[str] = set()


@dataclass(frozen=True)
class QueuedTi:
    """A task instance this scheduler just queued, with what an executor needs to run its try."""

    id: int
    dag_id: str
    run_id: str
    task_id: str
    try_number: int
    fileloc: str
    logical_date: datetime
    data_interval_start: datetime | None
    data_interval_end: datetime | None
    conf: dict[str, Any] | None


def queue_scheduled(
    *,
    session: Session,
    job_id: int,
    capacity: int,
    now: datetime,
    lock_rows: bool,
    only_runs: Iterable[tuple[str, str]] | None = None,
    respect_limits: bool = True,
) -> list[QueuedTi]:
    """Queue up to `capacity` scheduled task instances; returns them with their new try numbers."""
    if capacity <= 0:
        return []
    full_pools: set[str] = set()
    full_dags: set[str] = set()
    if respect_limits:
        pools = _lock_pools(session=session, lock_rows=lock_rows)
        occupied, active_per_dag, dag_limits = _occupancy(session=session)
        # As Airflow's "starved pools/dags": leave out what cannot take a task now, so the LIMIT is
        # spent on task instances that can be queued.
        full_pools = {pool for pool, slots in pools.items() if occupied[pool] >= slots}
        full_dags = {dag_id for dag_id, limit in dag_limits.items() if active_per_dag[dag_id] >= limit}
        limit = max(capacity * 2, 16)
    else:
        pools, occupied, active_per_dag, limit = {}, Counter(), Counter(), capacity
    candidates = _candidates(
        session=session,
        limit=limit,
        lock_rows=lock_rows,
        only_runs=only_runs,
        skip_pools=full_pools,
        skip_dags=full_dags,
    )
    chosen: list[Any] = []
    for row in candidates:
        if len(chosen) >= capacity:
            break
        if not respect_limits:
            chosen.append(row)
            continue
        slots = pools.get(row.pool)
        if slots is None:
            _warn_missing_pool(row.pool)
            continue
        if occupied[row.pool] + row.pool_slots > slots or active_per_dag[row.dag_id] >= row.max_active_tasks:
            continue
        occupied[row.pool] += row.pool_slots
        active_per_dag[row.dag_id] += 1
        chosen.append(row)
    if not chosen:
        return []
    won = _compare_and_set_queued([row.id for row in chosen], job_id=job_id, now=now, session=session)
    runs = _run_details({(row.dag_id, row.run_id) for row in chosen if row.id in won}, session=session)
    queued = [
        QueuedTi(
            id=row.id,
            dag_id=row.dag_id,
            run_id=row.run_id,
            task_id=row.task_id,
            try_number=won[row.id],
            **runs[(row.dag_id, row.run_id)],
        )
        for row in chosen
        if row.id in won
    ]
    record_events(
        (ti_event(S.QUEUED, q, q.try_number, now) for q in queued),
        session=session,
    )
    return queued


def _lock_pools(*, session: Session, lock_rows: bool) -> dict[str, int]:
    query = select(Pool.pool, Pool.slots).order_by(Pool.id)
    if lock_rows:
        query = query.with_for_update()
    return dict(session.execute(query).all())


def _occupancy(*, session: Session) -> tuple[Counter[str], Counter[str], dict[str, int]]:
    """Slots used per pool and task instances per DAG (queued or running), and those DAGs' limits."""
    rows = session.execute(
        select(
            TaskInstance.pool,
            TaskInstance.dag_id,
            func.sum(TaskInstance.pool_slots),
            func.count(),
            func.max(DagModel.max_active_tasks),
        )
        .join(DagModel, DagModel.dag_id == TaskInstance.dag_id)
        .where(TaskInstance.state.in_(list(ACTIVE_TI_STATES)))
        .group_by(TaskInstance.pool, TaskInstance.dag_id)
    )
    occupied: Counter[str] = Counter()
    per_dag: Counter[str] = Counter()
    limits: dict[str, int] = {}
    for pool, dag_id, slots, count, max_active_tasks in rows:
        occupied[pool] += int(slots or 0)
        per_dag[dag_id] += int(count)
        limits[dag_id] = int(max_active_tasks)
    return occupied, per_dag, limits


def _candidates(
    *,
    session: Session,
    limit: int,
    lock_rows: bool,
    only_runs: Iterable[tuple[str, str]] | None,
    skip_pools: set[str],
    skip_dags: set[str],
) -> list[Any]:
    """Scheduled task instances of running runs, best first; only the columns the limits need."""
    query = (
        select(
            TaskInstance.id,
            TaskInstance.dag_id,
            TaskInstance.run_id,
            TaskInstance.task_id,
            TaskInstance.pool,
            TaskInstance.pool_slots,
            DagModel.max_active_tasks,
        )
        .join(DagRun, and_(DagRun.dag_id == TaskInstance.dag_id, DagRun.run_id == TaskInstance.run_id))
        .join(DagModel, DagModel.dag_id == TaskInstance.dag_id)
        .where(TaskInstance.state == S.SCHEDULED, DagRun.state == DagRunState.RUNNING)
        .order_by(TaskInstance.priority_weight.desc(), DagRun.logical_date, TaskInstance.id)
        .limit(limit)
    )
    if only_runs is not None:
        query = query.where(tuple_(TaskInstance.dag_id, TaskInstance.run_id).in_(sorted(only_runs)))
    if skip_pools:
        query = query.where(TaskInstance.pool.not_in(sorted(skip_pools)))
    if skip_dags:
        query = query.where(TaskInstance.dag_id.not_in(sorted(skip_dags)))
    if lock_rows:
        query = query.with_for_update(of=TaskInstance, skip_locked=True)
    return list(session.execute(query).all())


def _run_details(keys: set[tuple[str, str]], *, session: Session) -> dict[tuple[str, str], dict[str, Any]]:
    """What a try needs from its run and DAG row, once per run rather than once per task instance."""
    if not keys:
        return {}
    rows = session.execute(
        select(
            DagRun.dag_id,
            DagRun.run_id,
            DagModel.fileloc,
            DagRun.logical_date,
            DagRun.data_interval_start,
            DagRun.data_interval_end,
            DagRun.conf,
        )
        .join(DagModel, DagModel.dag_id == DagRun.dag_id)
        .where(tuple_(DagRun.dag_id, DagRun.run_id).in_(sorted(keys)))
    ).all()
    return {
        (row.dag_id, row.run_id): {
            "fileloc": row.fileloc,
            "logical_date": row.logical_date,
            "data_interval_start": row.data_interval_start,
            "data_interval_end": row.data_interval_end,
            "conf": row.conf,
        }
        for row in rows
    }


def _compare_and_set_queued(
    ids: list[int], *, job_id: int, now: datetime, session: Session
) -> dict[int, int]:
    """scheduled -> queued, consuming a try number; returns {id: try_number} of the rows this call won."""
    result = session.execute(
        update(TaskInstance)
        .where(TaskInstance.id.in_(ids), TaskInstance.state == S.SCHEDULED)
        .values(
            state=S.QUEUED,
            try_number=TaskInstance.try_number + 1,
            queued_by_job_id=job_id,
            queued_dttm=now,
            next_retry_at=None,
        )
        .returning(TaskInstance.id, TaskInstance.try_number)
        .execution_options(synchronize_session=False)
    )
    return dict(result.all())


def _warn_missing_pool(pool: str) -> None:
    if pool not in _warned_missing_pools:
        _warned_missing_pools.add(pool)
        log.warning(
            "pool %r does not exist: its tasks stay scheduled; create it with `minisched pools set`", pool
        )
