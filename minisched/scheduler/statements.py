"""The scheduler loop's prebuilt statements, all of a try's transitions included, in one catalogue.

Read this file to review the loop's SQL in one sitting, in the order of a try's life. Each statement
is a Core construct built at import time: building and cache-keying a statement costs more than running
it on the hot path. The functions that run them live in `transitions` (a try's state changes, and the
critical section that claims under pools and limits), `scheduling` (deciding), `dagruns` (creating and
starting runs), `run_ends` (ending runs), `recovery`, `dag_cache` and `job` (the heartbeat). The one
statement of a loop that is not here is the INSERT of its `log` rows (`db.audit`, below this layer).

Compare-and-set: every UPDATE of a task instance names the state it expects, and those of a try's
transitions also name its `(id, try_number)` and the job that claimed it, so a stale writer (another
scheduler, a cleared task, a reaped try) changes nothing.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import (
    Integer,
    Select,
    Update,
    and_,
    bindparam,
    delete,
    func,
    insert,
    null,
    or_,
    select,
    tuple_,
    union_all,
    update,
)

from minisched.models import (
    DagModel,
    DagRun,
    DagRunState,
    Job,
    JobState,
    Pool,
    SerializedDagModel,
    TaskInstance,
    TaskInstanceState,
    XCom,
    table_of,
)
from minisched.models.job import RUN_OWNING_JOB_TYPES
from minisched.models.state import ACTIVE_TI_STATES, FINISHED_RUN_STATES, FINISHED_TI_STATES

S = TaskInstanceState

TI = table_of(TaskInstance)
RUN = table_of(DagRun)
DAG = table_of(DagModel)
POOL = table_of(Pool)
JOB = table_of(Job)
XCOM = table_of(XCom)

RUN_OF_TI = and_(RUN.c.dag_id == TI.c.dag_id, RUN.c.run_id == TI.c.run_id)
RUN_KEY_IN = tuple_(RUN.c.dag_id, RUN.c.run_id).in_(bindparam("runs", expanding=True))
#: The runs a scheduler drives: all but those created by a `dags backfill` or `dags test` that is still
#: running (it drives them itself, in its own process); once that job is dead, the scheduler adopts them.
SCHEDULER_DRIVES_RUN = or_(
    RUN.c.creating_job_id.is_(None),
    RUN.c.creating_job_id.not_in(
        select(JOB.c.id).where(JOB.c.job_type.in_(RUN_OWNING_JOB_TYPES), JOB.c.state == JobState.RUNNING)
    ),
)

# -- the scheduler's job row (see `job`) --------------------------------------------------------------

REGISTER_JOB = insert(JOB).returning(JOB.c.id)
#: Beat only while still `running`: no row changed means another process declared this job dead.
HEARTBEAT = (
    update(JOB)
    .where(JOB.c.id == bindparam("job_id"), JOB.c.state == JobState.RUNNING)
    .values(latest_heartbeat=bindparam("now"))
)
END_JOB = (
    update(JOB)
    .where(JOB.c.id == bindparam("job_id"))
    .values(state=bindparam("state"), end_date=bindparam("now"), latest_heartbeat=bindparam("now"))
)

# -- the DAG structures the loop decides with (see `dag_cache`) ---------------------------------------

SERIALIZED = table_of(SerializedDagModel)
#: The cheap check, every time: which DAGs changed since their structure was loaded.
DAG_HASHES = select(SERIALIZED.c.dag_id, SERIALIZED.c.dag_hash).where(
    SERIALIZED.c.dag_id.in_(bindparam("ids", expanding=True))
)
#: The structures of the DAGs that changed.
SERIALIZED_DAGS = select(SERIALIZED.c.dag_id, SERIALIZED.c.dag_hash, SERIALIZED.c.data).where(
    SERIALIZED.c.dag_id.in_(bindparam("ids", expanding=True))
)

# -- creating and starting runs (see `dagruns`) ------------------------------------------------------

#: How many due DAGs one scheduler iteration creates runs for (others wait for the next iteration).
MAX_DAGS_PER_LOOP = 64
_ACTIVE_RUNS_OF_DAG = (
    select(func.count())
    .where(RUN.c.dag_id == DAG.c.dag_id, RUN.c.state.in_([DagRunState.QUEUED, DagRunState.RUNNING]))
    .scalar_subquery()
)
#: Active, unpaused DAGs whose next run is due, below their max_active_runs (in SQL, so that DAGs at
#: their limit do not take the places of the others below the LIMIT).
DUE_DAGS = (
    select(DAG.c.dag_id, DAG.c.next_dagrun_data_interval_start, DAG.c.next_dagrun_data_interval_end)
    .where(
        DAG.c.is_active.is_(True),
        DAG.c.is_paused.is_(False),
        DAG.c.next_dagrun_create_after <= bindparam("now"),
        DAG.c.max_active_runs > _ACTIVE_RUNS_OF_DAG,
    )
    .order_by(DAG.c.next_dagrun_create_after)
    .limit(MAX_DAGS_PER_LOOP)
)
#: On PostgreSQL two schedulers skip each other's DAGs instead of creating the same run.
DUE_DAGS_LOCKED = DUE_DAGS.with_for_update(of=DAG, skip_locked=True)
#: Stored runs that clash with new ones, by (dag_id, run_id) or by (dag_id, logical_date).
EXISTING_RUNS = select(RUN.c.dag_id, RUN.c.run_id, RUN.c.logical_date).where(
    or_(
        tuple_(RUN.c.dag_id, RUN.c.run_id).in_(bindparam("run_ids", expanding=True)),
        tuple_(RUN.c.dag_id, RUN.c.logical_date).in_(bindparam("logical_dates", expanding=True)),
    )
)
#: New runs, and new task instances (executemany; the latter also for tasks added to a running run).
INSERT_RUNS = insert(RUN)
INSERT_TIS = insert(TI)
#: A DAG's next run fields, moved past the runs just created (executemany, one row per DAG).
ADVANCE_DAGS = update(DAG).where(DAG.c.dag_id == bindparam("b_dag_id"))
_QUEUED_RUNS = (
    select(RUN.c.id, RUN.c.dag_id, RUN.c.run_id, DAG.c.max_active_runs)
    .join(DAG, DAG.c.dag_id == RUN.c.dag_id)
    .where(RUN.c.state == DagRunState.QUEUED)
    .order_by(RUN.c.logical_date, RUN.c.id)
)
#: Queued runs the scheduler may start, oldest first; it leaves those of paused DAGs queued.
QUEUED_RUNS = _QUEUED_RUNS.where(DAG.c.is_paused.is_(False), SCHEDULER_DRIVES_RUN)
#: Queued runs of a backfill or `dags test` (`runs`): started even when their DAG is paused, as Airflow's.
QUEUED_RUNS_OF = _QUEUED_RUNS.where(RUN_KEY_IN)
RUNNING_RUNS_PER_DAG = (
    select(RUN.c.dag_id, func.count())
    .where(RUN.c.state == DagRunState.RUNNING, RUN.c.dag_id.in_(bindparam("dag_ids", expanding=True)))
    .group_by(RUN.c.dag_id)
)
START_RUNS = (
    update(RUN)
    .where(RUN.c.id.in_(bindparam("ids", expanding=True)), RUN.c.state == DagRunState.QUEUED)
    .values(state=DagRunState.RUNNING, start_date=bindparam("now"))
)

# -- a try's transitions (see `transitions`) ---------------------------------------------------------

#: One try of one task instance, as claimed by one job (NULL: by none): once the try was reaped (and
#: perhaps withdrawn and claimed again under the same number by another job), the job that lost it
#: matches nothing any more.
_THIS_TRY = and_(
    TI.c.id == bindparam("b_id"),
    TI.c.try_number == bindparam("b_try"),
    TI.c.queued_by_job_id.is_not_distinct_from(bindparam("b_job")),
)


def _claim(*which: Any) -> Any:
    """scheduled -> queued for the tries `which` selects, consuming a try number; returns the rows won,
    with their new number."""
    return (
        update(TI)
        .where(*which, TI.c.state == S.SCHEDULED)
        .values(
            state=S.QUEUED,
            try_number=TI.c.try_number + 1,
            queued_by_job_id=bindparam("job_id"),
            queued_dttm=bindparam("now"),
            next_retry_at=None,
        )
        .returning(TI.c.id, TI.c.try_number)
    )


#: claim: the tries listed as (id, try number) pairs.
CLAIM = _claim(tuple_(TI.c.id, TI.c.try_number).in_(bindparam("tries", expanding=True)))
#: claim, of one try: the same by its primary key (SQLite runs a row-value `IN` as a scan of the
#: scheduled rows; a chain claims one try per loop).
CLAIM_ONE = _claim(TI.c.id == bindparam("b_id"), TI.c.try_number == bindparam("b_try"))

#: start: queued -> running, with where and when the try began (executemany, one row per try).
START = (
    update(TI)
    .where(_THIS_TRY, TI.c.state == S.QUEUED)
    .values(
        state=S.RUNNING, start_date=bindparam("b_start"), hostname=bindparam("b_host"), pid=bindparam("b_pid")
    )
)
#: start, by a remote worker: the same compare-and-set, which also hands the try to the worker's job
#: (`b_owner`), so that recovery of a dead worker reaps it; one statement, answering whether it won.
START_TAKING_OVER = START.values(queued_by_job_id=bindparam("b_owner")).returning(TI.c.id)
#: start, by a remote worker, when its first attempt's reply was lost: is the try running under this
#: number, owned by that worker's job (the lost COMMIT did land)?
RUNNING_UNDER_OWNER = select(TI.c.id).where(
    TI.c.id == bindparam("b_id"),
    TI.c.try_number == bindparam("b_try"),
    TI.c.state == S.RUNNING,
    TI.c.queued_by_job_id == bindparam("b_owner"),
)
#: start: the XCom values of the retries that just began running, pushed by their earlier tries (one
#: DELETE for the batch; a try's own values are stored only when it ends, so none are lost).
CLEAR_XCOM_OF_STARTED = delete(XCOM).where(
    tuple_(XCOM.c.dag_id, XCOM.c.run_id, XCOM.c.task_id, XCOM.c.map_index).in_(
        select(TI.c.dag_id, TI.c.run_id, TI.c.task_id, TI.c.map_index).where(
            tuple_(TI.c.id, TI.c.try_number).in_(bindparam("tries", expanding=True)),
            TI.c.state == S.RUNNING,
            TI.c.queued_by_job_id.is_not_distinct_from(bindparam("b_job")),
        )
    )
)
#: What names a try: its task instance (as `id` and `ti_id`), and its number.
_TRY_COLUMNS = (
    TI.c.id,
    TI.c.id.label("ti_id"),
    TI.c.dag_id,
    TI.c.run_id,
    TI.c.task_id,
    TI.c.map_index,
    TI.c.try_number,
)
#: finish, first half: the rows of the reported tries (locked on PostgreSQL, so the state read is the
#: one FINISH replaces: no other scheduler reaping the try can change it in between).
IN_FLIGHT_ROWS = select(
    *_TRY_COLUMNS,
    TI.c.max_tries,
    TI.c.state,
    TI.c.queued_by_job_id,
).where(TI.c.id.in_(bindparam("ids", expanding=True)))
IN_FLIGHT_ROWS_LOCKED = IN_FLIGHT_ROWS.with_for_update()
#: finish: queued or running -> success, failed, skipped or up_for_retry (executemany).
FINISH = (
    update(TI)
    .where(_THIS_TRY, or_(TI.c.state == S.QUEUED, TI.c.state == S.RUNNING))
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
#: finish, for a branching try that succeeded: the tasks of its run it named -> skipped, if not started.
SKIP_NAMED = (
    update(TI)
    .where(
        tuple_(TI.c.dag_id, TI.c.run_id, TI.c.task_id).in_(bindparam("keys", expanding=True)),
        or_(TI.c.state.is_(None), TI.c.state == S.SCHEDULED),
    )
    .values(state=S.SKIPPED, start_date=bindparam("b_now"), end_date=bindparam("b_now"))
    .returning(TI.c.dag_id, TI.c.run_id, TI.c.task_id, TI.c.try_number)
)
#: finish: a retried (or cleared) task instance's next try replaces the values its earlier tries pushed
#: (executemany; the unique key's leading columns serve it).
CLEAR_XCOM_OF_TI = delete(XCOM).where(
    XCOM.c.dag_id == bindparam("b_dag_id"),
    XCOM.c.run_id == bindparam("b_run_id"),
    XCOM.c.task_id == bindparam("b_task_id"),
    XCOM.c.map_index == bindparam("b_map_index"),
)
#: finish: the values the finished tries pushed, all of them in one executemany.
INSERT_XCOM = insert(XCOM)
#: withdraw: queued (or running, when its worker says it never ran the task) -> scheduled, giving the
#: try number back.
WITHDRAW = (
    update(TI)
    .where(_THIS_TRY, or_(TI.c.state == S.QUEUED, TI.c.state == S.RUNNING))
    .values(state=S.SCHEDULED, try_number=TI.c.try_number - 1, queued_by_job_id=None)
)
_OWNER = JOB.alias("owner")
#: reap, first half: in-flight tries whose job is no longer running (or that no job queued), with the
#: type of that job (a Celery worker's tries keep their records on the worker's machine).
ORPHANS = (
    select(
        *_TRY_COLUMNS,
        TI.c.queued_by_job_id,
        TI.c.queued_dttm,
        TI.c.start_date,
        _OWNER.c.job_type.label("owner_type"),
    )
    .select_from(TI.outerjoin(_OWNER, _OWNER.c.id == TI.c.queued_by_job_id))
    .where(
        TI.c.state.in_([S.QUEUED, S.RUNNING]),
        or_(
            TI.c.queued_by_job_id.is_(None),
            and_(
                TI.c.queued_by_job_id != bindparam("my_job_id"),
                TI.c.queued_by_job_id.not_in(select(JOB.c.id).where(JOB.c.state == JobState.RUNNING)),
            ),
        ),
    )
)
#: On PostgreSQL the orphans stay locked until reaped: a worker starting one of them meanwhile waits and
#: then finds nothing to start; one whose start is already under way is skipped (its worker owns it).
ORPHANS_LOCKED = ORPHANS.with_for_update(of=TI, skip_locked=True)
#: reap, for executors whose queue can lose a try (celery): tries queued since before `queued_before`.
QUEUED_TOO_LONG = select(
    TI.c.id,
    TI.c.dag_id,
    TI.c.run_id,
    TI.c.task_id,
    TI.c.map_index,
    TI.c.try_number,
    TI.c.queued_by_job_id,
    TI.c.start_date,
).where(TI.c.state == S.QUEUED, TI.c.queued_dttm < bindparam("queued_before"))
QUEUED_TOO_LONG_LOCKED = QUEUED_TOO_LONG.with_for_update(of=TI, skip_locked=True)
#: recovery: the jobs found dead -> failed (only while still marked running).
FAIL_JOBS = (
    update(JOB)
    .where(JOB.c.id.in_(bindparam("ids", expanding=True)), JOB.c.state == JobState.RUNNING)
    .values(state=JobState.FAILED, end_date=bindparam("now"))
)
RUNNING_JOBS = select(JOB.c.id, JOB.c.job_type, JOB.c.hostname, JOB.c.pid, JOB.c.latest_heartbeat).where(
    JOB.c.state == JobState.RUNNING, JOB.c.id != bindparam("my_job_id")
)

# -- the critical section: what may be claimed (see `transitions.queue_scheduled`) -----------------

POOLS = select(POOL.c.pool, POOL.c.slots).order_by(POOL.c.id)
#: On PostgreSQL the pool rows are the critical section's first lock; task instances come second.
POOLS_LOCKED = POOLS.with_for_update()
#: Occupied slots per (pool, DAG), derived from task-instance states: never a stored counter.
OCCUPANCY = (
    select(TI.c.pool, TI.c.dag_id, func.sum(TI.c.pool_slots), func.count(), func.max(DAG.c.max_active_tasks))
    .join(DAG, DAG.c.dag_id == TI.c.dag_id)
    .where(TI.c.state.in_(sorted(ACTIVE_TI_STATES)))
    .group_by(TI.c.pool, TI.c.dag_id)
)
#: Without row locks (SQLite: one writer at a time), the pools and the occupancy in one statement: a
#: pool's row has no `dag_id` (NULL), an occupancy row always has one (it comes from a join on `dag`).
POOLS_AND_OCCUPANCY = union_all(
    select(POOL.c.pool, null().label("dag_id"), POOL.c.slots, null(), null()),
    OCCUPANCY,
)
#: Pools whose scheduled task instances can never be queued: missing, or too small for one task.
STUCK_IN_POOLS = (
    select(TI.c.pool, POOL.c.slots, func.max(TI.c.pool_slots))
    .outerjoin(POOL, POOL.c.pool == TI.c.pool)
    .where(TI.c.state == S.SCHEDULED)
    .group_by(TI.c.pool, POOL.c.slots)
    .having(or_(POOL.c.slots.is_(None), func.max(TI.c.pool_slots) > POOL.c.slots))
)


@functools.cache
def candidates(only_some_runs: bool, lock_rows: bool, pooled: bool, skipping: bool = True) -> Select[Any]:
    """Scheduled task instances of running runs, best first (priority, then the oldest run), with what
    their tries need from their run and DAG rows; `skipping`: but not those of the DAGs `skip_dags`
    (an empty list has no statement of its own: its `NOT IN ()` would be rendered anew every time)."""
    query = (
        select(
            TI.c.id,
            TI.c.dag_id,
            TI.c.run_id,
            TI.c.task_id,
            TI.c.map_index,
            TI.c.try_number,
            TI.c.max_tries,
            TI.c.pool,
            TI.c.pool_slots,
            DAG.c.max_active_tasks,
            # What a try needs from its run and DAG rows: read here, not by a statement of its own.
            DAG.c.fileloc,
            RUN.c.logical_date,
            RUN.c.data_interval_start,
            RUN.c.data_interval_end,
            RUN.c.conf,
        )
        .join(RUN, RUN_OF_TI)
        .join(DAG, DAG.c.dag_id == TI.c.dag_id)
        .where(TI.c.state == S.SCHEDULED, RUN.c.state == DagRunState.RUNNING)
        .order_by(TI.c.priority_weight.desc(), RUN.c.logical_date, TI.c.id)
        .limit(bindparam("limit", type_=Integer))
    )
    if skipping:
        query = query.where(TI.c.dag_id.not_in(bindparam("skip_dags", expanding=True)))
    if pooled:  # pools with a free slot, and no task that needs more slots than its pool has
        query = query.join(POOL, POOL.c.pool == TI.c.pool).where(
            TI.c.pool.in_(bindparam("open_pools", expanding=True)), TI.c.pool_slots <= POOL.c.slots
        )
    if only_some_runs:
        query = query.where(tuple_(TI.c.dag_id, TI.c.run_id).in_(bindparam("runs", expanding=True)))
    else:
        query = query.where(SCHEDULER_DRIVES_RUN)
    if lock_rows:
        query = query.with_for_update(of=TI, skip_locked=True)
    return query


# -- deciding which task instances may run (see `scheduling`) ----------------------------------------

TI_COLUMNS = (
    TI.c.id,
    TI.c.dag_id,
    TI.c.run_id,
    TI.c.task_id,
    TI.c.map_index,
    TI.c.state,
    TI.c.try_number,
    TI.c.max_tries,
    TI.c.next_retry_at,
)
#: The running runs a scheduler drives, decided in full by a sweep.
RUNNING_RUNS = select(RUN.c.dag_id, RUN.c.run_id).where(
    RUN.c.state == DagRunState.RUNNING, SCHEDULER_DRIVES_RUN
)
#: The running runs among `runs` (a backfill's, `dags test`'s).
RUNNING_RUNS_OF = select(RUN.c.dag_id, RUN.c.run_id).where(RUN.c.state == DagRunState.RUNNING, RUN_KEY_IN)
#: up_for_retry task instances of running runs, with the time their retry falls due.
WAITING_RETRIES = (
    select(TI.c.dag_id, TI.c.run_id, TI.c.task_id, TI.c.next_retry_at)
    .join(RUN, RUN_OF_TI)
    .where(TI.c.state == S.UP_FOR_RETRY, RUN.c.state == DagRunState.RUNNING)
)


#: Task instances of one running run, by task (a chain's loop: the downstream of what finished and its
#: upstreams); SQLite runs the row-value `IN` of `task_instances` 5-10x slower, growing with the run.
TIS_OF_RUN = (
    select(*TI_COLUMNS)
    .join(RUN, RUN_OF_TI)
    .where(
        RUN.c.state == DagRunState.RUNNING,
        TI.c.dag_id == bindparam("dag_id"),
        TI.c.run_id == bindparam("run_id"),
        TI.c.task_id.in_(bindparam("task_ids", expanding=True)),
    )
)


@functools.cache
def task_instances(with_full: bool, with_partial: bool) -> Select[Any]:
    """Task instances of running runs: whole runs (`runs`), and/or single ones (`tis`)."""
    conditions = []
    if with_full:
        conditions.append(tuple_(TI.c.dag_id, TI.c.run_id).in_(bindparam("runs", expanding=True)))
    if with_partial:
        conditions.append(
            tuple_(TI.c.dag_id, TI.c.run_id, TI.c.task_id).in_(bindparam("tis", expanding=True))
        )
    running = RUN.c.state == DagRunState.RUNNING
    return select(*TI_COLUMNS).join(RUN, RUN_OF_TI).where(running, or_(*conditions))


#: depends_on_past: the states of the same tasks in the previous runs (`tis`: dag_id, run_id, task_id).
STATES_OF_TIS = select(TI.c.dag_id, TI.c.run_id, TI.c.task_id, TI.c.state).where(
    tuple_(TI.c.dag_id, TI.c.run_id, TI.c.task_id).in_(bindparam("tis", expanding=True))
)
_CURRENT = select(RUN.c.dag_id, RUN.c.run_id, RUN.c.logical_date).where(RUN_KEY_IN).subquery()
_EARLIER = RUN.alias("earlier")
#: depends_on_past: the run with the latest logical_date before each of `runs` (same DAG), if any.
PREVIOUS_RUNS = select(
    _CURRENT.c.dag_id,
    _CURRENT.c.run_id,
    select(_EARLIER.c.run_id)
    .where(_EARLIER.c.dag_id == _CURRENT.c.dag_id, _EARLIER.c.logical_date < _CURRENT.c.logical_date)
    .order_by(_EARLIER.c.logical_date.desc())
    .limit(1)
    .scalar_subquery(),
)


#: expansion: the values mapped tasks are expanded over ((dag_id, run_id, task_id, key) in `keys`).
MAP_SOURCES = (
    select(XCOM.c.dag_id, XCOM.c.run_id, XCOM.c.task_id, XCOM.c.map_index, XCOM.c.key, XCOM.c.value)
    .where(
        tuple_(XCOM.c.dag_id, XCOM.c.run_id, XCOM.c.task_id, XCOM.c.key).in_(
            bindparam("keys", expanding=True)
        )
    )
    .order_by(XCOM.c.dag_id, XCOM.c.run_id, XCOM.c.task_id, XCOM.c.key, XCOM.c.map_index)
)
#: expansion: a ready placeholder becomes instance 0, scheduled (compare-and-set; returns the ids won).
EXPAND_PLACEHOLDERS = (
    update(TI)
    .where(TI.c.id.in_(bindparam("ids", expanding=True)), TI.c.state.is_(None), TI.c.map_index == -1)
    .values(map_index=0, state=S.SCHEDULED)
    .returning(TI.c.id)
)


@functools.cache
def decision(from_none: bool, finishes: bool) -> Update:
    """A decision on a set of task instances, e.g. None -> scheduled or up_for_retry -> scheduled:
    compare-and-set from one state (`old_state`) to another; returns the ids it changed."""
    same_old = TI.c.state.is_(None) if from_none else TI.c.state == bindparam("old_state")
    statement = update(TI).where(TI.c.id.in_(bindparam("ids", expanding=True)), same_old)
    if finishes:
        statement = statement.values(
            state=bindparam("new_state"), start_date=bindparam("now"), end_date=bindparam("now"), duration=0.0
        )
    else:
        statement = statement.values(state=bindparam("new_state"))
    return statement.returning(TI.c.id)


# -- ending runs (see `run_ends`) ----------------------------------------------------------------------

_UNFINISHED = (
    select(TI.c.id)
    .where(
        TI.c.dag_id == RUN.c.dag_id,
        TI.c.run_id == RUN.c.run_id,
        or_(TI.c.state.is_(None), TI.c.state.not_in(sorted(FINISHED_TI_STATES))),
    )
    .exists()
)
#: Running runs none of whose task instances is unfinished (NOT EXISTS stops at the first one).
DONE_RUNS = select(RUN.c.dag_id, RUN.c.run_id).where(
    RUN_KEY_IN, RUN.c.state == DagRunState.RUNNING, ~_UNFINISHED
)
#: The task states of the runs found done, to decide success or failed.
STATES_OF_RUNS = select(TI.c.dag_id, TI.c.run_id, TI.c.task_id, TI.c.map_index, TI.c.state).where(
    tuple_(TI.c.dag_id, TI.c.run_id).in_(bindparam("runs", expanding=True))
)
FINAL_STATES = select(RUN.c.dag_id, RUN.c.run_id, RUN.c.state).where(
    RUN_KEY_IN, RUN.c.state.in_(sorted(FINISHED_RUN_STATES))
)
END_RUNS = (
    update(RUN)
    .where(RUN_KEY_IN, RUN.c.state == DagRunState.RUNNING)
    .values(state=bindparam("state"), end_date=bindparam("now"))
    .returning(RUN.c.dag_id, RUN.c.run_id)
)
