"""A try's life: the five transitions of a task instance's try, and where retries are decided.

```
                 claim                 start                 finish
    scheduled ---------> queued ----------------> running ------------> success | failed | skipped
        ^                  |                                        \\-> up_for_retry (retries left)
        +---- withdraw ----+        reap: queued or running of a dead job -> failed | up_for_retry
```

(How a task instance becomes `scheduled` — trigger rules, depends_on_past, a retry falling due — is
`scheduling`'s and `deps`' business.)

The claim runs in the critical section (`queue_scheduled`), which picks the scheduled task instances
that fit every limit: pool open slots (occupancy derived from task-instance states, never a stored
counter), each DAG's max_active_tasks, and the executor's free capacity; highest priority_weight first,
then the oldest run. On PostgreSQL, pool rows are locked first, then task-instance rows are taken with
SKIP LOCKED, always in that order, so schedulers never deadlock each other.

Every transition is one compare-and-set keyed on `(id, try_number)` and the state it expects (the
statements are in `statements`): a second report of the same try, a report about a try that was
cleared or reaped meanwhile, or a second scheduler doing the same, changes nothing. Each takes a
session and plain records (`TryStarted`, `TryResult`, `TryRequest`), nothing of the scheduler loop, so
a worker on another machine can call `start` and `finish` for its own tries. Each writes the `log` row
of every change it made, and none commits: the caller owns the transaction.
"""

from __future__ import annotations

import logging
import os
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.orm import Session

from minisched.authoring.serialize import SerializedDag
from minisched.db.audit import TaskInstanceKey, record_events, ti_event
from minisched.db.session import is_postgresql
from minisched.models import RunKey, TaskInstanceState
from minisched.models.job import CELERY_WORKER_JOB_TYPE
from minisched.scheduler import statements as sql
from minisched.scheduler.dag_cache import DagStructureCache
from minisched.scheduler.executors.base import TryOutcome, TryResult, TryStarted, will_retry
from minisched.scheduler.executors.logs import append_log_line, read_try_record

log = logging.getLogger(__name__)
_WARNED_POOLS: set[str] = set()
S = TaskInstanceState
_IN_FLIGHT = (S.QUEUED, S.RUNNING)
_ENDED = (S.SUCCESS, S.FAILED, S.SKIPPED)


class Claimable(TaskInstanceKey, Protocol):
    """A scheduled task instance as the critical section read it (its try number not yet consumed)."""

    @property
    def id(self) -> int: ...
    @property
    def try_number(self) -> int: ...


def claim(tries: Sequence[Claimable], *, job_id: int, now: datetime, session: Session) -> dict[int, int]:
    """scheduled -> queued for `job_id`, consuming a try number; returns {id: new try_number} of the
    rows this call won.

    Eligible: the row is still `scheduled` under the try number the caller read. A row that another
    scheduler claimed, or that was cleared or decided otherwise meanwhile, is left alone.
    """
    if not tries:
        return {}
    params: dict[str, Any] = {"job_id": job_id, "now": now}
    if len(tries) == 1:
        statement, params["b_id"], params["b_try"] = sql.CLAIM_ONE, tries[0].id, tries[0].try_number
    else:
        statement, params["tries"] = sql.CLAIM, [(t.id, t.try_number) for t in tries]
    won: dict[int, int] = dict(session.execute(statement, params).all())
    record_events((ti_event(S.QUEUED, t, won[t.id], now) for t in tries if t.id in won), session=session)
    return won


# -- scheduled -> queued under pools and limits: the critical section ------------------------------


@dataclass(frozen=True)
class QueuedTi:
    """A task instance this scheduler just queued, with what an executor needs to run its try."""

    id: int
    dag_id: str
    run_id: str
    task_id: str
    try_number: int
    max_tries: int
    fileloc: str
    logical_date: datetime
    data_interval_start: datetime | None
    data_interval_end: datetime | None
    conf: dict[str, Any] | None
    map_index: int = -1


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
    limits = _Limits.read(session=session, lock_rows=lock_rows) if respect_limits else None
    candidates = _candidates(
        session=session,
        limit=capacity if limits is None else max(capacity * 2, 16),
        lock_rows=lock_rows,
        only_runs=only_runs,
        # As Airflow's "starved pools/dags": leave out what cannot take a task now (full or missing
        # pools, DAGs at max_active_tasks), so the LIMIT is spent on task instances that can be queued.
        open_pools=None if limits is None else limits.open_pools(),
        skip_dags=set() if limits is None else limits.full_dags(),
    )
    chosen: list[Any] = []
    for row in candidates:
        if len(chosen) >= capacity:
            break
        if limits is None or limits.take(row):
            chosen.append(row)
    if not chosen:
        return []
    won = claim(chosen, job_id=job_id, now=now, session=session)
    return [
        QueuedTi(
            id=row.id,
            dag_id=row.dag_id,
            run_id=row.run_id,
            task_id=row.task_id,
            try_number=won[row.id],
            map_index=row.map_index,
            max_tries=row.max_tries,
            fileloc=row.fileloc,
            logical_date=row.logical_date,
            data_interval_start=row.data_interval_start,
            data_interval_end=row.data_interval_end,
            conf=row.conf,
        )
        for row in chosen
        if row.id in won
    ]


@dataclass
class _Limits:
    """Pool slots and each DAG's max_active_tasks, as the critical section read them, counted up as it
    chooses task instances."""

    pools: dict[str, int]
    occupied: Counter[str]
    active_per_dag: Counter[str]
    dag_limits: dict[str, int]

    @classmethod
    def read(cls, *, session: Session, lock_rows: bool) -> _Limits:
        if not lock_rows:  # one statement: nothing to lock first
            rows = session.execute(sql.POOLS_AND_OCCUPANCY).all()
            pools = {pool: slots for pool, dag_id, slots, *_ in rows if dag_id is None}
            return cls(pools, *_occupancy([row for row in rows if row[1] is not None]))
        pools = _pools(session=session, lock_rows=lock_rows)
        return cls(pools, *_occupancy(session.execute(sql.OCCUPANCY)))

    def open_pools(self) -> set[str]:
        return {pool for pool, slots in self.pools.items() if self.occupied[pool] < slots}

    def full_dags(self) -> set[str]:
        return {dag_id for dag_id, limit in self.dag_limits.items() if self.active_per_dag[dag_id] >= limit}

    def take(self, row: Any) -> bool:
        """Count `row` in if it fits its pool's free slots and its DAG's max_active_tasks."""
        if (
            self.occupied[row.pool] + row.pool_slots > self.pools[row.pool]
            or self.active_per_dag[row.dag_id] >= row.max_active_tasks
        ):
            return False
        self.occupied[row.pool] += row.pool_slots
        self.active_per_dag[row.dag_id] += 1
        return True


def _pools(*, session: Session, lock_rows: bool) -> dict[str, int]:
    """Slots per pool; on PostgreSQL the rows are locked (the first lock of the critical section)."""
    return dict(session.execute(sql.POOLS_LOCKED if lock_rows else sql.POOLS).all())


def _occupancy(rows: Iterable[Any]) -> tuple[Counter[str], Counter[str], dict[str, int]]:
    """Slots used per pool and task instances per DAG (queued or running), and those DAGs' limits,
    from the rows of `OCCUPANCY`."""
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
    only_runs: Iterable[RunKey] | None,
    open_pools: set[str] | None,
    skip_dags: set[str],
) -> list[Any]:
    """Scheduled task instances of running runs, best first, with the columns the limits and the tries
    need (their run's dates and conf, their DAG's file): one statement, not one more per loop."""
    params: dict[str, Any] = {"limit": limit}
    if skip_dags:
        params["skip_dags"] = sorted(skip_dags)
    if open_pools is not None:
        params["open_pools"] = sorted(open_pools)
    if only_runs is not None:
        params["runs"] = sorted(only_runs)
    statement = sql.candidates(only_runs is not None, lock_rows, open_pools is not None, bool(skip_dags))
    return list(session.execute(statement, params).all())


def warn_about_stuck_pools(*, session: Session) -> None:
    """Say (once per pool) why scheduled tasks cannot be queued: their pool is missing or too small."""
    for pool, slots, needed in session.execute(sql.STUCK_IN_POOLS):
        if pool in _WARNED_POOLS:
            continue
        _WARNED_POOLS.add(pool)
        if slots is None:
            log.warning(
                "pool %r does not exist: its tasks stay scheduled; create it with `minisched pools set`", pool
            )
        else:
            log.warning(
                "a task needs %s slots of pool %r, which has %s: it stays scheduled", needed, pool, slots
            )


# -- queued -> running, running -> final -----------------------------------------------------------


def start(
    started: Sequence[TryStarted], *, job_id: int | None, session: Session, finished: Collection[int] = ()
) -> None:
    """queued -> running, with the host, pid and start time each try reported.

    Eligible: the row is `queued` under the same try number, claimed by `job_id`. A retry that starts
    drops the XCom values its task instance's earlier tries pushed, as Airflow clears them when a try
    runs: a downstream never reads a failed try's value while its retry runs. Tries already
    `finished` (their result is recorded in the same transaction, and `finish` replaces the values)
    only get their `running` log row.
    """
    if not started:
        return
    still_running = [s for s in started if s.ti_id not in finished]
    if still_running:
        session.execute(
            sql.START,
            [
                {
                    "b_id": s.ti_id,
                    "b_try": s.try_number,
                    "b_job": job_id,
                    "b_start": s.start_date,
                    "b_host": s.hostname,
                    "b_pid": s.pid,
                }
                for s in still_running
            ],
        )
        retries = [(s.ti_id, s.try_number) for s in still_running if s.try_number > 1]
        if retries:
            session.execute(sql.CLEAR_XCOM_OF_STARTED, {"tries": retries, "b_job": job_id})
    record_events((ti_event(S.RUNNING, s, s.try_number, s.start_date) for s in started), session=session)


def start_taking_over(
    started: TryStarted, *, job_id: int | None, owner_job_id: int, session: Session
) -> bool:
    """`start` for one try, made by the process that runs it (a Celery worker): queued -> running under
    `job_id` (the job that claimed it), and from then on owned by `owner_job_id`, in one statement.
    False, with nothing written, when the row was not that queued try. A retry drops its earlier tries'
    XCom values in the same transaction, as `start` does."""
    params = {
        "b_id": started.ti_id,
        "b_try": started.try_number,
        "b_job": job_id,
        "b_owner": owner_job_id,
        "b_start": started.start_date,
        "b_host": started.hostname,
        "b_pid": started.pid,
    }
    if session.execute(sql.START_TAKING_OVER, params).first() is None:
        return False
    if started.try_number > 1:
        tries = [(started.ti_id, started.try_number)]
        session.execute(sql.CLEAR_XCOM_OF_STARTED, {"tries": tries, "b_job": owner_job_id})
    record_events([ti_event(S.RUNNING, started, started.try_number, started.start_date)], session=session)
    return True


def is_running_under_owner(started: TryStarted, *, owner_job_id: int, session: Session) -> bool:
    """Whether this try is `running` under its number, owned by `owner_job_id`: what an earlier
    `start_taking_over` of that job leaves behind once its COMMIT landed."""
    params = {"b_id": started.ti_id, "b_try": started.try_number, "b_owner": owner_job_id}
    return session.execute(sql.RUNNING_UNDER_OWNER, params).first() is not None


def finish(
    results: Sequence[TryResult],
    *,
    job_id: int | None,
    session: Session,
    cache: DagStructureCache,
    now: datetime,
) -> dict[RunKey, set[str]]:
    """running (or queued) -> the try's final state; returns the tasks that finished, per run.

    Eligible: the row is `queued` or `running` under the same try number, claimed by `job_id`. A
    failed try with retries left becomes `up_for_retry`, due after its task's retry delay (with
    exponential backoff when the task asks for it); see `final_state`. A try its worker did not start
    (`not_started`: the lease had run out) is withdrawn instead. The XCom values a try pushed are
    stored in the same transaction, replacing those of the task instance's earlier tries, only for the
    tries this call finishes: a stale or repeated report, or a try that never started, stores none.
    """
    if not results:
        return {}
    in_flight = sql.IN_FLIGHT_ROWS_LOCKED if is_postgresql(session) else sql.IN_FLIGHT_ROWS
    found = session.execute(in_flight, {"ids": [r.ti_id for r in results]})
    rows = {row.id: row for row in found}
    dags = cache.get_many({row.dag_id for row in rows.values()}, session=session)
    params: list[dict[str, Any]] = []
    events = []
    skips: list[tuple[str, str, str]] = []
    xcom = _XComWrites()
    finished: dict[RunKey, set[str]] = defaultdict(set)
    never_started = []
    for result in results:
        row = rows.get(result.ti_id)
        if row is None or row.try_number != result.try_number:
            continue
        if row.state in _ENDED:
            # A second report of this try (a remote worker recorded it first, under its own job): nothing
            # to write, but its downstream tasks are worth a look now rather than at the next sweep.
            finished[(row.dag_id, row.run_id)].add(row.task_id)
            continue
        if row.queued_by_job_id != job_id or row.state not in _IN_FLIGHT:
            continue
        del rows[result.ti_id]  # a second report of this try in the same batch changes nothing
        if result.outcome == "not_started":
            never_started.append(row)
            continue
        xcom.add(row, result)
        state = final_state(result.outcome, result.try_number, row.max_tries, retry=result.retry)
        retry_at = None
        if state == S.UP_FOR_RETRY:
            retry_at = retry_due_at(dags.get(row.dag_id), row.task_id, result)
        params.append(_finish_params(result, job_id, state, retry_at))
        extra = {"error": result.error} if result.error else None
        events.append(ti_event(state, row, result.try_number, result.end_date, extra))
        if state != S.UP_FOR_RETRY:
            finished[(row.dag_id, row.run_id)].add(row.task_id)
        if state == S.SUCCESS:
            skips.extend((row.dag_id, row.run_id, task_id) for task_id in result.skip_task_ids)
    if params:
        session.execute(sql.FINISH, params)
    xcom.write(session)
    record_events(events, session=session)
    withdraw(never_started, job_id=job_id, session=session, now=now)
    for key, task_ids in _skip_named(skips, session=session, now=now).items():
        finished[key] |= task_ids
    return finished


def _skip_named(
    keys: list[tuple[str, str, str]], *, session: Session, now: datetime
) -> dict[RunKey, set[str]]:
    """none or scheduled -> skipped for the tasks succeeded branching tries named (one UPDATE for the
    batch). A worker never writes the database, so BranchPythonOperator and ShortCircuitOperator name
    the tasks to skip in their result instead of skipping them as Airflow's do."""
    if not keys:
        return {}
    skipped = session.execute(sql.SKIP_NAMED, {"keys": keys, "b_now": now}).all()
    record_events((ti_event(S.SKIPPED, row, row.try_number, now) for row in skipped), session=session)
    finished: dict[RunKey, set[str]] = defaultdict(set)
    for row in skipped:
        finished[(row.dag_id, row.run_id)].add(row.task_id)
    return finished


class _XComWrites:
    """The XCom statements of one `finish`: at most one DELETE and one INSERT, whatever the count."""

    def __init__(self) -> None:
        self.stale: list[dict[str, Any]] = []
        self.rows: list[dict[str, Any]] = []

    def add(self, ti: Any, result: TryResult) -> None:
        if result.try_number > 1:  # an earlier try of this task instance may have pushed values
            self.stale.append(
                {
                    "b_dag_id": ti.dag_id,
                    "b_run_id": ti.run_id,
                    "b_task_id": ti.task_id,
                    "b_map_index": ti.map_index,
                }
            )
        self.rows.extend(
            {
                "dag_id": ti.dag_id,
                "run_id": ti.run_id,
                "task_id": ti.task_id,
                "map_index": ti.map_index,
                "key": key,
                "value": value,
                "timestamp": result.end_date,
            }
            for key, value in result.xcom
        )

    def write(self, session: Session) -> None:
        if self.stale:
            session.execute(sql.CLEAR_XCOM_OF_TI, self.stale)
        if self.rows:
            session.execute(sql.INSERT_XCOM, self.rows)


def _finish_params(
    result: TryResult, job_id: int | None, state: str, retry_at: datetime | None
) -> dict[str, Any]:
    return {
        "b_id": result.ti_id,
        "b_try": result.try_number,
        "b_job": job_id,
        "b_state": state,
        "b_start": result.start_date,
        "b_end": result.end_date,
        "b_duration": (result.end_date - result.start_date).total_seconds(),
        "b_host": result.hostname,
        "b_pid": result.pid,
        "b_retry_at": retry_at,
    }


class Withdrawable(TaskInstanceKey, Protocol):
    """A try that never started: a request taken back from an executor, or a row read back."""

    @property
    def ti_id(self) -> int: ...
    @property
    def try_number(self) -> int: ...


def withdraw(tries: Sequence[Withdrawable], *, job_id: int | None, session: Session, now: datetime) -> None:
    """queued -> scheduled for tries that never started, giving their try number back: a withdrawal
    does not count as a try.

    Eligible: the row is still `queued` under the same try number, claimed by `job_id`, or `running`
    when the executor says its worker never ran the task (the start was recorded at hand-over).
    """
    if not tries:
        return
    params = [{"b_id": t.ti_id, "b_try": t.try_number, "b_job": job_id} for t in tries]
    session.execute(sql.WITHDRAW, params)
    record_events((ti_event(S.SCHEDULED, t, t.try_number - 1, now) for t in tries), session=session)


def reap(
    *,
    session: Session,
    my_job_id: int,
    now: datetime,
    cache: DagStructureCache,
    log_path_for: Callable[[str, str, str, int, int], Path],
) -> tuple[dict[RunKey, set[str]], int]:
    """Orphans -> what really happened to them; returns the tasks that finished, per run, and how many
    tries were reaped.

    Eligible: `queued` or `running`, and queued by no job, or by a job other than `my_job_id` that is
    no longer `running` (recovery marks dead jobs failed first). The dead job's lease has run out, so
    its workers start none of these any more (see `executors.lease`). Each try's record, written by
    its worker beside its log, says what happened: a try that finished gets its real outcome (a
    success is not run again); one that began and never finished fails (or is retried); one whose
    task never began is withdrawn, back to scheduled, without counting as a try.
    """
    orphans_sql = sql.ORPHANS_LOCKED if is_postgresql(session) else sql.ORPHANS
    orphans = session.execute(orphans_sql, {"my_job_id": my_job_id}).all()
    finished: dict[RunKey, set[str]] = defaultdict(set)
    for job_id, rows in _by_job(orphans).items():
        results, never_started = _what_happened(rows, job_id, my_job_id, log_path_for)
        withdraw(never_started, job_id=job_id, session=session, now=now)
        for key, tasks in finish(results, job_id=job_id, session=session, cache=cache, now=now).items():
            finished[key] |= tasks
    return dict(finished), len(orphans)


def _by_job(rows: Sequence[Any]) -> dict[int | None, list[Any]]:
    grouped: dict[int | None, list[Any]] = defaultdict(list)
    for row in rows:
        grouped[row.queued_by_job_id].append(row)
    return grouped


def _what_happened(
    orphans: list[Any],
    job_id: int | None,
    my_job_id: int,
    log_path_for: Callable[[str, str, str, int, int], Path],
) -> tuple[list[TryResult], list[Any]]:
    """The results of the orphans of dead job `job_id`, from their records, and those never started."""
    results: list[TryResult] = []
    never_started = []
    for row in orphans:
        log_path = log_path_for(row.dag_id, row.run_id, row.task_id, row.try_number, row.map_index)
        record = _record_of(row, log_path)
        dead = f"The scheduler (job {job_id}) of this try died; recovered by job {my_job_id}"
        if row.owner_type == CELERY_WORKER_JOB_TYPE and (record or {}).get("outcome") not in _FINAL_OUTCOMES:
            # A worker takes a try over only once its own start succeeded, and its record lives on its
            # machine: a try of a dead worker began, so it was cut short.
            cause = (
                f"The worker (job {job_id}) of this try died before it finished; recovered by job {my_job_id}"
            )
            append_log_line(log_path, cause)
            start = row.start_date or datetime.now(UTC)
            results.append(
                TryResult.failed(row.ti_id, row.try_number, cause, pid=os.getpid(), start_date=start)
            )
        elif record is None:
            never_started.append(row)
            append_log_line(log_path, f"{dead}: the try never started and goes back to scheduled")
        elif record.get("outcome") in _FINAL_OUTCOMES:
            results.append(_result_of(row, record))
            append_log_line(log_path, f"{dead}: the try had ended {record['outcome']}, as recorded")
        else:
            cause = f"{dead} before the try finished"
            append_log_line(log_path, cause)
            start = row.start_date or _parsed(record.get("start_date")) or datetime.now(UTC)
            results.append(
                TryResult.failed(row.ti_id, row.try_number, cause, pid=os.getpid(), start_date=start)
            )
    return results, never_started


_FINAL_OUTCOMES = ("success", "failed", "skipped")
#: A record older than its row's claim (by more than clock jitter) is a previous life's, e.g. of a run
#: that `dags test` replaced: it says nothing about this try.
_RECORD_SKEW = timedelta(seconds=1)


def _record_of(row: Any, log_path: Path) -> dict[str, Any] | None:
    record = read_try_record(log_path)
    if record is None:
        return None
    started = _parsed(record.get("start_date"))
    if started is None or (row.queued_dttm is not None and started < row.queued_dttm - _RECORD_SKEW):
        return None
    return record


def _result_of(row: Any, record: dict[str, Any]) -> TryResult:
    start = _parsed(record.get("start_date"))
    end = _parsed(record.get("end_date")) or start
    assert start is not None and end is not None
    return TryResult(
        ti_id=row.ti_id,
        try_number=row.try_number,
        outcome=record["outcome"],
        start_date=start,
        end_date=end,
        hostname=str(record.get("hostname") or ""),
        pid=int(record.get("pid") or 0),
        error=record.get("error"),
        retry=record.get("retry") is not False,
        skip_task_ids=tuple(str(t) for t in record.get("skip_task_ids") or ()),
        xcom=_xcom_of(record),
    )


def _xcom_of(record: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    """The values a recorded try pushed (its worker checked them when they were pushed); a record of
    an older worker has none."""
    pushed = record.get("xcom")
    if not isinstance(pushed, list):
        return ()
    return tuple(
        (item[0], item[1])
        for item in pushed
        if isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)
    )


def _parsed(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def final_state(
    outcome: TryOutcome, try_number: int, max_tries: int, *, retry: bool = True
) -> TaskInstanceState:
    """The state a try's outcome leaves its task instance in (see `will_retry`)."""
    if outcome == "success":
        return S.SUCCESS
    if outcome == "skipped":
        return S.SKIPPED
    return S.UP_FOR_RETRY if will_retry(try_number, max_tries, retry=retry) else S.FAILED


def retry_due_at(dag: SerializedDag | None, task_id: str, result: TryResult) -> datetime:
    """When the next try of a failed one may be scheduled: its end plus the task's retry delay."""
    if dag is None or task_id not in dag.tasks:
        return result.end_date
    delay: timedelta = dag.tasks[task_id].next_retry_delay(result.try_number)
    return result.end_date + delay
