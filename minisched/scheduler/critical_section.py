"""The critical section: move `scheduled` task instances to `queued` within every limit.

Limits: pool open slots (occupancy derived from task-instance states, never a stored counter),
each DAG's max_active_tasks, and the executor's free capacity. Highest priority_weight first, then
the oldest run. On PostgreSQL, pool rows are locked first, then task-instance rows are taken with
SKIP LOCKED, always in that order, so schedulers never deadlock each other; each change is a
compare-and-set on the state, so a try can never be queued twice.
"""

from __future__ import annotations

import functools
import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, Select, and_, bindparam, func, or_, select, tuple_, update
from sqlalchemy.orm import Session

from minisched.db.audit import record_events, ti_event
from minisched.models import DagModel, DagRun, DagRunState, Pool, TaskInstance, TaskInstanceState, table_of
from minisched.models.state import ACTIVE_TI_STATES
from minisched.scheduler.dagruns import SCHEDULER_DRIVES_RUN

log = logging.getLogger(__name__)
S = TaskInstanceState
_warned_pools: set[str] = set()


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
    open_pools: set[str] = set()
    full_dags: set[str] = set()
    if respect_limits:
        pools = _pools(session=session, lock_rows=lock_rows)
        occupied, active_per_dag, dag_limits = _occupancy(session=session)
        # As Airflow's "starved pools/dags": leave out what cannot take a task now (full or missing
        # pools, DAGs at max_active_tasks), so the LIMIT is spent on task instances that can be queued.
        open_pools = {pool for pool, slots in pools.items() if occupied[pool] < slots}
        full_dags = {dag_id for dag_id, limit in dag_limits.items() if active_per_dag[dag_id] >= limit}
        limit = max(capacity * 2, 16)
    else:
        pools, occupied, active_per_dag, limit = {}, Counter(), Counter(), capacity
    candidates = _candidates(
        session=session,
        limit=limit,
        lock_rows=lock_rows,
        only_runs=only_runs,
        open_pools=open_pools if respect_limits else None,
        skip_dags=full_dags,
    )
    chosen: list[Any] = []
    for row in candidates:
        if len(chosen) >= capacity:
            break
        if not respect_limits:
            chosen.append(row)
            continue
        slots = pools[row.pool]
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


_TI = table_of(TaskInstance)
_RUN = table_of(DagRun)
_DAG = table_of(DagModel)
_POOL = table_of(Pool)
_RUN_OF_TI = and_(_RUN.c.dag_id == _TI.c.dag_id, _RUN.c.run_id == _TI.c.run_id)

# Built once (the scheduler runs them every loop): statement construction costs more than execution.
_POOLS = select(_POOL.c.pool, _POOL.c.slots).order_by(_POOL.c.id)
_POOLS_LOCKED = _POOLS.with_for_update()
_OCCUPANCY = (
    select(
        _TI.c.pool, _TI.c.dag_id, func.sum(_TI.c.pool_slots), func.count(), func.max(_DAG.c.max_active_tasks)
    )
    .join(_DAG, _DAG.c.dag_id == _TI.c.dag_id)
    .where(_TI.c.state.in_(sorted(ACTIVE_TI_STATES)))
    .group_by(_TI.c.pool, _TI.c.dag_id)
)
_RUN_DETAILS = (
    select(
        _RUN.c.dag_id,
        _RUN.c.run_id,
        _DAG.c.fileloc,
        _RUN.c.logical_date,
        _RUN.c.data_interval_start,
        _RUN.c.data_interval_end,
        _RUN.c.conf,
    )
    .join(_DAG, _DAG.c.dag_id == _RUN.c.dag_id)
    .where(tuple_(_RUN.c.dag_id, _RUN.c.run_id).in_(bindparam("runs", expanding=True)))
)
_QUEUE = (
    update(_TI)
    .where(_TI.c.id.in_(bindparam("ids", expanding=True)), _TI.c.state == S.SCHEDULED)
    .values(
        state=S.QUEUED,
        try_number=_TI.c.try_number + 1,
        queued_by_job_id=bindparam("job_id"),
        queued_dttm=bindparam("now"),
        next_retry_at=None,
    )
    .returning(_TI.c.id, _TI.c.try_number)
)


@functools.cache
def _candidates_statement(only_some_runs: bool, lock_rows: bool, pooled: bool) -> Select[Any]:
    query = (
        select(
            _TI.c.id,
            _TI.c.dag_id,
            _TI.c.run_id,
            _TI.c.task_id,
            _TI.c.pool,
            _TI.c.pool_slots,
            _DAG.c.max_active_tasks,
        )
        .join(_RUN, _RUN_OF_TI)
        .join(_DAG, _DAG.c.dag_id == _TI.c.dag_id)
        .where(
            _TI.c.state == S.SCHEDULED,
            _RUN.c.state == DagRunState.RUNNING,
            _TI.c.dag_id.not_in(bindparam("skip_dags", expanding=True)),
        )
        .order_by(_TI.c.priority_weight.desc(), _RUN.c.logical_date, _TI.c.id)
        .limit(bindparam("limit", type_=Integer))
    )
    if pooled:  # pools with a free slot, and no task that needs more slots than its pool has
        query = query.join(_POOL, _POOL.c.pool == _TI.c.pool).where(
            _TI.c.pool.in_(bindparam("open_pools", expanding=True)), _TI.c.pool_slots <= _POOL.c.slots
        )
    if only_some_runs:
        query = query.where(tuple_(_TI.c.dag_id, _TI.c.run_id).in_(bindparam("runs", expanding=True)))
    else:
        query = query.where(SCHEDULER_DRIVES_RUN)
    if lock_rows:
        query = query.with_for_update(of=_TI, skip_locked=True)
    return query


def _pools(*, session: Session, lock_rows: bool) -> dict[str, int]:
    """Slots per pool; on PostgreSQL the rows are locked (the first lock of the critical section)."""
    return dict(session.execute(_POOLS_LOCKED if lock_rows else _POOLS).all())


def _occupancy(*, session: Session) -> tuple[Counter[str], Counter[str], dict[str, int]]:
    """Slots used per pool and task instances per DAG (queued or running), and those DAGs' limits."""
    occupied: Counter[str] = Counter()
    per_dag: Counter[str] = Counter()
    limits: dict[str, int] = {}
    for pool, dag_id, slots, count, max_active_tasks in session.execute(_OCCUPANCY):
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
    open_pools: set[str] | None,
    skip_dags: set[str],
) -> list[Any]:
    """Scheduled task instances of running runs, best first; only the columns the limits need."""
    params: dict[str, Any] = {"skip_dags": sorted(skip_dags), "limit": limit}
    if open_pools is not None:
        params["open_pools"] = sorted(open_pools)
    if only_runs is not None:
        params["runs"] = sorted(only_runs)
    statement = _candidates_statement(only_runs is not None, lock_rows, open_pools is not None)
    return list(session.execute(statement, params).all())


def _run_details(keys: set[tuple[str, str]], *, session: Session) -> dict[tuple[str, str], dict[str, Any]]:
    """What a try needs from its run and DAG row, once per run rather than once per task instance."""
    if not keys:
        return {}
    rows = session.execute(_RUN_DETAILS, {"runs": sorted(keys)}).all()
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
    return dict(session.execute(_QUEUE, {"ids": ids, "job_id": job_id, "now": now}).all())


_STUCK_IN_POOLS = (
    select(_TI.c.pool, _POOL.c.slots, func.max(_TI.c.pool_slots))
    .outerjoin(_POOL, _POOL.c.pool == _TI.c.pool)
    .where(_TI.c.state == S.SCHEDULED)
    .group_by(_TI.c.pool, _POOL.c.slots)
    .having(or_(_POOL.c.slots.is_(None), func.max(_TI.c.pool_slots) > _POOL.c.slots))
)


def warn_about_stuck_pools(*, session: Session) -> None:
    """Say (once per pool) why scheduled tasks cannot be queued: their pool is missing or too small."""
    for pool, slots, needed in session.execute(_STUCK_IN_POOLS):
        if pool in _warned_pools:
            continue
        _warned_pools.add(pool)
        if slots is None:
            log.warning(
                "pool %r does not exist: its tasks stay scheduled; create it with `minisched pools set`", pool
            )
        else:
            log.warning(
                "a task needs %s slots of pool %r, which has %s: it stays scheduled", needed, pool, slots
            )
