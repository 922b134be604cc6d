"""Clearing task instances so the scheduler runs them again, as `airflow tasks clear` does.

A cleared task instance goes back to state none (NULL) with its try_number kept and room for its
retries again, and its XCom values are deleted; its run, if finished, goes back to `queued`. Tries
in flight (queued or running) are never touched. The statements are set-based: a few per thousand
task instances, not one per row.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple, TypeVar

from sqlalchemy import and_, case, delete, literal, select, tuple_, update
from sqlalchemy.orm import Session

from minisched.authoring.serialize import SerializedDag
from minisched.db.audit import event_row, record_events
from minisched.exceptions import InputError, MinischedError
from minisched.models import DagRun, DagRunState, TaskInstance, TaskInstanceState, XCom
from minisched.models.state import ACTIVE_TI_STATES, FINISHED_RUN_STATES
from minisched.models.types import utcnow

S = TaskInstanceState
CLEARED_EVENT = "cleared"
FAILED_STATES = (S.FAILED, S.UPSTREAM_FAILED)
CHUNK = 500
T = TypeVar("T")


class ClearableTi(NamedTuple):
    id: int
    run_id: str
    logical_date: datetime
    task_id: str
    state: str | None
    try_number: int
    map_index: int = -1


@dataclass(frozen=True)
class RunFilter:
    """Which runs of the DAG: given run ids and/or a logical_date range (both ends inclusive)."""

    run_ids: Sequence[str] | None = None
    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True)
class ClearPlan:
    dag_id: str
    to_clear: list[ClearableTi]
    in_flight: list[ClearableTi]


@dataclass(frozen=True)
class ClearResult:
    cleared: list[ClearableTi]
    requeued_runs: list[str]


def select_tasks(dag: SerializedDag, *, task_regex: str | None = None, downstream: bool = False) -> set[str]:
    """The DAG's task ids matching `task_regex` (re.search, as Airflow), plus all their downstream tasks.

    The user's pattern is matched in a child process with a time limit (see user_regex.py); call this
    with no transaction open.
    """
    if task_regex is None:
        return set(dag.tasks)
    from minisched.user_regex import InvalidRegex, RegexError, search_names

    try:
        matched = set(search_names(task_regex, sorted(dag.tasks)))
    except InvalidRegex as exc:
        raise MinischedError(f"invalid --task-regex {task_regex!r}: {exc}") from None
    except RegexError as exc:
        raise MinischedError(f"--task-regex: {exc}") from None
    if not matched:
        known = ", ".join(sorted(dag.tasks)[:20])
        raise MinischedError(f"no task of DAG {dag.dag_id!r} matches {task_regex!r} (tasks: {known})")
    return downstream_closure(dag, matched) if downstream else matched


def downstream_closure(dag: SerializedDag, task_ids: Iterable[str]) -> set[str]:
    found: set[str] = set()
    pending = list(task_ids)
    while pending:
        task_id = pending.pop()
        if task_id in found or task_id not in dag.tasks:
            continue
        found.add(task_id)
        pending.extend(dag.tasks[task_id].downstream_task_ids)
    return found


def plan_clear(
    dag: SerializedDag,
    task_ids: Iterable[str],
    *,
    session: Session,
    runs: RunFilter = RunFilter(),
    only_failed: bool = False,
) -> ClearPlan:
    """The task instances that would be cleared, and those left alone because their try is in flight."""
    if runs.start and runs.end and runs.end < runs.start:
        raise InputError(
            f"end_date {runs.end.isoformat()} is before start_date {runs.start.isoformat()}",
            "end_date",
            "start_date",
        )
    query = (
        select(
            TaskInstance.id,
            TaskInstance.run_id,
            DagRun.logical_date,
            TaskInstance.task_id,
            TaskInstance.state,
            TaskInstance.try_number,
            TaskInstance.map_index,
        )
        .join(DagRun, and_(DagRun.dag_id == TaskInstance.dag_id, DagRun.run_id == TaskInstance.run_id))
        .where(
            TaskInstance.dag_id == dag.dag_id,
            TaskInstance.task_id.in_(sorted(task_ids)),
            TaskInstance.state.is_not(None),
        )
        .order_by(DagRun.logical_date, TaskInstance.task_id, TaskInstance.map_index)
    )
    if runs.run_ids is not None:
        query = query.where(TaskInstance.run_id.in_(list(runs.run_ids)))
    if runs.start is not None:
        query = query.where(DagRun.logical_date >= runs.start)
    if runs.end is not None:
        query = query.where(DagRun.logical_date <= runs.end)
    if only_failed:
        query = query.where(TaskInstance.state.in_(FAILED_STATES))
    rows = [ClearableTi(*row) for row in session.execute(query)]
    return ClearPlan(
        dag_id=dag.dag_id,
        to_clear=[ti for ti in rows if ti.state not in ACTIVE_TI_STATES],
        in_flight=[ti for ti in rows if ti.state in ACTIVE_TI_STATES],
    )


def clear_task_instances(
    dag: SerializedDag, tis: Sequence[ClearableTi], *, session: Session, now: datetime | None = None
) -> ClearResult:
    """Reset `tis` (those still not in flight) to none, requeue their finished runs, log each one."""
    now = now or utcnow()
    cleared: list[ClearableTi] = []
    for chunk in _chunks(tis, CHUNK):
        reset = _reset_chunk(dag, chunk, session=session)
        _delete_xcom(dag.dag_id, reset, session=session)
        cleared.extend(reset)
    run_ids = sorted({ti.run_id for ti in cleared})
    requeued: list[str] = []
    for chunk_ids in _chunks(run_ids, CHUNK):
        requeued.extend(_requeue_runs(dag.dag_id, chunk_ids, session=session, now=now))
    record_events(
        (
            event_row(
                CLEARED_EVENT,
                dag_id=dag.dag_id,
                task_id=ti.task_id,
                run_id=ti.run_id,
                try_number=ti.try_number,
                dttm=now,
            )
            for ti in cleared
        ),
        session=session,
    )
    return ClearResult(cleared=cleared, requeued_runs=sorted(requeued))


def _reset_chunk(dag: SerializedDag, chunk: Sequence[ClearableTi], *, session: Session) -> list[ClearableTi]:
    by_id = {ti.id: ti for ti in chunk}
    retries = {ti.task_id: dag.tasks[ti.task_id].retries for ti in chunk if ti.task_id in dag.tasks}
    extra_tries = case(retries, value=TaskInstance.task_id, else_=0) if retries else literal(0)
    result = session.execute(
        update(TaskInstance)
        .where(
            TaskInstance.id.in_(list(by_id)),
            TaskInstance.state.is_not(None),
            TaskInstance.state.not_in(sorted(ACTIVE_TI_STATES)),
        )
        .values(
            state=None,
            max_tries=TaskInstance.try_number + extra_tries,
            start_date=None,
            end_date=None,
            duration=None,
            next_retry_at=None,
        )
        .returning(TaskInstance.id, TaskInstance.try_number)
        .execution_options(synchronize_session=False)
    )
    return [by_id[ti_id]._replace(try_number=tries) for ti_id, tries in result]


def _delete_xcom(dag_id: str, tis: Sequence[ClearableTi], *, session: Session) -> None:
    """A cleared task instance's values go with it, so its next try starts with none (as in Airflow)."""
    if tis:
        session.execute(
            delete(XCom)
            .where(
                XCom.dag_id == dag_id,
                tuple_(XCom.run_id, XCom.task_id).in_([(t.run_id, t.task_id) for t in tis]),
            )
            .execution_options(synchronize_session=False)
        )


def _requeue_runs(dag_id: str, run_ids: Sequence[str], *, session: Session, now: datetime) -> list[str]:
    result = session.execute(
        update(DagRun)
        .where(
            DagRun.dag_id == dag_id,
            DagRun.run_id.in_(list(run_ids)),
            DagRun.state.in_(sorted(FINISHED_RUN_STATES)),
        )
        .values(state=DagRunState.QUEUED, queued_at=now, start_date=None, end_date=None)
        .returning(DagRun.run_id)
        .execution_options(synchronize_session=False)
    )
    return list(result.scalars())


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
