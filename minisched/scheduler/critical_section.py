"""The critical section: move `scheduled` task instances to `queued` within every limit.

Limits: pool open slots (occupancy derived from task-instance states, never a stored counter),
each DAG's max_active_tasks, and the executor's free capacity. Highest priority_weight first, then
the oldest run. On PostgreSQL, pool rows are locked first, then task-instance rows are taken with
SKIP LOCKED, always in that order, so schedulers never deadlock each other; each change is a
compare-and-set (`transitions.claim`), so a try can never be queued twice.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from minisched.models import RunKey
from minisched.scheduler import statements as sql
from minisched.scheduler.transitions import claim

log = logging.getLogger(__name__)
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
    only_runs: Iterable[RunKey] | None = None,
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
    won = claim(chosen, job_id=job_id, now=now, session=session)
    runs = _run_details({(row.dag_id, row.run_id) for row in chosen if row.id in won}, session=session)
    return [
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


def _pools(*, session: Session, lock_rows: bool) -> dict[str, int]:
    """Slots per pool; on PostgreSQL the rows are locked (the first lock of the critical section)."""
    return dict(session.execute(sql.POOLS_LOCKED if lock_rows else sql.POOLS).all())


def _occupancy(*, session: Session) -> tuple[Counter[str], Counter[str], dict[str, int]]:
    """Slots used per pool and task instances per DAG (queued or running), and those DAGs' limits."""
    occupied: Counter[str] = Counter()
    per_dag: Counter[str] = Counter()
    limits: dict[str, int] = {}
    for pool, dag_id, slots, count, max_active_tasks in session.execute(sql.OCCUPANCY):
        occupied[pool] += int(slots or 0)
        per_dag[dag_id] += int(count)
        limits[dag_id] = int(max_active_tasks)
    return occupied, per_dag, limits


def _candidates(
    *,
    session: Session,
    limit: int,
    lock_rows: bool,
    only_runs: Iterable[RunKey] | None,
    open_pools: set[str] | None,
    skip_dags: set[str],
) -> list[Any]:
    """Scheduled task instances of running runs, best first; only the columns the limits need."""
    params: dict[str, Any] = {"skip_dags": sorted(skip_dags), "limit": limit}
    if open_pools is not None:
        params["open_pools"] = sorted(open_pools)
    if only_runs is not None:
        params["runs"] = sorted(only_runs)
    statement = sql.candidates(only_runs is not None, lock_rows, open_pools is not None)
    return list(session.execute(statement, params).all())


def _run_details(keys: set[RunKey], *, session: Session) -> dict[RunKey, dict[str, Any]]:
    """What a try needs from its run and DAG row, once per run rather than once per task instance."""
    if not keys:
        return {}
    rows = session.execute(sql.RUN_DETAILS, {"runs": sorted(keys)}).all()
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


def warn_about_stuck_pools(*, session: Session) -> None:
    """Say (once per pool) why scheduled tasks cannot be queued: their pool is missing or too small."""
    for pool, slots, needed in session.execute(sql.STUCK_IN_POOLS):
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
