"""Recording what executors report: a try started (queued -> running) and a try ended (final state).

Both are compare-and-set bulk updates keyed by (id, try_number), so a stale report (the task instance
was cleared, or another scheduler already failed it as a zombie) changes nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, or_, select, update
from sqlalchemy.orm import Session

from minisched.authoring.serialize import SerializedDag
from minisched.db.audit import record_events, ti_event
from minisched.models import TaskInstance, TaskInstanceState, table_of
from minisched.scheduler.dag_cache import DagStructureCache
from minisched.scheduler.executors.base import TryRequest, TryResult

S = TaskInstanceState
RunKey = tuple[str, str]
_IN_FLIGHT = [S.QUEUED, S.RUNNING]

# Hot-path statements are built once: building and cache-keying a statement costs more than running it.
_TI = table_of(TaskInstance)
_SAME_TRY = and_(_TI.c.id == bindparam("b_id"), _TI.c.try_number == bindparam("b_try"))
_MARK_RUNNING = (
    update(_TI)
    .where(_SAME_TRY, _TI.c.state == S.QUEUED)
    .values(
        state=S.RUNNING, start_date=bindparam("b_start"), hostname=bindparam("b_host"), pid=bindparam("b_pid")
    )
)
_REQUEUE = (
    update(_TI)
    .where(_SAME_TRY, _TI.c.state == S.QUEUED)
    .values(state=S.SCHEDULED, try_number=_TI.c.try_number - 1, queued_by_job_id=None)
)
_IN_FLIGHT_ROWS = select(
    _TI.c.id, _TI.c.dag_id, _TI.c.run_id, _TI.c.task_id, _TI.c.try_number, _TI.c.max_tries, _TI.c.state
).where(_TI.c.id.in_(bindparam("ids", expanding=True)))
_IN_FLIGHT_ROWS_LOCKED = _IN_FLIGHT_ROWS.with_for_update()
_RECORD_RESULT = (
    update(_TI)
    .where(_SAME_TRY, or_(_TI.c.state == S.QUEUED, _TI.c.state == S.RUNNING))
    .values(
        state=bindparam("b_state"),
        start_date=bindparam("b_start"),
        end_date=bindparam("b_end"),
        duration=bindparam("b_duration"),
        hostname=bindparam("b_host"),
        pid=bindparam("b_pid"),
        next_retry_at=bindparam("b_retry_at"),
    )
)


@dataclass(frozen=True)
class StartedTry:
    ti_id: int
    try_number: int
    dag_id: str
    run_id: str
    task_id: str
    start_date: datetime
    hostname: str
    pid: int | None = None


def mark_running(started: Sequence[StartedTry], *, session: Session, finished: Collection[int] = ()) -> None:
    """queued -> running for tries an executor has taken, in one statement.

    Tries already `finished` (their result is recorded in the same transaction) only get the event.
    """
    if not started:
        return
    still_running = [s for s in started if s.ti_id not in finished]
    if still_running:
        session.execute(
            _MARK_RUNNING,
            [
                {
                    "b_id": s.ti_id,
                    "b_try": s.try_number,
                    "b_start": s.start_date,
                    "b_host": s.hostname,
                    "b_pid": s.pid,
                }
                for s in still_running
            ],
        )
    record_events(
        (ti_event(S.RUNNING, s, s.try_number, s.start_date) for s in started),
        session=session,
    )


def requeue(requests: Sequence[TryRequest], *, session: Session, now: datetime) -> None:
    """queued -> scheduled for tries that never left the executor's queue, giving their try number back."""
    if not requests:
        return
    session.execute(_REQUEUE, [{"b_id": r.ti_id, "b_try": r.try_number} for r in requests])
    record_events(
        (ti_event(S.SCHEDULED, r, r.try_number - 1, now) for r in requests),
        session=session,
    )


def final_state(outcome: str, try_number: int, max_tries: int) -> str:
    """A failed try is retried while tries remain (max_tries = retries; try_number counts from 1)."""
    if outcome == "success":
        return S.SUCCESS
    if outcome == "skipped":
        return S.SKIPPED
    return S.UP_FOR_RETRY if try_number <= max_tries else S.FAILED


def record_results(
    results: Sequence[TryResult], *, session: Session, cache: DagStructureCache, now: datetime
) -> dict[RunKey, set[str]]:
    """Write the final state of finished tries in one statement; returns the tasks that finished, per run."""
    if not results:
        return {}
    # Locked on PostgreSQL, so the state read here is the one the UPDATE below replaces: no other
    # scheduler (recovering this try as an orphan) can change it in between.
    locking = session.get_bind().dialect.name == "postgresql"
    found = session.execute(
        _IN_FLIGHT_ROWS_LOCKED if locking else _IN_FLIGHT_ROWS, {"ids": [r.ti_id for r in results]}
    )
    rows = {row.id: row for row in found}
    dags = cache.get_many({row.dag_id for row in rows.values()}, session=session)
    params: list[dict[str, Any]] = []
    events = []
    finished: dict[RunKey, set[str]] = defaultdict(set)
    for result in results:
        row = rows.get(result.ti_id)
        if row is None or row.try_number != result.try_number or row.state not in _IN_FLIGHT:
            continue
        state = final_state(result.outcome, result.try_number, row.max_tries)
        retry_at = _retry_at(dags.get(row.dag_id), row.task_id, result) if state == S.UP_FOR_RETRY else None
        params.append(
            {
                "b_id": row.id,
                "b_try": result.try_number,
                "b_state": state,
                "b_start": result.start_date,
                "b_end": result.end_date,
                "b_duration": (result.end_date - result.start_date).total_seconds(),
                "b_host": result.hostname,
                "b_pid": result.pid,
                "b_retry_at": retry_at,
            }
        )
        extra = {"error": result.error} if result.error else None
        events.append(ti_event(state, row, result.try_number, result.end_date, extra))
        if state != S.UP_FOR_RETRY:
            finished[(row.dag_id, row.run_id)].add(row.task_id)
    if params:
        session.execute(_RECORD_RESULT, params)
    record_events(events, session=session)
    return finished


def _retry_at(dag: SerializedDag | None, task_id: str, result: TryResult) -> datetime:
    if dag is None or task_id not in dag.tasks:
        return result.end_date
    delay: timedelta = dag.tasks[task_id].next_retry_delay(result.try_number)
    return result.end_date + delay
