"""The context a task try receives: run identity and data interval, as Airflow names them."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from minisched.authoring.lazy import LazyValue
from minisched.authoring.schedules import to_utc
from minisched.authoring.xcom import RETURN_KEY, TryXCom

if TYPE_CHECKING:
    from minisched.authoring.baseoperator import BaseOperator

# The names a DAG author may ask for; executors must provide at least these.
CONTEXT_KEYS: tuple[str, ...] = (
    "dag_id",
    "task_id",
    "run_id",
    "logical_date",
    "data_interval_start",
    "data_interval_end",
    "ds",
    "try_number",
    "conf",
)
ENV_VARS: Mapping[str, str] = {
    "dag_id": "MINISCHED_DAG_ID",
    "task_id": "MINISCHED_TASK_ID",
    "run_id": "MINISCHED_RUN_ID",
    "logical_date": "MINISCHED_LOGICAL_DATE",
    "data_interval_start": "MINISCHED_DATA_INTERVAL_START",
    "data_interval_end": "MINISCHED_DATA_INTERVAL_END",
    "ds": "MINISCHED_DS",
    "try_number": "MINISCHED_TRY_NUMBER",
}
# What Airflow's BashOperator exports, so ported scripts that read them keep working.
AIRFLOW_ENV_VARS: Mapping[str, str] = {
    "dag_id": "AIRFLOW_CTX_DAG_ID",
    "task_id": "AIRFLOW_CTX_TASK_ID",
    "logical_date": "AIRFLOW_CTX_EXECUTION_DATE",
    "try_number": "AIRFLOW_CTX_TRY_NUMBER",
    "run_id": "AIRFLOW_CTX_DAG_RUN_ID",
}


_current_context: ContextVar[dict[str, Any] | None] = ContextVar("minisched_task_context", default=None)


def get_current_context() -> dict[str, Any]:
    """The context of the try running in this process, from anywhere in the task's code (Airflow's)."""
    context = _current_context.get()
    if context is None:
        raise RuntimeError(
            "get_current_context() was called outside a running task; call it from inside "
            "a task's callable (or a function it calls)"
        )
    return context


def current_context_or_none() -> dict[str, Any] | None:
    """The running try's context, or None outside a task (e.g. DAG code run by a script)."""
    return _current_context.get()


@contextmanager
def running_with_context(context: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Make ``context`` what ``get_current_context()`` returns while the block runs."""
    token = _current_context.set(context)
    try:
        yield context
    finally:
        _current_context.reset(token)


def build_context(  # noqa: PLR0917 -- one argument per field of the try, as the task runner has them
    dag_id: str,
    task_id: str,
    run_id: str,
    logical_date: datetime,
    data_interval_start: datetime,
    data_interval_end: datetime,
    try_number: int,
    conf: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The context dict of one try; ``ds``/``ts`` are derived from the UTC logical date.

    Besides the try's own fields (the arguments) it carries Airflow's ``ts``, ``ds_nodash``, ``ts_nodash``,
    ``ts_nodash_with_tz``, ``task_instance_key_str``, ``macros``, ``var``, ``conn``, ``params`` (DAG params
    overridden by the run's conf) and ``execution_date`` (an alias of ``logical_date`` that
    Airflow 2 still accepts), so ported callables and templates keep working. Datetimes are
    plain aware ``datetime`` objects: ``str()`` prints them as Airflow's do.
    """
    from minisched.authoring import macros
    from minisched.authoring.template_accessors import ConnectionAccessor, VariableAccessor

    logical = to_utc(logical_date)
    run_conf = dict(conf or {})
    ds, ds_nodash, ts, ts_nodash, ts_nodash_with_tz = _date_strings(logical)
    return {
        "dag_id": dag_id,
        "task_id": task_id,
        "run_id": run_id,
        "logical_date": logical,
        "execution_date": logical,
        "data_interval_start": to_utc(data_interval_start),
        "data_interval_end": to_utc(data_interval_end),
        "ds": ds,
        "ds_nodash": ds_nodash,
        "ts": ts,
        "ts_nodash": ts_nodash,
        "ts_nodash_with_tz": ts_nodash_with_tz,
        "task_instance_key_str": f"{dag_id}__{task_id}__{ds_nodash}",
        "try_number": try_number,
        "conf": run_conf,
        "params": {**(params or {}), **run_conf},
        "macros": macros,
        "var": VariableAccessor(),
        "conn": ConnectionAccessor(),
        "test_mode": False,
    }


@lru_cache(maxsize=16)
def _date_strings(logical: datetime) -> tuple[str, str, str, str, str]:
    """``ds``, ``ds_nodash``, ``ts``, ``ts_nodash``, ``ts_nodash_with_tz`` of a UTC logical date: the
    same for every try of a run, so formatted once per run, not per try (4 strftimes and an isoformat)."""
    return (
        logical.strftime("%Y-%m-%d"),
        logical.strftime("%Y%m%d"),
        logical.isoformat(),
        logical.strftime("%Y%m%dT%H%M%S"),
        logical.strftime("%Y%m%dT%H%M%S%z"),
    )


def task_context(
    task: BaseOperator,
    *,
    run_id: str,
    logical_date: datetime,
    data_interval_start: datetime,
    data_interval_end: datetime,
    try_number: int,
    conf: Mapping[str, Any] | None = None,
    map_index: int = -1,
) -> dict[str, Any]:
    """``build_context`` for a task object, with Airflow's ``dag``, ``task``, ``ti`` and ``dag_run``.

    ``ti``/``task_instance`` and ``dag_run`` describe the try and its run; they are read-only
    views built in the worker, not database rows.
    """
    dag = task.dag
    context = build_context(
        dag_id=dag.dag_id if dag else "",
        task_id=task.task_id,
        run_id=run_id,
        logical_date=logical_date,
        data_interval_start=data_interval_start,
        data_interval_end=data_interval_end,
        try_number=try_number,
        conf=conf,
        params=dag.params if dag else None,
    )
    dag_run = RunView(
        dag_id=context["dag_id"],
        run_id=run_id,
        run_type=run_id.split("__", 1)[0] if "__" in run_id else "manual",
        logical_date=context["logical_date"],
        data_interval_start=context["data_interval_start"],
        data_interval_end=context["data_interval_end"],
        conf=context["conf"],
    )
    ti = TaskInstanceView(
        dag_id=context["dag_id"],
        task_id=task.task_id,
        run_id=run_id,
        try_number=try_number,
        logical_date=context["logical_date"],
        task=task,
        dag_run=dag_run,
        map_index=map_index,
    )
    context.update(dag=dag, task=task, ti=ti, task_instance=ti, dag_run=dag_run)
    context.update(previous_success_values(context["dag_id"], context["logical_date"]))
    return context


def previous_success_values(dag_id: str, logical_date: datetime) -> dict[str, LazyValue]:
    """Airflow's ``prev_data_interval_start_success``, ``prev_data_interval_end_success`` and
    ``prev_start_date_success``: of the latest successful run before this one (None if none).
    One database read, made the first time a try uses any of them."""
    run = LazyValue(lambda: _previous_success(dag_id, logical_date))
    return {
        "prev_data_interval_start_success": LazyValue(lambda: run.data_interval_start),
        "prev_data_interval_end_success": LazyValue(lambda: run.data_interval_end),
        "prev_start_date_success": LazyValue(lambda: run.start_date),
    }


def _previous_success(dag_id: str, logical_date: datetime) -> Any:
    from minisched.db.previous_runs import previous_success

    return previous_success(dag_id, logical_date)


@dataclass(frozen=True)
class RunView:
    """What a task sees of its dag run (Airflow's ``dag_run`` in the context)."""

    dag_id: str
    run_id: str
    run_type: str
    logical_date: datetime
    data_interval_start: datetime
    data_interval_end: datetime
    conf: dict[str, Any]
    #: Known to DAG callbacks (the run has ended); None while a try runs.
    state: str | None = None
    start_date: datetime | None = None
    end_date: datetime | None = None

    @property
    def execution_date(self) -> datetime:
        return self.logical_date

    @property
    def external_trigger(self) -> bool:
        return self.run_type == "manual"


@dataclass(frozen=True)
class TaskInstanceView:
    """What a task sees of its own task instance (Airflow's ``ti`` in the context)."""

    dag_id: str
    task_id: str
    run_id: str
    try_number: int
    logical_date: datetime
    task: BaseOperator = field(repr=False)
    dag_run: RunView = field(repr=False)
    map_index: int = -1
    #: Tasks of this run the try asked to skip (branching); the scheduler skips them on success.
    skipped_task_ids: list[str] = field(default_factory=list, compare=False)
    #: The values this try pushed, stored with its result; and its pulls.
    xcom: TryXCom = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        xcom = TryXCom(self.dag_id, self.run_id, self.task_id, map_index=self.map_index)
        object.__setattr__(self, "xcom", xcom)  # frozen: set once, here

    def xcom_push(self, key: str, value: Any) -> None:
        """Store `value` under `key` for later tasks of the run (JSON, within the size cap)."""
        self.xcom.xcom_push(key, value)

    def xcom_pull(
        self, task_ids: str | Iterable[str] | None = None, dag_id: str | None = None, key: str = RETURN_KEY
    ) -> Any:
        """The value one task pushed under `key` in this run (None if none), or a list of values when
        `task_ids` is a list; without `task_ids`, this task's own."""
        return self.xcom.xcom_pull(task_ids, dag_id, key)

    def skip(self, task_ids: Iterable[str]) -> None:
        """Have these tasks of the run marked ``skipped`` once this try succeeds."""
        self.skipped_task_ids.extend(t for t in task_ids if t not in self.skipped_task_ids)

    @property
    def execution_date(self) -> datetime:
        return self.logical_date

    @property
    def key(self) -> tuple[str, str, str, int, int]:
        return (self.dag_id, self.task_id, self.run_id, self.try_number, self.map_index)


def context_env(context: Mapping[str, Any]) -> dict[str, str]:
    """The MINISCHED_* (and Airflow's AIRFLOW_CTX_*) environment variables a BashOperator process gets."""
    env: dict[str, str] = {}
    for key, var in (*ENV_VARS.items(), *AIRFLOW_ENV_VARS.items()):
        value = context.get(key)
        if value is None:
            continue
        env[var] = value.isoformat() if isinstance(value, datetime) else str(value)
    return env
